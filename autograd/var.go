package autograd

import (
	"errors"
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// ErrFreed is returned by Backward when the graph's intermediates were
// already freed by an earlier Backward.
var ErrFreed = errors.New("autograd: backward through a graph whose intermediates were freed (use BackwardRetain to keep them)")

// ErrNotScalar is returned by Backward from a value with more than one element.
var ErrNotScalar = errors.New("autograd: backward needs a scalar output")

// Var is a tensor in a computation graph, with its gradient.
type Var struct {
	Value *tensor.Tensor // the value
	Grad  *tensor.Tensor // the accumulated gradient, nil until Backward reaches it
	Name  string         // an optional label, shown in graph exports

	op           string
	inputs       []*Var
	in           [3]*Var // holds the inputs of ops with up to three
	tape         *Tape
	requiresGrad bool
	leaf         bool
	freed        bool
	backward     func(out *Var)   // maps out.Grad to its inputs' gradients
	spare        *tensor.Tensor   // a released gradient buffer, reused by the next Backward
	saved        []*tensor.Tensor // temporaries the backward reads, freed with the node

	// What an op keeps in its node when the tape recycles it for the next
	// pass (see Tape), so that a training step computes into the buffers of
	// the previous one instead of allocating.
	reuse   bool              // Value was computed in place by the op, and is kept
	act     device.Activation // the activation of LinearAct
	scratch [2]*tensor.Tensor // the op's own buffers

	gradHook    func(*Var) // see SetGradHook (hook.go)
	hookPlanned bool       // v is in its tape's hook plan for this pass
}

// Param returns a trainable leaf: its gradient accumulates across Backward
// calls until ZeroGrad.
func Param(t *tensor.Tensor) *Var { return &Var{Value: t, requiresGrad: true, leaf: true, op: "param"} }

// Const returns a leaf that needs no gradient and belongs to no tape.
func Const(t *tensor.Tensor) *Var { return &Var{Value: t, leaf: true, op: "const"} }

// RequiresGrad reports whether gradients flow to v.
func (v *Var) RequiresGrad() bool { return v.requiresGrad }

// Op names the operation that produced v ("param", "const" or "input" for leaves).
func (v *Var) Op() string { return v.op }

// Inputs returns the variables v was computed from.
func (v *Var) Inputs() []*Var { return v.inputs }

// Shape returns the shape of v's value.
func (v *Var) Shape() []int { return v.Value.Shape() }

// Item returns the value of a one-element variable.
func (v *Var) Item() float32 { return v.Value.Item() }

// ZeroGrad clears v's gradient: Grad becomes nil, as PyTorch's
// zero_grad(set_to_none=True) leaves it, and the next Backward writes its
// first contribution into the released buffer instead of adding to zeros.
// That saves a pass over every gradient per step.
func (v *Var) ZeroGrad() {
	if v.Grad != nil {
		v.spare.Free()
		v.spare, v.Grad = v.Grad, nil
	}
}

// Detach returns a leaf sharing v's value that needs no gradient and
// belongs to no tape. It stays valid after v's tape frees v.
func Detach(v *Var) *Var { return Const(v.Value.Reshape(v.Value.Shape()...)) }

// Free releases v's value and gradient.
func (v *Var) Free() {
	v.Value.Free()
	v.Grad.Free()
	v.spare.Free()
	v.Grad, v.spare = nil, nil
	v.freed = true
}

// addMatMul adds op(a) · op(b) to v's gradient. The first contribution
// overwrites a new or released buffer, so gradients are never zero-filled.
func (v *Var) addMatMul(a, b *tensor.Tensor, transA, transB bool) {
	g, acc := v.gradDst()
	tensor.MatMulInto(g, a, b, transA, transB, acc)
}

// gradDst returns the tensor a backward pass writes v's gradient into, and
// whether it holds a gradient to add to. When it does not, the caller must
// store into it: it is the released buffer, or a new one, with undefined
// contents.
func (v *Var) gradDst() (g *tensor.Tensor, accumulate bool) {
	if v.Grad != nil {
		return v.Grad, true
	}
	v.Grad = tensor.ReuseLike(v.spare, v.Value)
	v.spare = nil
	return v.Grad, false
}

// accumulate adds g, summed over broadcast axes to v's shape, into v's
// gradient. When owned, g is a temporary that accumulate takes over.
func (v *Var) accumulate(g *tensor.Tensor, owned bool) {
	if !v.requiresGrad {
		if owned {
			g.Free()
		}
		return
	}
	r := g
	if !tensor.SameShape(g, v.Value) {
		r = tensor.SumTo(g, v.Value.Shape())
	}
	if r != g {
		if owned {
			g.Free()
		}
		owned = true
	}
	switch {
	case v.Grad == nil && owned:
		v.spare.Free()
		v.Grad, v.spare = r, nil
		return
	case v.Grad == nil:
		dst, _ := v.gradDst()
		tensor.CopyInto(dst, r)
	default:
		v.Grad.AddInPlace(r)
	}
	if owned {
		r.Free()
	}
}

// stashGrad releases v's gradient into spare, for the next pass to reuse.
func (v *Var) stashGrad() {
	if v.Grad == nil {
		return
	}
	v.spare.Free()
	v.spare, v.Grad = v.Grad, nil
}

// drop frees every tensor v holds.
func (v *Var) drop() {
	v.Value.Free()
	v.Grad.Free()
	v.spare.Free()
	for i, t := range v.scratch {
		t.Free()
		v.scratch[i] = nil
	}
	for _, t := range v.saved {
		t.Free()
	}
	v.Grad, v.spare, v.saved = nil, nil, nil
}

// Backward computes the gradient of v, a scalar, with respect to every
// variable it depends on, then frees the tape's intermediates. Leaf
// gradients accumulate across calls.
func (v *Var) Backward() error { return v.backward1(false) }

// BackwardRetain is Backward that keeps the intermediates' values and
// gradients, so that they can be inspected or exported.
func (v *Var) BackwardRetain() error { return v.backward1(true) }

func (v *Var) backward1(retain bool) (err error) {
	if v.freed {
		return ErrFreed
	}
	if v.Value.Len() != 1 {
		return fmt.Errorf("%w, got shape %v", ErrNotScalar, v.Value.Shape())
	}
	if !v.requiresGrad {
		return errors.New("autograd: backward from a value that does not require a gradient")
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*tensor.Error)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("autograd: backward: %w", e)
		}
	}()
	tp := v.tape
	if tp == nil {
		v.accumulate(tensor.Ones(v.Value.Device(), v.Value.Shape()...), true)
		if v.gradHook != nil {
			v.gradHook(v)
		}
		return nil
	}
	for _, n := range tp.nodes { // intermediates' gradients start from zero on every pass
		n.stashGrad()
	}
	seed := tensor.ReuseLike(tp.seed, v.Value)
	tp.seed = nil
	seed.Fill(1)
	v.accumulate(seed, true)
	tp.planHooks()
	for i := len(tp.nodes) - 1; i >= 0; i-- {
		if n := tp.nodes[i]; n.backward != nil && n.Grad != nil {
			n.backward(n)
		}
		tp.fireHooks(i)
	}
	if !retain {
		tp.release(v)
	}
	return nil
}
