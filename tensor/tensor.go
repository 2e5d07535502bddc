package tensor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/gograd/gograd/device"
)

// Tensor is a float32 n-d array on a device. The zero value is not usable;
// create tensors with New, Zeros, FromSlice and the other constructors.
type Tensor struct {
	dev   device.Device
	st    *storage
	shape []int
}

// storage is a device buffer shared by the tensors that Reshape derives.
type storage struct {
	buf  device.Buffer
	refs int
}

// ErrShape is wrapped by every shape mismatch.
var ErrShape = errors.New("tensor: shape mismatch")

// ErrFreed is wrapped when a freed tensor is used.
var ErrFreed = errors.New("tensor: use of a freed tensor")

// Error is the panic value of a failed tensor operation.
type Error struct {
	Op     string  // the operation, for example "matmul"
	Shapes [][]int // the operands' shapes, where they matter
	Err    error   // the cause: ErrShape, ErrFreed, or a device error
}

// Error describes the failed operation.
func (e *Error) Error() string {
	s := "tensor: " + e.Op
	for i, sh := range e.Shapes {
		if i == 0 {
			s += ": "
		} else {
			s += " and "
		}
		s += fmt.Sprintf("%v", sh)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Catch runs fn and returns the *Error it panicked with, if any. Other
// panics propagate.
func Catch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	fn()
	return nil
}

func fail(op string, err error, shapes ...[]int) {
	panic(&Error{Op: op, Shapes: shapes, Err: err})
}

// check panics with an *Error when err is not nil. It copies the shapes
// only then, so that they do not escape and a call that succeeds allocates
// nothing.
func check(op string, err error, shapes ...[]int) {
	if err != nil {
		cp := make([][]int, len(shapes))
		for i, s := range shapes {
			cp[i] = slices.Clone(s)
		}
		fail(op, err, cp...)
	}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// block is what New allocates in one piece: a tensor, its storage, and room
// for the shape of up to four dimensions.
type block struct {
	t    Tensor
	st   storage
	dims [4]int
}

// view is what Reshape allocates in one piece: a tensor and its shape.
type view struct {
	t    Tensor
	dims [4]int
}

// shapeIn returns a copy of shape, in dims when it fits.
func shapeIn(dims *[4]int, shape []int) []int {
	if len(shape) > len(dims) {
		return append([]int(nil), shape...)
	}
	s := dims[:len(shape):len(shape)]
	copy(s, shape)
	return s
}

// New returns a tensor of the given shape with undefined contents.
func New(dev device.Device, shape ...int) *Tensor {
	for _, d := range shape {
		if d < 0 {
			check("new", fmt.Errorf("%w: negative dimension", ErrShape), shape)
		}
	}
	n := numel(shape)
	buf, err := dev.Alloc(max(n, 1))
	check("new", err, shape)
	b := &block{st: storage{buf: buf, refs: 1}}
	b.t = Tensor{dev: dev, st: &b.st, shape: shapeIn(&b.dims, shape)}
	return &b.t
}

// Reuse returns t when it is a live tensor on dev of exactly shape whose
// storage no view shares, so that a caller can overwrite it. Otherwise it
// frees t, which may be nil, and returns New(dev, shape...). Code that
// computes the same shapes again and again, like a training step, keeps its
// tensors this way instead of allocating them anew.
func Reuse(t *Tensor, dev device.Device, shape ...int) *Tensor {
	if t != nil && t.st != nil && t.st.refs == 1 && t.dev == dev && slices.Equal(t.shape, shape) {
		return t
	}
	t.Free()
	return New(dev, shape...)
}

// ReuseLike is Reuse with the device and shape of like.
func ReuseLike(t, like *Tensor) *Tensor {
	if t != nil && t.st != nil && t.st.refs == 1 && t.dev == like.dev && slices.Equal(t.shape, like.shape) {
		return t
	}
	t.Free()
	return New(like.dev, like.shape...)
}

// Full returns a tensor of the given shape filled with v.
func Full(dev device.Device, v float32, shape ...int) *Tensor {
	t := New(dev, shape...)
	check("full", dev.Fill(t.st.buf, t.Len(), v), shape)
	return t
}

// Zeros returns a tensor of zeros.
func Zeros(dev device.Device, shape ...int) *Tensor { return Full(dev, 0, shape...) }

// Ones returns a tensor of ones.
func Ones(dev device.Device, shape ...int) *Tensor { return Full(dev, 1, shape...) }

// Scalar returns a tensor of shape [] holding v.
func Scalar(dev device.Device, v float32) *Tensor { return Full(dev, v) }

// FromSlice copies data into a new tensor of the given shape. With no shape,
// the tensor is a vector of len(data).
func FromSlice(dev device.Device, data []float32, shape ...int) *Tensor {
	if shape == nil {
		shape = []int{len(data)}
	}
	if numel(shape) != len(data) {
		fail("from slice", fmt.Errorf("%w: %d values for shape %v", ErrShape, len(data), shape), shape)
	}
	t := New(dev, shape...)
	check("from slice", dev.CopyIn(t.st.buf, data), shape)
	return t
}

// Adopt returns a tensor of the given shape holding data. On a device whose
// memory is the host's (device.HostMemory: the CPU) the tensor uses data
// itself, so that a large data set is not held twice; the caller must not
// use data afterwards. Other devices copy it, as FromSlice does.
func Adopt(dev device.Device, data []float32, shape ...int) *Tensor {
	h, ok := dev.(device.HostMemory)
	if !ok {
		return FromSlice(dev, data, shape...)
	}
	if numel(shape) != len(data) {
		fail("adopt", fmt.Errorf("%w: %d values for shape %v", ErrShape, len(data), shape), shape)
	}
	for _, d := range shape {
		if d < 0 {
			check("adopt", fmt.Errorf("%w: negative dimension", ErrShape), shape)
		}
	}
	if len(data) == 0 { // a tensor holds at least one value, as New allocates
		data = make([]float32, 1)
	}
	b := &block{st: storage{buf: h.Adopt(data), refs: 1}}
	b.t = Tensor{dev: dev, st: &b.st, shape: shapeIn(&b.dims, shape)}
	return &b.t
}

// RandN returns a tensor of standard normal values scaled by std, drawn from rng.
func RandN(dev device.Device, rng *rand.Rand, std float32, shape ...int) *Tensor {
	data := make([]float32, numel(shape))
	for i := range data {
		data[i] = float32(rng.NormFloat64()) * std
	}
	return FromSlice(dev, data, append([]int{}, shape...)...) // no shape is a scalar, not a vector
}

// RandU returns a tensor of values uniform in [lo, hi), drawn from rng.
func RandU(dev device.Device, rng *rand.Rand, lo, hi float32, shape ...int) *Tensor {
	data := make([]float32, numel(shape))
	for i := range data {
		data[i] = lo + (hi-lo)*float32(rng.Float64())
	}
	return FromSlice(dev, data, append([]int{}, shape...)...)
}

// Device returns the tensor's device.
func (t *Tensor) Device() device.Device { return t.dev }

// Shape returns a copy of the tensor's shape.
func (t *Tensor) Shape() []int { return slices.Clone(t.shape) }

// Dims is the number of dimensions.
func (t *Tensor) Dims() int { return len(t.shape) }

// Dim returns the size of axis i; negative i counts from the end.
func (t *Tensor) Dim(i int) int { return t.shape[t.axis("dim", i)] }

// Len is the number of elements.
func (t *Tensor) Len() int { return numel(t.shape) }

// Buffer returns the device buffer holding the tensor's values.
func (t *Tensor) Buffer() device.Buffer {
	if t.st == nil {
		fail("buffer", ErrFreed, t.shape)
	}
	return t.st.buf
}

// String shows the shape and the values.
func (t *Tensor) String() string {
	if t.st == nil {
		return fmt.Sprintf("Tensor%v(freed)", []int(t.shape))
	}
	return fmt.Sprintf("Tensor%v%v", []int(t.shape), t.Data())
}

// Free releases the tensor's storage once no reshaped view uses it. The
// tensor must not be used afterwards. Freeing twice is harmless.
func (t *Tensor) Free() {
	if t == nil || t.st == nil {
		return
	}
	t.st.refs--
	if t.st.refs == 0 {
		t.dev.Free(t.st.buf)
	}
	t.st = nil
}

// Data copies the tensor's values to a new host slice.
func (t *Tensor) Data() []float32 {
	out := make([]float32, t.Len())
	check("data", t.dev.CopyOut(out, t.Buffer()), t.shape)
	return out
}

// CopyTo copies the tensor's values into dst, which must hold Len values.
func (t *Tensor) CopyTo(dst []float32) {
	if len(dst) != t.Len() {
		fail("copy to", fmt.Errorf("%w: host slice of %d values", ErrShape, len(dst)), t.shape)
	}
	check("copy to", t.dev.CopyOut(dst, t.Buffer()), t.shape)
}

// CopyFrom overwrites the tensor's values with src, which must hold Len values.
func (t *Tensor) CopyFrom(src []float32) {
	if len(src) != t.Len() {
		fail("copy from", fmt.Errorf("%w: host slice of %d values", ErrShape, len(src)), t.shape)
	}
	check("copy from", t.dev.CopyIn(t.Buffer(), src), t.shape)
}

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() float32 {
	if t.Len() != 1 {
		fail("item", fmt.Errorf("%w: want one element", ErrShape), t.shape)
	}
	var v [1]float32
	check("item", t.dev.CopyOut(v[:], t.Buffer()), t.shape)
	return v[0]
}

// To copies the tensor to another device.
func (t *Tensor) To(dev device.Device) *Tensor {
	return FromSlice(dev, t.Data(), t.shape...)
}

// Clone returns a copy of the tensor on the same device.
func (t *Tensor) Clone() *Tensor {
	out := New(t.dev, t.shape...)
	check("clone", t.dev.Copy(out.st.buf, t.Buffer(), device.Contiguous(t.Len())), t.shape)
	return out
}

// CopyInto copies src's values into dst, which must hold as many.
func CopyInto(dst, src *Tensor) {
	sameDevice("copy into", dst, src)
	if dst.Len() != src.Len() {
		fail("copy into", ErrShape, dst.shape, src.shape)
	}
	check("copy into", src.dev.Copy(dst.Buffer(), src.Buffer(), device.Contiguous(src.Len())), src.shape)
}

// Fill sets every element to v, in place.
func (t *Tensor) Fill(v float32) {
	check("fill", t.dev.Fill(t.Buffer(), t.Len(), v), t.shape)
}

// Reshape returns a tensor of a new shape sharing t's storage. One dimension
// may be -1, inferred from the others.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	v := &view{}
	shape = shapeIn(&v.dims, shape)
	infer, known := -1, 1
	for i, d := range shape {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			fail("reshape", ErrShape, t.shape, shape)
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if known == 0 { // any size would do
			fail("reshape", ErrShape, t.shape, shape)
		}
		shape[infer] = t.Len() / known
	}
	if numel(shape) != t.Len() {
		fail("reshape", ErrShape, t.shape, shape)
	}
	st := t.st
	if st == nil {
		fail("reshape", ErrFreed, t.shape)
	}
	st.refs++
	v.t = Tensor{dev: t.dev, st: st, shape: shape}
	return &v.t
}

// axis resolves a possibly negative axis.
func (t *Tensor) axis(op string, a int) int {
	if a < 0 {
		a += len(t.shape)
	}
	if a < 0 || a >= len(t.shape) {
		fail(op, fmt.Errorf("%w: axis %d out of range", ErrShape, a), t.shape)
	}
	return a
}

// SameShape reports whether a and b have equal shapes. A vector's shape
// differs from a one-row or one-column matrix's.
func SameShape(a, b *Tensor) bool { return slices.Equal(a.shape, b.shape) }
