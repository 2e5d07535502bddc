package nn_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
)

// A Sequential names its parameters as torch.nn.Sequential does: by the
// module's index, so that layers without parameters leave gaps.
func ExampleSequential() {
	dev := device.NewCPU(0)
	rng := rand.New(rand.NewPCG(1, 2))
	model := nn.NewSequential(
		nn.NewLinear(dev, 4, 8, true, rng),
		nn.ReLU{},
		nn.NewDropout(0.1, 7),
		nn.NewLinear(dev, 8, 3, true, rng),
	)
	fmt.Println(model)
	for _, p := range model.Parameters() {
		fmt.Println(p.Name, p.Shape())
	}
	fmt.Println("parameters:", nn.NumParams(model))
	// Output:
	// Sequential(
	//   (0): Linear(in_features=4, out_features=8, bias=true)
	//   (1): ReLU()
	//   (2): Dropout(p=0.1)
	//   (3): Linear(in_features=8, out_features=3, bias=true)
	// )
	// 0.weight [8 4]
	// 0.bias [8]
	// 3.weight [3 8]
	// 3.bias [3]
	// parameters: 67
}

// A Linear layer declares the activation it fuses. In a Sequential it
// stands for the two modules PyTorch has, so the parameters of the next
// layer are numbered 2, and a checkpoint loads into
// torch.nn.Sequential(Linear, ReLU, Linear).
func ExampleLinear_WithActivation() {
	dev := device.NewCPU(0)
	rng := rand.New(rand.NewPCG(1, 2))
	model := nn.NewSequential(
		nn.NewLinear(dev, 4, 8, true, rng).WithActivation(device.ActRelu),
		nn.NewLinear(dev, 8, 3, true, rng),
	)
	fmt.Println(model)
	for _, p := range model.Parameters() {
		fmt.Println(p.Name, p.Shape())
	}
	// Output:
	// Sequential(
	//   (0): Linear(in_features=4, out_features=8, bias=true)
	//   (1): ReLU()
	//   (2): Linear(in_features=8, out_features=3, bias=true)
	// )
	// 0.weight [8 4]
	// 0.bias [8]
	// 2.weight [3 8]
	// 2.bias [3]
}
