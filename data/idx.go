package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxIDXBytes is the largest data section ReadIDX accepts. It keeps every
// size an int on 32-bit platforms and bounds what a header can ask for.
const MaxIDXBytes = 1<<31 - 1

// Sentinel errors wrapped by ReadIDX and ReadIDXFile; test with errors.Is.
var (
	// ErrHeader reports a bad magic number, type code, rank or dimension.
	ErrHeader = errors.New("data: bad IDX header")
	// ErrTruncated reports a file shorter than its header says.
	ErrTruncated = errors.New("data: truncated IDX file")
	// ErrTrailing reports bytes after the data the header describes.
	ErrTrailing = errors.New("data: trailing bytes after IDX data")
)

// IDX is a decoded IDX file of unsigned bytes (type code 0x08), the format
// of the MNIST files: Data holds the product of Dims bytes in row-major order.
type IDX struct {
	Dims []int
	Data []uint8
}

// formatError names the file and what was wrong with it, and unwraps to
// one of the sentinel errors.
type formatError struct {
	name string
	kind error
	msg  string
}

func (e *formatError) Error() string { return "data: " + e.name + ": " + e.msg }
func (e *formatError) Unwrap() error { return e.kind }

func badf(name string, kind error, format string, args ...any) error {
	return &formatError{name: name, kind: kind, msg: fmt.Sprintf(format, args...)}
}

// typeName names the IDX type codes of the format's definition.
func typeName(t byte) string {
	switch t {
	case 0x08:
		return "unsigned byte"
	case 0x09:
		return "signed byte"
	case 0x0B:
		return "int16"
	case 0x0C:
		return "int32"
	case 0x0D:
		return "float32"
	case 0x0E:
		return "float64"
	}
	return "unknown"
}

// ReadIDX decodes an IDX file of unsigned bytes from r, gzipped (detected by
// its 1f 8b magic) or raw. It reads exactly the size the header declares plus
// one byte, so a truncated file, trailing bytes and a gzip stream that
// inflates past the declared size are all errors, and memory grows only with
// the data actually read.
func ReadIDX(r io.Reader) (*IDX, error) {
	return readIDX(r, "IDX")
}

// ReadIDXFile is ReadIDX on the named file; errors name the path.
func ReadIDXFile(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	return readIDX(f, path)
}

func readIDX(r io.Reader, name string) (*IDX, error) {
	br := bufio.NewReader(r)
	src := io.Reader(br)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("data: %s: %w", name, err)
		}
		defer zr.Close()
		src = zr
	}

	var head [4 + 4*4]byte
	if n, err := io.ReadFull(src, head[:4]); err != nil {
		return nil, shortRead(name, err, "truncated header: need 4 bytes of magic number, file has %d", n)
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, badf(name, ErrHeader, "bad magic number %02x %02x %02x %02x: want 00 00 <type> <ndim>", head[0], head[1], head[2], head[3])
	}
	if t := head[2]; t != 0x08 {
		return nil, badf(name, ErrHeader, "type code 0x%02x (%s) not supported: only 0x08 (unsigned byte) is", t, typeName(t))
	}
	ndim := int(head[3])
	if ndim < 1 || ndim > 4 {
		return nil, badf(name, ErrHeader, "%d dimensions: want 1 to 4", ndim)
	}
	if n, err := io.ReadFull(src, head[4:4+4*ndim]); err != nil {
		return nil, shortRead(name, err, "truncated header: %d dimensions need %d header bytes, file has %d", ndim, 4+4*ndim, 4+n)
	}
	dims := make([]int, ndim)
	size := uint64(1)
	for i := range dims {
		d := uint64(binary.BigEndian.Uint32(head[4+4*i:]))
		if d == 0 {
			return nil, badf(name, ErrHeader, "dimension %d is 0", i)
		}
		// size <= MaxIDXBytes < 2^31 and d < 2^32, so this cannot overflow.
		size *= d
		if size > MaxIDXBytes {
			return nil, badf(name, ErrHeader, "dimensions %v exceed the %d-byte limit", headerDims(head[4:4+4*ndim]), MaxIDXBytes)
		}
		dims[i] = int(d)
	}

	buf, err := readGrowing(src, int(size))
	if err != nil {
		return nil, shortRead(name, err, "truncated: header says %d bytes of data, file has %d", size, len(buf))
	}
	var one [1]byte
	if _, err := io.ReadFull(src, one[:]); err != io.EOF {
		if err == io.ErrUnexpectedEOF {
			return nil, badf(name, ErrTruncated, "truncated: gzip stream ends without its trailer after the %d bytes of data", size)
		}
		if err != nil {
			return nil, fmt.Errorf("data: %s: after %d bytes of data: %w", name, size, err)
		}
		const limit = 1 << 16
		extra, _ := io.CopyN(io.Discard, src, limit)
		more := fmt.Sprint(1 + extra)
		if extra == limit {
			more = "over " + fmt.Sprint(limit)
		}
		return nil, badf(name, ErrTrailing, "trailing data: header says %d bytes of data, file has %s more", size, more)
	}
	return &IDX{Dims: dims, Data: buf}, nil
}

// shortRead turns the end of the input into ErrTruncated and wraps any other
// read error (a corrupt gzip stream) as it is.
func shortRead(name string, err error, format string, args ...any) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return badf(name, ErrTruncated, format, args...)
	}
	return fmt.Errorf("data: %s: %w", name, err)
}

func headerDims(b []byte) []uint32 {
	d := make([]uint32, len(b)/4)
	for i := range d {
		d[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return d
}

// readGrowing reads exactly size bytes, starting with a small buffer and
// doubling it as data arrives, so a header that promises more than the
// input holds costs no more memory than the input does. On a short read it
// returns what it got and the error.
func readGrowing(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, 0, min(size, 1<<20))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), size))
			copy(grown, buf)
			buf = grown
		}
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}
