package device

import (
	"math"

	"github.com/chewxy/math32"
)

// Gather copies rows: dst[i,:] = src[idx[i],:] for i < nidx, rows of rowLen.
// Every index must be an integer naming a whole row of src.
func (c *CPU) Gather(dst, src, idx Buffer, nidx, rowLen int) error {
	if err := CheckGather(dst, src, idx, nidx, rowLen); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "gather"}
	total := nidx * rowLen
	d, err := cpuData(name, "dst", dst, total)
	if err != nil {
		return err
	}
	is, err := cpuData(name, "idx", idx, nidx)
	if err != nil {
		return err
	}
	if _, err := cpuData(name, "src", src, 0); err != nil {
		return err
	}
	if rowLen == 0 {
		return nil
	}
	srcRows := src.Len() / rowLen
	if err := cpuCheckIndices(name, "index", is, srcRows); err != nil {
		return err
	}
	s := src.(*CPUBuffer).data[:srcRows*rowLen]
	if c.serial(nidx, total) {
		cpuGatherRows(d, s, is, rowLen, 0, nidx)
		return nil
	}
	t := c.gatherTasks.Get().(*cpuGatherTask)
	*t = cpuGatherTask{d: d, s: s, idx: is, rowLen: rowLen}
	c.run(nidx, t)
	*t = cpuGatherTask{}
	c.gatherTasks.Put(t)
	return nil
}

// cpuGatherTask is Gather as a cpuTask, pooled like cpuSGDTask: a training
// step gathers every batch.
type cpuGatherTask struct {
	d, s, idx []float32
	rowLen    int
}

func (t *cpuGatherTask) run(lo, hi int) { cpuGatherRows(t.d, t.s, t.idx, t.rowLen, lo, hi) }

// cpuGatherRows is Gather of rows [lo, hi) of dst.
func cpuGatherRows(d, s, idx []float32, rowLen, lo, hi int) {
	for i := lo; i < hi; i++ {
		r := int(idx[i])
		copy(d[i*rowLen:i*rowLen+rowLen], s[r*rowLen:r*rowLen+rowLen])
	}
}

// DropoutMask fills dst[:n] with 1/(1-p) where HashUniform(seed, i) >= p and
// with 0 elsewhere. p must lie in [0, 1]; p = 1 drops everything.
func (c *CPU) DropoutMask(dst Buffer, n int, p float32, seed uint64) error {
	if err := CheckDropout(dst, n, p); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "dropout_mask"}
	d, err := cpuData(name, "dst", dst, n)
	if err != nil {
		return err
	}
	scale := 1 / (1 - p)
	c.parallel(n, n*4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if HashUniform(seed, uint64(i)) >= p {
				d[i] = scale
			} else {
				d[i] = 0
			}
		}
	})
	return nil
}

// BiasAct computes dst[r,j] = act(x[r,j] + bias[j]) for rows of n in one
// pass, without storing the biased values. dst may be x.
func (c *CPU) BiasAct(dst, x, bias Buffer, rows, n int, act Activation) error {
	if err := CheckBiasAct(dst, x, bias, rows, n, act); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "bias_act"}
	total := rows * n
	d, err := cpuData(name, "dst", dst, total)
	if err != nil {
		return err
	}
	xs, err := cpuData(name, "x", x, total)
	if err != nil {
		return err
	}
	bs, err := cpuData(name, "bias", bias, n)
	if err != nil {
		return err
	}
	work := total
	switch {
	case act == ActSigmoid || act == ActTanh:
		work *= 8
	case c.simd:
		work /= 8
	}
	if c.serial(rows, work) {
		cpuBiasActRows(d, xs, bs, n, act, c.simd, 0, rows)
		return nil
	}
	c.parallel(rows, work, func(lo, hi int) { cpuBiasActRows(d, xs, bs, n, act, c.simd, lo, hi) })
	return nil
}

// cpuBiasActRows is BiasAct on rows [lo, hi).
func cpuBiasActRows(d, x, bias []float32, n int, act Activation, simd bool, lo, hi int) {
	for r := lo; r < hi; r++ {
		dr, xr := d[r*n:r*n+n], x[r*n:r*n+n]
		j := 0
		switch act {
		case Identity:
			if simd {
				j = biasAddVec(dr, xr, bias)
			}
			for ; j < n; j++ {
				dr[j] = xr[j] + bias[j]
			}
		case ActRelu:
			if simd {
				j = biasReluVec(dr, xr, bias)
			}
			for ; j < n; j++ {
				dr[j] = cpuRelu(xr[j] + bias[j])
			}
		case ActSigmoid:
			for ; j < n; j++ {
				dr[j] = cpuSigmoid(xr[j] + bias[j])
			}
		case ActTanh:
			for ; j < n; j++ {
				dr[j] = float32(math.Tanh(float64(xr[j] + bias[j])))
			}
		}
	}
}

// BiasActGrad is the backward pass of BiasAct: from y = act(x + bias) and
// g, the gradient with respect to y, it writes dx = g·act'(y) and adds the
// column sums of dx into dbias, or stores them unless accumulate. dbias may
// be nil. dx may be g. The column sums accumulate in float32, row by row,
// while each row of dx is in cache.
func (c *CPU) BiasActGrad(dx, dbias, y, g Buffer, rows, n int, act Activation, accumulate bool) error {
	if err := CheckBiasActGrad(dx, dbias, y, g, rows, n, act); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "bias_act_grad"}
	total := rows * n
	d, err := cpuData(name, "dx", dx, total)
	if err != nil {
		return err
	}
	ys, err := cpuData(name, "y", y, total)
	if err != nil {
		return err
	}
	gs, err := cpuData(name, "g", g, total)
	if err != nil {
		return err
	}
	var db []float32
	if dbias != nil {
		if db, err = cpuData(name, "dbias", dbias, n); err != nil {
			return err
		}
		if !accumulate {
			clear(db)
		}
	}
	// The columns are split between threads, so that each owns its sums.
	work := total
	if c.simd && act != ActSigmoid && act != ActTanh {
		work /= 8
	}
	if c.serial(n, work) {
		cpuBiasActGradCols(d, db, ys, gs, rows, n, act, c.simd, 0, n)
		return nil
	}
	c.parallel(n, work, func(lo, hi int) { cpuBiasActGradCols(d, db, ys, gs, rows, n, act, c.simd, lo, hi) })
	return nil
}

// cpuBiasActGradCols is BiasActGrad on columns [lo, hi).
func cpuBiasActGradCols(dx, db, y, g []float32, rows, n int, act Activation, simd bool, lo, hi int) {
	var dbc []float32
	if db != nil {
		dbc = db[lo:hi]
	}
	for r := range rows {
		o := r*n + lo
		d, yr, gr := dx[o:o+hi-lo], y[o:o+hi-lo], g[o:o+hi-lo]
		j := 0
		if act == ActRelu && simd {
			j = reluGradVec(d, dbc, yr, gr)
		}
		for ; j < len(d); j++ {
			v := gr[j]
			switch act {
			case ActRelu:
				v = cpuReluGrad(yr[j], v)
			case ActSigmoid:
				v *= yr[j] * (1 - yr[j])
			case ActTanh:
				v *= 1 - yr[j]*yr[j]
			}
			d[j] = v
			if dbc != nil {
				dbc[j] += v
			}
		}
	}
}

// SGDStep updates p in place as torch.optim.SGD does, with g the gradient
// and buf the momentum buffer (unused, and may be nil, when Momentum is 0).
func (c *CPU) SGDStep(p, g, buf Buffer, n int, hp SGDParams) error {
	if err := CheckSGD(p, g, buf, n, hp); err != nil {
		return cpuErr(err)
	}
	return c.sgdStep(p, g, buf, n, hp)
}

// sgdStep is SGDStep on checked arguments.
func (c *CPU) sgdStep(p, g, buf Buffer, n int, hp SGDParams) error {
	name := cpuOp{kind: "sgd_step"}
	ps, err := cpuData(name, "p", p, n)
	if err != nil {
		return err
	}
	gs, err := cpuData(name, "g", g, n)
	if err != nil {
		return err
	}
	var bs []float32
	if hp.Momentum != 0 {
		if bs, err = cpuData(name, "buf", buf, n); err != nil {
			return err
		}
	}
	// The vector kernel streams memory faster than a helper starts, so it is
	// worth splitting only from a few hundred thousand values up.
	work := n
	if c.simd {
		work /= 8
	}
	if c.serial(n, work) {
		cpuSGD(ps, gs, bs, hp, c.simd)
		return nil
	}
	t := c.sgdTasks.Get().(*cpuSGDTask)
	*t = cpuSGDTask{p: ps, g: gs, buf: bs, hp: hp, simd: c.simd}
	c.run(n, t)
	*t = cpuSGDTask{}
	c.sgdTasks.Put(t)
	return nil
}

// cpuSGDTask is SGDStep as a cpuTask. The CPU keeps a pool of them, so that
// an update split across threads allocates nothing.
type cpuSGDTask struct {
	p, g, buf []float32
	hp        SGDParams
	simd      bool
}

func (t *cpuSGDTask) run(lo, hi int) {
	var b []float32
	if t.buf != nil {
		b = t.buf[lo:hi]
	}
	cpuSGD(t.p[lo:hi], t.g[lo:hi], b, t.hp, t.simd)
}

// cpuSGD is SGDStep on one chunk. The common case, momentum after the first
// step without Nesterov, runs in the vector kernel when simd is set.
func cpuSGD(p, g, buf []float32, hp SGDParams, simd bool) {
	g = g[:len(p)]
	if hp.Momentum != 0 {
		buf = buf[:len(p)]
	}
	lr, mom, damp, wd := hp.LR, hp.Momentum, 1-hp.Dampening, hp.WeightDecay
	i := 0
	if simd && mom != 0 && !hp.First && !hp.Nesterov && !hp.Maximize {
		i = sgdMomentumVec(p, g, buf, lr, mom, damp, wd)
	}
	for ; i < len(p); i++ {
		gi := g[i]
		if hp.Maximize {
			gi = -gi
		}
		if wd != 0 {
			gi += wd * p[i]
		}
		if mom != 0 {
			if hp.First {
				buf[i] = gi
			} else {
				buf[i] = mom*buf[i] + damp*gi
			}
			if hp.Nesterov {
				gi += mom * buf[i]
			} else {
				gi = buf[i]
			}
		}
		p[i] -= lr * gi
	}
}

// AdamStep updates p in place as torch.optim.Adam (or AdamW when
// hp.Decoupled) does, with g the gradient, m, v the first and second moment
// estimates and, with hp.AMSGrad, vmax the running maximum of v.
func (c *CPU) AdamStep(p, g, m, v, vmax Buffer, n int, hp AdamParams) error {
	if err := CheckAdam(p, g, m, v, vmax, n, hp); err != nil {
		return cpuErr(err)
	}
	return c.adamStep(p, g, m, v, vmax, n, hp)
}

// adamStep is AdamStep on checked arguments.
func (c *CPU) adamStep(p, g, m, v, vmax Buffer, n int, hp AdamParams) error {
	name := cpuOp{kind: "adam_step"}
	ps, err := cpuData(name, "p", p, n)
	if err != nil {
		return err
	}
	gs, err := cpuData(name, "g", g, n)
	if err != nil {
		return err
	}
	ms, err := cpuData(name, "m", m, n)
	if err != nil {
		return err
	}
	vs, err := cpuData(name, "v", v, n)
	if err != nil {
		return err
	}
	var vm []float32
	if hp.AMSGrad {
		if vm, err = cpuData(name, "vmax", vmax, n); err != nil {
			return err
		}
	}
	// The scalars are computed in float64, as PyTorch does in Python.
	bc1 := 1 - math.Pow(float64(hp.Beta1), float64(hp.Step))
	bc2 := 1 - math.Pow(float64(hp.Beta2), float64(hp.Step))
	stepSize := float32(float64(hp.LR) / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	decay := float32(1 - float64(hp.LR)*float64(hp.WeightDecay))
	c.parallel(n, n*4, func(lo, hi int) {
		var vml []float32
		if vm != nil {
			vml = vm[lo:hi]
		}
		cpuAdam(ps[lo:hi], gs[lo:hi], ms[lo:hi], vs[lo:hi], vml, hp, stepSize, bc2Sqrt, decay)
	})
	return nil
}

// cpuAdam is AdamStep on one chunk, given the step's scalars; vmax is nil
// without AMSGrad.
func cpuAdam(p, g, m, v, vmax []float32, hp AdamParams, stepSize, bc2Sqrt, decay float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	b1, b2, eps, wd := hp.Beta1, hp.Beta2, hp.Eps, hp.WeightDecay
	for i := range p {
		gi := g[i]
		if hp.Maximize {
			gi = -gi
		}
		if wd != 0 {
			if hp.Decoupled {
				p[i] *= decay
			} else {
				gi += wd * p[i]
			}
		}
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*(gi*gi)
		vi := v[i]
		if vmax != nil {
			vi = max(vmax[i], vi) // NaN wins, as torch.maximum
			vmax[i] = vi
		}
		denom := math32.Sqrt(vi)/bc2Sqrt + eps
		p[i] -= stepSize * (m[i] / denom)
	}
}
