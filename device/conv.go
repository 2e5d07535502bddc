package device

// ConvGeom is the geometry of a 2-d sliding window (a convolution's or a
// pooling's) over N images of C channels of H×W: a kernel of KH×KW, strides
// SH, SW, zero padding PH, PW on each side and dilations DH, DW, as
// torch.nn.functional.conv2d defines them.
type ConvGeom struct {
	N, C, H, W     int
	KH, KW, SH, SW int
	PH, PW, DH, DW int
}

// OutH is the height of the output: (H + 2·PH - DH·(KH-1) - 1)/SH + 1.
func (g ConvGeom) OutH() int { return (g.H+2*g.PH-g.DH*(g.KH-1)-1)/g.SH + 1 }

// OutW is the width of the output: (W + 2·PW - DW·(KW-1) - 1)/SW + 1.
func (g ConvGeom) OutW() int { return (g.W+2*g.PW-g.DW*(g.KW-1)-1)/g.SW + 1 }

// ColRows is the number of rows of the column matrix, C·KH·KW.
func (g ConvGeom) ColRows() int { return g.C * g.KH * g.KW }

// ColCols is the number of columns of the column matrix, N·OutH·OutW.
func (g ConvGeom) ColCols() int { return g.N * g.OutH() * g.OutW() }

// Im2col is implemented by devices with native im2col and col2im kernels.
// The column matrix of x, [N, C, H, W] contiguous, is col of
// [C, KH, KW, N, OutH, OutW]: col[c,i,j,n,oh,ow] = x[n, c, oh·SH + i·DH - PH,
// ow·SW + j·DW - PW], or fill where that lies in the padding. A convolution
// is then one matrix product, weight [O, C·KH·KW] · col, for the whole batch.
type Im2col interface {
	// Im2col writes the column matrix of x into col.
	Im2col(col, x Buffer, g ConvGeom, fill float32) error
	// Col2im scatters col back onto the images: every element of col is
	// added to the pixel of x it was read from (padding is dropped), so
	// that overlapping windows sum. It stores into x, or adds to it when
	// accumulate.
	Col2im(x, col Buffer, g ConvGeom, accumulate bool) error
}

// CheckConvGeom checks a window geometry: positive sizes, strides and
// dilations, padding at most half the kernel's extent (as PyTorch requires
// of pooling, and a convolution needs nothing wider), and an output of at
// least one pixel.
func CheckConvGeom(op string, g ConvGeom) error {
	name := opName{kind: op}
	if g.N < 0 || g.C <= 0 || g.H <= 0 || g.W <= 0 {
		return argErr(name, "input [%d, %d, %d, %d] must have a channel and a pixel", g.N, g.C, g.H, g.W)
	}
	if g.KH <= 0 || g.KW <= 0 || g.SH <= 0 || g.SW <= 0 || g.DH <= 0 || g.DW <= 0 || g.PH < 0 || g.PW < 0 {
		return argErr(name, "kernel %dx%d, stride %dx%d, dilation %dx%d, padding %dx%d: all must be positive (padding non-negative)",
			g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PH, g.PW)
	}
	if g.OutH() <= 0 || g.OutW() <= 0 || g.H+2*g.PH < g.DH*(g.KH-1)+1 || g.W+2*g.PW < g.DW*(g.KW-1)+1 {
		return argErr(name, "kernel %dx%d (dilation %dx%d) is larger than the padded input %dx%d",
			g.KH, g.KW, g.DH, g.DW, g.H+2*g.PH, g.W+2*g.PW)
	}
	if _, err := size(name, g.N, g.C, g.H, g.W); err != nil {
		return err
	}
	if _, err := size(name, g.C, g.KH, g.KW, g.N, g.OutH(), g.OutW()); err != nil {
		return err
	}
	return nil
}

// CheckIm2col checks the arguments of Im2col and Col2im.
func CheckIm2col(op string, col, x Buffer, g ConvGeom) error {
	if err := CheckConvGeom(op, g); err != nil {
		return err
	}
	name := opName{kind: op}
	if err := need(name, "x", x, g.N*g.C*g.H*g.W); err != nil {
		return err
	}
	return need(name, "col", col, g.ColRows()*g.ColCols())
}

// Conv is implemented by devices with a native convolution of groups 1,
// which may avoid materialising the column matrix of the whole batch (the
// CPU's works image by image, each column matrix staying in cache).
// x is [N, C, H, W], w [out, C·KH·KW], b [out] or nil, and y and gy
// [N, out, OutH, OutW].
type Conv interface {
	// Conv2d computes y = w · im2col(x) + b.
	Conv2d(y, x, w, b Buffer, out int, g ConvGeom) error
	// Conv2dGrad computes, from gy, the gradients dx, dw and db (each may
	// be nil, and is stored, or added to when its flag is set).
	Conv2dGrad(dx, dw, db, x, w, gy Buffer, out int, g ConvGeom, accX, accW, accB bool) error
}

// CheckConv checks the arguments of Conv2d and Conv2dGrad: the geometry,
// and that each buffer given holds its tensor (dst and the optional ones
// may be nil where opt says so).
func CheckConv(op string, g ConvGeom, out int, names []string, bufs []Buffer, optional []bool) error {
	if err := CheckConvGeom(op, g); err != nil {
		return err
	}
	name := opName{kind: op}
	if out <= 0 {
		return argErr(name, "%d output channels", out)
	}
	for i, b := range bufs {
		if optional[i] && isNil(b) {
			continue
		}
		if err := need(name, names[i], b, convSize(names[i], g, out)); err != nil {
			return err
		}
	}
	return nil
}

// convSize is the number of values of a convolution's argument.
func convSize(arg string, g ConvGeom, out int) int {
	switch arg {
	case "x", "dx":
		return g.N * g.C * g.H * g.W
	case "w", "dw":
		return out * g.ColRows()
	case "b", "db":
		return out
	}
	return g.N * out * g.OutH() * g.OutW() // y, gy
}

// Pool is implemented by devices with native pooling kernels over [N, C,
// H, W] images x and [N, C, OutH, OutW] outputs y (gy their gradients).
// Padding reads nothing: max pooling never picks it, average pooling
// counts it as zeros (PyTorch's count_include_pad). idx, [C, N·OutH·OutW],
// holds the window index i·KW + j of each maximum, the first in row-major
// order (or the first NaN).
type Pool interface {
	MaxPool2d(y, idx, x Buffer, g ConvGeom) error
	// MaxPool2dGrad adds each gradient to the pixel of its maximum, storing
	// into dx (or adding to it, when accumulate).
	MaxPool2dGrad(dx, gy, idx Buffer, g ConvGeom, accumulate bool) error
	AvgPool2d(y, x Buffer, g ConvGeom) error
	// AvgPool2dGrad spreads each gradient evenly over its window's pixels
	// (the padding's share is dropped), into dx.
	AvgPool2dGrad(dx, gy Buffer, g ConvGeom, accumulate bool) error
}

// CheckPool checks the arguments of the Pool methods: the geometry, x (or
// dx) of N·C·H·W values, y (or gy) and idx, which may be nil, of
// N·C·OutH·OutW.
func CheckPool(op string, g ConvGeom, x, y, idx Buffer) error {
	if err := CheckConvGeom(op, g); err != nil {
		return err
	}
	name := opName{kind: op}
	if err := need(name, "x", x, g.N*g.C*g.H*g.W); err != nil {
		return err
	}
	out := g.N * g.C * g.OutH() * g.OutW()
	if err := need(name, "y", y, out); err != nil {
		return err
	}
	if idx != nil {
		return need(name, "idx", idx, out)
	}
	return nil
}
