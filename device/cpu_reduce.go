package device

import (
	"math"
)

// cpuReduceBlock is the number of columns reduced together when the reduced
// axis is not the innermost one; their float64 accumulators live on the stack.
const cpuReduceBlock = 256

// Reduce views x as [outer, n, inner] and reduces the middle axis into dst
// of [outer, inner].
func (c *CPU) Reduce(op ReduceOp, dst, x Buffer, outer, n, inner int) error {
	if err := CheckReduce(op, dst, x, outer, n, inner); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{"reduce", op}
	out := outer * inner
	total := out * n
	d, err := cpuData(name, "dst", dst, out)
	if err != nil {
		return err
	}
	xs, err := cpuData(name, "x", x, total)
	if err != nil {
		return err
	}
	if inner == 1 {
		if c.serial(outer, total) {
			cpuReduceRows(op, d, xs, n, 0, outer)
			return nil
		}
		c.parallel(outer, total, func(lo, hi int) { cpuReduceRows(op, d, xs, n, lo, hi) })
		return nil
	}
	blocks := (inner + cpuReduceBlock - 1) / cpuReduceBlock
	if c.serial(outer*blocks, total) {
		cpuReduceBlocks(op, d, xs, n, inner, 0, outer*blocks)
		return nil
	}
	c.parallel(outer*blocks, total, func(lo, hi int) { cpuReduceBlocks(op, d, xs, n, inner, lo, hi) })
	return nil
}

// cpuReduceRows reduces rows [lo, hi) of n contiguous values into d.
func cpuReduceRows(op ReduceOp, d, x []float32, n, lo, hi int) {
	for o := lo; o < hi; o++ {
		d[o] = cpuReduceRow(op, x[o*n:o*n+n])
	}
}

// cpuReduceBlocks reduces the blocks [lo, hi) of cpuReduceBlock columns of
// x viewed as [outer, n, inner], numbered outer index first.
func cpuReduceBlocks(op ReduceOp, d, x []float32, n, inner, lo, hi int) {
	blocks := (inner + cpuReduceBlock - 1) / cpuReduceBlock
	for u := lo; u < hi; u++ {
		o, j0 := u/blocks, (u%blocks)*cpuReduceBlock
		w := min(cpuReduceBlock, inner-j0)
		cpuReduceCols(op, d[o*inner+j0:o*inner+j0+w], x[o*n*inner+j0:], n, inner)
	}
}

// cpuReduceRow reduces a contiguous row.
func cpuReduceRow(op ReduceOp, x []float32) float32 {
	switch op {
	case Sum, Mean:
		var s float64
		for _, v := range x {
			s += float64(v)
		}
		if op == Mean {
			s /= float64(len(x))
		}
		return float32(s)
	case MaxOf:
		m := x[0]
		for _, v := range x[1:] {
			m = max(m, v)
		}
		return m
	default: // ArgMax
		best, at := x[0], 0
		for j, v := range x {
			if v > best || (v != v && best == best) {
				best, at = v, j
			}
		}
		return float32(at)
	}
}

// cpuReduceCols reduces len(d) adjacent columns: d[c] = op over j < n of
// x[j*stride+c].
func cpuReduceCols(op ReduceOp, d, x []float32, n, stride int) {
	w := len(d)
	var acc [cpuReduceBlock]float64
	switch op {
	case Sum, Mean:
		for j := range n {
			row := x[j*stride : j*stride+w]
			for c, v := range row {
				acc[c] += float64(v)
			}
		}
		for c := range d {
			if op == Mean {
				acc[c] /= float64(n)
			}
			d[c] = float32(acc[c])
		}
	case MaxOf:
		copy(d, x[:w])
		for j := 1; j < n; j++ {
			row := x[j*stride : j*stride+w]
			for c, v := range row {
				d[c] = max(d[c], v)
			}
		}
	case ArgMax:
		var best [cpuReduceBlock]float32
		copy(best[:w], x[:w])
		for j := 1; j < n; j++ {
			row := x[j*stride : j*stride+w]
			for c, v := range row {
				if b := best[c]; v > b || (v != v && b == b) {
					best[c], acc[c] = v, float64(j)
				}
			}
		}
		for c := range d {
			d[c] = float32(acc[c])
		}
	}
}

// Softmax computes the softmax, or log-softmax when log is set, of each of
// the rows of x, each n wide. dst may be x.
func (c *CPU) Softmax(dst, x Buffer, rows, n int, log bool) error {
	if err := CheckSoftmax(dst, x, rows, n, log); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "softmax"}
	if log {
		name.kind = "log_softmax"
	}
	total := rows * n
	d, err := cpuData(name, "dst", dst, total)
	if err != nil {
		return err
	}
	xs, err := cpuData(name, "x", x, total)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if c.serial(rows, total*8) {
		cpuSoftmaxRows(d, xs, n, log, 0, rows)
		return nil
	}
	c.parallel(rows, total*8, func(lo, hi int) { cpuSoftmaxRows(d, xs, n, log, lo, hi) })
	return nil
}

// cpuSoftmaxRows is Softmax on rows [lo, hi).
func cpuSoftmaxRows(d, x []float32, n int, log bool, lo, hi int) {
	for r := lo; r < hi; r++ {
		xr, dr := x[r*n:r*n+n], d[r*n:r*n+n]
		if log {
			m, s := cpuMaxSumExp(xr)
			lse := float64(m) + math.Log(s)
			for j, v := range xr {
				dr[j] = float32(float64(v) - lse)
			}
			continue
		}
		m := cpuReduceRow(MaxOf, xr)
		var s float64
		for j, v := range xr {
			e := math.Exp(float64(v - m))
			dr[j] = float32(e)
			s += e
		}
		inv := 1 / s
		for j, e := range dr {
			dr[j] = float32(float64(e) * inv)
		}
	}
}

// cpuMaxSumExp returns the row's maximum m and the sum of e^(x-m).
func cpuMaxSumExp(x []float32) (float32, float64) {
	m := cpuReduceRow(MaxOf, x)
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v - m))
	}
	return m, s
}

// SoftmaxCrossEntropy writes each row's loss -log softmax(logits)[label] and
// the gradient (softmax(logits) - onehot(label)) * scale, computing each
// probability once, straight into grad. grad may be logits.
func (c *CPU) SoftmaxCrossEntropy(loss, grad, logits, labels Buffer, rows, n int, scale float32) error {
	if err := CheckSoftmaxCE(loss, grad, logits, labels, rows, n); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "softmax_cross_entropy"}
	total := rows * n
	ls, err := cpuData(name, "loss", loss, rows)
	if err != nil {
		return err
	}
	g, err := cpuData(name, "grad", grad, total)
	if err != nil {
		return err
	}
	xs, err := cpuData(name, "logits", logits, total)
	if err != nil {
		return err
	}
	ys, err := cpuData(name, "labels", labels, rows)
	if err != nil {
		return err
	}
	if err := cpuCheckIndices(name, "label", ys, n); err != nil {
		return err
	}
	if c.serial(rows, total*8) {
		cpuSoftmaxCERows(ls, g, xs, ys, n, scale, 0, rows)
		return nil
	}
	c.parallel(rows, total*8, func(lo, hi int) { cpuSoftmaxCERows(ls, g, xs, ys, n, scale, lo, hi) })
	return nil
}

// cpuSoftmaxCERows is SoftmaxCrossEntropy on rows [lo, hi).
func cpuSoftmaxCERows(ls, g, xs, ys []float32, n int, scale float32, lo, hi int) {
	for r := lo; r < hi; r++ {
		xr, gr, y := xs[r*n:r*n+n], g[r*n:r*n+n], int(ys[r])
		m, xy := cpuReduceRow(MaxOf, xr), xr[y]
		ey := math.Exp(float64(xy - m))
		var s float64
		for j, v := range xr {
			e := math.Exp(float64(v - m))
			gr[j] = float32(e)
			s += e
		}
		ls[r] = float32(math.Log(s) + float64(m) - float64(xy))
		inv, sc := 1/s, float64(scale)
		for j, e := range gr {
			gr[j] = float32(float64(e) * inv * sc)
		}
		gr[y] = float32((ey*inv - 1) * sc)
	}
}

// cpuCheckIndices reports an error unless every value of idx is an integer
// in [0, n).
func cpuCheckIndices(op cpuOp, what string, idx []float32, n int) error {
	for i, v := range idx {
		if !(v >= 0 && v < float32(n)) || v != float32(int(v)) {
			return op.errorf("%s %v at %d is not an integer in [0, %d)", what, v, i, n)
		}
	}
	return nil
}
