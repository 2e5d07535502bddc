package device

import "math"

// BatchNormForward normalises each channel of x, [outer, c, inner], with
// its batch statistics; see the BatchNorm interface. The channels are
// split between threads; each channel's mean and variance come from one
// pass over its values (sums of the values shifted by the channel's first
// one, accumulated in float64 per contiguous segment), and a second pass
// writes y = x·scale + shift.
func (c *CPU) BatchNormForward(y, mean, invstd, runMean, runVar, x, weight, bias Buffer, outer, ch, inner int, eps, momentum float32) error {
	if err := CheckBatchNormForward(y, mean, invstd, runMean, runVar, x, weight, bias, outer, ch, inner, eps, momentum); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "batch_norm"}
	total := outer * ch * inner
	t := cpuBNTask{outer: outer, c: ch, inner: inner, eps: eps, momentum: momentum}
	var err error
	bufs := []struct {
		dst *[]float32
		arg string
		b   Buffer
		n   int
	}{{&t.y, "y", y, total}, {&t.x, "x", x, total}, {&t.mean, "mean", mean, ch}, {&t.invstd, "invstd", invstd, ch},
		{&t.weight, "weight", weight, ch}, {&t.bias, "bias", bias, ch}}
	for _, b := range bufs {
		if *b.dst, err = cpuData(name, b.arg, b.b, b.n); err != nil {
			return err
		}
	}
	if !isNil(runMean) {
		if t.runMean, err = cpuData(name, "running_mean", runMean, ch); err != nil {
			return err
		}
		if t.runVar, err = cpuData(name, "running_var", runVar, ch); err != nil {
			return err
		}
	}
	c.runBN(&t, ch, 3*total)
	return nil
}

// BatchNormBackward is the backward pass of BatchNormForward, split by
// channels between threads: a first pass sums g and g·(x - mean), a second
// writes dx = a·g + b·x + d with the channel's coefficients.
func (c *CPU) BatchNormBackward(dx, dweight, dbias, x, mean, invstd, weight, g Buffer, outer, ch, inner int, accumulate bool) error {
	if err := CheckBatchNormBackward(dx, dweight, dbias, x, mean, invstd, weight, g, outer, ch, inner); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "batch_norm_grad"}
	total := outer * ch * inner
	t := cpuBNTask{backward: true, outer: outer, c: ch, inner: inner, accumulate: accumulate}
	var err error
	bufs := []struct {
		dst *[]float32
		arg string
		b   Buffer
		n   int
	}{{&t.x, "x", x, total}, {&t.g, "g", g, total}, {&t.mean, "mean", mean, ch}, {&t.invstd, "invstd", invstd, ch},
		{&t.weight, "weight", weight, ch}, {&t.y, "dx", dx, total}, {&t.dweight, "dweight", dweight, ch}, {&t.dbias, "dbias", dbias, ch}}
	for _, b := range bufs {
		if isNil(b.b) {
			continue
		}
		if *b.dst, err = cpuData(name, b.arg, b.b, b.n); err != nil {
			return err
		}
	}
	c.runBN(&t, ch, 4*total)
	return nil
}

// runBN runs t over the channels, on the calling goroutine when the work
// is small. t lives on the caller's stack unless it goes to the helpers.
func (c *CPU) runBN(t *cpuBNTask, ch, work int) {
	if c.serial(ch, work) {
		t.run(0, ch)
		return
	}
	p := c.bnTasks.Get().(*cpuBNTask)
	*p = *t
	c.run(ch, p)
	*p = cpuBNTask{}
	c.bnTasks.Put(p)
}

// cpuBNTask is BatchNormForward or BatchNormBackward over a range of
// channels. The CPU pools them, so that a step allocates nothing.
type cpuBNTask struct {
	backward, accumulate bool
	outer, c, inner      int
	eps, momentum        float32

	x, y, g, mean, invstd, weight, bias []float32 // y is dx in the backward pass
	runMean, runVar, dweight, dbias     []float32
}

func (t *cpuBNTask) run(lo, hi int) {
	for ch := lo; ch < hi; ch++ {
		if t.backward {
			t.backwardChannel(ch)
		} else {
			t.forwardChannel(ch)
		}
	}
}

// forwardChannel is BatchNormForward on channel ch.
func (t *cpuBNTask) forwardChannel(ch int) {
	inner, stride := t.inner, t.c*t.inner
	m := t.outer * inner
	shift := t.x[ch*inner]
	var s, ss float64
	for o := ch * inner; o < len(t.x); o += stride {
		a, b := cpuShiftedSums(t.x[o:o+inner], shift)
		s += a
		ss += b
	}
	mu := s / float64(m)
	v := max(ss/float64(m)-mu*mu, 0) // biased
	mean := float64(shift) + mu
	is := 1 / math.Sqrt(v+float64(t.eps))
	t.mean[ch], t.invstd[ch] = float32(mean), float32(is)
	if t.runMean != nil {
		mom := float64(t.momentum)
		t.runMean[ch] = float32((1-mom)*float64(t.runMean[ch]) + mom*mean)
		t.runVar[ch] = float32((1-mom)*float64(t.runVar[ch]) + mom*v*float64(m)/float64(m-1))
	}
	scale := float32(is * float64(t.weight[ch]))
	off := t.bias[ch] - float32(mean)*scale
	for o := ch * inner; o < len(t.x); o += stride {
		ys, xs := t.y[o:o+inner], t.x[o:o+inner]
		for i, xv := range xs {
			ys[i] = xv*scale + off
		}
	}
}

// backwardChannel is BatchNormBackward on channel ch.
func (t *cpuBNTask) backwardChannel(ch int) {
	inner, stride := t.inner, t.c*t.inner
	m := float64(t.outer * inner)
	mean := t.mean[ch]
	var sg, sgx float64
	for o := ch * inner; o < len(t.x); o += stride {
		a, b := cpuDotSums(t.g[o:o+inner], t.x[o:o+inner], mean)
		sg += a
		sgx += b
	}
	is := float64(t.invstd[ch])
	dw := sgx * is
	if t.dweight != nil {
		if t.accumulate {
			t.dweight[ch] += float32(dw)
		} else {
			t.dweight[ch] = float32(dw)
		}
	}
	if t.dbias != nil {
		if t.accumulate {
			t.dbias[ch] += float32(sg)
		} else {
			t.dbias[ch] = float32(sg)
		}
	}
	if t.y == nil {
		return
	}
	a := float64(t.weight[ch]) * is
	bx := -a * is * dw / m
	d := -a*sg/m - bx*float64(mean)
	a32, bx32, d32 := float32(a), float32(bx), float32(d)
	for o := ch * inner; o < len(t.x); o += stride {
		dx, gs, xs := t.y[o:o+inner], t.g[o:o+inner], t.x[o:o+inner]
		for i := range dx {
			dx[i] = a32*gs[i] + bx32*xs[i] + d32
		}
	}
}

// cpuShiftedSums returns Σ(x-shift) and Σ(x-shift)², accumulated in
// float32 over four lanes within the segment and returned in float64.
func cpuShiftedSums(x []float32, shift float32) (float64, float64) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := x[i]-shift, x[i+1]-shift, x[i+2]-shift, x[i+3]-shift
		s0, s1, s2, s3 = s0+a, s1+b, s2+c, s3+d
		q0, q1, q2, q3 = q0+a*a, q1+b*b, q2+c*c, q3+d*d
	}
	for ; i < len(x); i++ {
		a := x[i] - shift
		s0 += a
		q0 += a * a
	}
	return float64(s0) + float64(s1) + float64(s2) + float64(s3), float64(q0) + float64(q1) + float64(q2) + float64(q3)
}

// cpuDotSums returns Σg and Σg·(x-mean) over a segment, as cpuShiftedSums.
func cpuDotSums(g, x []float32, mean float32) (float64, float64) {
	x = x[:len(g)]
	var s0, s1, s2, s3, q0, q1, q2, q3 float32
	i := 0
	for ; i+4 <= len(g); i += 4 {
		s0, s1, s2, s3 = s0+g[i], s1+g[i+1], s2+g[i+2], s3+g[i+3]
		q0 += g[i] * (x[i] - mean)
		q1 += g[i+1] * (x[i+1] - mean)
		q2 += g[i+2] * (x[i+2] - mean)
		q3 += g[i+3] * (x[i+3] - mean)
	}
	for ; i < len(g); i++ {
		s0 += g[i]
		q0 += g[i] * (x[i] - mean)
	}
	return float64(s0) + float64(s1) + float64(s2) + float64(s3), float64(q0) + float64(q1) + float64(q2) + float64(q3)
}
