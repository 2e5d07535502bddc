package safetensors_test

import (
	"bytes"
	"fmt"

	"github.com/gograd/gograd/safetensors"
)

func Example() {
	f := &safetensors.File{
		Tensors: []safetensors.Tensor{
			{Name: "linear.weight", Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
			{Name: "linear.bias", Shape: []int{2}, Data: []float32{0.5, -0.5}},
		},
		Metadata: map[string]string{"step": "100"},
	}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, f); err != nil {
		fmt.Println(err)
		return
	}
	got, err := safetensors.Decode(buf.Bytes())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range got.Tensors {
		fmt.Println(t.Name, t.Shape, t.Data)
	}
	w, _ := got.Lookup("linear.weight")
	fmt.Println(w.Data[5], got.Metadata["step"], buf.Len())
	// Output:
	// linear.bias [2] [0.5 -0.5]
	// linear.weight [2 3] [1 2 3 4 5 6]
	// 6 100 208
}
