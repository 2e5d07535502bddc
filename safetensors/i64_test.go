package safetensors

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// i64 returns the little-endian encoding of int64 values.
func i64(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// TestI64RoundTrip encodes F32 and I64 tensors together, checks the I64
// entry and its bytes as PyTorch writes them, and decodes them back.
func TestI64RoundTrip(t *testing.T) {
	f := &File{Tensors: []Tensor{
		{Name: "bn.num_batches_tracked", Shape: []int{}, Data: []float32{7}, DType: I64},
		{Name: "bn.running_mean", Shape: []int{2}, Data: []float32{0.5, -1}},
		{Name: "ids", Shape: []int{3}, Data: []float32{-3, 0, 1 << 24}, DType: I64},
	}}
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if !bytes.Contains(data, []byte(`"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]}`)) {
		t.Errorf("header %q lacks the I64 entry", data)
	}
	if !bytes.HasSuffix(data, i64(-3, 0, 1<<24)) {
		t.Errorf("data does not end with the int64 values")
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameFile(got, f); err != nil {
		t.Error(err)
	}
	if got.Tensors[1].DType != "" {
		t.Errorf("an F32 tensor decoded with DType %q, want empty", got.Tensors[1].DType)
	}
}

func TestI64Errors(t *testing.T) {
	entry := func(body string) string { return `{"n":{` + body + `}}` }
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"beyond 2^24", build(entry(`"dtype":"I64","shape":[],"data_offsets":[0,8]`), i64(1<<24+1)...), `tensor "n" of dtype I64 holds 16777217, beyond the 2^24`},
		{"negative beyond 2^24", build(entry(`"dtype":"I64","shape":[1],"data_offsets":[0,8]`), i64(-1<<40)...), `beyond the 2^24`},
		{"size of F32", build(entry(`"dtype":"I64","shape":[2],"data_offsets":[0,8]`), i64(1)...), `tensor "n" has 8 data bytes, shape [2] needs 16 (I64)`},
		{"overflow by 8 bytes", build(entry(`"dtype":"I64","shape":[1152921504606846976],"data_offsets":[0,8]`), i64(1)...), `overflows`},
		{"dtype I32", build(entry(`"dtype":"I32","shape":[1],"data_offsets":[0,4]`), 0, 0, 0, 0), `unsupported dtype I32`},
	} {
		if _, err := Decode(c.data); err == nil || !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct {
		t    Tensor
		want string
	}{
		{Tensor{Name: "n", Shape: []int{}, Data: []float32{1.5}, DType: I64}, `tensor "n" of dtype I64 holds 1.5, not an integer`},
		{Tensor{Name: "n", Shape: []int{}, Data: []float32{1 << 25}, DType: I64}, `not an integer of magnitude at most 2^24`},
		{Tensor{Name: "n", Shape: []int{1}, Data: []float32{1}, DType: "BF16"}, `tensor "n" has unsupported dtype BF16`},
	} {
		var buf bytes.Buffer
		err := Encode(&buf, &File{Tensors: []Tensor{c.t}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Encode of %+v: %v, want %q", c.t, err, c.want)
		}
		if buf.Len() != 0 {
			t.Errorf("Encode of %+v wrote %d bytes before failing", c.t, buf.Len())
		}
	}
}
