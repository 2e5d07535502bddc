package device

import "github.com/gograd/gograd/internal/sgemm"

// The implicit-GEMM path of Conv2d and Conv2dGrad, for stride 1 and
// dilation 1 (with a padding below the kernel size, so that dx is itself
// such a convolution).
//
// The rows of the column matrix are ordered (i, j, c) rather than (c, i, j),
// and the image is copied once into planes with the padding made explicit,
// [C, H+2·PH, W+2·PW]. Row (i, j, c) of the column matrix at output (y, x)
// is then the value of plane c at (y+i, x+j): over a grid of outputs as
// wide as a padded row, whose last 2·PW columns are thrown away, every row
// of the column matrix is a contiguous run of the padded image, and the
// rows of one (i, j) lie one plane apart. The SGEMM's packed panels of B
// are copied straight from there (SgemmB), so the column matrix is never
// stored: each value is read from the padded image and written once, into
// a panel that stays in the cache while the microkernel reads it.
//
//   - y = wᵀ·col over that grid, then the valid columns are copied out,
//     with the bias added.
//   - dw = gy·colᵀ, with K running over the valid outputs only, from a
//     padded copy of the image stored channels last, [H+2·PH, W+2·PW, C]:
//     the row of a panel of colᵀ for output (y, x) holds, for each (i, j),
//     the C contiguous values at (y+i, x+j), so packing is copying.
//   - dx is the convolution of gy, padded by KH-1-PH and KW-1-PW, with the
//     kernel rotated by 180° and its in and out channels swapped: the same
//     product as y, instead of a product into a column matrix and the
//     scattered sums of col2im.

// cpuConvImplicit reports whether g takes the implicit-GEMM path.
func cpuConvImplicit(g ConvGeom) bool {
	return g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1 && g.PH < g.KH && g.PW < g.KW
}

// cpuConvPanel packs the panels of B for one image: the column matrix of
// the padded planes src, [c, plane/wp, wp], with rows (i, j, c) for a kernel
// kw wide, and columns over the grid of outputs wp wide (y and dx); or,
// when transposed, its transpose, with rows over the valid outputs, ow of
// each grid row, from the padded image stored channels last, [hp, wp, c]
// (dw).
type cpuConvPanel struct {
	ctx              *sgemm.Context
	src              []float32
	c, kw, wp, plane int
	ow               int
	transposed       bool
}

// PackB implements sgemm.PanelB.
func (p *cpuConvPanel) PackB(dst []float32, pc, kb, jc, nb, nr int) {
	if p.transposed {
		p.packT(dst, pc, kb, jc, nb, nr)
		return
	}
	for jr := 0; jr < nb; jr += nr {
		cols := min(nr, nb-jr)
		s := dst[jr*kb : (jr+nr)*kb]
		for l := 0; l < kb; {
			r := pc + l
			ij, c := r/p.c, r%p.c
			run := min(p.c-c, kb-l)
			off := c*p.plane + (ij/p.kw)*p.wp + ij%p.kw + jc + jr
			p.ctx.PackRows(s[l*nr:], p.src[off:], p.plane, run, cols)
			l += run
		}
	}
}

// packT packs the panel of colᵀ from planes stored channels last, src =
// [plane/wp, wp, c]: row l is valid output pc+l, column r = (i, j, c) is
// row r of the column matrix, so the columns of one (i, j) are contiguous.
func (p *cpuConvPanel) packT(dst []float32, pc, kb, jc, nb, nr int) {
	for jr := 0; jr < nb; jr += nr {
		cols := min(nr, nb-jr)
		s := dst[jr*kb : (jr+nr)*kb]
		for t := 0; t < cols; {
			r := jc + jr + t
			ij, c := r/p.c, r%p.c
			run := min(p.c-c, cols-t)
			base := ((ij/p.kw)*p.wp+ij%p.kw)*p.c + c
			for l := 0; l < kb; {
				y, x := (pc+l)/p.ow, (pc+l)%p.ow
				seg := min(p.ow-x, kb-l)
				src := p.src[base+(y*p.wp+x)*p.c:]
				if t == 0 {
					// The first run of the sliver zeroes the columns past it.
					p.ctx.PackRows(s[l*nr:], src, p.c, seg, run)
				} else {
					for q := range seg {
						copy(s[(l+q)*nr+t:][:run], src[q*p.c:][:run])
					}
				}
				l += seg
			}
			t += run
		}
	}
}

// convPanel returns a panel packer from the CPU's pool.
func (c *CPU) convPanel() *cpuConvPanel {
	if p, ok := c.convPanels.Get().(*cpuConvPanel); ok {
		return p
	}
	return new(cpuConvPanel)
}

func (c *CPU) putConvPanel(p *cpuConvPanel) {
	*p = cpuConvPanel{}
	c.convPanels.Put(p)
}

// cpuPadImage copies x, [c, h, w], into the interior of xp, [c, h+2·ph,
// w+2·pw], whose border is zero already.
func cpuPadImage(xp, x []float32, c, h, w, ph, pw int) {
	hp, wp := h+2*ph, w+2*pw
	for ch := range c {
		for y := range h {
			copy(xp[(ch*hp+y+ph)*wp+pw:][:w], x[(ch*h+y)*w:][:w])
		}
	}
}

// cpuPadImageT copies x, [c, h, w], into the interior of xh, [h+2·ph,
// w+2·pw, c], channels last, whose border is zero already.
func cpuPadImageT(ctx *sgemm.Context, xh, x []float32, c, h, w, ph, pw int) {
	wp := w + 2*pw
	for y := range h {
		ctx.Transpose(xh[((y+ph)*wp+pw)*c:], c, x[y*w:], h*w, c, w)
	}
}

// cpuConvWeightsT writes w, [out, c, kh, kw], as the transposed weight
// matrix of the implicit product, wt[(i·kw+j)·c+ch][o] = w[o][ch][i][j]; with
// flip, as the matrix of the convolution that computes dx, with in and out
// swapped and the kernel rotated: wt[(i·kw+j)·out+o][ch] = w[o][ch][kh-1-i][kw-1-j].
func cpuConvWeightsT(wt, w []float32, out, c, kh, kw int, flip bool) {
	for o := range out {
		for ch := range c {
			k := w[(o*c+ch)*kh*kw:][:kh*kw]
			for i := range kh {
				for j := range kw {
					v := k[i*kw+j]
					if flip {
						wt[((kh-1-i)*kw+kw-1-j)*out*c+o*c+ch] = v
					} else {
						wt[(i*kw+j)*c*out+ch*out+o] = v
					}
				}
			}
		}
	}
}

// cpuConvImage computes, for one image, the stride-1 convolution of the
// padded planes p.src, [cin, hp, wp], with the weights wt, [kh·kw·cin, out]
// as cpuConvWeightsT writes them: y, [out, oh, ow], is set (or added to,
// when acc) to the products plus bias (when not nil). tmp holds out·n
// values, n = (oh-1)·wp + ow.
func (t *cpuConv) convImage(p *cpuConvPanel, y, wt, bias, tmp []float32, cin, kh, out, oh, ow int, acc bool) {
	wp := p.wp
	n := (oh-1)*wp + ow
	k := kh * p.kw * cin
	t.gemm.SgemmB(true, out, n, k, 1, wt, out, p, 0, tmp[:out*n], n)
	simd := t.c.simd
	for o := range out {
		var b float32
		if bias != nil {
			b = bias[o]
		}
		for r := range oh {
			d := y[(o*oh+r)*ow:][:ow]
			s := tmp[o*n+r*wp:][:ow]
			switch {
			case acc:
				x := 0
				if simd {
					x = biasAddVec(d, d, s)
				}
				for ; x < len(d); x++ {
					d[x] += s[x]
				}
			case bias != nil:
				x := 0
				if simd {
					x = bnScaleVec(d, s, 1, b)
				}
				for ; x < len(d); x++ {
					d[x] = s[x] + b
				}
			default:
				copy(d, s)
			}
		}
	}
}

// runImplicit is run on the implicit-GEMM path.
func (t *cpuConv) runImplicit(lo, hi int) {
	g := t.g
	oh, ow := g.OutH(), g.OutW()
	l, out := oh*ow, t.out
	img := g.C * g.H * g.W
	hp, wp := g.H+2*g.PH, g.W+2*g.PW
	implicitW := t.pw != nil && !t.colW
	// Buffers: the padded image, the padded gy (dx), the product before
	// its valid columns are copied out.
	var xpLen, gpLen, tmpLen, colLen int
	qh, qw := g.KH-1-g.PH, g.KW-1-g.PW
	hq, wq := oh+2*qh, ow+2*qw
	if (!t.back && (g.PH > 0 || g.PW > 0)) || implicitW {
		xpLen = g.C * hp * wp // channels last for dw
	}
	if !t.back {
		tmpLen = out * ((oh-1)*wp + ow)
	}
	if t.pw != nil && t.colW {
		colLen = g.ColRows() * l
	}
	if t.dx != nil {
		if qh > 0 || qw > 0 {
			gpLen = out * hq * wq
		}
		tmpLen = g.C * ((g.H-1)*wq + g.W)
	}
	buf, err := t.c.Alloc(xpLen + gpLen + colLen + tmpLen)
	if err != nil {
		panic(err) // bounded by the checked sizes of x, y and gy
	}
	defer t.c.Free(buf)
	all := buf.(*CPUBuffer).data
	xp, gp := all[:xpLen], all[xpLen:xpLen+gpLen]
	col, tmp := all[xpLen+gpLen:xpLen+gpLen+colLen], all[xpLen+gpLen+colLen:]
	clear(all[:xpLen+gpLen]) // the borders stay zero
	p := t.c.convPanel()
	defer t.c.putConvPanel(p)
	for n := lo; n < hi; n++ {
		xn := t.x[n*img : (n+1)*img]
		if !t.back {
			src := xn
			if xpLen > 0 {
				cpuPadImage(xp, xn, g.C, g.H, g.W, g.PH, g.PW)
				src = xp
			}
			*p = cpuConvPanel{ctx: t.gemm, src: src, c: g.C, kw: g.KW, wp: wp, plane: hp * wp}
			t.convImage(p, t.y[n*out*l:(n+1)*out*l], t.wt, t.b, tmp, g.C, g.KH, out, oh, ow, false)
			continue
		}
		gyn := t.gy[n*out*l : (n+1)*out*l]
		blk := n / cpuConvBlock
		var beta float32
		if n%cpuConvBlock != 0 {
			beta = 1
		}
		if t.pw != nil && t.colW {
			ckk := g.ColRows()
			cpuIm2colImage(col, xn, &g, oh, ow, 0)
			t.gemm.Sgemm(false, true, out, ckk, l, 1, gyn, l, col, l, beta, t.pw[blk*out*ckk:(blk+1)*out*ckk], ckk)
		} else if implicitW {
			ckk := g.ColRows()
			cpuPadImageT(t.gemm, xp, xn, g.C, g.H, g.W, g.PH, g.PW)
			*p = cpuConvPanel{ctx: t.gemm, src: xp, c: g.C, kw: g.KW, wp: wp, ow: ow, transposed: true}
			t.gemm.SgemmB(false, out, ckk, l, 1, gyn, l, p, beta, t.pw[blk*out*ckk:(blk+1)*out*ckk], ckk)
		}
		if t.pb != nil {
			cpuConvBiasGrad(t.pb[blk*out:(blk+1)*out], gyn, out, l, beta != 0)
		}
		if t.dx != nil {
			src := gyn
			if gpLen > 0 {
				cpuPadImage(gp, gyn, out, oh, ow, qh, qw)
				src = gp
			}
			*p = cpuConvPanel{ctx: t.gemm, src: src, c: out, kw: g.KW, wp: wq, plane: hq * wq}
			t.convImage(p, t.dx[n*img:(n+1)*img], t.wt, nil, tmp, out, g.KH, g.C, g.H, g.W, t.accX)
		}
	}
}

// cpuConvBiasGrad sets (or adds to, when acc) pb[o] the sum of row o of gy,
// [out, l], summed in float64 in four interleaved partial sums.
func cpuConvBiasGrad(pb, gy []float32, out, l int, acc bool) {
	for o := range out {
		row := gy[o*l : (o+1)*l]
		var s0, s1, s2, s3 float64
		k := 0
		for ; k+4 <= len(row); k += 4 {
			q := row[k : k+4 : k+4]
			s0 += float64(q[0])
			s1 += float64(q[1])
			s2 += float64(q[2])
			s3 += float64(q[3])
		}
		for ; k < len(row); k++ {
			s0 += float64(row[k])
		}
		s := (s0 + s1) + (s2 + s3)
		if acc {
			pb[o] += float32(s)
		} else {
			pb[o] = float32(s)
		}
	}
}

// cpuSumBlocksPerm is cpuSumBlocks for weight gradients whose partial sums
// hold rows ordered (i, j, c): d, [out, c, kh, kw], gets them back in order.
func cpuSumBlocksPerm(d, p []float32, blocks int, any, acc bool, out, c, kh, kw int) {
	if d == nil {
		return
	}
	if !acc {
		clear(d)
	}
	if !any {
		return
	}
	n := len(d)
	kk := kh * kw
	for b := range blocks {
		pb := p[b*n : (b+1)*n]
		for o := range out {
			row := pb[o*kk*c : (o+1)*kk*c]
			for ch := range c {
				dk := d[(o*c+ch)*kk : (o*c+ch+1)*kk]
				for ij := range kk {
					dk[ij] += row[ij*c+ch]
				}
			}
		}
	}
}

// cpuConvMinImplicitW is the number of input channels below which the
// implicit path computes dw from a stored column matrix: with fewer, a panel
// of colᵀ is transposed a few rows at a time, and a product with a short
// side of C·KH·KW is faster computed transposed, as Sgemm does.
const cpuConvMinImplicitW = 8
