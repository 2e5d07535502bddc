package autograd

import (
	"slices"

	"github.com/gograd/gograd/tensor"
)

// Slice returns the elements start <= i < end of a along axis; negative
// bounds count from the end, as in Python. Its gradient is the output's,
// padded with zeros back to a's shape.
func Slice(a *Var, axis, start, end int) *Var {
	out := begin("slice", sliceBackward, a).set(tensor.Slice(a.Value, axis, start, end))
	if axis < 0 {
		axis += a.Value.Dims()
	}
	if start < 0 {
		start += a.Value.Dim(axis)
	}
	return out.args(axis, start)
}

func sliceBackward(out *Var, t *temps) {
	a := out.in(0)
	axis, start := out.fn.ints[0], out.fn.ints[1]
	pads := make([][2]int, a.Value.Dims())
	pads[axis] = [2]int{start, a.Value.Dim(axis) - start - out.Value.Dim(axis)}
	a.addGrad(t.keep(tensor.Pad(out.Grad, pads, 0)), t)
}

// Pad returns a with pads[d][0] values before and pads[d][1] after it on
// each axis d, set to value; a negative pad removes elements instead. The
// gradient is the output's with the opposite pads, which crop what was
// added and restore with zeros what was removed.
func Pad(a *Var, pads [][2]int, value float32) *Var {
	out := begin("pad", padBackward, a).set(tensor.Pad(a.Value, pads, value))
	inv := make([]int, 0, 2*len(pads))
	for _, p := range pads {
		inv = append(inv, -p[0], -p[1])
	}
	out.fn.ints = inv
	return out
}

func padBackward(out *Var, t *temps) {
	inv := out.fn.ints
	pads := make([][2]int, len(inv)/2)
	for d := range pads {
		pads[d] = [2]int{inv[2*d], inv[2*d+1]}
	}
	out.in(0).addGrad(t.keep(tensor.Pad(out.Grad, pads, 0)), t)
}

// IndexSelect returns the elements of a at the indices idx along axis, in
// that order, as torch.index_select; indices may repeat and count from the
// end when negative. The gradient adds each selected element's gradient
// into its source, repeats included: Sᵀ·g for the one-hot selection matrix
// S, one matrix product.
func IndexSelect(a *Var, axis int, idx []int) *Var {
	out := begin("index_select", indexSelectBackward, a).set(tensor.IndexSelect(a.Value, axis, idx))
	if axis < 0 {
		axis += a.Value.Dims()
	}
	n := a.Value.Dim(axis)
	ints := append(make([]int, 0, len(idx)+1), axis)
	for _, j := range idx {
		if j < 0 {
			j += n
		}
		ints = append(ints, j)
	}
	out.fn.ints = ints
	return out
}

func indexSelectBackward(out *Var, t *temps) {
	a := out.in(0)
	axis, idx := out.fn.ints[0], out.fn.ints[1:]
	shape := a.Value.Shape()
	n, k := shape[axis], len(idx)
	// Move axis to the front: g becomes [k, rest], the gradient [n, rest].
	perm := []int{axis}
	for d := range shape {
		if d != axis {
			perm = append(perm, d)
		}
	}
	g := t.keep(tensor.Transpose(out.Grad, perm...))
	rest := g.Len() / max(k, 1)
	sel := make([]float32, k*n)
	for i, j := range idx {
		sel[i*n+j] = 1
	}
	s := t.keep(tensor.FromSlice(g.Device(), sel, k, n))
	front := t.keep(tensor.MatMul(s, t.keep(g.Reshape(k, rest)), true, false))
	moved := slices.Clone(g.Shape())
	moved[0] = n
	inv := make([]int, len(perm))
	for i, p := range perm {
		inv[p] = i
	}
	a.addGrad(t.keep(tensor.Transpose(t.keep(front.Reshape(moved...)), inv...)), t)
}

// Concat joins vs along axis, as torch.cat; their other axes must agree.
// Each input's gradient is its slice of the output's.
func Concat(axis int, vs ...*Var) *Var {
	values := make([]*tensor.Tensor, len(vs))
	for i, v := range vs {
		values[i] = v.Value
	}
	out := begin("concat", concatBackward, vs...).set(tensor.Concat(axis, values...))
	if axis < 0 {
		axis += out.Value.Dims()
	}
	return out.args(axis)
}

func concatBackward(out *Var, t *temps) {
	axis, at := out.fn.ints[0], 0
	for _, in := range out.fn.in {
		n := in.Value.Dim(axis)
		if in.requiresGrad {
			in.addGrad(t.keep(tensor.Slice(out.Grad, axis, at, at+n)), t)
		}
		at += n
	}
}

// Stack joins vs, of one shape, along a new axis, as torch.stack; the axis
// may be the inputs' rank (the end). Each input's gradient is its slice of
// the output's.
func Stack(axis int, vs ...*Var) *Var {
	values := make([]*tensor.Tensor, len(vs))
	for i, v := range vs {
		values[i] = v.Value
	}
	out := begin("stack", stackBackward, vs...).set(tensor.Stack(axis, values...))
	if axis < 0 {
		axis += out.Value.Dims()
	}
	return out.args(axis)
}

func stackBackward(out *Var, t *temps) {
	axis := out.fn.ints[0]
	for i, in := range out.fn.in {
		if in.requiresGrad {
			s := t.keep(tensor.Slice(out.Grad, axis, i, i+1))
			in.addGrad(t.keep(s.Reshape(in.Value.Shape()...)), t)
		}
	}
}
