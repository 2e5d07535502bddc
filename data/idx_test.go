package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// encodeIDX writes an IDX file with the given type code and dimensions.
func encodeIDX(typ byte, dims []uint32, data []byte) []byte {
	b := []byte{0, 0, typ, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestReadIDXRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dims := range [][]uint32{{1}, {7}, {3, 5}, {2, 3, 5}, {3, 1, 4, 7}, {5, 28, 28}, {1 << 20, 3}} {
		size := 1
		for _, d := range dims {
			size *= int(d)
		}
		want := randomBytes(rng, size)
		raw := encodeIDX(0x08, dims, want)
		for _, tc := range []struct {
			name string
			in   []byte
		}{{"raw", raw}, {"gzip", gzipBytes(t, raw)}} {
			check := func(t *testing.T, got *IDX) {
				t.Helper()
				if !slices.Equal(got.Dims, u32ToInt(dims)) {
					t.Errorf("Dims = %v, want %v", got.Dims, dims)
				}
				if !bytes.Equal(got.Data, want) {
					t.Errorf("Data differs (len %d, want %d)", len(got.Data), len(want))
				}
			}
			t.Run(tc.name, func(t *testing.T) {
				got, err := ReadIDX(bytes.NewReader(tc.in))
				if err != nil {
					t.Fatalf("dims %v: %v", dims, err)
				}
				check(t, got)
				// One byte per Read exercises every short read.
				if size < 1000 {
					got, err = ReadIDX(&oneByteReader{tc.in})
					if err != nil {
						t.Fatalf("dims %v, one byte at a time: %v", dims, err)
					}
					check(t, got)
				}
				path := filepath.Join(t.TempDir(), "x")
				if err := os.WriteFile(path, tc.in, 0o644); err != nil {
					t.Fatal(err)
				}
				got, err = ReadIDXFile(path)
				if err != nil {
					t.Fatalf("dims %v: %v", dims, err)
				}
				check(t, got)
			})
		}
	}
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func u32ToInt(d []uint32) []int {
	out := make([]int, len(d))
	for i, v := range d {
		out[i] = int(v)
	}
	return out
}

func TestReadIDXErrors(t *testing.T) {
	mnistHead := encodeIDX(0x08, []uint32{10000, 28, 28}, nil)
	valid := encodeIDX(0x08, []uint32{2, 3}, []byte{1, 2, 3, 4, 5, 6})
	validGz := gzipBytes(t, valid)
	badCRC := slices.Clone(validGz)
	badCRC[len(badCRC)-8] ^= 0xff
	bomb := gzipBytes(t, encodeIDX(0x08, []uint32{1000}, make([]byte, 10<<20)))

	for _, tc := range []struct {
		name string
		in   []byte
		kind error // nil: any error
		want string
	}{
		{"empty", nil, ErrTruncated, "data: IDX: truncated header: need 4 bytes of magic number, file has 0"},
		{"short magic", []byte{0, 0, 8}, ErrTruncated, "file has 3"},
		{"short dims", encodeIDX(0x08, []uint32{3, 4}, nil)[:9], ErrTruncated,
			"truncated header: 2 dimensions need 12 header bytes, file has 9"},
		{"bad magic", []byte{1, 0, 8, 1, 0, 0, 0, 1, 7}, ErrHeader, "bad magic number 01 00 08 01: want 00 00 <type> <ndim>"},
		{"bad magic 2", []byte{0, 7, 8, 1, 0, 0, 0, 1, 7}, ErrHeader, "bad magic number 00 07"},
		{"float32 type", encodeIDX(0x0D, []uint32{1}, []byte{0, 0, 0, 0}), ErrHeader,
			"type code 0x0d (float32) not supported: only 0x08 (unsigned byte) is"},
		{"unknown type", encodeIDX(0x42, []uint32{1}, []byte{0}), ErrHeader, "type code 0x42 (unknown)"},
		{"ndim 0", []byte{0, 0, 8, 0}, ErrHeader, "0 dimensions: want 1 to 4"},
		{"ndim 5", encodeIDX(0x08, []uint32{1, 1, 1, 1, 1}, []byte{0}), ErrHeader, "5 dimensions: want 1 to 4"},
		{"ndim 255", []byte{0, 0, 8, 255}, ErrHeader, "255 dimensions"},
		{"zero dim", encodeIDX(0x08, []uint32{3, 0, 2}, nil), ErrHeader, "dimension 1 is 0"},
		{"huge dims", encodeIDX(0x08, []uint32{1 << 31}, nil), ErrHeader,
			"dimensions [2147483648] exceed the 2147483647-byte limit"},
		{"overflowing dims", encodeIDX(0x08, []uint32{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)}, nil), ErrHeader,
			"exceed the 2147483647-byte limit"},
		{"truncated data", append(slices.Clone(mnistHead), make([]byte, 1234)...), ErrTruncated,
			"data: IDX: truncated: header says 7840000 bytes of data, file has 1234"},
		{"truncated data gzip", gzipBytes(t, append(slices.Clone(mnistHead), make([]byte, 1234)...)), ErrTruncated,
			"data: IDX: truncated: header says 7840000 bytes of data, file has 1234"},
		{"no data", mnistHead, ErrTruncated, "header says 7840000 bytes of data, file has 0"},
		{"trailing bytes", append(slices.Clone(valid), 9, 9, 9), ErrTrailing,
			"data: IDX: trailing data: header says 6 bytes of data, file has 3 more"},
		{"trailing bytes gzip", gzipBytes(t, append(slices.Clone(valid), 9)), ErrTrailing,
			"header says 6 bytes of data, file has 1 more"},
		{"gzip bomb", bomb, ErrTrailing, "header says 1000 bytes of data, file has over 65536 more"},
		{"gzip bad checksum", badCRC, gzip.ErrChecksum, "data: IDX: after 6 bytes of data: gzip: invalid checksum"},
		{"gzip cut in the trailer", validGz[:len(validGz)-3], ErrTruncated, "gzip stream ends without its trailer"},
		{"gzip cut in the stream", validGz[:14], nil, "data: IDX: "},
		{"gzip bad header", []byte{0x1f, 0x8b, 0, 0}, nil, "data: IDX: "},
		{"garbage after gzip", append(slices.Clone(validGz), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), gzip.ErrHeader,
			"data: IDX: after 6 bytes of data: gzip: invalid header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadIDX(bytes.NewReader(tc.in))
			if err == nil {
				t.Fatalf("got %v dims, no error; want %q", got.Dims, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "data: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
		})
	}
}

func TestReadIDXFileErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t10k-images-idx3-ubyte.gz")
	trunc := gzipBytes(t, encodeIDX(0x08, []uint32{10000, 28, 28}, make([]byte, 1234)))
	if err := os.WriteFile(path, trunc, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadIDXFile(path)
	want := "data: " + path + ": truncated: header says 7840000 bytes of data, file has 1234"
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}

	missing := filepath.Join(dir, "nope")
	_, err = ReadIDXFile(missing)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v, want one naming %s", err, missing)
	}
}

// TestReadIDXMemoryBound checks that a header promising the largest allowed
// size does not make ReadIDX allocate it when the data is not there.
func TestReadIDXMemoryBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		dims []uint32
	}{
		{"max", []uint32{MaxIDXBytes}},
		{"max 3d", []uint32{1 << 10, 1 << 10, 2047}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := encodeIDX(0x08, tc.dims, make([]byte, 100))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := ReadIDX(bytes.NewReader(in))
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("error %v, want ErrTruncated", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Errorf("allocated %d bytes for a %d-byte input", got, len(in))
			}
		})
	}
}

func BenchmarkReadIDX(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	raw := encodeIDX(0x08, []uint32{1000, 28, 28}, randomBytes(rng, 1000*28*28))
	for _, tc := range []struct {
		name string
		in   []byte
	}{{"raw", raw}, {"gzip", gzipBytes(b, raw)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := ReadIDX(bytes.NewReader(tc.in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
