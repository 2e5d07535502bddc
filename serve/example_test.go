package serve_test

import (
	"context"
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/serve"
)

// A Batcher used without HTTP: concurrent Predict calls share forward
// passes.
func ExampleBatcher() {
	dev := device.NewCPU(0)
	model, err := nn.NewMLP(dev, nn.MLPConfig{In: 4, Hidden: []int{8}, Out: 3, Seed: 1})
	if err != nil {
		panic(err)
	}
	b, err := serve.NewBatcher(serve.BatcherConfig{Model: model, Device: dev, Inputs: 4, Classes: 3, MaxBatch: 16})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	x := []float32{0.1, 0.2, 0.3, 0.4, 1, 0, 0, 1} // two rows
	probs := make([]float32, 2*3)
	if err := b.Predict(context.Background(), x, probs); err != nil {
		panic(err)
	}
	for i := range 2 {
		p := probs[i*3 : (i+1)*3]
		fmt.Printf("row %d: %d probabilities summing to %.3f\n", i, len(p), p[0]+p[1]+p[2])
	}
	// Output:
	// row 0: 3 probabilities summing to 1.000
	// row 1: 3 probabilities summing to 1.000
}
