package device

import (
	"math"

	"github.com/chewxy/math32"
)

// Copy writes the strided walk of x described by w into dst (see Walk).
func (c *CPU) Copy(dst, x Buffer, w Walk) error {
	n, err := CheckCopy(dst, x, &w)
	if err != nil || n == 0 {
		return cpuErr(err)
	}
	name := cpuOp{kind: "copy"}
	d, err := cpuBuf(name, "dst", dst)
	if err != nil {
		return err
	}
	xs, err := cpuBuf(name, "x", x)
	if err != nil {
		return err
	}
	s := w.Collapse()
	if s.Pad || s.D != [MaxDims]int{} || s.OffD != 0 {
		if c.serial(n, n) {
			cpuCopyPadded(d, xs, &s, 0, n)
			return nil
		}
		sc := s
		c.parallel(n, n, func(lo, hi int) { cpuCopyPadded(d, xs, &sc, lo, hi) })
		return nil
	}
	if s.A[MaxDims-1] > 1 && s.A[MaxDims-2] == 1 {
		c.transpose(d, xs, s)
		return nil
	}
	if c.serial(n, n) {
		cpuCopyRange(d, xs, &s, 0, n)
		return nil
	}
	sc := s
	c.parallel(n, n, func(lo, hi int) { cpuCopyRange(d, xs, &sc, lo, hi) })
	return nil
}

// cpuCopyRange is Copy on output offsets [lo, hi) of a contiguous dst.
func cpuCopyRange(d, x []float32, s *Walk, lo, hi int) {
	sa := s.A[MaxDims-1]
	s.rows(lo, hi, func(off, ao, _, _, m int) {
		cpuCopyRow(d[off:off+m], x[ao:], sa)
	})
}

// cpuCopyPadded is Copy on output elements [lo, hi) with padding or a
// strided dst: each innermost row is filled outside its bounds and copied
// inside them.
func cpuCopyPadded(d, x []float32, s *Walk, lo, hi int) {
	const in = MaxDims - 1
	sa, sd := s.A[in], s.D[in]
	contig := s.D == [MaxDims]int{}
	if contig {
		sd = 1
	}
	s.indexRows(lo, hi, func(off int, idx [MaxDims]int, m int) {
		do, ao, inside := s.OffD+off, s.OffA, true
		if !contig {
			do = s.OffD
		}
		for k := range in {
			if !contig {
				do += idx[k] * s.D[k]
			}
			if s.Pad && (idx[k] < s.Lo[k] || idx[k] >= s.Hi[k]) {
				inside = false
			}
			ao += (idx[k] - s.Lo[k]) * s.A[k]
		}
		if !contig {
			do += idx[in] * sd
		}
		i0, lo5, hi5 := idx[in], 0, s.Shape[in]
		if s.Pad {
			lo5, hi5 = s.Lo[in], s.Hi[in]
		}
		for j := range m {
			i := i0 + j
			v := s.Fill
			if inside && i >= lo5 && i < hi5 {
				v = x[ao+(i-lo5)*sa]
			}
			d[do+j*sd] = v
		}
	})
}

// cpuTile is the side of the square tiles a transposing copy moves at once,
// so that the source lines it reads stay in cache while they are used.
const cpuTile = 32

// transpose is Copy for walks whose two inner axes are a transposition
// (the source is contiguous along the second-last axis and strided along
// the last), batched over the outer axes. It copies tile by tile.
func (c *CPU) transpose(d, x []float32, s Walk) {
	const r, q = MaxDims - 2, MaxDims - 1
	rows, cols, sx := s.Shape[r], s.Shape[q], s.A[q]
	tiles := (rows + cpuTile - 1) / cpuTile
	batches := s.N() / (rows * cols)
	c.parallel(batches*tiles, rows*cols*batches, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			batch, r0 := u/tiles, (u%tiles)*cpuTile
			r1 := min(r0+cpuTile, rows)
			xb, rest := s.OffA, batch
			for k := r - 1; k >= 0; k-- {
				xb += rest % s.Shape[k] * s.A[k]
				rest /= s.Shape[k]
			}
			db := batch * rows * cols
			for c0 := 0; c0 < cols; c0 += cpuTile {
				c1 := min(c0+cpuTile, cols)
				for r := r0; r < r1; r++ {
					dr, xo := d[db+r*cols:db+r*cols+c1], xb+r
					for j := c0; j < c1; j++ {
						dr[j] = x[xo+j*sx]
					}
				}
			}
		}
	})
}

// cpuCopyRow copies len(d) values of x read at stride sx.
func cpuCopyRow(d, x []float32, sx int) {
	switch sx {
	case 1:
		copy(d, x)
	case 0:
		v := x[0]
		for i := range d {
			d[i] = v
		}
	default:
		for i, j := 0, 0; i < len(d); i, j = i+1, j+sx {
			d[i] = x[j]
		}
	}
}

// Unary computes dst[i] = op(x[i], alpha, beta) for i < n.
func (c *CPU) Unary(op UnaryOp, dst, x Buffer, n int, alpha, beta float32) error {
	if err := CheckUnary(op, dst, x, n); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{"unary", op}
	d, err := cpuBuf(name, "dst", dst)
	if err != nil {
		return err
	}
	xs, err := cpuBuf(name, "x", x)
	if err != nil {
		return err
	}
	d, xs = d[:n], xs[:n]
	work := n * unaryOps[op].Cost
	if c.serial(n, work) {
		cpuUnary(op, d, xs, alpha, beta)
		return nil
	}
	c.parallel(n, work, func(lo, hi int) { cpuUnary(op, d[lo:hi], xs[lo:hi], alpha, beta) })
	return nil
}

// cpuUnary applies op elementwise; x and d have the same length.
func cpuUnary(op UnaryOp, d, x []float32, alpha, beta float32) {
	x = x[:len(d)]
	switch op {
	case Neg:
		for i, v := range x {
			d[i] = -v
		}
	case Exp:
		for i, v := range x {
			d[i] = float32(math.Exp(float64(v)))
		}
	case Log:
		for i, v := range x {
			d[i] = float32(math.Log(float64(v)))
		}
	case Relu:
		k := 0
		if cpuSIMD() {
			k = reluVec(d, x)
		}
		for i, v := range x[k:] {
			d[k+i] = cpuRelu(v)
		}
	case Sigmoid:
		for i, v := range x {
			d[i] = cpuSigmoid(v)
		}
	case Tanh:
		for i, v := range x {
			d[i] = float32(math.Tanh(float64(v)))
		}
	case Sqrt:
		for i, v := range x {
			d[i] = math32.Sqrt(v)
		}
	case AddScalar:
		for i, v := range x {
			d[i] = v + alpha
		}
	case MulScalar:
		for i, v := range x {
			d[i] = v * alpha
		}
	case PowScalar:
		if alpha == 2 {
			for i, v := range x {
				d[i] = v * v
			}
			return
		}
		for i, v := range x {
			d[i] = float32(math.Pow(float64(v), float64(alpha)))
		}
	case Square:
		for i, v := range x {
			d[i] = v * v
		}
	case Abs:
		for i, v := range x {
			d[i] = math32.Abs(v)
		}
	case LeakyRelu:
		for i, v := range x {
			if v > 0 {
				d[i] = v
			} else {
				d[i] = alpha * v
			}
		}
	case Clamp:
		for i, v := range x {
			d[i] = cpuClamp(v, alpha, beta)
		}
	case Sign:
		for i, v := range x {
			d[i] = cpuSign(v)
		}
	default:
		f := cpuUnaryFunc(op)
		for i, v := range x {
			d[i] = float32(f(float64(v)))
		}
	}
}

// cpuUnaryFunc returns the transcendental unary ops as functions of float64.
func cpuUnaryFunc(op UnaryOp) func(float64) float64 {
	switch op {
	case GeluTanh:
		return func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(geluK*(x+geluC*x*x*x))) }
	case GeluErf:
		return func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
	case Silu:
		return func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	case Softplus:
		return cpuSoftplus
	}
	panic("device: cpu unary: unreachable op " + op.String())
}

// The constants of the tanh approximation of GELU: sqrt(2/pi) and 0.044715.
const (
	geluK = 0.7978845608028654
	geluC = 0.044715
)

// cpuSoftplus is PyTorch's softplus with beta 1 and threshold 20.
func cpuSoftplus(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// cpuClamp is min(max(v, lo), hi), NaN kept, as PyTorch's clamp.
func cpuClamp(v, lo, hi float32) float32 {
	if v != v {
		return v
	}
	return min(max(v, lo), hi)
}

// cpuSign is -1, 0 or 1, and 0 for NaN as PyTorch's sign.
func cpuSign(v float32) float32 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// cpuGeluTanhGrad and cpuGeluErfGrad are the derivatives of the two GELUs.
func cpuGeluTanhGrad(x float64) float64 {
	t := math.Tanh(geluK * (x + geluC*x*x*x))
	return 0.5*(1+t) + 0.5*x*(1-t*t)*geluK*(1+3*geluC*x*x)
}

func cpuGeluErfGrad(x float64) float64 {
	return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
}

// cpuRelu is max(v, 0), passing NaN through. The builtin max compiles
// without a branch, which random signs would mispredict.
func cpuRelu(v float32) float32 { return max(v, 0) }

// cpuSigmoid is 1/(1+e^-v), evaluated in float64.
func cpuSigmoid(v float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(v))))
}

// Binary computes dst = op(a, b, alpha, beta) elementwise over w.Shape,
// reading a at w.OffA and strides w.A, b at w.OffB and strides w.B.
func (c *CPU) Binary(op BinaryOp, dst, a, b Buffer, w Walk, alpha, beta float32) error {
	n, err := CheckBinary(op, dst, a, b, &w)
	if err != nil || n == 0 {
		return cpuErr(err)
	}
	name := cpuOp{"binary", op}
	d, err := cpuBuf(name, "dst", dst)
	if err != nil {
		return err
	}
	as, err := cpuBuf(name, "a", a)
	if err != nil {
		return err
	}
	bs, err := cpuBuf(name, "b", b)
	if err != nil {
		return err
	}
	s := w.Collapse()
	work := n * binaryOps[op].Cost
	if c.serial(n, work) {
		cpuBinaryRange(op, d, as, bs, &s, 0, n, alpha, beta)
		return nil
	}
	sc := s
	c.parallel(n, work, func(lo, hi int) { cpuBinaryRange(op, d, as, bs, &sc, lo, hi, alpha, beta) })
	return nil
}

// cpuBinaryRange is Binary on output offsets [lo, hi).
func cpuBinaryRange(op BinaryOp, d, a, b []float32, s *Walk, lo, hi int, alpha, beta float32) {
	sa, sb := s.A[MaxDims-1], s.B[MaxDims-1]
	s.rows(lo, hi, func(off, ao, bo, _, m int) {
		cpuBinaryRow(op, d[off:off+m], a[ao:], sa, b[bo:], sb, alpha, beta)
	})
}

// Ternary computes dst = op(a, b, c) elementwise over w.Shape.
func (c *CPU) Ternary(op TernaryOp, dst, a, b, x Buffer, w Walk) error {
	n, err := CheckTernary(op, dst, a, b, x, &w)
	if err != nil || n == 0 {
		return cpuErr(err)
	}
	name := cpuOp{"ternary", op}
	d, err := cpuBuf(name, "dst", dst)
	if err != nil {
		return err
	}
	as, err := cpuBuf(name, "a", a)
	if err != nil {
		return err
	}
	bs, err := cpuBuf(name, "b", b)
	if err != nil {
		return err
	}
	cs, err := cpuBuf(name, "c", x)
	if err != nil {
		return err
	}
	s := w.Collapse()
	run := func(lo, hi int) {
		const in = MaxDims - 1
		sa, sb, sc := s.A[in], s.B[in], s.C[in]
		s.rows(lo, hi, func(off, ao, bo, co, m int) {
			for i := range m {
				if as[ao+i*sa] != 0 {
					d[off+i] = bs[bo+i*sb]
				} else {
					d[off+i] = cs[co+i*sc]
				}
			}
		})
	}
	if c.serial(n, n) {
		run(0, n)
		return nil
	}
	c.parallel(n, n, run)
	return nil
}

// cpuBinaryRow computes d[i] = op(a[i*sa], b[i*sb]). The common cases, both
// contiguous or one a broadcast scalar, have loops of their own.
func cpuBinaryRow(op BinaryOp, d, a []float32, sa int, b []float32, sb int, alpha, beta float32) {
	n := len(d)
	switch {
	case sa == 1 && sb == 1:
		a, b := a[:n], b[:n]
		switch op {
		case Add:
			for i := range d {
				d[i] = a[i] + b[i]
			}
			return
		case Sub:
			for i := range d {
				d[i] = a[i] - b[i]
			}
			return
		case Mul:
			for i := range d {
				d[i] = a[i] * b[i]
			}
			return
		case Div:
			for i := range d {
				d[i] = a[i] / b[i]
			}
			return
		case ReluGrad:
			k := 0
			if cpuSIMD() {
				k = reluGradVec(d, nil, a, b)
			}
			for i := k; i < n; i++ {
				d[i] = cpuReluGrad(a[i], b[i])
			}
			return
		}
	case sa == 1 && sb == 0:
		a, y := a[:n], b[0]
		switch op {
		case Add:
			for i := range d {
				d[i] = a[i] + y
			}
			return
		case Sub:
			for i := range d {
				d[i] = a[i] - y
			}
			return
		case Mul:
			for i := range d {
				d[i] = a[i] * y
			}
			return
		case Div:
			for i := range d {
				d[i] = a[i] / y
			}
			return
		}
	case sa == 0 && sb == 1:
		x, b := a[0], b[:n]
		switch op {
		case Add:
			for i := range d {
				d[i] = x + b[i]
			}
			return
		case Sub:
			for i := range d {
				d[i] = x - b[i]
			}
			return
		case Mul:
			for i := range d {
				d[i] = x * b[i]
			}
			return
		case Div:
			for i := range d {
				d[i] = x / b[i]
			}
			return
		}
	}
	f := cpuBinaryFunc(op, alpha, beta)
	for i, ia, ib := 0, 0, 0; i < n; i, ia, ib = i+1, ia+sa, ib+sb {
		d[i] = f(a[ia], b[ib])
	}
}

// cpuBinaryFunc returns op as a function of two values.
func cpuBinaryFunc(op BinaryOp, alpha, beta float32) func(a, b float32) float32 {
	switch op {
	case Add:
		return func(a, b float32) float32 { return a + b }
	case Sub:
		return func(a, b float32) float32 { return a - b }
	case Mul:
		return func(a, b float32) float32 { return a * b }
	case Div:
		return func(a, b float32) float32 { return a / b }
	case Pow:
		return func(a, b float32) float32 { return float32(math.Pow(float64(a), float64(b))) }
	case Max:
		return func(a, b float32) float32 { return max(a, b) }
	case GreaterEq:
		return func(a, b float32) float32 {
			if a >= b {
				return 1
			}
			return 0
		}
	case ReluGrad:
		return cpuReluGrad
	case SigmoidGrad:
		return func(a, b float32) float32 { return b * a * (1 - a) }
	case TanhGrad:
		return func(a, b float32) float32 { return b * (1 - a*a) }
	case Greater:
		return func(a, b float32) float32 {
			if a > b {
				return 1
			}
			return 0
		}
	case Equal:
		return func(a, b float32) float32 {
			if a == b {
				return 1
			}
			return 0
		}
	case AbsGrad:
		return func(a, b float32) float32 { return b * cpuSign(a) }
	case LeakyReluGrad:
		return func(a, b float32) float32 {
			if a > 0 {
				return b
			}
			return alpha * b
		}
	case GeluTanhGrad:
		return func(a, b float32) float32 { return float32(float64(b) * cpuGeluTanhGrad(float64(a))) }
	case GeluErfGrad:
		return func(a, b float32) float32 { return float32(float64(b) * cpuGeluErfGrad(float64(a))) }
	case SiluGrad:
		return func(a, b float32) float32 {
			x := float64(a)
			s := 1 / (1 + math.Exp(-x))
			return float32(float64(b) * s * (1 + x*(1-s)))
		}
	case SoftplusGrad:
		return func(a, b float32) float32 {
			if a > 20 {
				return b
			}
			return float32(float64(b) / (1 + math.Exp(-float64(a))))
		}
	case ClampGrad:
		return func(a, b float32) float32 {
			if a >= alpha && a <= beta {
				return b
			}
			return 0
		}
	}
	panic("device: cpu binary: unreachable op " + op.String())
}

// cpuReluGrad passes the gradient g where the relu input x was positive. It
// selects with a bit mask instead of a branch: t lies in [0, 0x7f7fffff]
// exactly when x > 0 (+Inf included, NaN and both zeros excluded).
func cpuReluGrad(x, g float32) float32 {
	t := int64(math.Float32bits(x)) - 1
	drop := uint32(t>>63 | (0x7f7fffff-t)>>63)
	return math.Float32frombits(math.Float32bits(g) &^ drop)
}

// rows calls fn for each run of output offsets [off, off+m) within [lo, hi)
// that lies in one innermost row of the collapsed walk s, with the
// inputs' offsets ao, bo and co, which it updates row by row.
func (s *Walk) rows(lo, hi int, fn func(off, ao, bo, co, m int)) {
	if lo >= hi {
		return
	}
	const in = MaxDims - 1
	var idx [MaxDims]int
	r := lo
	for d := in; d >= 0; d-- {
		idx[d] = r % s.Shape[d]
		r /= s.Shape[d]
	}
	ao, bo, co := s.OffA, s.OffB, s.OffC
	for d := range MaxDims {
		ao += idx[d] * s.A[d]
		bo += idx[d] * s.B[d]
		co += idx[d] * s.C[d]
	}
	for off := lo; off < hi; {
		m := min(s.Shape[in]-idx[in], hi-off)
		fn(off, ao, bo, co, m)
		off += m
		ao -= idx[in] * s.A[in]
		bo -= idx[in] * s.B[in]
		co -= idx[in] * s.C[in]
		idx[in] = 0
		for d := in - 1; d >= 0; d-- {
			idx[d]++
			ao += s.A[d]
			bo += s.B[d]
			co += s.C[d]
			if idx[d] < s.Shape[d] {
				break
			}
			ao -= s.Shape[d] * s.A[d]
			bo -= s.Shape[d] * s.B[d]
			co -= s.Shape[d] * s.C[d]
			idx[d] = 0
		}
	}
}

// indexRows calls fn for each run of output offsets [off, off+m) within
// [lo, hi) that lies in one innermost row, with the index of its first
// element.
func (s *Walk) indexRows(lo, hi int, fn func(off int, idx [MaxDims]int, m int)) {
	if lo >= hi {
		return
	}
	const in = MaxDims - 1
	var idx [MaxDims]int
	r := lo
	for d := in; d >= 0; d-- {
		idx[d] = r % s.Shape[d]
		r /= s.Shape[d]
	}
	for off := lo; off < hi; {
		m := min(s.Shape[in]-idx[in], hi-off)
		fn(off, idx, m)
		off += m
		idx[in] = 0
		for d := in - 1; d >= 0; d-- {
			if idx[d]++; idx[d] < s.Shape[d] {
				break
			}
			idx[d] = 0
		}
	}
}
