package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// randomTensor returns a tensor of the given shape filled with random values.
func randomTensor(rng *rand.Rand, name string, shape ...int) Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	return Tensor{Name: name, Shape: shape, Data: data}
}

// sameFile reports how got differs from want, tensors compared by name and
// values compared bit for bit; nil and empty slices and maps are equal.
func sameFile(got, want *File) error {
	wantSorted := slices.Clone(want.Tensors)
	slices.SortFunc(wantSorted, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	if len(got.Tensors) != len(wantSorted) {
		return errors.New("tensor counts differ")
	}
	for i, g := range got.Tensors {
		w := wantSorted[i]
		if g.Name != w.Name {
			return errors.New("tensor " + g.Name + ": want name " + w.Name)
		}
		if !slices.Equal(g.Shape, w.Shape) {
			return errors.New("tensor " + g.Name + ": shapes differ")
		}
		if g.dtype() != w.dtype() {
			return errors.New("tensor " + g.Name + ": dtypes differ")
		}
		if len(g.Data) != len(w.Data) {
			return errors.New("tensor " + g.Name + ": lengths differ")
		}
		for j := range g.Data {
			if math.Float32bits(g.Data[j]) != math.Float32bits(w.Data[j]) {
				return errors.New("tensor " + g.Name + ": values differ")
			}
		}
	}
	if len(got.Metadata) != len(want.Metadata) {
		return errors.New("metadata sizes differ")
	}
	for k, v := range want.Metadata {
		if gv, ok := got.Metadata[k]; !ok || gv != v {
			return errors.New("metadata " + k + " differs")
		}
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	special := Tensor{Name: "special", Shape: []int{6}, Data: []float32{
		0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00001), math.SmallestNonzeroFloat32,
	}}
	tests := []struct {
		name string
		file File
	}{
		{"empty", File{}},
		{"one scalar", File{Tensors: []Tensor{{Name: "s", Shape: []int{}, Data: []float32{3.5}}}}},
		{"several", File{Tensors: []Tensor{
			randomTensor(rng, "layer2.weight", 7, 13),
			randomTensor(rng, "layer1.bias", 13),
			randomTensor(rng, "scalar", []int{}...),
			randomTensor(rng, "empty", 3, 0, 5),
			randomTensor(rng, "deep", 1, 3, 1, 5, 2),
			randomTensor(rng, "layer1.weight", 31, 17),
			special,
		}}},
		{"empty metadata", File{Tensors: []Tensor{randomTensor(rng, "w", 3)}, Metadata: map[string]string{}}},
		{"metadata", File{
			Tensors:  []Tensor{randomTensor(rng, "w", 5, 3)},
			Metadata: map[string]string{"format": "pt", "step": "1200", "": "empty key", "odd": "q\"b\\s\n\t\x01é€<&>"},
		}},
		{"odd names", File{Tensors: []Tensor{
			randomTensor(rng, "quote\"back\\slash", 2),
			randomTensor(rng, "ctl\x00\x1f\n", 1),
			randomTensor(rng, "ünï €", 3),
			randomTensor(rng, "<html>&", 1),
		}}},
		{"large", File{Tensors: []Tensor{randomTensor(rng, "big", 3*chunkValues+7)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Encode(&buf, &tt.file); err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()
			n := binary.LittleEndian.Uint64(data)
			if (8+n)%8 != 0 {
				t.Errorf("data section starts at %d, not 8-byte aligned", 8+n)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameFile(got, &tt.file); err != nil {
				t.Fatal(err)
			}
			if !slices.IsSortedFunc(got.Tensors, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) }) {
				t.Error("decoded tensors are not sorted by name")
			}
			var again bytes.Buffer
			if err := Encode(&again, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), data) {
				t.Error("re-encoding the decoded file changes its bytes")
			}
		})
	}
}

func TestEncodeBytes(t *testing.T) {
	f := &File{
		Tensors: []Tensor{
			{Name: "b", Shape: []int{2}, Data: []float32{1, -2}},
			{Name: "a", Shape: []int{}, Data: []float32{0.5}},
		},
		Metadata: map[string]string{"k": "v"},
	}
	// The header: metadata first, then the tensors in name order, laid out
	// contiguously (a is 4 bytes at 0, b is 8 bytes at 4). Its JSON is 132
	// bytes; 4 spaces pad it to 136, so the data starts at 8+136 = 144, a
	// multiple of 8.
	header := `{"__metadata__":{"k":"v"},` +
		`"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},` +
		`"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`
	if len(header) != 132 {
		t.Fatalf("test header is %d bytes, want 132", len(header))
	}
	want := []byte{136, 0, 0, 0, 0, 0, 0, 0} // the header length, 64-bit little-endian
	want = append(want, header+"    "...)
	want = append(want,
		0x00, 0x00, 0x00, 0x3f, // 0.5 = 0x3f000000
		0x00, 0x00, 0x80, 0x3f, // 1 = 0x3f800000
		0x00, 0x00, 0x00, 0xc0, // -2 = 0xc0000000
	)
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("encoding:\n got %q\nwant %q", got, want)
	}
}

// build returns a file with the given header, unpadded, and data section.
func build(header string, data ...byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// f32 returns the encoding of n float32 values.
func f32(n int) []byte { return make([]byte, 4*n) }

func TestDecodeErrors(t *testing.T) {
	entry := func(name, body string) string { return `"` + name + `":{` + body + `}` }
	a4 := entry("a", `"dtype":"F32","shape":[1],"data_offsets":[0,4]`)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty file", nil, "file of 0 bytes is shorter than 8 bytes"},
		{"7 bytes", []byte{2, 0, 0, 0, 0, 0, 0}, "file of 7 bytes is shorter than 8 bytes"},
		{"header longer than file", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "header length 100 exceeds the 2 bytes that follow it"},
		{"header above cap", append(binary.LittleEndian.AppendUint64(nil, 100_000_001), "{}"...), "header length 100000001 exceeds the limit of 100000000 bytes"},
		{"header length 2^64-1", append(binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "{}"...), "exceeds the limit"},
		{"empty header", build(""), "header is not valid JSON: unexpected end"},
		{"bad JSON", build(`{"a":`), "header is not valid JSON"},
		{"bad JSON token", build(`{"a":{"dtype":F32}}`), "header is not valid JSON"},
		{"trailing garbage", build(`{} x`), "header is not valid JSON"},
		{"two objects", build(`{}{}`), "header is not valid JSON: data after the top-level object"},
		{"array header", build(`[]`), "header is not a JSON object"},
		{"string header", build(`"x"`), "header is not a JSON object"},
		{"null header", build(`null`), "header is not a JSON object"},
		{"invalid UTF-8", build("{\"\xff\":{}}"), "header is not valid UTF-8"},
		{"entry not object", build(`{"a":1}`), `entry of tensor "a" is not a JSON object`},
		{"missing dtype", build(`{`+entry("a", `"shape":[1],"data_offsets":[0,4]`)+`}`, f32(1)...), `tensor "a": missing dtype`},
		{"missing shape", build(`{`+entry("a", `"dtype":"F32","data_offsets":[0,4]`)+`}`, f32(1)...), `tensor "a": missing shape`},
		{"missing data_offsets", build(`{`+entry("a", `"dtype":"F32","shape":[1]`)+`}`, f32(1)...), `tensor "a": missing data_offsets`},
		{"unknown field", build(`{`+entry("a", `"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1`)+`}`, f32(1)...), `tensor "a": unknown field "x"`},
		{"duplicate field", build(`{`+entry("a", `"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]`)+`}`, f32(1)...), `tensor "a": duplicate field "dtype"`},
		{"dtype BF16", build(`{`+entry("x", `"dtype":"BF16","shape":[1],"data_offsets":[0,2]`)+`}`, 0, 0), `unsupported dtype BF16 for tensor "x"`},
		{"dtype F64", build(`{`+entry("x", `"dtype":"F64","shape":[1],"data_offsets":[0,8]`)+`}`, f32(2)...), `unsupported dtype F64 for tensor "x"`},
		{"dtype not string", build(`{` + entry("a", `"dtype":32,"shape":[1],"data_offsets":[0,4]`) + `}`), `tensor "a": dtype is not a string`},
		{"shape not array", build(`{` + entry("a", `"dtype":"F32","shape":1,"data_offsets":[0,4]`) + `}`), `tensor "a": shape is not a JSON array`},
		{"negative dim", build(`{` + entry("a", `"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]`) + `}`), `tensor "a": negative dimension -1 in shape [2 -1]`},
		{"fractional dim", build(`{` + entry("a", `"dtype":"F32","shape":[1.5],"data_offsets":[0,4]`) + `}`), `tensor "a": shape holds 1.5, not a 64-bit integer`},
		{"exponent dim", build(`{` + entry("a", `"dtype":"F32","shape":[1e3],"data_offsets":[0,4]`) + `}`), `not a 64-bit integer`},
		{"huge dim", build(`{` + entry("a", `"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]`) + `}`), `not a 64-bit integer`},
		{"string dim", build(`{` + entry("a", `"dtype":"F32","shape":["2"],"data_offsets":[0,4]`) + `}`), `tensor "a": shape holds 2, not an integer`},
		{"shape overflow", build(`{` + entry("a", `"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]`) + `}`), `tensor "a": shape [4294967296 4294967296] overflows`},
		{"shape overflow by 4 bytes", build(`{` + entry("a", `"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,0]`) + `}`), `overflows`},
		{"shape overflow before zero", build(`{` + entry("a", `"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]`) + `}`), `overflows`},
		{"offsets one value", build(`{` + entry("a", `"dtype":"F32","shape":[1],"data_offsets":[4]`) + `}`), `tensor "a": data_offsets [4] is not a pair of non-negative integers`},
		{"offsets three values", build(`{` + entry("a", `"dtype":"F32","shape":[1],"data_offsets":[0,4,8]`) + `}`), `is not a pair`},
		{"negative offset", build(`{` + entry("a", `"dtype":"F32","shape":[1],"data_offsets":[-4,0]`) + `}`), `is not a pair of non-negative integers`},
		{"end before begin", build(`{`+entry("a", `"dtype":"F32","shape":[1],"data_offsets":[8,4]`)+`}`, f32(2)...), `tensor "a" has data_offsets [8,4] with end before begin`},
		{"outside data", build(`{`+entry("a", `"dtype":"F32","shape":[2],"data_offsets":[0,8]`)+`}`, f32(1)...), `tensor "a" has data_offsets [0,8] outside the 4-byte data section`},
		{"huge offsets", build(`{`+entry("a", `"dtype":"F32","shape":[268435456],"data_offsets":[0,1073741824]`)+`}`, f32(1)...), `outside the 4-byte data section`},
		{"size disagrees with shape", build(`{`+entry("a", `"dtype":"F32","shape":[2],"data_offsets":[0,4]`)+`}`, f32(1)...), `tensor "a" has 4 data bytes, shape [2] needs 8`},
		{"overlap", build(`{`+entry("a", `"dtype":"F32","shape":[2],"data_offsets":[0,8]`)+`,`+entry("b", `"dtype":"F32","shape":[2],"data_offsets":[4,12]`)+`}`, f32(3)...), `tensors "a" and "b" overlap`},
		{"same offsets", build(`{`+entry("a", `"dtype":"F32","shape":[1],"data_offsets":[0,4]`)+`,`+entry("b", `"dtype":"F32","shape":[1],"data_offsets":[0,4]`)+`}`, f32(1)...), `tensors "a" and "b" overlap`},
		{"hole between", build(`{`+a4+`,`+entry("b", `"dtype":"F32","shape":[1],"data_offsets":[8,12]`)+`}`, f32(3)...), `4 unused bytes in the data section before tensor "b"`},
		{"hole at start", build(`{`+entry("a", `"dtype":"F32","shape":[1],"data_offsets":[4,8]`)+`}`, f32(2)...), `4 unused bytes in the data section before tensor "a"`},
		{"trailing bytes", build(`{`+a4+`}`, f32(2)...), `4 trailing bytes after the last tensor`},
		{"trailing bytes, no tensors", build(`{}`, 1, 2, 3), `3 trailing bytes after the last tensor`},
		{"duplicate name", build(`{`+a4+`,`+entry("a", `"dtype":"F32","shape":[1],"data_offsets":[4,8]`)+`}`, f32(2)...), `duplicate key "a" in header`},
		{"duplicate escaped name", build(`{`+a4+`,`+entry(`\u0061`, `"dtype":"F32","shape":[1],"data_offsets":[4,8]`)+`}`, f32(2)...), `duplicate key "a" in header`},
		{"empty name", build(`{`+entry("", `"dtype":"F32","shape":[1],"data_offsets":[0,4]`)+`}`, f32(1)...), `tensor with an empty name`},
		{"metadata number", build(`{"__metadata__":{"k":1}}`), `__metadata__ is not a map of strings to strings`},
		{"metadata nested", build(`{"__metadata__":{"k":{"x":"y"}}}`), `__metadata__ is not a map of strings to strings`},
		{"metadata null value", build(`{"__metadata__":{"k":null}}`), `__metadata__ is not a map of strings to strings`},
		{"metadata array", build(`{"__metadata__":["a"]}`), `__metadata__ is not a map of strings to strings`},
		{"metadata string", build(`{"__metadata__":"x"}`), `__metadata__ is not a map of strings to strings`},
		{"metadata null", build(`{"__metadata__":null}`), `__metadata__ is not a map of strings to strings`},
		{"duplicate metadata", build(`{"__metadata__":{},"__metadata__":{}}`), `duplicate key "__metadata__" in header`},
		{"duplicate metadata key", build(`{"__metadata__":{"k":"a","k":"b"}}`), `duplicate key "k" in __metadata__`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode(tt.data)
			if err == nil {
				t.Fatalf("Decode succeeded with %d tensors, want error containing %q", len(f.Tensors), tt.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "safetensors: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want prefix %q and %q", msg, "safetensors: ", tt.want)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	one := []byte{0, 0, 0x80, 0x3f} // 1.0
	tests := []struct {
		name  string
		data  []byte
		check func(*File) bool
	}{
		{"no padding, no metadata", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, one...),
			func(f *File) bool { return f.Metadata == nil && f.Tensors[0].Data[0] == 1 }},
		{"fields in another order, whitespace", build(" \t\n{ \"a\" : {\"data_offsets\":[0,4], \"shape\":[1],\"dtype\":\"F32\"} }\r\n  ", one...),
			func(f *File) bool { return f.Tensors[0].Data[0] == 1 }},
		{"layout not in name order", build(`{"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"c":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]}}`, append(slices.Clone(one), 0, 0, 0, 0x40)...),
			func(f *File) bool {
				return f.Tensors[0].Name == "a" && len(f.Tensors[0].Data) == 0 &&
					f.Tensors[1].Data[0] == 1 && f.Tensors[2].Data[0] == 2
			}},
		{"zero-size tensors at the end", build(`{"a":{"dtype":"F32","shape":[0,7],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`),
			func(f *File) bool { return len(f.Tensors) == 2 }},
		{"metadata", build(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, one...),
			func(f *File) bool { return f.Metadata["format"] == "pt" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(f) {
				t.Errorf("unexpected result %+v", f)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		file *File
		want string
	}{
		{"nil file", nil, "nil file"},
		{"empty name", &File{Tensors: []Tensor{{Name: "", Shape: []int{}, Data: []float32{1}}}}, "tensor 0 has an empty name"},
		{"reserved name", &File{Tensors: []Tensor{{Name: "__metadata__", Shape: []int{}, Data: []float32{1}}}}, `tensor name "__metadata__" is reserved`},
		{"invalid UTF-8 name", &File{Tensors: []Tensor{{Name: "a\xff", Shape: []int{}, Data: []float32{1}}}}, `is not valid UTF-8`},
		{"invalid UTF-8 metadata", &File{Metadata: map[string]string{"k": "\xfe"}}, `is not valid UTF-8`},
		{"duplicate name", &File{Tensors: []Tensor{{Name: "a", Data: []float32{1}}, {Name: "b", Data: []float32{1}}, {Name: "a", Data: []float32{2}}}}, `duplicate tensor name "a"`},
		{"negative dim", &File{Tensors: []Tensor{{Name: "a", Shape: []int{-1, -1}, Data: []float32{1}}}}, `negative dimension -1`},
		{"overflow", &File{Tensors: []Tensor{{Name: "a", Shape: []int{1 << 40, 1 << 40}}}}, `overflows`},
		{"too few values", &File{Tensors: []Tensor{{Name: "a", Shape: []int{2, 3}, Data: make([]float32, 5)}}}, `tensor "a" has 5 values, shape [2 3] needs 6`},
		{"too many values", &File{Tensors: []Tensor{{Name: "a", Shape: []int{}, Data: make([]float32, 2)}}}, `tensor "a" has 2 values, shape [] needs 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, tt.file)
			if err == nil {
				t.Fatalf("Encode succeeded, want error containing %q", tt.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "safetensors: encode: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want %q", msg, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Encode wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

// failWriter fails once it has accepted n bytes.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestEncodeWriteError(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := &File{Tensors: []Tensor{randomTensor(rng, "a", 5), randomTensor(rng, "b", 2*chunkValues+3)}}
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 7, 8, 20, buf.Len() - 4*chunkValues - 1, buf.Len() - 1} {
		if err := Encode(&failWriter{n: n}, f); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("failing after %d bytes: got %v, want a disk full error", n, err)
		}
	}
	if err := Encode(&failWriter{n: buf.Len()}, f); err != nil {
		t.Errorf("writer with room for the whole file: %v", err)
	}
}

func TestTruncated(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	f := &File{
		Tensors:  []Tensor{randomTensor(rng, "w", 3, 2), randomTensor(rng, "b", 3), randomTensor(rng, "s")},
		Metadata: map[string]string{"k": "v"},
	}
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if _, err := Decode(data); err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		if _, err := Decode(data[:n]); err == nil {
			t.Errorf("prefix of %d of %d bytes decoded without error", n, len(data))
		}
	}
	if _, err := Decode(append(slices.Clone(data), 0)); err == nil {
		t.Error("file with an extra byte decoded without error")
	}
}

func TestDecodeCopies(t *testing.T) {
	f := &File{Tensors: []Tensor{{Name: "a", Shape: []int{2}, Data: []float32{1, 2}}}}
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	clear(data)
	if got.Tensors[0].Data[1] != 2 {
		t.Error("decoded tensor shares memory with the input")
	}
}

func TestDecodeAllocation(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"header length near the cap", append(binary.LittleEndian.AppendUint64(nil, 99_999_999), "{}      "...)},
		{"offsets claim 1 GiB", build(`{"a":{"dtype":"F32","shape":[268435456],"data_offsets":[0,1073741824]}}`, f32(2)...)},
		{"shape claims 1 GiB", build(`{"a":{"dtype":"F32","shape":[268435456],"data_offsets":[0,8]}}`, f32(2)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Decode(tt.data)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("Decode succeeded")
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("Decode of %d bytes allocated %d bytes", len(tt.data), alloc)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	f := &File{Tensors: []Tensor{{Name: "b", Data: []float32{2}}, {Name: "a", Data: []float32{1}}}}
	for _, name := range []string{"a", "b"} {
		got, ok := f.Lookup(name)
		if !ok || got.Name != name {
			t.Errorf("Lookup(%q) = %v, %v", name, got, ok)
		}
	}
	got, _ := f.Lookup("a")
	got.Data[0] = 7
	if f.Tensors[1].Data[0] != 7 {
		t.Error("Lookup does not return the file's own tensor")
	}
	if got, ok := f.Lookup("c"); ok || got != nil {
		t.Errorf("Lookup(%q) = %v, %v; want nil, false", "c", got, ok)
	}
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	for i, f := range []*File{
		{Tensors: []Tensor{randomTensor(rng, "w", 4, 3)}, Metadata: map[string]string{"step": "1"}},
		{Tensors: []Tensor{randomTensor(rng, "w", 5, 7), randomTensor(rng, "b", 7)}},
	} {
		if err := WriteFile(path, f); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameFile(got, f); err != nil {
			t.Errorf("write %d: %v", i, err)
		}
		if names := dirEntries(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
			t.Errorf("write %d: directory holds %q", i, names)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("new file has permissions %v, want 0644", perm)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, &File{}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("replaced file has permissions %v (%v), want 0600 kept", info.Mode().Perm(), err)
	}
}

// writeOld writes a valid file at path and returns its bytes.
func writeOld(t *testing.T, path string) []byte {
	t.Helper()
	var buf bytes.Buffer
	f := &File{Tensors: []Tensor{{Name: "old", Shape: []int{2}, Data: []float32{1, 2}}}}
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkUntouched fails unless path still holds old and dir holds only want.
func checkUntouched(t *testing.T, dir, path string, old []byte, want ...string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Error("failed write changed the existing file")
	}
	if names := dirEntries(t, dir); !slices.Equal(names, want) {
		t.Errorf("directory holds %q after a failed write, want %q", names, want)
	}
}

func TestWriteFileEncodeError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	old := writeOld(t, path)
	bad := &File{Tensors: []Tensor{{Name: "w", Shape: []int{3}, Data: []float32{1}}}}
	err := WriteFile(path, bad)
	if err == nil || !strings.HasPrefix(err.Error(), "safetensors: write ") || !strings.Contains(err.Error(), `tensor "w" has 1 values`) {
		t.Fatalf("got %v, want an encoding error", err)
	}
	checkUntouched(t, dir, path, old, "model.safetensors")
}

func TestWriteFileReadOnlyDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	old := writeOld(t, path)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if probe, err := os.CreateTemp(dir, "probe"); err == nil {
		probe.Close()
		os.Remove(probe.Name())
		t.Skip("read-only directories are writable here (running as root?)")
	}
	err := WriteFile(path, &File{Tensors: []Tensor{{Name: "new", Data: []float32{3}}}})
	if err == nil || !strings.HasPrefix(err.Error(), "safetensors: write ") {
		t.Fatalf("got %v, want a write error", err)
	}
	checkUntouched(t, dir, path, old, "model.safetensors")
}

func TestWriteFileRenameError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(path, "keep")
	old := writeOld(t, inner)
	err := WriteFile(path, &File{Tensors: []Tensor{{Name: "new", Data: []float32{3}}}})
	if err == nil || !strings.HasPrefix(err.Error(), "safetensors: write ") {
		t.Fatalf("got %v, want a rename error", err)
	}
	checkUntouched(t, path, inner, old, "keep")
	if names := dirEntries(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
		t.Errorf("directory holds %q after a failed rename", names)
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want a not-exist error", err)
	}
	path := filepath.Join(dir, "short")
	if err := os.WriteFile(path, []byte{1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if err == nil || err.Error() != "safetensors: "+path+": file of 2 bytes is shorter than 8 bytes" {
		t.Errorf("short file: got %v", err)
	}
}

func BenchmarkEncode(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	f := &File{Tensors: []Tensor{randomTensor(rng, "w", 512, 1024), randomTensor(rng, "b", 1024)}}
	b.SetBytes(int64(4 * (512*1024 + 1024)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Encode(io.Discard, f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	f := &File{Tensors: []Tensor{randomTensor(rng, "w", 512, 1024), randomTensor(rng, "b", 1024)}}
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}
