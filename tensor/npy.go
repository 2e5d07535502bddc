package tensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/gograd/gograd/device"
)

// npyMagic starts every .npy file of format version 1.0.
const npyMagic = "\x93NUMPY\x01\x00"

// WriteNpy writes the tensor to w in NumPy's .npy format (version 1.0,
// little-endian float32, C order).
func (t *Tensor) WriteNpy(w io.Writer) error {
	v := t.Data()
	buf := make([]byte, 0, 64+4*len(v))
	buf = append(buf, npyHeader(t.shape)...)
	for _, x := range v {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("tensor: write npy: %w", err)
	}
	return nil
}

// npyHeader returns the magic, length and dictionary of a float32 .npy
// file of shape, padded with spaces and a newline to 64 bytes.
func npyHeader(shape []int) string {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	pad := 63 - (len(npyMagic)+2+len(dict))%64
	dict += strings.Repeat(" ", pad) + "\n"
	return npyMagic + string(binary.LittleEndian.AppendUint16(nil, uint16(len(dict)))) + dict
}

// The header fields.
var (
	npyDescrRE = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	npyOrderRE = regexp.MustCompile(`'fortran_order':\s*(False|True)`)
	npyShapeRE = regexp.MustCompile(`'shape':\s*\(([^\(]*)\)`)
)

// ReadNpy reads a little-endian float32 .npy file (format version 1.0) from
// r into a new tensor on dev. It reads exactly the file's bytes.
//
// The header is checked and the data read in full before anything is
// allocated on the device, so that a corrupt file gives an error rather than
// a panic or an allocation of the size it claims.
func ReadNpy(dev device.Device, r io.Reader) (*Tensor, error) {
	t, err := readNpy(dev, r)
	if err != nil {
		return nil, fmt.Errorf("tensor: read npy: %w", err)
	}
	return t, nil
}

func readNpy(dev device.Device, r io.Reader) (*Tensor, error) {
	head := make([]byte, len(npyMagic)+2)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if string(head[:6]) != npyMagic[:6] {
		return nil, errors.New("not a .npy file")
	}
	if string(head[6:8]) != npyMagic[6:] {
		return nil, fmt.Errorf("format version %d.%d, want 1.0", head[6], head[7])
	}
	dict := make([]byte, binary.LittleEndian.Uint16(head[8:]))
	if _, err := io.ReadFull(r, dict); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	shape, err := parseNpyDict(dict)
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range shape {
		if d != 0 && n > math.MaxInt/4/d {
			return nil, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	payload, err := io.ReadAll(io.LimitReader(r, int64(4*n)))
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if len(payload) != 4*n {
		return nil, fmt.Errorf("data: %d bytes for shape %v, want %d", len(payload), shape, 4*n)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(payload[4*i:]))
	}
	var t *Tensor
	if err := Catch(func() { t = FromSlice(dev, v, shape...) }); err != nil {
		return nil, err
	}
	return t, nil
}

// parseNpyDict checks the header dictionary of a float32 C-order array and
// returns its shape.
func parseNpyDict(dict []byte) ([]int, error) {
	m := npyDescrRE.FindSubmatch(dict)
	if m == nil {
		return nil, errors.New("header has no descr")
	}
	if string(m[1]) != "<f4" {
		return nil, fmt.Errorf("dtype %q, want little-endian float32 '<f4'", m[1])
	}
	if m = npyOrderRE.FindSubmatch(dict); m == nil {
		return nil, errors.New("header has no fortran_order")
	}
	if string(m[1]) != "False" {
		return nil, errors.New("Fortran-order arrays are not supported")
	}
	if m = npyShapeRE.FindSubmatch(dict); m == nil {
		return nil, errors.New("header has no shape")
	}
	fields := strings.Split(string(m[1]), ",")
	shape := make([]int, 0, len(fields))
	for i, f := range fields {
		f = strings.Trim(f, " ")
		if f == "" && i == len(fields)-1 { // "()" or a trailing comma
			break
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("bad shape (%s)", m[1])
		}
		shape = append(shape, d)
	}
	return shape, nil
}
