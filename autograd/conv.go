package autograd

import (
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// ConvOptions are the arguments of Conv2d beyond its tensors, as
// torch.nn.functional.conv2d takes them. Zero values mean stride 1,
// padding 0, dilation 1 and groups 1.
type ConvOptions struct {
	Stride, Padding, Dilation, Groups int
}

// withDefaults returns o with its zero fields set to PyTorch's defaults.
func (o ConvOptions) withDefaults() ConvOptions {
	if o.Stride == 0 {
		o.Stride = 1
	}
	if o.Dilation == 0 {
		o.Dilation = 1
	}
	if o.Groups == 0 {
		o.Groups = 1
	}
	return o
}

// withGeom keeps a window geometry's kernel, strides, padding and
// dilations as the node's four integer arguments, each a pair (height
// in the high 32 bits, width in the low), which fit the node without an
// allocation.
func (v *Var) withGeom(g device.ConvGeom) *Var {
	return v.args(g.KH<<32|g.KW, g.SH<<32|g.SW, g.PH<<32|g.PW, g.DH<<32|g.DW)
}

// geomOf rebuilds the geometry of an op on x from its arguments.
func geomOf(x *tensor.Tensor, a []int) device.ConvGeom {
	const lo = 1<<32 - 1
	return device.ConvGeom{N: x.Dim(0), C: x.Dim(1), H: x.Dim(2), W: x.Dim(3),
		KH: a[0] >> 32, KW: a[0] & lo, SH: a[1] >> 32, SW: a[1] & lo, PH: a[2] >> 32, PW: a[2] & lo, DH: a[3] >> 32, DW: a[3] & lo}
}

// Conv2d returns the 2-d convolution (PyTorch's cross-correlation) of x,
// [N, C, H, W], with the filters w, [O, C/groups, K, K], plus b, [O] (b
// may be nil), as torch.nn.functional.conv2d: the output is [N, O, OutH,
// OutW] with OutH = (H + 2·padding - dilation·(K-1) - 1)/stride + 1. With
// groups G, the channels are split into G groups, each convolved with
// its O/G filters. Bad shapes or options panic with a *tensor.Error that
// names the shapes.
func Conv2d(x, w, b *Var, opt ConvOptions) *Var {
	const op = "conv2d"
	opt = opt.withDefaults()
	xv, wv := x.Value, w.Value
	shapes := func() [][]int {
		s := [][]int{xv.Shape(), wv.Shape()}
		if b != nil {
			s = append(s, b.Shape())
		}
		return s
	}
	bad := func(format string, args ...any) {
		panic(&tensor.Error{Op: op, Shapes: shapes(), Err: fmt.Errorf("%w: "+format, append([]any{tensor.ErrShape}, args...)...)})
	}
	if xv.Dims() != 4 || wv.Dims() != 4 {
		bad("want x [N, C, H, W] and weight [O, C/groups, K, K]")
	}
	gr := opt.Groups
	if gr < 1 || xv.Dim(1)%gr != 0 || wv.Dim(0)%gr != 0 {
		bad("groups %d must divide the %d input and %d output channels", gr, xv.Dim(1), wv.Dim(0))
	}
	if wv.Dim(1)*gr != xv.Dim(1) || wv.Dim(2) != wv.Dim(3) {
		bad("weight needs %d input channels per group and a square kernel", xv.Dim(1)/gr)
	}
	if b != nil && (b.Value.Dims() != 1 || b.Value.Dim(0) != wv.Dim(0)) {
		bad("bias must be [%d]", wv.Dim(0))
	}
	if opt.Stride < 1 || opt.Dilation < 1 || opt.Padding < 0 {
		bad("stride %d, padding %d, dilation %d", opt.Stride, opt.Padding, opt.Dilation)
	}
	g := device.ConvGeom{N: xv.Dim(0), C: wv.Dim(1), H: xv.Dim(2), W: xv.Dim(3),
		KH: wv.Dim(2), KW: wv.Dim(3), SH: opt.Stride, SW: opt.Stride,
		PH: opt.Padding, PW: opt.Padding, DH: opt.Dilation, DW: opt.Dilation}
	if err := device.CheckConvGeom(op, g); err != nil {
		panic(&tensor.Error{Op: op, Shapes: shapes(), Err: err})
	}
	if gr > 1 {
		return groupedConv(x, w, b, opt)
	}
	var out *Var
	if b != nil {
		out = begin(op, conv2dBackward, x, w, b)
	} else {
		out = begin(op, conv2dBackward, x, w)
	}
	y := out.newValue(xv, g.N, wv.Dim(0), g.OutH(), g.OutW())
	var bv *tensor.Tensor
	if b != nil {
		bv = b.Value
	}
	tensor.Conv2dInto(y, xv, wv, bv, g)
	return out.withGeom(g)
}

// groupedConv is Conv2d with groups, as the concatenation of one
// convolution per group.
func groupedConv(x, w, b *Var, opt ConvOptions) *Var {
	gr := opt.Groups
	cin, cout := x.Value.Dim(1)/gr, w.Value.Dim(0)/gr
	one := opt
	one.Groups = 1
	outs := make([]*Var, gr)
	for i := range gr {
		xi := Slice(x, 1, i*cin, (i+1)*cin)
		wi := Slice(w, 0, i*cout, (i+1)*cout)
		var bi *Var
		if b != nil {
			bi = Slice(b, 0, i*cout, (i+1)*cout)
		}
		outs[i] = Conv2d(xi, wi, bi, one)
	}
	return Concat(1, outs...)
}

func conv2dBackward(out *Var, t *temps) {
	x, w := out.in(0), out.in(1)
	g := geomOf(x.Value, out.fn.ints)
	var dx, dw, db *tensor.Tensor
	var ax, aw, ab bool
	if x.requiresGrad {
		dx, ax = x.gradDst()
	}
	if w.requiresGrad {
		dw, aw = w.gradDst()
	}
	if len(out.fn.in) == 3 && out.in(2).requiresGrad {
		db, ab = out.in(2).gradDst()
	}
	tensor.Conv2dGrad(dx, dw, db, x.Value, w.Value, out.Grad, g, ax, aw, ab)
}

// poolGeom checks the arguments of a pooling of x and returns its
// geometry: stride 0 means the kernel size, and padding may be at most
// half the kernel, as PyTorch requires.
func poolGeom(op string, x *tensor.Tensor, kernel, stride, padding int) device.ConvGeom {
	if stride == 0 {
		stride = kernel
	}
	if x.Dims() != 4 {
		panic(&tensor.Error{Op: op, Shapes: [][]int{x.Shape()}, Err: fmt.Errorf("%w: want [N, C, H, W] images", tensor.ErrShape)})
	}
	if kernel < 1 || stride < 1 || padding < 0 || 2*padding > kernel {
		panic(&tensor.Error{Op: op, Shapes: [][]int{x.Shape()},
			Err: fmt.Errorf("%w: kernel %d, stride %d, padding %d (padding at most half the kernel)", tensor.ErrShape, kernel, stride, padding)})
	}
	return tensor.ConvGeometry(op, x, kernel, stride, padding, 1)
}

// MaxPool2d returns the largest value of each kernel×kernel window of x,
// [N, C, H, W], windows stride apart (0: kernel) over x padded by padding
// (which is never chosen), as torch.nn.functional.max_pool2d. The
// gradient goes to the maximum of each window: the first in row-major
// order when several are equal, or the first NaN, as PyTorch's.
func MaxPool2d(x *Var, kernel, stride, padding int) *Var {
	const op = "max_pool2d"
	g := poolGeom(op, x.Value, kernel, stride, padding)
	out := begin(op, maxPoolBackward, x)
	y := out.newValue(x.Value, g.N, g.C, g.OutH(), g.OutW())
	idx := out.newSaved(0, x.Value, g.C, g.ColCols())
	tensor.MaxPool2dInto(y, idx, x.Value, g)
	return out.withGeom(g)
}

func maxPoolBackward(out *Var, t *temps) {
	x := out.in(0)
	g := geomOf(x.Value, out.fn.ints)
	dx, acc := x.gradDst()
	tensor.MaxPool2dGrad(dx, out.Grad, out.fn.saved[0], g, acc)
}

// AvgPool2d returns the mean of each kernel×kernel window of x, [N, C, H,
// W], windows stride apart (0: kernel) over x padded with zeros by
// padding, the padding counted in the mean, as
// torch.nn.functional.avg_pool2d with its default count_include_pad=True.
func AvgPool2d(x *Var, kernel, stride, padding int) *Var {
	const op = "avg_pool2d"
	return avgPool(op, x, poolGeom(op, x.Value, kernel, stride, padding))
}

func avgPool(op string, x *Var, g device.ConvGeom) *Var {
	out := begin(op, avgPoolBackward, x)
	y := out.newValue(x.Value, g.N, g.C, g.OutH(), g.OutW())
	tensor.AvgPool2dInto(y, x.Value, g)
	return out.withGeom(g)
}

func avgPoolBackward(out *Var, t *temps) {
	x := out.in(0)
	g := geomOf(x.Value, out.fn.ints)
	dx, acc := x.gradDst()
	tensor.AvgPool2dGrad(dx, out.Grad, g, acc)
}

// AdaptiveAvgPool2d returns the average pooling of x, [N, C, H, W], to
// [N, C, size, size], as torch.nn.functional.adaptive_avg_pool2d: output
// cell (i, j) averages rows floor(i·H/size) to ceil((i+1)·H/size) and the
// columns likewise. Size 1 is global average pooling.
func AdaptiveAvgPool2d(x *Var, size int) *Var {
	const op = "adaptive_avg_pool2d"
	xv := x.Value
	if xv.Dims() != 4 || size < 1 {
		panic(&tensor.Error{Op: op, Shapes: [][]int{xv.Shape()}, Err: fmt.Errorf("%w: want [N, C, H, W] images and size >= 1, got size %d", tensor.ErrShape, size)})
	}
	h, w := xv.Dim(2), xv.Dim(3)
	if h%size == 0 && w%size == 0 { // regular windows: one average pooling
		g := device.ConvGeom{N: xv.Dim(0), C: xv.Dim(1), H: h, W: w, KH: h / size, KW: w / size,
			SH: h / size, SW: w / size, DH: 1, DW: 1}
		if err := device.CheckConvGeom(op, g); err != nil {
			panic(&tensor.Error{Op: op, Shapes: [][]int{xv.Shape()}, Err: err})
		}
		return avgPool(op, x, g)
	}
	rows := make([]*Var, size)
	for i := range size {
		r0, r1 := i*h/size, ((i+1)*h+size-1)/size
		band := Slice(x, 2, r0, r1)
		cols := make([]*Var, size)
		for j := range size {
			c0, c1 := j*w/size, ((j+1)*w+size-1)/size
			cell := Slice(band, 3, c0, c1)
			cols[j] = Mean(Mean(cell, 3, true), 2, true)
		}
		rows[i] = Concat(3, cols...)
	}
	return Concat(2, rows...)
}
