package tensor

import (
	"fmt"
	"math"

	"github.com/gograd/gograd/device"
)

// This file holds the sliding-window operations of convolutional networks
// on [N, C, H, W] images: im2col and col2im, a convolution as one matrix
// product over the batch, and max and average pooling. Devices with native
// kernels (device.Im2col) run im2col and col2im themselves; on the others
// they are strided copies (device.Walk), so that every device runs them.

// walkOf returns the walk over shape (at most device.MaxDims axes) reading
// its input at strides a from offset offA.
func walkOf(shape, a []int, offA int) device.Walk {
	w := device.Walk{Shape: rightAlign(shape, 1), A: rightAlign(a, 0), OffA: offA}
	return w
}

// geomShapes returns the image shape and the column matrix shape of g.
func geomShapes(g device.ConvGeom) (img, col []int) {
	return []int{g.N, g.C, g.H, g.W}, []int{g.ColRows(), g.ColCols()}
}

// checkCols checks that x holds g's images and col its column matrix.
func checkCols(op string, x, col *Tensor, g device.ConvGeom) {
	check(op, device.CheckConvGeom(op, g), x.shape)
	if x.Len() != g.N*g.C*g.H*g.W || col.Len() != g.ColRows()*g.ColCols() {
		img, cs := geomShapes(g)
		fail(op, ErrShape, x.shape, col.shape, img, cs)
	}
	sameDevice(op, col, x)
}

// Im2colInto writes the column matrix of x, [N, C, H, W], into col of
// [C·KH·KW, N·OutH·OutW] (see device.Im2col), with fill in the padding.
func Im2colInto(col, x *Tensor, g device.ConvGeom, fill float32) {
	const op = "im2col"
	checkCols(op, x, col, g)
	if col.Len() == 0 {
		return
	}
	if d, ok := x.dev.(device.Im2col); ok {
		check(op, d.Im2col(col.Buffer(), x.Buffer(), g, fill), x.shape, col.shape)
		return
	}
	// Two copies: the padded images, then the windows, read with
	// overlapping strides.
	hp, wp := g.H+2*g.PH, g.W+2*g.PW
	xp := x
	if g.PH > 0 || g.PW > 0 {
		xp = Pad(x.Reshape(g.N*g.C, g.H, g.W), [][2]int{{0, 0}, {g.PH, g.PH}, {g.PW, g.PW}}, fill)
		defer xp.Free()
	}
	oh, ow := g.OutH(), g.OutW()
	w := walkOf([]int{g.C, g.KH, g.KW, g.N, oh, ow},
		[]int{hp * wp, g.DH * wp, g.DW, g.C * hp * wp, g.SH * wp, g.SW}, 0)
	check(op, x.dev.Copy(col.Buffer(), xp.Buffer(), w), x.shape, col.shape)
}

// Col2imInto scatters col, a column matrix of g, back onto the images x
// (see device.Im2col): each element is added to the pixel it was read
// from. It stores into x, or adds to it when accumulate.
func Col2imInto(x, col *Tensor, g device.ConvGeom, accumulate bool) {
	const op = "col2im"
	checkCols(op, x, col, g)
	if x.Len() == 0 {
		return
	}
	if d, ok := x.dev.(device.Im2col); ok {
		check(op, d.Col2im(x.Buffer(), col.Buffer(), g, accumulate), x.shape, col.shape)
		return
	}
	// One strided copy per kernel offset into zeroed padded images, each
	// added to the sum: within one offset the windows do not overlap.
	hp, wp := g.H+2*g.PH, g.W+2*g.PW
	oh, ow := g.OutH(), g.OutW()
	l := oh * ow
	sum := Zeros(x.dev, g.N, g.C, hp, wp)
	defer sum.Free()
	part := New(x.dev, g.N, g.C, hp, wp)
	defer part.Free()
	for i := range g.KH {
		for j := range g.KW {
			part.Fill(0)
			w := walkOf([]int{g.C, g.N, oh, ow}, []int{g.KH * g.KW * g.N * l, l, ow, 1}, (i*g.KW+j)*g.N*l)
			w.D = rightAlign([]int{hp * wp, g.C * hp * wp, g.SH * wp, g.SW}, 0)
			w.OffD = i*g.DH*wp + j*g.DW
			check(op, x.dev.Copy(part.Buffer(), col.Buffer(), w), x.shape, col.shape)
			sum.AddInPlace(part)
		}
	}
	rows := Slice(sum, 2, g.PH, g.PH+g.H)
	defer rows.Free()
	crop := Slice(rows, 3, g.PW, g.PW+g.W)
	defer crop.Free()
	if accumulate {
		v := x.Reshape(g.N, g.C, g.H, g.W)
		v.AddInPlace(crop)
		v.Free()
	} else {
		CopyInto(x, crop)
	}
}

// ConvGeometry returns the geometry of a convolution or pooling of x, of
// [N, C, H, W], with a square kernel, stride, padding and dilation, after
// checking it; a bad argument panics with an *Error naming x's shape.
func ConvGeometry(op string, x *Tensor, kernel, stride, padding, dilation int) device.ConvGeom {
	if x.Dims() != 4 {
		fail(op, fmt.Errorf("%w: want [N, C, H, W] images", ErrShape), x.shape)
	}
	g := device.ConvGeom{N: x.shape[0], C: x.shape[1], H: x.shape[2], W: x.shape[3],
		KH: kernel, KW: kernel, SH: stride, SW: stride, PH: padding, PW: padding, DH: dilation, DW: dilation}
	check(op, device.CheckConvGeom(op, g), x.shape)
	return g
}

// Conv2dInto computes y = conv2d(x, w) + b, with x of [N, C, H, W], w of
// [O, C, KH, KW], b of [O] (or nil) and y of [N, O, OutH, OutW], as one
// matrix product over the whole batch: w[O, C·KH·KW] · im2col(x).
func Conv2dInto(y, x, w, b *Tensor, g device.ConvGeom) {
	const op = "conv2d"
	o := w.shape[0]
	l := g.OutH() * g.OutW()
	dev := x.dev
	if d, ok := dev.(device.Conv); ok {
		var bb device.Buffer
		if b != nil {
			bb = b.Buffer()
		}
		check(op, d.Conv2d(y.Buffer(), x.Buffer(), w.Buffer(), bb, o, g), x.shape, w.shape)
		return
	}
	col := New(dev, g.ColRows(), g.ColCols())
	defer col.Free()
	Im2colInto(col, x, g, 0)
	prod := New(dev, o, g.N*l) // [O, N, L]
	defer prod.Free()
	check(op, dev.MatMul(prod.Buffer(), w.Buffer(), col.Buffer(), o, g.ColRows(), g.N*l, false, false, false), x.shape, w.shape)
	// y[n, o, l] = prod[o, n, l] (+ b[o]): one walk transposes and adds.
	wk := walkOf([]int{g.N, o, l}, []int{l, g.N * l, 1}, 0)
	if b == nil {
		check(op, dev.Copy(y.Buffer(), prod.Buffer(), wk), x.shape, w.shape)
		return
	}
	wk.B = rightAlign([]int{0, 1, 0}, 0)
	check(op, dev.Binary(device.Add, y.Buffer(), prod.Buffer(), b.Buffer(), wk, 0, 0), x.shape, w.shape, b.shape)
}

// Conv2dGrad computes the gradients of Conv2dInto from gy, the gradient
// of y: dx (the transposed convolution, as a matrix product and a col2im),
// dw (one matrix product over the batch) and db (gy summed over every axis
// but the channels). A nil destination is skipped; each is stored, or
// added to when its flag is set.
func Conv2dGrad(dx, dw, db, x, w, gy *Tensor, g device.ConvGeom, accX, accW, accB bool) {
	const op = "conv2d_grad"
	o := w.shape[0]
	l := g.OutH() * g.OutW()
	dev := x.dev
	if d, ok := dev.(device.Conv); ok {
		check(op, d.Conv2dGrad(buf(dx), buf(dw), buf(db), x.Buffer(), w.Buffer(), gy.Buffer(), o, g, accX, accW, accB), x.shape, w.shape, gy.shape)
		return
	}
	gt := New(dev, o, g.N*l) // gy as [O, N, L]
	defer gt.Free()
	check(op, dev.Copy(gt.Buffer(), gy.Buffer(), walkOf([]int{o, g.N, l}, []int{l, o * l, 1}, 0)), gy.shape)
	if db != nil {
		if accB {
			s := New(dev, o)
			check(op, dev.Reduce(device.Sum, s.Buffer(), gt.Buffer(), o, g.N*l, 1), gy.shape)
			db.AddInPlace(s)
			s.Free()
		} else {
			check(op, dev.Reduce(device.Sum, db.Buffer(), gt.Buffer(), o, g.N*l, 1), gy.shape)
		}
	}
	col := New(dev, g.ColRows(), g.ColCols())
	defer col.Free()
	if dw != nil {
		Im2colInto(col, x, g, 0)
		check(op, dev.MatMul(dw.Buffer(), gt.Buffer(), col.Buffer(), o, g.N*l, g.ColRows(), false, true, accW), x.shape, w.shape)
	}
	if dx != nil {
		check(op, dev.MatMul(col.Buffer(), w.Buffer(), gt.Buffer(), g.ColRows(), o, g.N*l, true, false, false), x.shape, w.shape)
		Col2imInto(dx, col, g, accX)
	}
}

// buf is t's buffer, or nil for no tensor.
func buf(t *Tensor) device.Buffer {
	if t == nil {
		return nil
	}
	return t.Buffer()
}

// poolCol returns the column matrix of x for pooling, viewed as
// [C, KH·KW, N·L], with fill in the padding.
func poolCol(x *Tensor, g device.ConvGeom, fill float32) *Tensor {
	col := New(x.dev, g.ColRows(), g.ColCols())
	Im2colInto(col, x, g, fill)
	return col
}

// fromCL writes src, of [C, N, L], into dst of [N, C, L].
func fromCL(op string, dst, src *Tensor, g device.ConvGeom) {
	l := g.OutH() * g.OutW()
	check(op, dst.dev.Copy(dst.Buffer(), src.Buffer(), walkOf([]int{g.N, g.C, l}, []int{l, g.N * l, 1}, 0)), src.shape)
}

// MaxPool2dInto writes the max pooling of x into y, [N, C, OutH, OutW],
// and into idx, of [C, N·OutH·OutW], the index in the window
// (i·KW + j) of each maximum: the first one, or the first NaN, as
// PyTorch picks it. Padding is never chosen over a value of x.
func MaxPool2dInto(y, idx, x *Tensor, g device.ConvGeom) {
	const op = "max_pool2d"
	if d, ok := x.dev.(device.Pool); ok {
		check(op, d.MaxPool2d(y.Buffer(), idx.Buffer(), x.Buffer(), g), x.shape, y.shape)
		return
	}
	col := poolCol(x, g, float32(math.Inf(-1)))
	defer col.Free()
	kk, nl := g.KH*g.KW, g.ColCols()
	check(op, x.dev.Reduce(device.ArgMax, idx.Buffer(), col.Buffer(), g.C, kk, nl), x.shape)
	m := New(x.dev, g.C, nl)
	defer m.Free()
	check(op, x.dev.Reduce(device.MaxOf, m.Buffer(), col.Buffer(), g.C, kk, nl), x.shape)
	fromCL(op, y, m, g)
}

// MaxPool2dGrad sends each element of gy, the gradient of MaxPool2dInto's
// y, to the pixel its maximum came from (idx), summing where windows
// overlap, into dx (stored, or added to when accumulate).
func MaxPool2dGrad(dx, gy, idx *Tensor, g device.ConvGeom, accumulate bool) {
	const op = "max_pool2d_grad"
	if d, ok := dx.dev.(device.Pool); ok {
		check(op, d.MaxPool2dGrad(dx.Buffer(), gy.Buffer(), idx.Buffer(), g, accumulate), dx.shape, gy.shape)
		return
	}
	kk, nl, l := g.KH*g.KW, g.ColCols(), g.OutH()*g.OutW()
	iota := make([]float32, kk)
	for i := range iota {
		iota[i] = float32(i)
	}
	pos := FromSlice(dx.dev, iota, kk)
	defer pos.Free()
	col := New(dx.dev, g.ColRows(), nl)
	defer col.Free()
	w := walkOf([]int{g.C, kk, nl}, []int{0, 1, 0}, 0)
	w.B = rightAlign([]int{nl, 0, 1}, 0)
	check(op, dx.dev.Binary(device.Equal, col.Buffer(), pos.Buffer(), idx.Buffer(), w, 0, 0), gy.shape)
	w = walkOf([]int{g.C, kk, g.N, l}, []int{kk * nl, nl, l, 1}, 0)
	w.B = rightAlign([]int{l, 0, g.C * l, 1}, 0)
	check(op, dx.dev.Binary(device.Mul, col.Buffer(), col.Buffer(), gy.Buffer(), w, 0, 0), gy.shape)
	Col2imInto(dx, col, g, accumulate)
}

// AvgPool2dInto writes the average pooling of x into y, [N, C, OutH,
// OutW]: each window's sum divided by KH·KW, padding included, as
// PyTorch's count_include_pad=True.
func AvgPool2dInto(y, x *Tensor, g device.ConvGeom) {
	const op = "avg_pool2d"
	if d, ok := x.dev.(device.Pool); ok {
		check(op, d.AvgPool2d(y.Buffer(), x.Buffer(), g), x.shape, y.shape)
		return
	}
	col := poolCol(x, g, 0)
	defer col.Free()
	m := New(x.dev, g.C, g.ColCols())
	defer m.Free()
	check(op, x.dev.Reduce(device.Mean, m.Buffer(), col.Buffer(), g.C, g.KH*g.KW, g.ColCols()), x.shape)
	fromCL(op, y, m, g)
}

// AvgPool2dGrad spreads each element of gy, the gradient of
// AvgPool2dInto's y, evenly over its window, into dx (stored, or added to
// when accumulate).
func AvgPool2dGrad(dx, gy *Tensor, g device.ConvGeom, accumulate bool) {
	const op = "avg_pool2d_grad"
	if d, ok := dx.dev.(device.Pool); ok {
		check(op, d.AvgPool2dGrad(dx.Buffer(), gy.Buffer(), g, accumulate), dx.shape, gy.shape)
		return
	}
	kk, nl, l := g.KH*g.KW, g.ColCols(), g.OutH()*g.OutW()
	col := New(dx.dev, g.ColRows(), nl)
	defer col.Free()
	w := walkOf([]int{g.C, kk, g.N, l}, []int{l, 0, g.C * l, 1}, 0)
	check(op, dx.dev.Copy(col.Buffer(), gy.Buffer(), w), gy.shape)
	check(op, dx.dev.Unary(device.MulScalar, col.Buffer(), col.Buffer(), col.Len(), 1/float32(kk), 0), gy.shape)
	Col2imInto(dx, col, g, accumulate)
}
