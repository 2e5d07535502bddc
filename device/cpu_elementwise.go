package device

import (
	"fmt"
	"math"

	"github.com/chewxy/math32"
)

// Copy writes the strided walk of x described by w.Shape and w.A into dst.
func (c *CPU) Copy(dst, x Buffer, w Walk) error {
	w.B = w.A
	name := cpuOp{kind: "copy"}
	s, n, err := cpuWalk(name, w)
	if err != nil {
		return err
	}
	d, err := cpuData(name, "dst", dst, n)
	if err != nil {
		return err
	}
	xs, err := cpuData(name, "x", x, s.span(s.a))
	if err != nil {
		return err
	}
	if s.a[3] > 1 && s.a[2] == 1 {
		c.transpose(d, xs, s)
		return nil
	}
	if c.serial(n, n) {
		cpuCopyRange(d, xs, s, 0, n)
		return nil
	}
	sc := s // captured by value: s has its address taken
	c.parallel(n, n, func(lo, hi int) { cpuCopyRange(d, xs, sc, lo, hi) })
	return nil
}

// cpuCopyRange is Copy on output offsets [lo, hi).
func cpuCopyRange(d, x []float32, s cpuStrided, lo, hi int) {
	s.rows(lo, hi, func(off, ao, _, m int) {
		cpuCopyRow(d[off:off+m], x[ao:], s.a[MaxDims-1])
	})
}

// cpuTile is the side of the square tiles a transposing copy moves at once,
// so that the source lines it reads stay in cache while they are used.
const cpuTile = 32

// transpose is Copy for walks whose two inner axes are a transposition
// (the source is contiguous along axis 2 and strided along axis 3), batched
// over axes 0 and 1. It copies tile by tile.
func (c *CPU) transpose(d, x []float32, s cpuStrided) {
	rows, cols, sx := s.shape[2], s.shape[3], s.a[3]
	tiles := (rows + cpuTile - 1) / cpuTile
	c.parallel(s.shape[0]*s.shape[1]*tiles, rows*cols*s.shape[0]*s.shape[1], func(lo, hi int) {
		for u := lo; u < hi; u++ {
			batch, r0 := u/tiles, (u%tiles)*cpuTile
			r1 := min(r0+cpuTile, rows)
			xb := batch/s.shape[1]*s.a[0] + batch%s.shape[1]*s.a[1]
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

// Unary computes dst[i] = op(x[i], alpha) for i < n.
func (c *CPU) Unary(op UnaryOp, dst, x Buffer, n int, alpha float32) error {
	if op < 0 || op >= numUnary {
		return fmt.Errorf("device: cpu unary: unknown op %v", op)
	}
	name := cpuOp{"unary", op}
	if n < 0 {
		return name.errorf("negative length %d", n)
	}
	d, err := cpuData(name, "dst", dst, n)
	if err != nil {
		return err
	}
	xs, err := cpuData(name, "x", x, n)
	if err != nil {
		return err
	}
	work := n
	if op == Exp || op == Log || op == Sigmoid || op == Tanh || op == PowScalar {
		work *= 8
	}
	if c.serial(n, work) {
		cpuUnary(op, d, xs, alpha)
		return nil
	}
	c.parallel(n, work, func(lo, hi int) { cpuUnary(op, d[lo:hi], xs[lo:hi], alpha) })
	return nil
}

// cpuUnary applies op elementwise; x and d have the same length.
func cpuUnary(op UnaryOp, d, x []float32, alpha float32) {
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
		for i, v := range x {
			d[i] = cpuRelu(v)
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
	}
}

// cpuRelu is max(v, 0), passing NaN through. The builtin max compiles
// without a branch, which random signs would mispredict.
func cpuRelu(v float32) float32 { return max(v, 0) }

// cpuSigmoid is 1/(1+e^-v), evaluated in float64.
func cpuSigmoid(v float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(v))))
}

// Binary computes dst = op(a, b) elementwise over w.Shape, reading a at
// strides w.A and b at strides w.B.
func (c *CPU) Binary(op BinaryOp, dst, a, b Buffer, w Walk) error {
	if op < 0 || op >= numBinary {
		return fmt.Errorf("device: cpu binary: unknown op %v", op)
	}
	name := cpuOp{"binary", op}
	s, n, err := cpuWalk(name, w)
	if err != nil {
		return err
	}
	d, err := cpuData(name, "dst", dst, n)
	if err != nil {
		return err
	}
	as, err := cpuData(name, "a", a, s.span(s.a))
	if err != nil {
		return err
	}
	bs, err := cpuData(name, "b", b, s.span(s.b))
	if err != nil {
		return err
	}
	work := n
	if op == Pow {
		work *= 8
	}
	if c.serial(n, work) {
		cpuBinaryRange(op, d, as, bs, s, 0, n)
		return nil
	}
	sc := s // captured by value: s has its address taken
	c.parallel(n, work, func(lo, hi int) { cpuBinaryRange(op, d, as, bs, sc, lo, hi) })
	return nil
}

// cpuBinaryRange is Binary on output offsets [lo, hi).
func cpuBinaryRange(op BinaryOp, d, a, b []float32, s cpuStrided, lo, hi int) {
	sa, sb := s.a[MaxDims-1], s.b[MaxDims-1]
	s.rows(lo, hi, func(off, ao, bo, m int) {
		cpuBinaryRow(op, d[off:off+m], a[ao:], sa, b[bo:], sb)
	})
}

// cpuBinaryRow computes d[i] = op(a[i*sa], b[i*sb]). The common cases, both
// contiguous or one a broadcast scalar, have loops of their own.
func cpuBinaryRow(op BinaryOp, d, a []float32, sa int, b []float32, sb int) {
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
			for i := range d {
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
	f := cpuBinaryFunc(op)
	for i, ia, ib := 0, 0, 0; i < n; i, ia, ib = i+1, ia+sa, ib+sb {
		d[i] = f(a[ia], b[ib])
	}
}

// cpuBinaryFunc returns op as a function of two values.
func cpuBinaryFunc(op BinaryOp) func(a, b float32) float32 {
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

// cpuStrided is a collapsed Walk (see Walk.Collapse).
type cpuStrided struct {
	shape, a, b [MaxDims]int
}

// cpuWalk validates w and returns it collapsed, with its element count.
func cpuWalk(op cpuOp, w Walk) (cpuStrided, int, error) {
	s := cpuStrided{shape: w.Shape, a: w.A, b: w.B}
	n, err := cpuSize(op, w.Shape[:]...)
	if err != nil {
		return s, 0, err
	}
	for d := range MaxDims {
		if w.A[d] < 0 || w.B[d] < 0 {
			return s, 0, op.errorf("negative stride in walk %v", w)
		}
	}
	if s.span(s.a) < 0 || s.span(s.b) < 0 {
		return s, 0, op.errorf("walk %v overflows int", w)
	}
	if n == 0 {
		return s, 0, nil
	}
	c := w.Collapse()
	return cpuStrided{shape: c.Shape, a: c.A, b: c.B}, n, nil
}

// span is the number of values an operand read at strides st must hold:
// one past its largest offset, 0 for an empty walk, and -1 on overflow.
func (s *cpuStrided) span(st [MaxDims]int) int {
	last := 0
	for d := range MaxDims {
		if s.shape[d] == 0 {
			return 0
		}
		if st[d] != 0 && s.shape[d]-1 > (math.MaxInt-last)/st[d] {
			return -1
		}
		last += (s.shape[d] - 1) * st[d]
	}
	return last + 1
}

// rows calls fn for each run of output offsets [off, off+m) within [lo, hi)
// that lies in one innermost row, with the operands' offsets ao and bo.
func (s *cpuStrided) rows(lo, hi int, fn func(off, ao, bo, m int)) {
	if lo >= hi {
		return
	}
	n3 := s.shape[3]
	i3, r := lo%n3, lo/n3
	i2, r := r%s.shape[2], r/s.shape[2]
	i1, i0 := r%s.shape[1], r/s.shape[1]
	for off := lo; off < hi; {
		m := min(n3-i3, hi-off)
		ao := i0*s.a[0] + i1*s.a[1] + i2*s.a[2] + i3*s.a[3]
		bo := i0*s.b[0] + i1*s.b[1] + i2*s.b[2] + i3*s.b[3]
		fn(off, ao, bo, m)
		off += m
		i3 = 0
		if i2++; i2 == s.shape[2] {
			i2 = 0
			if i1++; i1 == s.shape[1] {
				i1 = 0
				i0++
			}
		}
	}
}
