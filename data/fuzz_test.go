package data

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// FuzzReadIDX feeds arbitrary bytes to ReadIDX. It must never panic; what it
// accepts must be consistent with its header and survive a round trip; its
// errors carry the package prefix; and the input gzipped must give the same
// result. The seed corpus is in testdata/fuzz/FuzzReadIDX.
func FuzzReadIDX(f *testing.F) {
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	f.Fuzz(func(t *testing.T, in []byte) {
		idx, err := ReadIDX(bytes.NewReader(in))
		if len(in) > 0 && in[0] != 0x1f {
			zbuf.Reset()
			zw.Reset(&zbuf)
			if _, err := zw.Write(in); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			zidx, zerr := ReadIDX(&zbuf)
			if fmt.Sprint(err) != fmt.Sprint(zerr) {
				t.Fatalf("raw input gives error %v, gzipped %v", err, zerr)
			}
			if err == nil && (!slices.Equal(idx.Dims, zidx.Dims) || !bytes.Equal(idx.Data, zidx.Data)) {
				t.Fatalf("raw and gzipped inputs decode differently")
			}
		}
		if err != nil {
			if idx != nil {
				t.Fatalf("error %v with a non-nil result", err)
			}
			if !strings.HasPrefix(err.Error(), "data: IDX: ") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		if len(idx.Dims) < 1 || len(idx.Dims) > 4 {
			t.Fatalf("accepted %d dimensions", len(idx.Dims))
		}
		size := 1
		for _, d := range idx.Dims {
			if d <= 0 {
				t.Fatalf("accepted dimensions %v", idx.Dims)
			}
			size *= d
		}
		if size != len(idx.Data) {
			t.Fatalf("dimensions %v but %d bytes of data", idx.Dims, len(idx.Data))
		}
		// Deflate inflates at most 1032 to 1.
		if len(idx.Data) > 1032*len(in) {
			t.Fatalf("%d bytes of data from a %d-byte input", len(idx.Data), len(in))
		}
		dims := make([]uint32, len(idx.Dims))
		for i, d := range idx.Dims {
			dims[i] = uint32(d)
		}
		raw := encodeIDX(0x08, dims, idx.Data)
		if in[0] != 0x1f && !bytes.Equal(raw, in) {
			t.Fatalf("accepted a raw input that does not re-encode to itself")
		}
		again, err := ReadIDX(bytes.NewReader(raw))
		if err != nil || !slices.Equal(again.Dims, idx.Dims) || !bytes.Equal(again.Data, idx.Data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
