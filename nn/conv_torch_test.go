package nn_test

import (
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// convModel is the torch.nn.Sequential of testdata/conv_gen.py.
func convModel(d device.Device) *nn.Sequential {
	rng := rand.New(rand.NewPCG(0, 0))
	return nn.NewSequential(
		nn.NewConv2d(d, 3, 6, 3, nn.ConvOptions{Padding: 1}, rng),
		nn.ReLU{},
		nn.NewMaxPool2d(3, 2, 1),
		nn.NewConv2d(d, 6, 8, 3, nn.ConvOptions{Stride: 2, Padding: 2, Dilation: 2, Groups: 2}, rng),
		nn.NewAvgPool2d(3, 1, 1),
		nn.NewConv2d(d, 8, 4, 1, nn.ConvOptions{NoBias: true}, rng),
		nn.NewAdaptiveAvgPool2d(2),
		nn.Flatten{},
		nn.NewLinear(d, 16, 5, true, rng),
	)
}

// TestConvAgainstTorch loads PyTorch's state_dict of the same model
// (strictly: every name and shape must match), and compares the output
// and every gradient with PyTorch's, and single layers at further sizes.
// Regenerate the files with /usr/bin/python3 nn/testdata/conv_gen.py.
func TestConvAgainstTorch(t *testing.T) {
	vals, err := safetensors.ReadFile("testdata/conv_values.safetensors")
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 nn/testdata/conv_gen.py nn/testdata)", err)
	}
	get := func(name string) *safetensors.Tensor {
		v, ok := vals.Lookup(name)
		if !ok {
			t.Fatalf("conv_values.safetensors has no %q", name)
		}
		return v
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		m := convModel(d)
		if _, err := nn.Load("testdata/conv_model.safetensors", m); err != nil {
			t.Fatal(err)
		}
		in := get("input")
		tp := autograd.NewTape()
		defer tp.Free()
		x := tp.Var(tensor.FromSlice(d, in.Data, in.Shape...), true)
		y := m.Forward(x)
		testutil.AllClose(t, "output", y.Value.Data(), get("output").Data, 1e-5, 1e-4)
		w := get("weights")
		loss := autograd.SumAll(autograd.Mul(y, autograd.Const(tensor.FromSlice(d, w.Data, w.Shape...))))
		if err := loss.BackwardRetain(); err != nil {
			t.Fatal(err)
		}
		testutil.AllClose(t, "grad input", x.Grad.Data(), get("grad.input").Data, 1e-5, 1e-4)
		for _, p := range m.Parameters() {
			testutil.AllClose(t, "grad "+p.Name, p.Grad.Data(), get("grad."+p.Name).Data, 1e-5, 1e-4)
		}

		up := func(name string) *autograd.Var {
			v := get(name)
			return autograd.Const(tensor.FromSlice(d, v.Data, v.Shape...))
		}
		a := up("a")
		check := func(name string, got *autograd.Var) {
			want := get(name)
			if !equalShape(got.Shape(), want.Shape) {
				t.Errorf("%s: shape %v, PyTorch's %v", name, got.Shape(), want.Shape)
				return
			}
			testutil.AllClose(t, name, got.Value.Data(), want.Data, 1e-5, 1e-4)
		}
		check("a.conv", autograd.Conv2d(a, up("a.w"), up("a.b"), autograd.ConvOptions{Stride: 3, Padding: 2}))
		check("a.max", autograd.MaxPool2d(a, 3, 1, 1))
		check("a.avg", autograd.AvgPool2d(a, 4, 3, 2))
		check("a.adaptive3", autograd.AdaptiveAvgPool2d(a, 3))
	})
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
