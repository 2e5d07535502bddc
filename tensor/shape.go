package tensor

import (
	"fmt"
	"slices"

	"github.com/gograd/gograd/device"
)

// rightAlign copies s into the last len(s) entries of a walk array, with
// fill before them.
func rightAlign(s []int, fill int) [device.MaxDims]int {
	var r [device.MaxDims]int
	for i := range device.MaxDims - len(s) {
		r[i] = fill
	}
	copy(r[device.MaxDims-len(s):], s)
	return r
}

// maxRank fails op when shape has more axes than a walk.
func maxRank(op string, shape []int) {
	if len(shape) > device.MaxDims {
		fail(op, fmt.Errorf("%w: rank %d, at most %d", ErrShape, len(shape), device.MaxDims), shape)
	}
}

// copyRegion copies the part of x of shape sub that starts at element
// offset xoff into dst (of shape dshape) at element offset doff, both
// row-major: one strided Copy.
func copyRegion(op string, dst, x *Tensor, sub []int, xoff int, dshape []int, doff int) {
	if numel(sub) == 0 {
		return
	}
	w := device.Walk{Shape: rightAlign(sub, 1), A: rightAlign(rowMajor(x.shape), 0), OffA: xoff,
		D: rightAlign(rowMajor(dshape), 0), OffD: doff}
	check(op, x.dev.Copy(dst.Buffer(), x.Buffer(), w), x.shape, dst.shape)
}

// Slice returns a copy of t's elements start <= i < end along axis.
// Negative start and end count from the end of the axis, as in Python;
// after that 0 <= start <= end <= t.Dim(axis) must hold.
func Slice(t *Tensor, axis, start, end int) *Tensor {
	const op = "slice"
	a := t.axis(op, axis)
	n := t.shape[a]
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if start < 0 || end < start || end > n {
		fail(op, fmt.Errorf("%w: [%d, %d) of axis %d of size %d", ErrShape, start, end, a, n), t.shape)
	}
	maxRank(op, t.shape)
	shape := slices.Clone(t.shape)
	shape[a] = end - start
	out := New(t.dev, shape...)
	copyRegion(op, out, t, shape, start*numel(t.shape[a+1:]), shape, 0)
	return out
}

// IndexSelect returns the elements of t at the indices idx along axis, in
// that order (as torch.index_select); indices may repeat, and negative ones
// count from the end. Runs of consecutive indices are copied at once.
func IndexSelect(t *Tensor, axis int, idx []int) *Tensor {
	const op = "index select"
	a := t.axis(op, axis)
	n := t.shape[a]
	maxRank(op, t.shape)
	res := make([]int, len(idx))
	for i, j := range idx {
		if j < 0 {
			j += n
		}
		if j < 0 || j >= n {
			fail(op, fmt.Errorf("%w: index %d out of range for axis %d of size %d", ErrShape, idx[i], a, n), t.shape)
		}
		res[i] = j
	}
	shape := slices.Clone(t.shape)
	shape[a] = len(idx)
	out := New(t.dev, shape...)
	inner := numel(t.shape[a+1:])
	for i := 0; i < len(res); {
		k := i + 1
		for k < len(res) && res[k] == res[k-1]+1 {
			k++
		}
		sub := slices.Clone(t.shape)
		sub[a] = k - i
		copyRegion(op, out, t, sub, res[i]*inner, shape, i*inner)
		i = k
	}
	return out
}

// Concat joins tensors along axis; their other axes must agree.
func Concat(axis int, ts ...*Tensor) *Tensor {
	const op = "concat"
	if len(ts) == 0 {
		fail(op, fmt.Errorf("%w: no tensors", ErrShape))
	}
	first := ts[0]
	a := first.axis(op, axis)
	shape := slices.Clone(first.shape)
	shape[a] = 0
	shapes := make([][]int, len(ts))
	for i, t := range ts {
		shapes[i] = t.shape
	}
	for _, t := range ts {
		sameDevice(op, first, t)
		if len(t.shape) != len(first.shape) {
			fail(op, ErrShape, shapes...)
		}
		for d := range t.shape {
			if d != a && t.shape[d] != first.shape[d] {
				fail(op, ErrShape, shapes...)
			}
		}
		shape[a] += t.shape[a]
	}
	maxRank(op, shape)
	out := New(first.dev, shape...)
	inner, at := numel(shape[a+1:]), 0
	for _, t := range ts {
		copyRegion(op, out, t, t.shape, 0, shape, at*inner)
		at += t.shape[a]
	}
	return out
}

// Stack joins tensors of one shape along a new axis, which may be
// t.Dims() (the end); negative axes count from the end of the result.
func Stack(axis int, ts ...*Tensor) *Tensor {
	const op = "stack"
	if len(ts) == 0 {
		fail(op, fmt.Errorf("%w: no tensors", ErrShape))
	}
	r := len(ts[0].shape)
	if axis < 0 {
		axis += r + 1
	}
	if axis < 0 || axis > r {
		fail(op, fmt.Errorf("%w: axis %d out of range", ErrShape, axis), ts[0].shape)
	}
	views := make([]*Tensor, len(ts))
	for i, t := range ts {
		if !slices.Equal(t.shape, ts[0].shape) {
			fail(op, ErrShape, ts[0].shape, t.shape)
		}
		shape := slices.Insert(slices.Clone(t.shape), axis, 1)
		views[i] = t.Reshape(shape...)
	}
	out := Concat(axis, views...)
	for _, v := range views {
		v.Free()
	}
	return out
}

// Pad returns t with pads[d][0] values before and pads[d][1] after it on
// each axis d, all set to value; a negative pad removes that many elements
// instead. pads has one entry per axis.
func Pad(t *Tensor, pads [][2]int, value float32) *Tensor {
	const op = "pad"
	if len(pads) != len(t.shape) {
		fail(op, fmt.Errorf("%w: %d pads for %d axes", ErrShape, len(pads), len(t.shape)), t.shape)
	}
	maxRank(op, t.shape)
	shape := make([]int, len(t.shape))
	for d, p := range pads {
		shape[d] = t.shape[d] + p[0] + p[1]
		if shape[d] < 0 {
			fail(op, fmt.Errorf("%w: pads %v leave axis %d of size %d negative", ErrShape, p, d, t.shape[d]), t.shape)
		}
	}
	out := New(t.dev, shape...)
	if out.Len() == 0 {
		return out
	}
	strides := rowMajor(t.shape)
	w := device.Walk{Shape: rightAlign(shape, 1), A: rightAlign(strides, 0), Pad: true, Fill: value}
	off := device.MaxDims - len(shape)
	for i := range off {
		w.Hi[i] = 1
	}
	for d, p := range pads {
		lo := min(max(p[0], 0), shape[d])
		hi := min(max(p[0]+t.shape[d], 0), shape[d])
		if hi > lo {
			w.OffA += (lo - p[0]) * strides[d]
		} else {
			lo, hi = 0, 0
		}
		w.Lo[off+d], w.Hi[off+d] = lo, hi
	}
	check(op, t.dev.Copy(out.st.buf, t.Buffer(), w), t.shape, shape)
	return out
}
