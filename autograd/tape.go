package autograd

import "github.com/gograd/gograd/tensor"

// Tape records operations in the order they run.
//
// Backward releases the recorded nodes and keeps them for the next pass:
// the next operations recorded on the tape reuse them in order, together
// with the buffers their ops computed into (LinearAct's output, the
// gradients, the loss's scratch). A training step that records the same
// operations on the same shapes as the previous one thus allocates almost
// nothing. The price is that a Var recorded on a tape, other than the one
// Backward started from, must not be used after Backward; its values are
// overwritten by the next pass. Free releases the kept nodes' memory.
type Tape struct {
	nodes  []*Var
	spare  []*Var         // the nodes of the previous pass, reused in order
	used   int            // spare nodes handed out so far
	seed   *tensor.Tensor // the ones that started the previous Backward
	noGrad int
	hooks  []hookAt // the gradient hooks of the pass in progress (hook.go)
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// Var returns a leaf on the tape. With requiresGrad its gradient is kept
// after Backward, like a parameter's. A leaf is not recycled: it may be
// created once and used in every pass.
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
// gradients, and the memory kept for the next pass. Leaves are left alone.
func (tp *Tape) Free() {
	tp.release(nil)
	for i, n := range tp.spare {
		n.drop()
		tp.spare[i] = nil
	}
	tp.spare = tp.spare[:0]
	tp.seed.Free()
	tp.seed = nil
}

// release ends a pass: it frees what the recorded nodes need no more and
// keeps them as the spares of the next pass. keep's value (and keep
// itself) belongs to the caller from now on.
func (tp *Tape) release(keep *Var) {
	for i, n := range tp.spare[tp.used:] { // not reused by this pass
		n.drop()
		tp.spare[tp.used+i] = nil
	}
	next := tp.spare[:0]
	for i, n := range tp.nodes {
		n.backward = nil
		for _, t := range n.saved {
			t.Free()
		}
		n.saved = n.saved[:0]
		n.freed = true
		n.inputs = nil
		n.in = [3]*Var{}
		if n == keep {
			// A new node takes over keep's buffers: keep stays as it is.
			tp.seed.Free()
			tp.seed, n.Grad = n.Grad, nil
			fresh := &Var{spare: n.spare, scratch: n.scratch}
			n.spare, n.scratch = nil, [2]*tensor.Tensor{}
			n = fresh
		} else {
			n.stashGrad()
			if !n.reuse {
				n.Value.Free()
			}
		}
		next = append(next, n)
		tp.nodes[i] = nil
	}
	tp.spare, tp.nodes = next, tp.nodes[:0]
	tp.used = 0
}

// node returns the next spare node, or a new one.
func (tp *Tape) node() *Var {
	if tp.used < len(tp.spare) {
		n := tp.spare[tp.used]
		tp.spare[tp.used] = nil
		tp.used++
		return n
	}
	return &Var{}
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

// begin starts the output node of op on inputs: a spare node of their tape,
// or a new one. The node may hold a Value from its previous use, which the
// op reuses (see reuseValue) or replaces (see setValue). begin reports
// whether the caller must attach a backward function.
func begin(op string, inputs ...*Var) (*Var, bool) {
	tp := tapeOf(inputs)
	var out *Var
	if tp != nil {
		out = tp.node()
	} else {
		out = &Var{}
	}
	out.op, out.tape, out.Name = op, tp, ""
	out.requiresGrad, out.leaf, out.freed = false, false, false
	out.inputs = append(out.in[:0], inputs...)
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

// setValue makes value the node's output, freeing a kept one.
func (v *Var) setValue(value *tensor.Tensor) {
	if v.Value != value {
		v.Value.Free()
	}
	v.Value, v.reuse = value, false
}

// reuseValue returns a tensor of shape for the op to compute its output
// into: the node's kept one when it fits, or a new one. It becomes Value.
func (v *Var) reuseValue(like *tensor.Tensor, shape ...int) *tensor.Tensor {
	if !v.reuse {
		v.Value.Free()
		v.Value = nil
	}
	v.Value = tensor.Reuse(v.Value, like.Device(), shape...)
	v.reuse = true
	return v.Value
}

// reuseScratch returns the op's buffer i, of shape, reusing the one it had.
func (v *Var) reuseScratch(i int, like *tensor.Tensor, shape ...int) *tensor.Tensor {
	v.scratch[i] = tensor.Reuse(v.scratch[i], like.Device(), shape...)
	return v.scratch[i]
}

// record wraps value as the output of op on inputs. It returns the output
// and whether the caller must attach a backward function.
func record(op string, value *tensor.Tensor, inputs ...*Var) (*Var, bool) {
	out, grad := begin(op, inputs...)
	out.setValue(value)
	return out, grad
}
