package device

import "github.com/gograd/gograd/internal/sgemm"

var _ Conv = (*CPU)(nil)

// cpuConvBlock is the number of consecutive images whose weight and bias
// gradients one thread sums into one partial: the chunks of CPU.run start
// at multiples of 16, so a block is never split between threads and the
// sums run in the same order however the work is scheduled.
const cpuConvBlock = 16

// cpuConvBlockOf returns the block of image n and the beta of its
// products into the block's partial sums: 0 for the block's first image,
// which starts them, 1 for the others, which add to them.
func cpuConvBlockOf(n int) (blk int, beta float32) {
	if n%cpuConvBlock != 0 {
		beta = 1
	}
	return n / cpuConvBlock, beta
}

// cpuConv is one Conv2d or Conv2dGrad call, split across the CPU's threads
// by image. Each image's column matrix (C·KH·KW × OutH·OutW) is built in a
// buffer of the thread's own, small enough to stay in its cache, and
// multiplied there by the single-threaded SGEMM.
type cpuConv struct {
	c              *CPU
	g              ConvGeom
	out            int
	x, w, b, y     []float32
	dx, gy, pw, pb []float32 // pw, pb: the partial dw and db of each block
	wt             []float32 // w transposed, [C·KH·KW, out], for the forward product
	back, accX     bool
	gemm           *sgemm.Context // sgemm1, or the CPU's threads when the images cannot be split
	implicit       bool           // the implicit-GEMM path (cpu_convfast.go); wt is ordered (i, j, c)
}

func (t *cpuConv) run(lo, hi int) {
	if t.implicit {
		t.runImplicit(lo, hi)
		return
	}
	g := t.g
	g1 := g
	g1.N = 1
	oh, ow := g.OutH(), g.OutW()
	ckk, l, out := g.ColRows(), oh*ow, t.out
	img := g.C * g.H * g.W
	buf, err := t.c.Alloc(ckk * l)
	if err != nil {
		panic(err) // ckk·l is bounded by the checked column matrix
	}
	defer t.c.Free(buf)
	col := buf.(*CPUBuffer).data
	for n := lo; n < hi; n++ {
		xn := t.x[n*img : (n+1)*img]
		if !t.back {
			cpuIm2colImage(col, xn, &g, oh, ow, 0)
			yn := t.y[n*out*l : (n+1)*out*l]
			var beta float32
			if t.b != nil {
				for o := range out {
					row := yn[o*l : (o+1)*l]
					for k := range row {
						row[k] = t.b[o]
					}
				}
				beta = 1
			}
			// op(A) = wtᵀ: packing a transposed A copies rows.
			t.gemm.Sgemm(true, false, out, l, ckk, 1, t.wt, out, col, l, beta, yn, l)
			continue
		}
		gyn := t.gy[n*out*l : (n+1)*out*l]
		blk, beta := cpuConvBlockOf(n)
		if t.pw != nil {
			cpuIm2colImage(col, xn, &g, oh, ow, 0)
			t.gemm.Sgemm(false, true, out, ckk, l, 1, gyn, l, col, l, beta, t.pw[blk*out*ckk:(blk+1)*out*ckk], ckk)
		}
		if t.pb != nil {
			cpuConvBiasGrad(t.pb[blk*out:(blk+1)*out], gyn, out, l, beta != 0)
		}
		if t.dx != nil {
			t.gemm.Sgemm(true, false, ckk, l, out, 1, t.w, ckk, gyn, l, 0, col, l)
			dxn := t.dx[n*img : (n+1)*img]
			for p := range g.C {
				cpuCol2imPlane(dxn, col, &g1, p, t.accX)
			}
		}
	}
}

// Conv2d computes y = w · im2col(x) + b image by image (see Conv).
func (c *CPU) Conv2d(y, x, w, b Buffer, out int, g ConvGeom) error {
	const op = "conv2d"
	if err := CheckConv(op, g, out, []string{"y", "x", "w", "b"}, []Buffer{y, x, w, b}, []bool{false, false, false, true}); err != nil {
		return cpuErr(err)
	}
	t := c.convTask()
	defer c.convTasks.Put(t)
	*t = cpuConv{c: c, g: g, out: out, gemm: c.convGemm(g.N)}
	name := cpuOp{kind: op}
	var err error
	if t.y, err = cpuData(name, "y", y, convSize("y", g, out)); err != nil {
		return err
	}
	if t.x, err = cpuData(name, "x", x, convSize("x", g, out)); err != nil {
		return err
	}
	if t.w, err = cpuData(name, "w", w, convSize("w", g, out)); err != nil {
		return err
	}
	if !isNil(b) {
		if t.b, err = cpuData(name, "b", b, out); err != nil {
			return err
		}
	}
	ckk := g.ColRows()
	buf, err := c.Alloc(ckk * out)
	if err != nil {
		return err
	}
	defer c.Free(buf)
	t.wt = buf.(*CPUBuffer).data
	if t.implicit = cpuConvImplicit(g, out); t.implicit {
		cpuConvWeightsT(t.wt, t.w, out, g.C, g.KH, g.KW, false)
		c.run(g.N, t)
		return nil
	}
	for o := range out {
		for r, v := range t.w[o*ckk : (o+1)*ckk] {
			t.wt[r*out+o] = v
		}
	}
	c.run(g.N, t)
	return nil
}

// Conv2dGrad computes dx, dw and db from gy image by image (see Conv).
// The weight and bias gradients are summed over blocks of images, each by
// one thread, and the blocks' partial sums in order.
func (c *CPU) Conv2dGrad(dx, dw, db, x, w, gy Buffer, out int, g ConvGeom, accX, accW, accB bool) error {
	const op = "conv2d_grad"
	if err := CheckConv(op, g, out, []string{"dx", "dw", "db", "x", "w", "gy"}, []Buffer{dx, dw, db, x, w, gy},
		[]bool{true, true, true, false, false, false}); err != nil {
		return cpuErr(err)
	}
	t := c.convTask()
	defer c.convTasks.Put(t)
	*t = cpuConv{c: c, g: g, out: out, back: true, accX: accX, gemm: c.convGemm(g.N)}
	name := cpuOp{kind: op}
	data := func(arg string, b Buffer) ([]float32, error) {
		if isNil(b) {
			return nil, nil
		}
		return cpuData(name, arg, b, convSize(arg, g, out))
	}
	var err error
	if t.dx, err = data("dx", dx); err != nil {
		return err
	}
	dws, err := data("dw", dw)
	if err != nil {
		return err
	}
	dbs, err := data("db", db)
	if err != nil {
		return err
	}
	if t.x, err = data("x", x); err != nil {
		return err
	}
	if t.w, err = data("w", w); err != nil {
		return err
	}
	if t.gy, err = data("gy", gy); err != nil {
		return err
	}
	blocks := (g.N + cpuConvBlock - 1) / cpuConvBlock
	ckk := g.ColRows()
	t.implicit = cpuConvImplicit(g, out)
	if t.implicit && t.dx != nil {
		buf, err := c.Alloc(ckk * out)
		if err != nil {
			return err
		}
		defer c.Free(buf)
		t.wt = buf.(*CPUBuffer).data
		cpuConvWeightsT(t.wt, t.w, out, g.C, g.KH, g.KW, true)
	}
	if dws != nil {
		buf, err := c.Alloc(blocks * out * ckk)
		if err != nil {
			return err
		}
		defer c.Free(buf)
		t.pw = buf.(*CPUBuffer).data
	}
	if dbs != nil {
		buf, err := c.Alloc(blocks * out)
		if err != nil {
			return err
		}
		defer c.Free(buf)
		t.pb = buf.(*CPUBuffer).data
	}
	if g.N > 0 {
		c.run(g.N, t)
	}
	if t.implicit {
		cpuSumBlocksPerm(dws, t.pw, blocks, g.N > 0, accW, out, g.C, g.KH, g.KW)
	} else {
		cpuSumBlocks(dws, t.pw, blocks, g.N > 0, accW)
	}
	cpuSumBlocks(dbs, t.pb, blocks, g.N > 0, accB)
	return nil
}

// convGemm returns the SGEMM context for a convolution of n images: one
// thread per product when the images are split across threads (see run),
// all of them when a batch too small to be split runs on one.
func (c *CPU) convGemm(n int) *sgemm.Context {
	if c.threads > 1 && n <= cpuConvBlock {
		return c.sgemm
	}
	return c.sgemm1
}

// convTask returns a task from the CPU's pool, so that a call allocates nothing.
func (c *CPU) convTask() *cpuConv {
	if t, ok := c.convTasks.Get().(*cpuConv); ok {
		return t
	}
	return new(cpuConv)
}

// cpuSumBlocks stores (or adds, when acc) the sum of the blocks partial
// sums in p, in order, into d; with no images the sum is zero.
func cpuSumBlocks(d, p []float32, blocks int, any, acc bool) {
	cpuSumBlocksPerm(d, p, blocks, any, acc, 1, 1, len(d), 1)
}
