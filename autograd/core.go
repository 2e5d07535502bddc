package autograd

import (
	"errors"
	"fmt"

	"github.com/gograd/gograd/tensor"
)

// This file is the core: a variable and the node that computed it, the
// recording of an operation, the reverse walk and the accumulation of
// gradients. Memory (the tape's slab), the ops and the API around them
// live in the other files.

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

// node is how a variable was computed: its operation, its inputs, the
// function that maps its gradient to theirs, and what that function reads.
type node struct {
	op       string
	in       []*Var
	backward func(out *Var, t *temps) // adds out.Grad's contributions to the inputs' gradients
	saved    [2]*tensor.Tensor        // tensors the backward reads, owned by the node
	ints     []int                    // integer arguments of the op (axes, flags)
	f        [2]float32               // scalar arguments of the op

	inBuf  [3]*Var
	intBuf [4]int
	slots  [numSlots]tensor.Slot // header memory for the node's own tensors
}

// The slots of a node.
const (
	slotValue = iota
	slotGrad
	slotSaved0
	slotSaved1
	numSlots
)

// begin records the operation op on inputs and returns its output, whose
// Value the caller sets (see set). The output requires a gradient when an
// input does, unless its tape is in NoGrad; it belongs to the first tape
// among the inputs.
func begin(op string, backward func(*Var, *temps), inputs ...*Var) *Var {
	var tp *Tape
	grad := false
	for _, in := range inputs {
		if in.released {
			panic(&tensor.Error{Op: op, Err: ErrReleased})
		}
		if tp == nil {
			tp = in.tape
		}
		grad = grad || in.requiresGrad
	}
	if tp != nil && tp.noGrad > 0 {
		grad = false
	}
	c := tp.cell()
	out, n := &c.v, &c.n
	out.fn, out.tape, out.requiresGrad = n, tp, grad
	n.op, n.in = op, append(n.inBuf[:0], inputs...)
	if grad {
		n.backward = backward
	}
	return out
}

// set makes value the output's value, owned by its node, and returns it.
func (v *Var) set(value *tensor.Tensor) *Var {
	v.Value = value
	return v
}

// Backward computes the gradient of v, a scalar, with respect to every
// variable it depends on that requires one, then ends the pass: the
// intermediates it walked and the other variables of v's tape are
// released. v's value stays readable until the tape's next pass ends.
// Leaf gradients accumulate across calls.
func (v *Var) Backward() error { return v.backward(false) }

// BackwardRetain is Backward that releases nothing, so that the
// intermediates' values and gradients can be inspected or exported, and
// Backward can run through the graph again.
func (v *Var) BackwardRetain() error { return v.backward(true) }

// walk is the state of one Backward: the variables in reverse topological
// order, the sort's stack and the temporaries of the current step.
type walk struct {
	order []*Var
	stack []frame
	temps temps
}

type frame struct {
	v    *Var
	next int // the next input to visit
}

func (v *Var) backward(retain bool) (err error) {
	switch {
	case v.released:
		return ErrFreed
	case v.Value.Len() != 1:
		return fmt.Errorf("%w, got shape %v", ErrNotScalar, v.Value.Shape())
	case !v.requiresGrad:
		return errors.New("autograd: backward from a value that does not require a gradient")
	}
	var w *walk
	if v.tape != nil {
		w = &v.tape.walk // kept from pass to pass, so that a step allocates nothing here
	} else {
		w = new(walk)
	}
	defer func() {
		w.temps.free()
		for _, n := range w.order {
			n.seen, n.pending = false, 0
		}
		for _, f := range w.stack { // left by a sort that failed
			f.v.seen, f.v.pending = false, 0
		}
		clear(w.order)
		clear(w.stack)
		w.order, w.stack = w.order[:0], w.stack[:0]
		if r := recover(); r != nil {
			e, ok := r.(*tensor.Error)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("autograd: backward: %w", e)
		}
	}()
	w.sort(v)
	if g, acc := v.gradDst(); acc {
		g.AddInPlace(w.temps.keep(tensor.Ones(g.Device(), g.Shape()...)))
	} else {
		g.Fill(1)
	}
	for _, n := range w.order {
		if n.fn == nil { // a leaf is ready when its last consumer has run
			if n == v {
				n.gradReady()
			}
			continue
		}
		if n.Grad != nil {
			n.fn.backward(n, &w.temps)
			w.temps.free()
		}
		for _, in := range n.fn.in {
			if in.requiresGrad {
				if in.pending--; in.pending == 0 && in.fn == nil {
					in.gradReady()
				}
			}
		}
	}
	if !retain && v.fn != nil {
		for _, n := range w.order {
			if n.fn != nil && n != v {
				n.release()
			}
		}
		v.releaseGraph() // the value stays the caller's to read
		if v.tape != nil {
			v.tape.endPass(v)
		}
	}
	return nil
}

// sort lists root and the variables it depends on that require a gradient
// in w.order, each after every variable computed from it (a reverse
// topological order, by depth-first search), and counts each one's
// consumers in pending.
func (w *walk) sort(root *Var) {
	root.seen = true
	w.stack = append(w.stack[:0], frame{v: root})
	for len(w.stack) > 0 {
		f := &w.stack[len(w.stack)-1]
		if f.v.fn == nil || f.next == len(f.v.fn.in) {
			if f.v.fn != nil { // an intermediate's gradient is this pass's alone
				f.v.Grad.Free()
				f.v.Grad = nil
			}
			w.order = append(w.order, f.v)
			w.stack = w.stack[:len(w.stack)-1]
			continue
		}
		in := f.v.fn.in[f.next]
		f.next++
		if !in.requiresGrad {
			continue
		}
		if in.released {
			panic(&tensor.Error{Op: "backward", Err: ErrReleased})
		}
		in.pending++
		if !in.seen {
			in.seen = true
			w.stack = append(w.stack, frame{v: in})
		}
	}
	for i, j := 0, len(w.order)-1; i < j; i, j = i+1, j-1 { // post-order, reversed
		w.order[i], w.order[j] = w.order[j], w.order[i]
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
