package safetensors

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecode checks that Decode never panics, that its errors carry the
// package prefix, that it allocates no more values than its input holds, and
// that a file it accepts survives a round trip through Encode unchanged.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "safetensors: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		values := 0
		for i, tensor := range file.Tensors {
			if i > 0 && file.Tensors[i-1].Name >= tensor.Name {
				t.Fatalf("tensors not sorted by name: %q before %q", file.Tensors[i-1].Name, tensor.Name)
			}
			values += len(tensor.Data)
		}
		if 4*values > len(data) {
			t.Fatalf("decoded %d values from %d bytes", values, len(data))
		}
		var buf bytes.Buffer
		if err := Encode(&buf, file); err != nil {
			t.Fatalf("Encode of a decoded file: %v", err)
		}
		again, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatalf("Decode of a re-encoded file: %v", err)
		}
		if err := sameFile(again, file); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
