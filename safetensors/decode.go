package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// entry is one tensor's header entry, checked against the data section.
type entry struct {
	name       string
	shape      []int
	dtype      DType
	begin, end uint64
}

// Decode parses a safetensors file held in data. It validates the whole
// file first and copies the values out, so data may be reused afterwards.
func Decode(data []byte) (*File, error) {
	f, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return f, nil
}

// decode is Decode without the package prefix on its errors.
func decode(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("file of %d bytes is shorter than 8 bytes", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxHeaderLen {
		return nil, fmt.Errorf("header length %d exceeds the limit of %d bytes", n, maxHeaderLen)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d exceeds the %d bytes that follow it", n, len(data)-8)
	}
	header, body := data[8:8+n], data[8+n:]
	entries, meta, err := parseHeader(header)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(entries, uint64(len(body))); err != nil {
		return nil, err
	}
	// Every check has passed: the tensors cover body exactly, so the
	// allocations below add up to len(body).
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	f := &File{Tensors: make([]Tensor, len(entries)), Metadata: meta}
	for i, e := range entries {
		raw := body[e.begin:e.end]
		values := make([]float32, len(raw)/width(e.dtype))
		if e.dtype == I64 {
			for j := range values {
				v := int64(binary.LittleEndian.Uint64(raw[8*j:]))
				if v > maxI64 || v < -maxI64 {
					return nil, fmt.Errorf("tensor %q of dtype I64 holds %d, beyond the 2^24 that float32 holds exactly", e.name, v)
				}
				values[j] = float32(v)
			}
		} else {
			for j := range values {
				values[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
		}
		f.Tensors[i] = Tensor{Name: e.name, Shape: e.shape, Data: values}
		if e.dtype != F32 {
			f.Tensors[i].DType = e.dtype
		}
	}
	return f, nil
}

// checkLayout checks that the entries' data offsets match their shapes and
// tile a data section of size bytes without overlaps, gaps or trailing bytes.
// It sorts entries by offset.
func checkLayout(entries []entry, size uint64) error {
	for _, e := range entries {
		w := uint64(width(e.dtype))
		n, err := numValues(e.shape, int(w))
		if err != nil {
			return fmt.Errorf("tensor %q: %w", e.name, err)
		}
		if e.end < e.begin {
			return fmt.Errorf("tensor %q has data_offsets [%d,%d] with end before begin", e.name, e.begin, e.end)
		}
		if e.end > size {
			return fmt.Errorf("tensor %q has data_offsets [%d,%d] outside the %d-byte data section", e.name, e.begin, e.end, size)
		}
		if e.end-e.begin != w*uint64(n) {
			return fmt.Errorf("tensor %q has %d data bytes, shape %v needs %d (%s)", e.name, e.end-e.begin, e.shape, w*uint64(n), e.dtype)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(a.begin, b.begin); c != 0 {
			return c
		}
		return cmp.Compare(a.end, b.end)
	})
	var at uint64
	for i, e := range entries {
		if e.begin < at {
			return fmt.Errorf("tensors %q and %q overlap", entries[i-1].name, e.name)
		}
		if e.begin > at {
			return fmt.Errorf("%d unused bytes in the data section before tensor %q", e.begin-at, e.name)
		}
		at = e.end
	}
	if at != size {
		return fmt.Errorf("%d trailing bytes after the last tensor", size-at)
	}
	return nil
}

// parseHeader parses the JSON header into its tensor entries and metadata.
// It reads the JSON as a stream of tokens so that it can reject duplicate
// keys and fields other than the three the format defines.
func parseHeader(header []byte) ([]entry, map[string]string, error) {
	if !utf8.Valid(header) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	p := &parser{dec: json.NewDecoder(bytes.NewReader(header))}
	p.dec.UseNumber()
	if err := p.delim('{', "header"); err != nil {
		return nil, nil, err
	}
	var entries []entry
	var meta map[string]string
	seen := make(map[string]bool)
	for p.dec.More() {
		name, err := p.key()
		if err != nil {
			return nil, nil, err
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("duplicate key %q in header", name)
		}
		seen[name] = true
		if name == metadataKey {
			if meta, err = p.metadata(); err != nil {
				return nil, nil, err
			}
			continue
		}
		if name == "" {
			return nil, nil, errors.New("tensor with an empty name")
		}
		e, err := p.entry(name)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if err := p.delim('}', "header"); err != nil {
		return nil, nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, nil, errors.New("header is not valid JSON: data after the top-level object")
	}
	return entries, meta, nil
}

// parser reads the header's JSON tokens.
type parser struct {
	dec *json.Decoder
}

// token returns the next token, turning a syntax error into a header error.
func (p *parser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err == io.EOF {
		return nil, errors.New("header is not valid JSON: unexpected end")
	}
	if err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	return tok, nil
}

// delim reads the delimiter d, which opens or closes what.
func (p *parser) delim(d json.Delim, what string) error {
	tok, err := p.token()
	if err != nil {
		return err
	}
	if tok != d {
		if d == '{' {
			return fmt.Errorf("%s is not a JSON object", what)
		}
		return fmt.Errorf("%s is not a JSON array", what)
	}
	return nil
}

// key reads an object key.
func (p *parser) key() (string, error) {
	tok, err := p.token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok { // unreachable: the decoder only yields strings as keys
		return "", errors.New("header is not valid JSON: object key is not a string")
	}
	return s, nil
}

// metadata reads the __metadata__ object, which maps strings to strings.
func (p *parser) metadata() (map[string]string, error) {
	errNotMap := errors.New("__metadata__ is not a map of strings to strings")
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errNotMap
	}
	meta := make(map[string]string)
	for p.dec.More() {
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, errNotMap
		}
		if _, dup := meta[k]; dup {
			return nil, fmt.Errorf("duplicate key %q in __metadata__", k)
		}
		meta[k] = v
	}
	if _, err := p.token(); err != nil {
		return nil, err
	}
	return meta, nil
}

// entry reads the header entry of the tensor called name.
func (p *parser) entry(name string) (entry, error) {
	e := entry{name: name}
	if err := p.delim('{', fmt.Sprintf("entry of tensor %q", name)); err != nil {
		return e, err
	}
	var dtype string
	var hasDtype, hasShape, hasOffsets bool
	for p.dec.More() {
		k, err := p.key()
		if err != nil {
			return e, err
		}
		var dup bool
		switch k {
		case "dtype":
			dup, hasDtype = hasDtype, true
			tok, err := p.token()
			if err != nil {
				return e, err
			}
			s, ok := tok.(string)
			if !ok {
				return e, fmt.Errorf("tensor %q: dtype is not a string", name)
			}
			dtype = s
		case "shape":
			dup, hasShape = hasShape, true
			dims, err := p.integers(name, "shape")
			if err != nil {
				return e, err
			}
			e.shape = make([]int, len(dims))
			for i, d := range dims {
				if d < 0 {
					return e, fmt.Errorf("tensor %q: negative dimension %d in shape %v", name, d, dims)
				}
				if uint64(d) > math.MaxInt {
					return e, fmt.Errorf("tensor %q: shape %v overflows", name, dims)
				}
				e.shape[i] = int(d)
			}
		case "data_offsets":
			dup, hasOffsets = hasOffsets, true
			offs, err := p.integers(name, "data_offsets")
			if err != nil {
				return e, err
			}
			if len(offs) != 2 || offs[0] < 0 || offs[1] < 0 {
				return e, fmt.Errorf("tensor %q: data_offsets %v is not a pair of non-negative integers", name, offs)
			}
			e.begin, e.end = uint64(offs[0]), uint64(offs[1])
		default:
			return e, fmt.Errorf("tensor %q: unknown field %q", name, k)
		}
		if dup {
			return e, fmt.Errorf("tensor %q: duplicate field %q", name, k)
		}
	}
	if _, err := p.token(); err != nil {
		return e, err
	}
	switch {
	case !hasDtype:
		return e, fmt.Errorf("tensor %q: missing dtype", name)
	case !hasShape:
		return e, fmt.Errorf("tensor %q: missing shape", name)
	case !hasOffsets:
		return e, fmt.Errorf("tensor %q: missing data_offsets", name)
	case width(DType(dtype)) == 0:
		return e, fmt.Errorf("unsupported dtype %s for tensor %q", dtype, name)
	}
	e.dtype = DType(dtype)
	return e, nil
}

// integers reads a JSON array of integers, the field of the tensor's entry.
func (p *parser) integers(name, field string) ([]int64, error) {
	if err := p.delim('[', fmt.Sprintf("tensor %q: %s", name, field)); err != nil {
		return nil, err
	}
	var out []int64
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("tensor %q: %s holds %v, not an integer", name, field, tok)
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %s holds %s, not a 64-bit integer", name, field, num)
		}
		out = append(out, v)
	}
	if _, err := p.token(); err != nil {
		return nil, err
	}
	return out, nil
}
