package device

import "math"

// BatchNormForward normalises each channel of x, [outer, c, inner], with
// its batch statistics; see the BatchNorm interface. The channels are
// split between threads; each channel's mean and variance come from one
// pass over its values (sums of the values shifted by the channel's first
// one, accumulated in float64 per contiguous segment), and a second pass
// writes y = x·scale + shift, or its ReLU with act ActRelu.
func (c *CPU) BatchNormForward(y, mean, invstd, runMean, runVar, x, weight, bias Buffer, outer, ch, inner int, eps, momentum float32, act Activation) error {
	if err := CheckBatchNormForward(y, mean, invstd, runMean, runVar, x, weight, bias, outer, ch, inner, eps, momentum, act); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "batch_norm"}
	total := outer * ch * inner
	t := c.bnTasks.Get().(*cpuBNTask)
	defer c.putBN(t)
	*t = cpuBNTask{outer: outer, c: ch, inner: inner, eps: eps, momentum: momentum, relu: act == ActRelu, simd: c.simd}
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
	c.runBN(t, ch, 3*total)
	return nil
}

// BatchNormBackward is the backward pass of BatchNormForward, split by
// channels between threads: a first pass sums g and g·(x - mean), a second
// writes dx = a·g + b·x + d with the channel's coefficients. With act
// ActRelu both passes read y and use g·[y > 0] for g.
func (c *CPU) BatchNormBackward(dx, dweight, dbias, x, y, mean, invstd, weight, g Buffer, outer, ch, inner int, act Activation, accumulate bool) error {
	if err := CheckBatchNormBackward(dx, dweight, dbias, x, y, mean, invstd, weight, g, outer, ch, inner, act); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "batch_norm_grad"}
	total := outer * ch * inner
	t := c.bnTasks.Get().(*cpuBNTask)
	defer c.putBN(t)
	*t = cpuBNTask{backward: true, outer: outer, c: ch, inner: inner, accumulate: accumulate, relu: act == ActRelu, simd: c.simd}
	var err error
	bufs := []struct {
		dst *[]float32
		arg string
		b   Buffer
		n   int
	}{{&t.x, "x", x, total}, {&t.g, "g", g, total}, {&t.mean, "mean", mean, ch}, {&t.invstd, "invstd", invstd, ch},
		{&t.weight, "weight", weight, ch}, {&t.y, "dx", dx, total}, {&t.dweight, "dweight", dweight, ch}, {&t.dbias, "dbias", dbias, ch},
		{&t.out, "y", y, total}}
	for _, b := range bufs {
		if isNil(b.b) || (b.dst == &t.out && !t.relu) {
			continue
		}
		if *b.dst, err = cpuData(name, b.arg, b.b, b.n); err != nil {
			return err
		}
	}
	work := 4 * total
	if t.relu {
		work = 6 * total
	}
	c.runBN(t, ch, work)
	return nil
}

// runBN runs t over the channels, on the calling goroutine when the work
// is small.
func (c *CPU) runBN(t *cpuBNTask, ch, work int) {
	if c.serial(ch, work) {
		t.run(0, ch)
		return
	}
	c.run(ch, t)
}

// putBN returns t to the CPU's pool, holding no slices.
func (c *CPU) putBN(t *cpuBNTask) {
	*t = cpuBNTask{}
	c.bnTasks.Put(t)
}

// cpuBNTask is BatchNormForward or BatchNormBackward over a range of
// channels. The CPU pools them, so that a step allocates nothing.
type cpuBNTask struct {
	backward, accumulate bool
	relu                 bool // fuse a ReLU: y = max(BN(x), 0), its gradient g·[out > 0]
	simd                 bool // the AVX2 kernels can run
	outer, c, inner      int
	eps, momentum        float32

	x, y, g, mean, invstd, weight, bias []float32 // y is dx in the backward pass
	out                                 []float32 // the forward's output, read by the backward pass with relu
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
		a, b := cpuShiftedSums(t.x[o:o+inner], shift, t.simd)
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
		i := 0
		if t.relu {
			if t.simd {
				i = bnScaleReluVec(ys, xs, scale, off)
			}
			for ; i < len(xs); i++ {
				ys[i] = cpuRelu(xs[i]*scale + off)
			}
			continue
		}
		if t.simd {
			i = bnScaleVec(ys, xs, scale, off)
		}
		for ; i < len(xs); i++ {
			ys[i] = xs[i]*scale + off
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
		var a, b float64
		if t.relu {
			a, b = cpuDotSumsRelu(t.g[o:o+inner], t.x[o:o+inner], t.out[o:o+inner], mean, t.simd)
		} else {
			a, b = cpuDotSums(t.g[o:o+inner], t.x[o:o+inner], mean, t.simd)
		}
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
		i := 0
		if t.relu {
			ys := t.out[o : o+inner]
			if t.simd {
				i = bnGradReluVec(dx, gs, xs, ys, a32, bx32, d32)
			}
			for ; i < len(dx); i++ {
				dx[i] = a32*cpuReluGrad(ys[i], gs[i]) + bx32*xs[i] + d32
			}
			continue
		}
		if t.simd {
			i = bnGradVec(dx, gs, xs, a32, bx32, d32)
		}
		for ; i < len(dx); i++ {
			dx[i] = a32*gs[i] + bx32*xs[i] + d32
		}
	}
}

// cpuShiftedSums returns Σ(x-shift) and Σ(x-shift)², accumulated in
// float32 lanes within the segment (eight with simd, else four) and
// returned in float64.
func cpuShiftedSums(x []float32, shift float32, simd bool) (float64, float64) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float32
	i := 0
	var vs, vq float64
	if simd {
		var acc [16]float32
		i = bnSumsVec(&acc, x, shift)
		vs, vq = lanes(&acc)
	}
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
	return vs + float64(s0) + float64(s1) + float64(s2) + float64(s3), vq + float64(q0) + float64(q1) + float64(q2) + float64(q3)
}

// lanes returns the sums of acc[0:8] and acc[8:16] in float64.
func lanes(acc *[16]float32) (float64, float64) {
	var a, b float64
	for i := range 8 {
		a += float64(acc[i])
		b += float64(acc[8+i])
	}
	return a, b
}

// cpuDotSums returns Σg and Σg·(x-mean) over a segment, as cpuShiftedSums.
func cpuDotSums(g, x []float32, mean float32, simd bool) (float64, float64) {
	x = x[:len(g)]
	var s0, s1, s2, s3, q0, q1, q2, q3 float32
	i := 0
	var vs, vq float64
	if simd {
		var acc [16]float32
		i = bnGradSumsVec(&acc, g, x, mean)
		vs, vq = lanes(&acc)
	}
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
	return vs + float64(s0) + float64(s1) + float64(s2) + float64(s3), vq + float64(q0) + float64(q1) + float64(q2) + float64(q3)
}

// cpuDotSumsRelu is cpuDotSums of g·[y > 0] (cpuReluGrad) for g.
func cpuDotSumsRelu(g, x, y []float32, mean float32, simd bool) (float64, float64) {
	x, y = x[:len(g)], y[:len(g)]
	var s0, s1, s2, s3, q0, q1, q2, q3 float32
	i := 0
	var vs, vq float64
	if simd {
		var acc [16]float32
		i = bnGradSumsReluVec(&acc, g, x, y, mean)
		vs, vq = lanes(&acc)
	}
	for ; i+4 <= len(g); i += 4 {
		g0, g1, g2, g3 := cpuReluGrad(y[i], g[i]), cpuReluGrad(y[i+1], g[i+1]), cpuReluGrad(y[i+2], g[i+2]), cpuReluGrad(y[i+3], g[i+3])
		s0, s1, s2, s3 = s0+g0, s1+g1, s2+g2, s3+g3
		q0 += g0 * (x[i] - mean)
		q1 += g1 * (x[i+1] - mean)
		q2 += g2 * (x[i+2] - mean)
		q3 += g3 * (x[i+3] - mean)
	}
	for ; i < len(g); i++ {
		g0 := cpuReluGrad(y[i], g[i])
		s0 += g0
		q0 += g0 * (x[i] - mean)
	}
	return vs + float64(s0) + float64(s1) + float64(s2) + float64(s3), vq + float64(q0) + float64(q1) + float64(q2) + float64(q3)
}
