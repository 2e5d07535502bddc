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
