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
// rows of one (i, j) lie one plane apart. The SGEMM's packed panels are
// copied straight from there (SgemmA, SgemmB), so the column matrix is
// never stored: each value is read from the padded image and written once,
// into a panel that stays in the cache while the microkernel reads it.
//
//   - yᵀ = colᵀ·w over that grid, the grid along the microkernel's rows and
//     the output channels along its columns; the valid outputs are then
//     transposed into y and the bias added.
//   - dw = gy·colᵀ, with K running over the valid outputs only, from a
//     padded copy of the image stored channels last, [H+2·PH, W+2·PW, C]:
//     the row of a panel of colᵀ for output (y, x) holds, for each (i, j),
//     the C contiguous values at (y+i, x+j), so packing is copying.
//   - dx is the convolution of gy, padded by KH-1-PH and KW-1-PW, with the
//     kernel rotated by 180° and its in and out channels swapped: the same
//     product as y, instead of a product into a column matrix and the
//     scattered sums of col2im.
//
// The products of an image run on one thread when the images are split
// across threads, and on all of them for a batch too small to split.

// cpuConvImplicit reports whether g, with out output channels, takes the
// implicit-GEMM path.
func cpuConvImplicit(g ConvGeom, out int) bool {
	return g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1 && g.PH < g.KH && g.PW < g.KW &&
		g.C >= cpuConvMinImplicit && out >= cpuConvMinImplicit
}

// cpuConvMinImplicit is the number of input or output channels below which
// a convolution takes the generic path. With few output channels (or input
// channels, for dx) most of each tile of the microkernel would be padding,
// where Sgemm computes such a thin product transposed; with few input
// channels the column matrix is small, and its panels would be copied a
// few values at a time.
const cpuConvMinImplicit = 8

// cpuConvPanel packs the panels of the transposed column matrix of one
// image, whose columns (i, j, c) are for a kernel kw wide: as A (y and dx),
// with rows over the grid of outputs wp wide, from the padded planes src,
// [c, plane/wp, wp]; as B (dw), with rows over the valid outputs, ow of
// each grid row, from the padded image stored channels last, src = [hp,
// wp, c].
type cpuConvPanel struct {
	ctx              *sgemm.Context
	src              []float32
	c, kw, wp, plane int
	ow               int
}

// PackA implements sgemm.PanelA: the panels of colᵀ over the grid of
// outputs, for y and dx.
func (p *cpuConvPanel) PackA(dst []float32, ic, mb, pc, kb, mr int) {
	for ir := 0; ir < mb; ir += mr {
		rows := min(mr, mb-ir)
		s := dst[ir*kb : (ir+mr)*kb]
		for l := 0; l < kb; {
			r := pc + l
			ij, c := r/p.c, r%p.c
			run := min(p.c-c, kb-l)
			off := c*p.plane + (ij/p.kw)*p.wp + ij%p.kw + ic + ir
			p.ctx.PackA(s[l*mr:], p.src[off:], p.plane, run, rows)
			l += run
		}
	}
}

// PackB implements sgemm.PanelB: the panels of colᵀ over the valid outputs,
// for dw.
// Row l of the panel is valid output pc+l, column r = (i, j, c) row r of
// the column matrix, read from the padded image stored channels last, so
// the columns of one (i, j) are contiguous.
func (p *cpuConvPanel) PackB(dst []float32, pc, kb, jc, nb, nr int) {
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
		ctx.Transpose(xh[((y+ph)*wp+pw)*c:], c, x[y*w:], h*w, c, w, 0)
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

// convImage computes, for one image, the stride-1 convolution of the
// padded planes p.src, [cin, hp, wp], with the weights wt, [kh·kw·cin, out]
// as cpuConvWeightsT writes them: y, [out, oh, ow], is set (or added to,
// when acc) to the products plus bias (when not nil). The product is
// computed transposed, [n, out] with n = (oh-1)·wp + ow grid outputs, into
// tmp, so that its long side runs along the microkernel's rows and the
// channels, multiples of 32 in common nets, fill its columns exactly.
func (t *cpuConv) convImage(p *cpuConvPanel, y, wt, bias, tmp []float32, cin, kh, out, oh, ow int, acc bool) {
	wp := p.wp
	n := (oh-1)*wp + ow
	k := kh * p.kw * cin
	t.gemm.SgemmA(n, out, k, p, false, wt, out, 0, tmp[:n*out], out)
	var beta float32
	if acc {
		beta = 1
	}
	l := oh * ow
	for r := range oh {
		t.gemm.Transpose(y[r*ow:], l, tmp[r*wp*out:], out, ow, out, beta)
	}
	if bias == nil {
		return
	}
	for o, b := range bias[:out] {
		d := y[o*l : (o+1)*l]
		x := 0
		if t.c.simd {
			x = bnScaleVec(d, d, 1, b)
		}
		for ; x < len(d); x++ {
			d[x] += b
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
	// Buffers: the padded image (channels last for dw), the padded gy (dx),
	// the product over the grid before the valid outputs are moved out.
	var xpLen, gpLen, tmpLen int
	qh, qw := g.KH-1-g.PH, g.KW-1-g.PW
	hq, wq := oh+2*qh, ow+2*qw
	if (!t.back && (g.PH > 0 || g.PW > 0)) || t.pw != nil {
		xpLen = g.C * hp * wp
	}
	if !t.back {
		tmpLen = out * ((oh-1)*wp + ow)
	}
	if t.dx != nil {
		if qh > 0 || qw > 0 {
			gpLen = out * hq * wq
		}
		tmpLen = g.C * ((g.H-1)*wq + g.W)
	}
	buf, err := t.c.Alloc(xpLen + gpLen + tmpLen)
	if err != nil {
		panic(err) // bounded by the checked sizes of x, y and gy
	}
	defer t.c.Free(buf)
	all := buf.(*CPUBuffer).data
	xp, gp, tmp := all[:xpLen], all[xpLen:xpLen+gpLen], all[xpLen+gpLen:]
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
		blk, beta := cpuConvBlockOf(n)
		if t.pw != nil {
			ckk := g.ColRows()
			cpuPadImageT(t.gemm, xp, xn, g.C, g.H, g.W, g.PH, g.PW)
			*p = cpuConvPanel{ctx: t.gemm, src: xp, c: g.C, kw: g.KW, wp: wp, ow: ow}
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
// With c = 1 the order is the same, and it is cpuSumBlocks.
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
