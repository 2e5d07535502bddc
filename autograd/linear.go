package autograd

import (
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// Linear returns x · wᵀ + b, PyTorch's linear layer: x is [batch, in], w is
// [out, in] and b, which may be nil, is [out].
func Linear(x, w, b *Var) *Var { return LinearAct(x, w, b, device.Identity) }

// linearNames are the op names of LinearAct, by activation.
var linearNames = [...]string{"linear", "linear_relu", "linear_sigmoid", "linear_tanh"}

// LinearAct returns act(x · wᵀ + b), a Linear layer followed by its
// activation, as one node. The forward pass adds the bias and applies the
// activation in one pass over the product; the backward pass computes the
// activation's derivative from the output and the bias gradient in one pass
// too, with the device's fused kernels (device.BiasAct, device.BiasActGrad)
// where it has them. Neither the values before the activation nor the
// activation's derivative are ever stored. Identity gives Linear.
func LinearAct(x, w, b *Var, act device.Activation) *Var {
	return linear(x, w, b, act, false)
}

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
	return linear(x, wt, b, act, true)
}

// linear is LinearAct, or LinearActT when transposed (w is then [in, out]).
func linear(x, w, b *Var, act device.Activation, transposed bool) *Var {
	names, inAxis, outAxis := linearNames, 1, 0
	if transposed {
		names, inAxis, outAxis = linearTNames, 0, 1
	}
	if act < device.Identity || int(act) >= len(names) {
		panic(&tensor.Error{Op: names[0], Err: fmt.Errorf("autograd: unknown activation %d", int(act))})
	}
	name := names[act]
	xv, wv := x.Value, w.Value
	if xv.Dims() != 2 || wv.Dims() != 2 || xv.Dim(1) != wv.Dim(inAxis) ||
		(b != nil && (b.Value.Dims() != 1 || b.Value.Dim(0) != wv.Dim(outAxis))) {
		shapes := [][]int{xv.Shape(), wv.Shape()}
		if b != nil {
			shapes = append(shapes, b.Shape())
		}
		panic(&tensor.Error{Op: name, Shapes: shapes, Err: tensor.ErrShape})
	}
	var out *Var
	if b != nil {
		out = begin(name, linearBackward, x, w, b)
	} else {
		out = begin(name, linearBackward, x, w)
	}
	y := out.newValue(xv, xv.Dim(0), wv.Dim(outAxis))
	tensor.MatMulInto(y, xv, wv, false, !transposed, false)
	var bv *tensor.Tensor
	if b != nil {
		bv = b.Value
	}
	biasAct(y, bv, act)
	t := 0
	if transposed {
		t = 1
	}
	return out.args(int(act), t)
}

// linearBackward is the backward pass of LinearAct and LinearActT. With
// the pre-activation gradient gz = g·act'(y): db += Σ_rows gz, and
// dW += gzᵀ·x, dx += gz·W (or, transposed, dWt += xᵀ·gz, dx += gz·Wtᵀ).
func linearBackward(out *Var, t *temps) {
	x, w := out.in(0), out.in(1)
	var b *Var
	if len(out.fn.in) == 3 && out.in(2).requiresGrad {
		b = out.in(2)
	}
	act, transposed := device.Activation(out.fn.ints[0]), out.fn.ints[1] == 1
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
	if transposed {
		w.addMatMul(x.Value, gz, true, false)
		x.addMatMul(gz, w.Value, false, true)
		return
	}
	w.addMatMul(gz, x.Value, true, false)
	x.addMatMul(gz, w.Value, false, false)
}

// actOps are the unary operation and its gradient from the output, by
// activation, for devices without the fused kernels.
var actOps = [...]struct {
	fwd  device.UnaryOp
	grad device.BinaryOp
}{
	device.ActRelu:    {device.Relu, device.ReluGrad}, // y > 0 exactly where its input is
	device.ActSigmoid: {device.Sigmoid, device.SigmoidGrad},
	device.ActTanh:    {device.Tanh, device.TanhGrad},
}

// biasAct sets y = act(y + b) for a matrix y and a row b, which may be nil.
func biasAct(y, b *tensor.Tensor, act device.Activation) {
	if b == nil && act == device.Identity {
		return
	}
	dev := y.Device()
	if f, ok := dev.(device.BiasAct); ok && b != nil {
		if err := f.BiasAct(y.Buffer(), y.Buffer(), b.Buffer(), y.Dim(0), y.Dim(1), act); err != nil {
			panic(&tensor.Error{Op: "bias_act", Shapes: [][]int{y.Shape(), b.Shape()}, Err: err})
		}
		return
	}
	if b != nil {
		y.AddInPlace(b)
	}
	if act != device.Identity {
		tensor.UnaryInto(actOps[act].fwd, y, y, 0)
	}
}

// biasActGrad sets gz = g·act'(y) (gz may be g) and, when db is not nil,
// stores the column sums of gz into db, or adds them when accumulate.
func biasActGrad(gz, db, y, g *tensor.Tensor, act device.Activation, accumulate bool, t *temps) {
	dev := g.Device()
	if f, ok := dev.(device.BiasActGrad); ok {
		var dbb device.Buffer
		if db != nil {
			dbb = db.Buffer()
		}
		if err := f.BiasActGrad(gz.Buffer(), dbb, y.Buffer(), g.Buffer(), g.Dim(0), g.Dim(1), act, accumulate); err != nil {
			panic(&tensor.Error{Op: "bias_act_grad", Shapes: [][]int{g.Shape()}, Err: err})
		}
		return
	}
	if act != device.Identity {
		tensor.BinaryInto(actOps[act].grad, gz, y, g)
	}
	if db == nil {
		return
	}
	s := t.keep(tensor.Sum(gz, 0, false))
	if accumulate {
		db.AddInPlace(s)
	} else {
		tensor.CopyInto(db, s)
	}
}
