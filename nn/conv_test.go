package nn_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// TestConvLayers checks the layers' shapes, state_dict names and
// PyTorch's printed form in a small LeNet-like Sequential.
func TestConvLayers(t *testing.T) {
	d := device.NewCPU(0)
	rng := rand.New(rand.NewPCG(1, 2))
	m := nn.NewSequential(
		nn.NewConv2d(d, 3, 8, 3, nn.ConvOptions{Padding: 1}, rng),
		nn.ReLU{},
		nn.NewMaxPool2d(2, 0, 0),
		nn.NewConv2d(d, 8, 8, 3, nn.ConvOptions{Stride: 2, Dilation: 2, Groups: 4, NoBias: true}, rng),
		nn.NewAvgPool2d(3, 1, 1),
		nn.NewAdaptiveAvgPool2d(1),
		nn.Flatten{},
		nn.NewLinear(d, 8, 10, true, rng),
	)
	var names []string
	for _, p := range m.Parameters() {
		names = append(names, fmt.Sprint(p.Name, " ", p.Shape()))
	}
	want := []string{"0.weight [8 3 3 3]", "0.bias [8]", "3.weight [8 2 3 3]", "7.weight [10 8]", "7.bias [10]"}
	if len(names) != len(want) {
		t.Fatalf("parameters %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("parameter %d: %s, want %s", i, names[i], want[i])
		}
	}
	wantStr := `Sequential(
  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (1): ReLU()
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (3): Conv2d(8, 8, kernel_size=(3, 3), stride=(2, 2), dilation=(2, 2), groups=4, bias=False)
  (4): AvgPool2d(kernel_size=3, stride=1, padding=1)
  (5): AdaptiveAvgPool2d(output_size=1)
  (6): Flatten(start_dim=1, end_dim=-1)
  (7): ` + m.Modules[7].(*nn.Linear).String() + `
)`
	if got := m.String(); got != wantStr {
		t.Errorf("String:\n%s\nwant\n%s", got, wantStr)
	}
	tp := autograd.NewTape()
	x := tp.Var(tensor.RandN(d, rng, 1, 2, 3, 13, 11), false)
	y := m.Forward(x)
	if s := fmt.Sprint(y.Shape()); s != "[2 10]" {
		t.Fatalf("output %s, want [2 10]", s)
	}
	if err := autograd.MeanAll(y).Backward(); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Parameters() {
		if p.Grad == nil {
			t.Errorf("%s has no gradient", p.Name)
		}
	}
	// The initialisation's bound: uniform in ±1/sqrt(fan_in).
	c := nn.NewConv2d(d, 4, 16, 5, nn.ConvOptions{Groups: 2}, rng)
	bound := float32(1 / 7.0710678) // fan_in = 4/2·25 = 50
	for _, v := range append(c.Weight.Value.Data(), c.Bias.Value.Data()...) {
		if v < -bound || v > bound {
			t.Fatalf("initial value %g outside ±%g", v, bound)
		}
	}
}
