package autograd_test

import (
	"fmt"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// A penalty written on parameters alone records its graph, as in PyTorch:
// the gradient of Σ x·w + Σ w² is x + 2w.
func ExampleParam() {
	dev := device.NewCPU(1)
	w := autograd.Param(tensor.FromSlice(dev, []float32{1, -2, 3}))
	tp := autograd.NewTape()
	x := tp.Var(tensor.FromSlice(dev, []float32{4, 5, 6}), false)
	loss := autograd.Add(autograd.SumAll(autograd.Mul(x, w)), autograd.SumAll(autograd.Mul(w, w)))
	if err := loss.Backward(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("loss", loss.Item(), "dL/dw", w.Grad.Data())
	tp.Free()
	// Output:
	// loss 26 dL/dw [6 1 12]
}

// SetGradHook tells a data-parallel trainer when a parameter's gradient is
// complete, so that its reduction can start while Backward goes on with
// the earlier layers.
func ExampleVar_SetGradHook() {
	dev := device.NewCPU(1)
	w1 := autograd.Param(tensor.FromSlice(dev, []float32{0.5, -1}, 1, 2))
	w2 := autograd.Param(tensor.FromSlice(dev, []float32{2}, 1, 1))
	for _, p := range []struct {
		name string
		v    *autograd.Var
	}{{"w1", w1}, {"w2", w2}} {
		p.v.SetGradHook(func(v *autograd.Var) { fmt.Println(p.name, "ready:", v.Grad.Data()) })
	}
	tp := autograd.NewTape()
	defer tp.Free()
	x := tp.Var(tensor.FromSlice(dev, []float32{1, 3}, 1, 2), false)
	h := autograd.Linear(x, w1, nil) // 0.5 - 3 = -2.5
	y := autograd.Linear(h, w2, nil) // -5
	if err := autograd.SumAll(y).Backward(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// w2 ready: [-2.5]
	// w1 ready: [2 6]
}

// VJP is one step of backpropagation: the gradient of the output, v, mapped
// to the input's, vᵀ·J, here for the elementwise square (J = diag(2x)).
func ExampleVJP() {
	dev := device.NewCPU(1)
	x := tensor.FromSlice(dev, []float32{1, 2, 3})
	v := tensor.FromSlice(dev, []float32{1, 0.5, -1})
	y, vjp, err := autograd.VJP(func(x *autograd.Var) *autograd.Var { return autograd.Mul(x, x) }, x, v)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("y", y.Data(), "vᵀJ", vjp.Data())
	// Output:
	// y [1 4 9] vᵀJ [2 2 -6]
}

// The Jacobian of a function from R³ to R²: row i is the gradient of output i.
func ExampleJacobian() {
	dev := device.NewCPU(1)
	x := tensor.FromSlice(dev, []float32{1, 2, 3})
	f := func(x *autograd.Var) *autograd.Var { // [x0·x1, x1 + x2]
		a := autograd.Mul(autograd.Slice(x, 0, 0, 1), autograd.Slice(x, 0, 1, 2))
		b := autograd.Add(autograd.Slice(x, 0, 1, 2), autograd.Slice(x, 0, 2, 3))
		return autograd.Concat(0, a, b)
	}
	J, err := autograd.Jacobian(f, x)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(J.Shape(), J.Data())
	// Output:
	// [2 3] [2 1 0 0 1 1]
}
