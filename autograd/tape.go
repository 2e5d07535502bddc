package autograd

import "github.com/gograd/gograd/tensor"

// cell is a recorded variable and its node, the unit of a tape's slab.
type cell struct {
	v Var
	n node
}

// Tape is the scope of a pass: it owns the variables recorded on it (the
// operations whose first input on a tape is on it) and releases their
// buffers together, when Backward from one of them ends the pass or when
// Free is called.
//
// A tape allocates the nodes of a pass in one slab, sized after the
// previous pass, and never reuses a slab: a variable held past its pass
// stays a valid Go value whose use fails with ErrReleased, and never shows
// a later pass's numbers. The buffers come from the device's allocator,
// whose pool makes the next pass reuse them; headers live in the slab, so a
// pass of the same shape as the previous one allocates one object.
//
// Backward from one root ends the pass for the whole tape: to run Backward
// from several roots of one pass, add them up first, or use BackwardRetain
// for all but the last.
type Tape struct {
	slabs  [][]cell // the current pass's nodes
	n      int      // nodes recorded in the current pass
	next   int      // nodes recorded by the previous pass: the size of the next slab
	root   *Var     // the root of the last Backward, whose value the caller reads until the next pass ends
	noGrad int
	walk   walk
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// Var returns a leaf on the tape: the operations on it record on the tape.
// With requiresGrad its gradient accumulates across passes, like a
// parameter's. A leaf is not released with a pass: it may be created once
// and used in every pass.
func (tp *Tape) Var(t *tensor.Tensor, requiresGrad bool) *Var {
	return &Var{Value: t, tape: tp, requiresGrad: requiresGrad}
}

// NoGrad runs fn without recording gradients for operations on the tape
// (those with an input on it): the values computed inside need none. They
// are still released by Free. Operations on inputs of no tape, parameters
// alone, record as usual.
func (tp *Tape) NoGrad(fn func()) {
	tp.noGrad++
	defer func() { tp.noGrad-- }()
	fn()
}

// Len is the number of operations recorded in the current pass.
func (tp *Tape) Len() int { return tp.n }

// Free ends the current pass: it releases every variable recorded on the
// tape and the value of the last Backward's root. Leaves are left alone.
func (tp *Tape) Free() { tp.endPass(nil) }

// endPass releases the pass's variables, except keep, and the previous
// root's value, and starts a new pass. keep becomes the root kept for the
// caller.
func (tp *Tape) endPass(keep *Var) {
	if tp.root != nil && tp.root != keep {
		tp.root.release()
	}
	tp.root = keep
	for i, s := range tp.slabs {
		for j := range s {
			if v := &s[j].v; v != keep && !v.released {
				v.release()
			}
		}
		tp.slabs[i] = nil
	}
	tp.slabs, tp.next, tp.n = tp.slabs[:0], tp.n, 0
}

// cell returns a new cell in the tape's slab, or on the heap for no tape.
func (tp *Tape) cell() *cell {
	if tp == nil {
		return new(cell)
	}
	k := len(tp.slabs)
	if k == 0 || len(tp.slabs[k-1]) == cap(tp.slabs[k-1]) {
		size := tp.next - tp.n
		if size <= 0 {
			size = max(16, tp.n)
		}
		tp.slabs = append(tp.slabs, make([]cell, 0, size))
		k++
	}
	s := &tp.slabs[k-1]
	*s = (*s)[:len(*s)+1]
	tp.n++
	return &(*s)[len(*s)-1]
}

// newValue returns a tensor of shape for the op to compute its output
// into, with its header in the node; it becomes Value.
func (v *Var) newValue(like *tensor.Tensor, shape ...int) *tensor.Tensor {
	v.Value = v.fn.slots[slotValue].New(like.Device(), shape...)
	return v.Value
}

// save keeps t as the node's saved tensor i, freed with the node.
func (v *Var) save(i int, t *tensor.Tensor) *tensor.Tensor {
	v.fn.saved[i] = t
	return t
}

// newSaved returns a tensor of shape, with its header in the node, kept as
// saved tensor i.
func (v *Var) newSaved(i int, like *tensor.Tensor, shape ...int) *tensor.Tensor {
	return v.save(i, v.fn.slots[slotSaved0+i].New(like.Device(), shape...))
}

// args keeps the op's integer arguments.
func (v *Var) args(xs ...int) *Var {
	v.fn.ints = append(v.fn.intBuf[:0], xs...)
	return v
}

// in returns the op's input i.
func (v *Var) in(i int) *Var { return v.fn.in[i] }
