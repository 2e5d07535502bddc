package autograd

import (
	"errors"
	"fmt"

	"github.com/gograd/gograd/tensor"
)

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
		clear(w.order)
		w.order = w.order[:0]
		if r := recover(); r != nil {
			e, ok := r.(*tensor.Error)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("autograd: backward: %w", e)
		}
	}()
	w.sort(v)
	for _, n := range w.order { // an intermediate's gradient is this pass's alone
		if n.fn != nil {
			n.Grad.Free()
			n.Grad = nil
		}
	}
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
		v.Grad.Free()
		v.released = true
		v.fn.in, v.fn.backward = nil, nil
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
