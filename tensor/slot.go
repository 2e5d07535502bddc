package tensor

import (
	"fmt"

	"github.com/gograd/gograd/device"
)

// Slot is the memory of one tensor's header (the tensor, its storage
// record and a short shape), for code that keeps many tensors in one
// allocation of its own, as autograd keeps the values and gradients of a
// pass next to its nodes. A Slot holds at most one tensor in its life, so
// that a tensor taken from it is never re-initialised under a holder: New
// on a used Slot allocates the header as the package's New does.
type Slot struct {
	b    block
	used bool
}

// New returns a tensor of the given shape with undefined contents, its
// header in s, its values from dev's allocator.
func (s *Slot) New(dev device.Device, shape ...int) *Tensor {
	if s.used {
		return New(dev, shape...)
	}
	for _, d := range shape {
		if d < 0 {
			check("new", fmt.Errorf("%w: negative dimension", ErrShape), shape)
		}
	}
	buf, err := dev.Alloc(max(numel(shape), 1))
	check("new", err, shape)
	s.used = true
	s.b.st = storage{buf: buf, refs: 1}
	s.b.t = Tensor{dev: dev, st: &s.b.st, shape: shapeIn(&s.b.dims, shape)}
	return &s.b.t
}

// NewLike is New with the device and shape of like.
func (s *Slot) NewLike(like *Tensor) *Tensor { return s.New(like.dev, like.shape...) }

// ReduceAllInto applies op over every element of x and stores the result in
// dst, which must hold one value.
func ReduceAllInto(op device.ReduceOp, dst, x *Tensor) {
	sameDevice(op.String(), dst, x)
	if dst.Len() != 1 {
		fail(op.String(), ErrShape, dst.shape, x.shape)
	}
	check(op.String(), x.dev.Reduce(op, dst.Buffer(), x.Buffer(), 1, x.Len(), 1), x.shape)
}
