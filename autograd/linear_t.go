package autograd

import (
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// linearTNames are the op names of LinearActT, by activation.
var linearTNames = [...]string{"linear_t", "linear_t_relu", "linear_t_sigmoid", "linear_t_tanh"}

// LinearActT is LinearAct with the weight stored transposed: it returns
// act(x · wt + b) for x of [batch, in], wt of [in, out] (the transpose of a
// Linear layer's [out, in] weight) and b, which may be nil, of [out]. The
// product then reads the weight in the layout the matrix multiplication
// packs it into, so that a forward pass does not transpose the weight
// again: for inference with a weight that does not change, transposed
// once. Its values and gradients are those of LinearAct(x, wtᵀ, b, act).
func LinearActT(x, wt, b *Var, act device.Activation) *Var {
	if act < device.Identity || int(act) >= len(linearTNames) {
		panic(&tensor.Error{Op: "linear_t", Err: fmt.Errorf("autograd: unknown activation %d", int(act))})
	}
	name := linearTNames[act]
	xv, wv := x.Value, wt.Value
	if xv.Dims() != 2 || wv.Dims() != 2 || xv.Dim(1) != wv.Dim(0) ||
		(b != nil && (b.Value.Dims() != 1 || b.Value.Dim(0) != wv.Dim(1))) {
		shapes := [][]int{xv.Shape(), wv.Shape()}
		if b != nil {
			shapes = append(shapes, b.Shape())
		}
		panic(&tensor.Error{Op: name, Shapes: shapes, Err: tensor.ErrShape})
	}
	var out *Var
	if b != nil {
		out = begin(name, linearTBackward, x, wt, b)
	} else {
		out = begin(name, linearTBackward, x, wt)
	}
	y := out.newValue(xv, xv.Dim(0), wv.Dim(1))
	tensor.MatMulInto(y, xv, wv, false, false, false)
	var bv *tensor.Tensor
	if b != nil {
		bv = b.Value
	}
	biasAct(y, bv, act)
	return out.args(int(act))
}

// linearTBackward is LinearActT's backward pass. With the pre-activation
// gradient gz = g·act'(y): dWt += xᵀ·gz, db += Σ_rows gz, dx += gz·Wtᵀ.
func linearTBackward(out *Var, t *temps) {
	x, wt := out.in(0), out.in(1)
	var b *Var
	if len(out.fn.in) == 3 && out.in(2).requiresGrad {
		b = out.in(2)
	}
	act := device.Activation(out.fn.ints[0])
	g := out.Grad
	gz := g
	if act != device.Identity {
		gz = t.keep(out.fn.slots[slotSaved0].New(g.Device(), g.Dim(0), g.Dim(1)))
	}
	if act != device.Identity || b != nil {
		var db *tensor.Tensor
		acc := false
		if b != nil {
			db, acc = b.gradDst()
		}
		biasActGrad(gz, db, out.Value, g, act, acc, t)
	}
	wt.addMatMul(x.Value, gz, true, false)
	x.addMatMul(gz, wt.Value, false, true)
}
