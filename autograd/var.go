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

// Var is a tensor in a computation graph, with its gradient.
type Var struct {
	Value *tensor.Tensor // the value
	Grad  *tensor.Tensor // the accumulated gradient, nil until Backward reaches it
	Name  string         // an optional label, shown in graph exports

	fn           *node          // the operation that computed v; nil for a leaf
	tape         *Tape          // the scope that owns v's buffers, nil for none
	requiresGrad bool           // gradients flow to v
	released     bool           // its pass ended: the buffers are gone
	spare        *tensor.Tensor // a leaf's gradient buffer released by ZeroGrad
	hook         func(*Var)     // see SetGradHook
	pending      int            // during Backward: consumers whose backward has not run
	seen         bool           // during Backward: visited by the sort
}

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
func (v *Var) Item() float32 { return v.Value.Item() }

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
func Detach(v *Var) *Var { return Const(v.Value.Reshape(v.Value.Shape()...)) }

// Free releases v's value and gradient now, instead of at the end of its
// pass. v must not be used afterwards.
func (v *Var) Free() {
	v.release()
	v.spare.Free()
	v.spare = nil
}

// release frees what v holds and marks it released.
func (v *Var) release() {
	v.released = true
	v.Value.Free()
	v.Grad.Free()
	if n := v.fn; n != nil {
		for _, t := range n.saved {
			t.Free()
		}
		n.in, n.backward = nil, nil
	}
}

// gradDst returns the tensor v's gradient is written into, and whether it
// already holds a gradient to add to. When it does not, the caller must
// store into it: its contents are undefined, so that no gradient is ever
// zero-filled.
func (v *Var) gradDst() (g *tensor.Tensor, accumulate bool) {
	switch {
	case v.Grad != nil:
		return v.Grad, true
	case v.fn != nil:
		v.Grad = v.fn.slots[slotGrad].NewLike(v.Value)
	default:
		v.Grad, v.spare = tensor.ReuseLike(v.spare, v.Value), nil
	}
	return v.Grad, false
}

// addGrad adds g, summed over the axes that broadcast v's shape to g's,
// into v's gradient. g stays the caller's: a gradient is never a view of
// another tensor.
func (v *Var) addGrad(g *tensor.Tensor, t *temps) {
	if !v.requiresGrad {
		return
	}
	if !tensor.SameShape(g, v.Value) {
		g = t.keep(tensor.SumTo(g, v.Value.Shape()))
	}
	if dst, acc := v.gradDst(); acc {
		dst.AddInPlace(g)
	} else {
		tensor.CopyInto(dst, g)
	}
}

// addMatMul adds op(a) · op(b) to v's gradient.
func (v *Var) addMatMul(a, b *tensor.Tensor, transA, transB bool) {
	if v.requiresGrad {
		g, acc := v.gradDst()
		tensor.MatMulInto(g, a, b, transA, transB, acc)
	}
}

// temps holds the temporaries of one backward step, freed together after it.
type temps struct{ ts []*tensor.Tensor }

// keep registers x to be freed after the current backward step, and returns it.
func (t *temps) keep(x *tensor.Tensor) *tensor.Tensor {
	t.ts = append(t.ts, x)
	return x
}

// free releases every registered temporary.
func (t *temps) free() {
	for i, x := range t.ts {
		x.Free()
		t.ts[i] = nil
	}
	t.ts = t.ts[:0]
}
