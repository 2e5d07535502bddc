package autograd

import "github.com/gograd/gograd/tensor"

// Tape records operations in the order they run.
type Tape struct {
	nodes  []*Var
	noGrad int
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// Var returns a leaf on the tape. With requiresGrad its gradient is kept
// after Backward, like a parameter's.
func (tp *Tape) Var(t *tensor.Tensor, requiresGrad bool) *Var {
	return &Var{Value: t, tape: tp, requiresGrad: requiresGrad, leaf: true, op: "input"}
}

// NoGrad runs fn without recording backward closures: the values computed
// inside need no gradient. They are still freed by Free.
func (tp *Tape) NoGrad(fn func()) {
	tp.noGrad++
	defer func() { tp.noGrad-- }()
	fn()
}

// Len is the number of operations recorded since the last release.
func (tp *Tape) Len() int { return len(tp.nodes) }

// Free releases every intermediate recorded on the tape, values and
// gradients. Leaves are left alone.
func (tp *Tape) Free() { tp.release(nil) }

// release frees every recorded intermediate except keep's value.
func (tp *Tape) release(keep *Var) {
	for i, n := range tp.nodes {
		n.Grad.Free()
		n.Grad = nil
		n.backward = nil
		for _, t := range n.saved {
			t.Free()
		}
		n.saved = nil
		n.freed = true
		if n != keep {
			n.Value.Free()
		}
		tp.nodes[i] = nil
	}
	tp.nodes = tp.nodes[:0]
}

// tapeOf returns the first tape among vs.
func tapeOf(vs []*Var) *Tape {
	for _, v := range vs {
		if v.tape != nil {
			return v.tape
		}
	}
	return nil
}

// record wraps value as the output of op on inputs. It returns the output
// and whether the caller must attach a backward closure.
func record(op string, value *tensor.Tensor, inputs ...*Var) (*Var, bool) {
	tp := tapeOf(inputs)
	out := &Var{Value: value, op: op, inputs: inputs, tape: tp}
	if tp == nil {
		return out, false
	}
	tp.nodes = append(tp.nodes, out)
	if tp.noGrad > 0 {
		return out, false
	}
	for _, in := range inputs {
		if in.freed {
			panic(&tensor.Error{Op: op, Err: ErrFreed})
		}
		if in.requiresGrad {
			out.requiresGrad = true
		}
	}
	return out, out.requiresGrad
}
