package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gograd/gograd/internal/atomicfile"
)

// DType is the element type of a tensor in the file.
type DType string

// The dtypes this package reads and writes.
const (
	// F32 is float32, the dtype of every tensor whose DType is empty.
	F32 DType = "F32"
	// I64 is int64, PyTorch's integer counters (a BatchNorm's
	// num_batches_tracked). Its values are held in Data as float32 and must
	// be integers of magnitude at most 2^24, which float32 holds exactly.
	I64 DType = "I64"
)

// maxI64 is the largest magnitude of an I64 value, 2^24.
const maxI64 = 1 << 24

const (
	// metadataKey is the header key that holds the string metadata.
	metadataKey = "__metadata__"
	// maxHeaderLen bounds the header length, as the reference implementation does.
	maxHeaderLen = 100_000_000
	// alignment is the byte alignment of the data section within the file.
	alignment = 8
	// chunkValues is how many float32 values Encode converts per write.
	chunkValues = 16 << 10
)

// Tensor is one named array. Data holds the values in row-major order, as
// float32 whatever the file's dtype; its length is the product of Shape,
// which is 1 for a scalar (an empty Shape). DType is the dtype in the file:
// empty or F32, or I64.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
	DType DType
}

// dtype returns t's dtype, F32 when it is empty.
func (t *Tensor) dtype() DType {
	if t.DType == "" {
		return F32
	}
	return t.DType
}

// width returns the bytes per value of a dtype this package supports, or 0.
func width(d DType) int {
	switch d {
	case F32:
		return 4
	case I64:
		return 8
	}
	return 0
}

// File is the content of a safetensors file. Decode returns Tensors sorted
// by name, and a nil Metadata when the file has none. Encode accepts Tensors
// in any order.
type File struct {
	Tensors  []Tensor
	Metadata map[string]string
}

// Lookup returns the tensor with the given name.
func (f *File) Lookup(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// Encode writes f to w in the safetensors format, with the tensors laid out
// in name order. It checks f before writing anything: names must be
// non-empty, valid UTF-8, unique and other than "__metadata__", dimensions
// non-negative, and each tensor's Data exactly as long as its Shape needs.
func Encode(w io.Writer, f *File) error {
	if err := encode(w, f); err != nil {
		return fmt.Errorf("safetensors: encode: %w", err)
	}
	return nil
}

// encode is Encode without the package prefix on its errors.
func encode(w io.Writer, f *File) error {
	if f == nil {
		return errors.New("nil file")
	}
	order, err := checkFile(f)
	if err != nil {
		return err
	}
	header := encodeHeader(f, order)
	if len(header) > maxHeaderLen {
		return fmt.Errorf("header of %d bytes exceeds the limit of %d", len(header), maxHeaderLen)
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := w.Write(prefix[:]); err != nil {
		return fmt.Errorf("writing header length: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("writing header: %w", err)
	}
	total := 0
	for _, t := range f.Tensors {
		total += len(t.Data)
	}
	buf := make([]byte, 8*min(total, chunkValues))
	for _, i := range order {
		t := &f.Tensors[i]
		wide := t.dtype() == I64
		for data := t.Data; len(data) > 0; {
			n := min(len(data), chunkValues)
			k := 4 * n
			if wide {
				k = 8 * n
				for j, v := range data[:n] {
					binary.LittleEndian.PutUint64(buf[8*j:], uint64(int64(v)))
				}
			} else {
				for j, v := range data[:n] {
					binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
				}
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return fmt.Errorf("writing tensor %q: %w", t.Name, err)
			}
			data = data[n:]
		}
	}
	return nil
}

// checkFile validates f for encoding and returns the indices of its tensors
// in name order.
func checkFile(f *File) ([]int, error) {
	for i := range f.Tensors {
		t := &f.Tensors[i]
		switch {
		case t.Name == "":
			return nil, fmt.Errorf("tensor %d has an empty name", i)
		case t.Name == metadataKey:
			return nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		case !utf8.ValidString(t.Name):
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		if width(t.dtype()) == 0 {
			return nil, fmt.Errorf("tensor %q has unsupported dtype %s", t.Name, t.DType)
		}
		n, err := numValues(t.Shape, width(t.dtype()))
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if len(t.Data) != n {
			return nil, fmt.Errorf("tensor %q has %d values, shape %v needs %d", t.Name, len(t.Data), t.Shape, n)
		}
		if t.dtype() == I64 {
			for _, v := range t.Data {
				if v != float32(math.Trunc(float64(v))) || v > maxI64 || v < -maxI64 {
					return nil, fmt.Errorf("tensor %q of dtype I64 holds %g, not an integer of magnitude at most 2^24", t.Name, v)
				}
			}
		}
	}
	for k, v := range f.Metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata %q: %q is not valid UTF-8", k, v)
		}
	}
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(f.Tensors[a].Name, f.Tensors[b].Name) })
	for i := 1; i < len(order); i++ {
		if name := f.Tensors[order[i]].Name; name == f.Tensors[order[i-1]].Name {
			return nil, fmt.Errorf("duplicate tensor name %q", name)
		}
	}
	return order, nil
}

// numValues returns the number of values a shape holds. It fails on a
// negative dimension, or when the size in bytes, of width bytes per value,
// would overflow an int.
func numValues(shape []int, width int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > math.MaxInt/width/d {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		n *= d
	}
	return n, nil
}

// encodeHeader returns the JSON header of f, with the tensors in the given
// order, padded with spaces to a multiple of the alignment.
func encodeHeader(f *File, order []int) []byte {
	var b []byte
	b = append(b, '{')
	if len(f.Metadata) > 0 {
		b = appendString(b, metadataKey)
		b = append(b, ":{"...)
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, f.Metadata[k])
		}
		b = append(b, '}')
	}
	offset := 0
	for _, i := range order {
		t := &f.Tensors[i]
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendString(b, t.Name)
		b = append(b, `:{"dtype":"`...)
		b = append(b, t.dtype()...)
		b = append(b, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, int64(offset), 10)
		offset += width(t.dtype()) * len(t.Data)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(offset), 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for len(b)%alignment != 0 {
		b = append(b, ' ')
	}
	return b
}

// appendString appends s, which must be valid UTF-8, as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// WriteFile writes f to path atomically. It encodes into a temporary file
// in the same directory, syncs and closes it, renames it over path and syncs
// the directory. On any error before the rename the temporary file is
// removed and an existing file at path is left untouched; only a failure to
// sync the directory, which its error reports, comes after the new file is
// in place. The new file keeps the permissions of the regular file it
// replaces, or gets 0644.
func WriteFile(path string, f *File) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return encode(w, f) }); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return nil
}

// ReadFile reads and decodes the safetensors file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return f, nil
}
