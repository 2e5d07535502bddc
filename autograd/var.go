package autograd

import (
	"errors"

	"github.com/gograd/gograd/tensor"
)

// ErrFreed is returned by Backward from a graph that an earlier Backward
// already released.
var ErrFreed = errors.New("autograd: backward through a graph whose intermediates were released (use BackwardRetain to keep them)")

// ErrReleased is wrapped when an operation uses a variable released at the
// end of its pass.
var ErrReleased = errors.New("autograd: use of a variable released at the end of its pass " +
	"(keep a value past Backward or Tape.Free with Detach or Value.Clone, or run BackwardRetain)")

// ErrNotScalar is returned by Backward from a value with more than one element.
var ErrNotScalar = errors.New("autograd: backward needs a scalar output")

// Param returns a trainable leaf: its gradient accumulates across Backward
// calls until ZeroGrad.
func Param(t *tensor.Tensor) *Var { return &Var{Value: t, requiresGrad: true} }

// Const returns a leaf that needs no gradient and belongs to no tape.
func Const(t *tensor.Tensor) *Var { return &Var{Value: t} }

// RequiresGrad reports whether gradients flow to v.
func (v *Var) RequiresGrad() bool { return v.requiresGrad }

// Op names the operation that produced v: "param", "const" or "input" for leaves.
func (v *Var) Op() string {
	switch {
	case v.fn != nil:
		return v.fn.op
	case v.tape != nil:
		return "input"
	case v.requiresGrad:
		return "param"
	}
	return "const"
}

// Inputs returns the variables v was computed from.
func (v *Var) Inputs() []*Var {
	if v.fn == nil {
		return nil
	}
	return v.fn.in
}

// Shape returns the shape of v's value.
func (v *Var) Shape() []int { return v.Value.Shape() }

// Item returns the value of a one-element variable.
func (v *Var) Item() float32 {
	defer v.explainRelease("item")
	return v.Value.Item()
}

// explainRelease, deferred, turns the use of a freed value of a released
// variable into ErrReleased, which says how to keep one.
func (v *Var) explainRelease(op string) {
	if r := recover(); r != nil {
		if e, ok := r.(*tensor.Error); ok && v.released && errors.Is(e, tensor.ErrFreed) {
			panic(&tensor.Error{Op: op, Err: ErrReleased})
		}
		panic(r)
	}
}

// ZeroGrad clears v's gradient: Grad becomes nil, as PyTorch's
// zero_grad(set_to_none=True) leaves it, and the next Backward writes its
// first contribution into the released buffer instead of adding to zeros.
func (v *Var) ZeroGrad() {
	if v.Grad != nil {
		v.spare.Free()
		v.spare, v.Grad = v.Grad, nil
	}
}

// Detach returns a leaf sharing v's value that needs no gradient and
// belongs to no tape. It stays valid after v's pass ends; Free releases it.
func Detach(v *Var) *Var {
	defer v.explainRelease("detach")
	return Const(v.Value.Reshape(v.Value.Shape()...))
}

// Free releases v's value and gradient now, instead of at the end of its
// pass. v must not be used afterwards.
func (v *Var) Free() {
	v.release()
	v.spare.Free()
	v.spare = nil
}

// release frees what v holds and marks it released.
func (v *Var) release() {
	v.Value.Free()
	v.releaseGraph()
}

// releaseGraph frees what v holds but its value, and marks it released.
func (v *Var) releaseGraph() {
	v.released = true
	v.Grad.Free()
	if n := v.fn; n != nil {
		for _, t := range n.saved {
			t.Free()
		}
		n.in, n.backward = nil, nil
	}
}

// addMatMul adds op(a) · op(b) to v's gradient.
func (v *Var) addMatMul(a, b *tensor.Tensor, transA, transB bool) {
	if v.requiresGrad {
		g, acc := v.gradDst()
		tensor.MatMulInto(g, a, b, transA, transB, acc)
	}
}
