//go:build cuda

package device

import "github.com/gograd/gograd/cuda"

var _ Im2col = (*CUDA)(nil)

func cudaGeom(g ConvGeom) cuda.ConvGeom {
	return cuda.ConvGeom{N: g.N, C: g.C, H: g.H, W: g.W, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW,
		PH: g.PH, PW: g.PW, DH: g.DH, DW: g.DW}
}

// Im2col writes the column matrix of x into col (see Im2col), one thread
// per element of col.
func (c *CUDA) Im2col(col, x Buffer, g ConvGeom, fill float32) error {
	const op = "im2col"
	if err := CheckIm2col(op, col, x, g); err != nil {
		return cudaErr(err)
	}
	name := opName{kind: op}
	cp, err := c.buf(name, "col", col)
	if err != nil {
		return err
	}
	xp, err := c.buf(name, "x", x)
	if err != nil {
		return err
	}
	k := cudaGeom(g)
	return wrap(c.ctx.Im2col(cp, xp, &k, g.ColRows()*g.ColCols(), fill), op, g.N, g.C, g.H, g.W)
}

// Col2im sums col back onto the pixels of x it was read from (see
// Im2col), one thread per pixel, in a fixed order.
func (c *CUDA) Col2im(x, col Buffer, g ConvGeom, accumulate bool) error {
	const op = "col2im"
	if err := CheckIm2col(op, col, x, g); err != nil {
		return cudaErr(err)
	}
	name := opName{kind: op}
	cp, err := c.buf(name, "col", col)
	if err != nil {
		return err
	}
	xp, err := c.buf(name, "x", x)
	if err != nil {
		return err
	}
	k := cudaGeom(g)
	return wrap(c.ctx.Col2im(xp, cp, &k, g.N*g.C*g.H*g.W, accumulate), op, g.N, g.C, g.H, g.W)
}
