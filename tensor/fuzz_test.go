package tensor_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// FuzzReadNpy feeds arbitrary bytes to ReadNpy. It must never panic; its
// errors carry the package prefix; what it accepts it reads exactly (header
// and 4 bytes per element, no more), with the values the file holds; and
// the tensor survives a round trip through WriteNpy. The seed corpus is in
// testdata/fuzz/FuzzReadNpy.
func FuzzReadNpy(f *testing.F) {
	d := device.NewCPU(1)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		x, err := tensor.ReadNpy(d, r)
		if err != nil {
			if x != nil {
				t.Fatalf("error %v with a non-nil result", err)
			}
			if !strings.HasPrefix(err.Error(), "tensor: read npy: ") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		defer x.Free()
		v := x.Data()
		used := len(in) - r.Len()
		head := 10 + int(binary.LittleEndian.Uint16(in[8:10]))
		if used != head+4*len(v) {
			t.Fatalf("read %d bytes for a %d-byte header and %d values", used, head, len(v))
		}
		for i, g := range v {
			if want := binary.LittleEndian.Uint32(in[head+4*i:]); math.Float32bits(g) != want {
				t.Fatalf("[%d] = %#x, the file holds %#x", i, math.Float32bits(g), want)
			}
		}
		var buf bytes.Buffer
		if err := x.WriteNpy(&buf); err != nil {
			t.Fatalf("write back: %v", err)
		}
		y, err := tensor.ReadNpy(d, &buf)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		defer y.Free()
		if !slices.Equal(y.Shape(), x.Shape()) || !slices.EqualFunc(y.Data(), v, func(a, b float32) bool {
			return math.Float32bits(a) == math.Float32bits(b)
		}) {
			t.Fatalf("round trip changed %v to %v", x, y)
		}
	})
}
