package device_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// Tolerances against the float64 references: elementwise results may be one
// rounding off, sums over long axes a few more.
const (
	atol = 1e-6
	rtol = 1e-5
	// sumTol is for results that accumulate many float32 products.
	sumTol = 1e-4
)

var sizes = []int{1, 7, 129, 1000}

// randNZ returns n values in [-2, 2] with magnitude at least 0.05.
func randNZ(r *rand.Rand, n int) []float32 {
	s := testutil.RandSlice(r, n, -2, 2)
	for i, v := range s {
		if v > -0.05 && v < 0.05 {
			s[i] = 0.05 + 0.1*r.Float32()
		}
	}
	return s
}

// randPos returns n values in [0.1, 2].
func randPos(r *rand.Rand, n int) []float32 { return testutil.RandSlice(r, n, 0.1, 2) }

// labels returns n random integer labels in [0, classes), stored as float32.
func labels(r *rand.Rand, n, classes int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.IntN(classes))
	}
	return s
}

// newBufs uploads each slice to d and frees the buffers when the test ends.
func newBufs(t *testing.T, d device.Device, vals ...[]float32) []device.Buffer {
	t.Helper()
	bufs := make([]device.Buffer, len(vals))
	for i, v := range vals {
		bufs[i] = testutil.Upload(t, d, v)
		b := bufs[i]
		t.Cleanup(func() { d.Free(b) })
	}
	return bufs
}

// scratch allocates an output of n values filled with a sentinel, so that
// unwritten values show.
func scratch(t *testing.T, d device.Device, n int) device.Buffer {
	t.Helper()
	s := make([]float32, n)
	for i := range s {
		s[i] = -12345
	}
	return newBufs(t, d, s)[0]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func f64(v float32) float64 { return float64(v) }

func TestFillAndCopyInOut(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(1, 1))
		for _, n := range sizes {
			v := randNZ(r, n)
			b := newBufs(t, d, v)[0]
			testutil.AllClose(t, fmt.Sprint("round trip ", n), testutil.Download(t, d, b, n), v, 0, 0)
			must(t, d.Fill(b, n-1, 2.5))
			want := make([]float32, n)
			for i := range want {
				want[i] = 2.5
			}
			want[n-1] = v[n-1]
			testutil.AllClose(t, fmt.Sprint("fill ", n), testutil.Download(t, d, b, n), want, 0, 0)
		}
	})
}

// walkRef evaluates f over w in float64, reading a and b at w's offsets
// and strides (and a with w's padding).
func walkRef(w device.Walk, a, b []float32, f func(x, y float64) float64) []float32 {
	n := w.N()
	out := make([]float32, 0, n)
	for i := range n {
		var idx [device.MaxDims]int
		r := i
		for d := device.MaxDims - 1; d >= 0; d-- {
			idx[d] = r % w.Shape[d]
			r /= w.Shape[d]
		}
		ia, ib, inside := w.OffA, w.OffB, true
		for d := range device.MaxDims {
			lo := 0
			if w.Pad {
				lo = w.Lo[d]
				inside = inside && idx[d] >= w.Lo[d] && idx[d] < w.Hi[d]
			}
			ia += (idx[d] - lo) * w.A[d]
			ib += idx[d] * w.B[d]
		}
		if !inside {
			out = append(out, w.Fill)
			continue
		}
		y := 0.0
		if b != nil {
			y = f64(b[ib])
		}
		out = append(out, float32(f(f64(a[ia]), y)))
	}
	return out
}

type walkCase struct {
	name   string
	w      device.Walk
	na, nb int
}

func sh(s ...int) [device.MaxDims]int {
	var r [device.MaxDims]int
	copy(r[device.MaxDims-len(s):], s)
	for i := range device.MaxDims - len(s) {
		r[i] = 1
	}
	return r
}

func st(s ...int) [device.MaxDims]int {
	var r [device.MaxDims]int
	copy(r[device.MaxDims-len(s):], s)
	return r
}

func walkCases() []walkCase {
	var cs []walkCase
	for _, n := range sizes {
		cs = append(cs, walkCase{fmt.Sprint("contiguous ", n), device.Contiguous(n), n, n})
	}
	return append(cs,
		walkCase{"bias row 7x129", device.Walk{Shape: sh(7, 129), A: st(129, 1), B: st(0, 1)}, 7 * 129, 129},
		walkCase{"bias row 301x257", device.Walk{Shape: sh(301, 257), A: st(257, 1), B: st(0, 1)}, 301 * 257, 257},
		walkCase{"row on left 7x129", device.Walk{Shape: sh(7, 129), A: st(0, 1), B: st(129, 1)}, 129, 7 * 129},
		walkCase{"column 129x7", device.Walk{Shape: sh(129, 7), A: st(7, 1), B: st(1, 0)}, 129 * 7, 129},
		walkCase{"column 1001x129", device.Walk{Shape: sh(1001, 129), A: st(129, 1), B: st(1, 0)}, 1001 * 129, 1001},
		walkCase{"scalar 1000", device.Walk{Shape: sh(1000), A: st(1), B: st(0)}, 1000, 1},
		walkCase{"scalar left 7x129", device.Walk{Shape: sh(7, 129), A: st(0, 0), B: st(129, 1)}, 1, 7 * 129},
		walkCase{"transposed a 7x129", device.Walk{Shape: sh(7, 129), A: st(1, 7), B: st(129, 1)}, 7 * 129, 7 * 129},
		walkCase{"both transposed 129x7", device.Walk{Shape: sh(129, 7), A: st(1, 129), B: st(1, 129)}, 7 * 129, 7 * 129},
		walkCase{"transposed 299x301", device.Walk{Shape: sh(299, 301), A: st(1, 299), B: st(301, 1)}, 299 * 301, 299 * 301},
		walkCase{"4d broadcast", device.Walk{Shape: sh(3, 5, 7, 9), A: st(315, 63, 9, 1), B: st(0, 9, 0, 1)}, 3 * 5 * 7 * 9, 45},
		walkCase{"batched transpose", device.Walk{Shape: sh(3, 50, 40), A: st(2000, 1, 50), B: st(2000, 40, 1)}, 6000, 6000},
		walkCase{"broadcast transpose", device.Walk{Shape: sh(2, 3, 50, 40), A: st(0, 2000, 1, 50), B: st(0, 0, 40, 1)}, 6000, 2000},
		walkCase{"4d permuted", device.Walk{Shape: sh(2, 3, 4, 5), A: st(1, 2, 6, 24), B: st(0, 0, 5, 1)}, 120, 20},
		walkCase{"outer product", device.Walk{Shape: sh(129, 7), A: st(1, 0), B: st(0, 1)}, 129, 7},
		walkCase{"gapped rows", device.Walk{Shape: sh(7, 5), A: st(9, 1), B: st(5, 1)}, 6*9 + 5, 35},
		walkCase{"empty", device.Walk{Shape: sh(0, 5), A: st(5, 1), B: st(5, 1)}, 0, 0},
	)
}

func TestCopy(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(2, 2))
		for _, c := range walkCases() {
			x := randNZ(r, c.na)
			want := walkRef(c.w, x, nil, func(x, _ float64) float64 { return x })
			bufs := newBufs(t, d, append(x, 0))
			dst := scratch(t, d, c.w.N()+1)
			must(t, d.Copy(dst, bufs[0], c.w))
			got := testutil.Download(t, d, dst, c.w.N()+1)
			testutil.AllClose(t, c.name, got[:c.w.N()], want, 0, 0)
			if got[c.w.N()] != -12345 {
				t.Errorf("%s: wrote past the end", c.name)
			}
		}
	})
}

func TestUnary(t *testing.T) {
	cases := []struct {
		op    device.UnaryOp
		alpha float32
		pos   bool // needs positive inputs
		ref   func(x, alpha float64) float64
	}{
		{device.Neg, 0, false, func(x, _ float64) float64 { return -x }},
		{device.Exp, 0, false, func(x, _ float64) float64 { return math.Exp(x) }},
		{device.Log, 0, true, func(x, _ float64) float64 { return math.Log(x) }},
		{device.Relu, 0, false, func(x, _ float64) float64 { return math.Max(x, 0) }},
		{device.Sigmoid, 0, false, func(x, _ float64) float64 { return 1 / (1 + math.Exp(-x)) }},
		{device.Tanh, 0, false, func(x, _ float64) float64 { return math.Tanh(x) }},
		{device.Sqrt, 0, true, func(x, _ float64) float64 { return math.Sqrt(x) }},
		{device.AddScalar, 0.75, false, func(x, a float64) float64 { return x + a }},
		{device.MulScalar, -1.5, false, func(x, a float64) float64 { return x * a }},
		{device.PowScalar, 1.7, true, math.Pow},
		{device.PowScalar, 2, false, math.Pow},
		{device.PowScalar, -0.5, true, math.Pow},
		{device.Square, 0, false, func(x, _ float64) float64 { return x * x }},
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(3, 3))
		for _, c := range cases {
			for _, n := range append(sizes, 40000) {
				x := randNZ(r, n)
				if c.pos {
					x = randPos(r, n)
				}
				want := make([]float32, n)
				for i, v := range x {
					want[i] = float32(c.ref(f64(v), f64(c.alpha)))
				}
				xb := newBufs(t, d, x)[0]
				dst := scratch(t, d, n)
				must(t, d.Unary(c.op, dst, xb, n, c.alpha, 0))
				name := fmt.Sprintf("%v(alpha %v) n=%d", c.op, c.alpha, n)
				testutil.AllClose(t, name, testutil.Download(t, d, dst, n), want, atol, rtol)
				// In place.
				must(t, d.Unary(c.op, xb, xb, n, c.alpha, 0))
				testutil.AllClose(t, name+" in place", testutil.Download(t, d, xb, n), want, atol, rtol)
			}
		}
	})
}

func TestBinary(t *testing.T) {
	cases := []struct {
		op  device.BinaryOp
		pos bool // a must be positive
		ref func(a, b float64) float64
	}{
		{device.Add, false, func(a, b float64) float64 { return a + b }},
		{device.Sub, false, func(a, b float64) float64 { return a - b }},
		{device.Mul, false, func(a, b float64) float64 { return a * b }},
		{device.Div, false, func(a, b float64) float64 { return a / b }},
		{device.Pow, true, math.Pow},
		{device.Max, false, math.Max},
		{device.GreaterEq, false, func(a, b float64) float64 { return b2f(a >= b) }},
		{device.ReluGrad, false, func(a, b float64) float64 { return b * b2f(a > 0) }},
		{device.SigmoidGrad, false, func(a, b float64) float64 { return b * a * (1 - a) }},
		{device.TanhGrad, false, func(a, b float64) float64 { return b * (1 - a*a) }},
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(4, 4))
		for _, c := range cases {
			for _, wc := range walkCases() {
				a, b := randNZ(r, wc.na), randNZ(r, wc.nb)
				if c.pos {
					a = randPos(r, wc.na)
				}
				if c.op == device.GreaterEq && wc.na == wc.nb {
					copy(a[:wc.na/2], b) // exact ties
				}
				want := walkRef(wc.w, a, b, c.ref)
				bufs := newBufs(t, d, append(a, 1), append(b, 1))
				dst := scratch(t, d, wc.w.N())
				must(t, d.Binary(c.op, dst, bufs[0], bufs[1], wc.w, 0, 0))
				name := fmt.Sprintf("%v %s", c.op, wc.name)
				testutil.AllClose(t, name, testutil.Download(t, d, dst, wc.w.N()), want, atol, rtol)
			}
		}
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// reduceRef reduces x of [outer, n, inner] over its middle axis in float64.
func reduceRef(op device.ReduceOp, x []float32, outer, n, inner int) []float32 {
	out := make([]float32, outer*inner)
	for o := range outer {
		for c := range inner {
			at := func(j int) float64 { return f64(x[(o*n+j)*inner+c]) }
			var acc float64
			best := 0
			for j := range n {
				acc += at(j)
				if at(j) > at(best) {
					best = j
				}
			}
			switch op {
			case device.Sum:
				out[o*inner+c] = float32(acc)
			case device.Mean:
				out[o*inner+c] = float32(acc / float64(n))
			case device.MaxOf:
				out[o*inner+c] = float32(at(best))
			case device.ArgMax:
				out[o*inner+c] = float32(best)
			}
		}
	}
	return out
}

func TestReduce(t *testing.T) {
	layouts := [][3]int{
		{1, 1, 1}, {1, 7, 1}, {1, 1000, 1}, {7, 129, 1}, {129, 7, 1}, {300, 129, 1},
		{1, 7, 129}, {1, 129, 7}, {7, 1, 5}, {3, 7, 300}, {1, 300, 200}, {5, 1000, 7}, {129, 1, 1},
	}
	ops := []device.ReduceOp{device.Sum, device.Mean, device.MaxOf, device.ArgMax}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(5, 5))
		for _, op := range ops {
			for _, l := range layouts {
				outer, n, inner := l[0], l[1], l[2]
				x := randNZ(r, outer*n*inner)
				if op == device.ArgMax && n > 3 {
					// A repeated maximum: the first index must win.
					for o := range outer {
						for c := range inner {
							x[(o*n+1)*inner+c] = 5
							x[(o*n+n-1)*inner+c] = 5
						}
					}
				}
				want := reduceRef(op, x, outer, n, inner)
				xb := newBufs(t, d, x)[0]
				dst := scratch(t, d, outer*inner)
				must(t, d.Reduce(op, dst, xb, outer, n, inner))
				name := fmt.Sprintf("%v [%d,%d,%d]", op, outer, n, inner)
				testutil.AllClose(t, name, testutil.Download(t, d, dst, outer*inner), want, sumTol, sumTol)
			}
		}
	})
}

func TestMatMul(t *testing.T) {
	dims := [][3]int{{1, 1, 1}, {1, 7, 1}, {7, 1, 129}, {7, 129, 3}, {129, 7, 1000}, {33, 65, 17}, {128, 300, 129}}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(6, 6))
		for _, dm := range dims {
			m, k, n := dm[0], dm[1], dm[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, acc := range []bool{false, true} {
						a, b, c := randNZ(r, m*k), randNZ(r, k*n), randNZ(r, m*n)
						want := make([]float32, m*n)
						for i := range m {
							for j := range n {
								var s float64
								if acc {
									s = f64(c[i*n+j])
								}
								for l := range k {
									ai, bi := i*k+l, l*n+j
									if ta {
										ai = l*m + i
									}
									if tb {
										bi = j*k + l
									}
									s += f64(a[ai]) * f64(b[bi])
								}
								want[i*n+j] = float32(s)
							}
						}
						bufs := newBufs(t, d, a, b, c)
						must(t, d.MatMul(bufs[2], bufs[0], bufs[1], m, k, n, ta, tb, acc))
						name := fmt.Sprintf("%dx%dx%d transA=%v transB=%v acc=%v", m, k, n, ta, tb, acc)
						testutil.AllClose(t, name, testutil.Download(t, d, bufs[2], m*n), want, sumTol, sumTol)
					}
				}
			}
		}
		// An empty inner dimension gives zeros, or leaves dst when accumulating.
		bufs := newBufs(t, d, []float32{1}, []float32{1}, []float32{3, 4, 5, 6})
		must(t, d.MatMul(bufs[2], bufs[0], bufs[1], 2, 0, 2, false, false, true))
		testutil.AllClose(t, "k=0 accumulate", testutil.Download(t, d, bufs[2], 4), []float32{3, 4, 5, 6}, 0, 0)
		must(t, d.MatMul(bufs[2], bufs[0], bufs[1], 2, 0, 2, false, false, false))
		testutil.AllClose(t, "k=0", testutil.Download(t, d, bufs[2], 4), []float32{0, 0, 0, 0}, 0, 0)
	})
}

// softmaxRef returns softmax or log-softmax of each row in float64.
func softmaxRef(x []float32, rows, n int, log bool) []float32 {
	out := make([]float32, len(x))
	for r := range rows {
		row := x[r*n : r*n+n]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, f64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(f64(v) - m)
		}
		for j, v := range row {
			if log {
				out[r*n+j] = float32(f64(v) - m - math.Log(s))
			} else {
				out[r*n+j] = float32(math.Exp(f64(v)-m) / s)
			}
		}
	}
	return out
}

var softmaxShapes = [][2]int{{1, 1}, {1, 7}, {7, 129}, {129, 7}, {300, 200}, {3, 1000}}

func TestSoftmax(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(7, 7))
		for _, s := range softmaxShapes {
			rows, n := s[0], s[1]
			for _, shift := range []float32{0, 1000} {
				x := randNZ(r, rows*n)
				for i := range x {
					x[i] = 4*x[i] + shift // large logits overflow exp unless the max is subtracted
				}
				for _, log := range []bool{false, true} {
					xb := newBufs(t, d, x)[0]
					dst := scratch(t, d, rows*n)
					must(t, d.Softmax(dst, xb, rows, n, log))
					name := fmt.Sprintf("softmax %dx%d shift=%v log=%v", rows, n, shift, log)
					want := softmaxRef(x, rows, n, log)
					tol := atol
					if log {
						tol = 1e-5 // |log p| grows with the spread of the logits
					}
					testutil.AllClose(t, name, testutil.Download(t, d, dst, rows*n), want, tol, rtol)
				}
			}
		}
	})
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		ce, ok := d.(device.SoftmaxCE)
		if !ok {
			t.Skipf("%s has no fused softmax cross-entropy", d.Name())
		}
		r := rand.New(rand.NewPCG(8, 8))
		for _, s := range softmaxShapes {
			rows, n := s[0], s[1]
			x, y := randNZ(r, rows*n), labels(r, rows, n)
			for i := range x {
				x[i] *= 5
			}
			scale := float32(1) / float32(rows)
			logp := softmaxRef(x, rows, n, true)
			wantLoss := make([]float32, rows)
			wantGrad := make([]float32, rows*n)
			for i := range rows {
				wantLoss[i] = -logp[i*n+int(y[i])]
				for j := range n {
					g := math.Exp(f64(logp[i*n+j]))
					if j == int(y[i]) {
						g--
					}
					wantGrad[i*n+j] = float32(g * f64(scale))
				}
			}
			bufs := newBufs(t, d, x, y)
			loss, grad := scratch(t, d, rows), scratch(t, d, rows*n)
			must(t, ce.SoftmaxCrossEntropy(loss, grad, bufs[0], bufs[1], rows, n, scale))
			name := fmt.Sprintf("softmax ce %dx%d", rows, n)
			testutil.AllClose(t, name+" loss", testutil.Download(t, d, loss, rows), wantLoss, sumTol, rtol)
			testutil.AllClose(t, name+" grad", testutil.Download(t, d, grad, rows*n), wantGrad, atol, sumTol)
		}
	})
}

func TestGather(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(9, 9))
		for _, c := range [][3]int{{1, 1, 1}, {129, 7, 1000}, {7, 129, 3}, {1000, 300, 129}} {
			srcRows, rowLen, nidx := c[0], c[1], c[2]
			src, idx := randNZ(r, srcRows*rowLen), labels(r, nidx, srcRows)
			idx[0] = float32(srcRows - 1)
			want := make([]float32, 0, nidx*rowLen)
			for _, i := range idx {
				want = append(want, src[int(i)*rowLen:int(i)*rowLen+rowLen]...)
			}
			bufs := newBufs(t, d, src, idx)
			dst := scratch(t, d, nidx*rowLen)
			must(t, d.Gather(dst, bufs[0], bufs[1], nidx, rowLen))
			name := fmt.Sprintf("gather %d of %dx%d", nidx, srcRows, rowLen)
			testutil.AllClose(t, name, testutil.Download(t, d, dst, nidx*rowLen), want, 0, 0)
		}
	})
}

func TestDropoutMask(t *testing.T) {
	const n = 100000
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		// The last p equals the draw for element 3 exactly: it must be kept.
		for _, p := range []float32{0, 0.1, 0.5, 0.9, 1, device.HashUniform(42, 3)} {
			dst := scratch(t, d, n)
			must(t, d.DropoutMask(dst, n, p, 42))
			got := testutil.Download(t, d, dst, n)
			want := make([]float32, n)
			kept := 0
			for i := range want {
				if device.HashUniform(42, uint64(i)) >= p {
					want[i] = 1 / (1 - p)
				}
				if got[i] != 0 {
					kept++
				}
			}
			name := fmt.Sprintf("dropout p=%v", p)
			testutil.AllClose(t, name, got, want, 0, 1e-6)
			if frac := float64(kept) / n; math.Abs(frac-(1-f64(p))) > 0.01 {
				t.Errorf("%s: kept %.4f, want about %.4f", name, frac, 1-p)
			}
			if p == 0 || p == 1 {
				continue
			}
			must(t, d.DropoutMask(dst, n, p, 43))
			other := testutil.Download(t, d, dst, n)
			same := 0
			for i := range got {
				if (got[i] == 0) == (other[i] == 0) {
					same++
				}
			}
			// Independent masks agree on p^2 + (1-p)^2 of the elements.
			agree := f64(p)*f64(p) + (1-f64(p))*(1-f64(p))
			if frac := float64(same) / n; math.Abs(frac-agree) > 0.01 {
				t.Errorf("%s: seeds 42 and 43 agree on %.4f of the mask, want about %.4f", name, frac, agree)
			}
		}
	})
}

func TestBiasAct(t *testing.T) {
	acts := []struct {
		act device.Activation
		f   func(float64) float64
	}{
		{device.Identity, func(v float64) float64 { return v }},
		{device.ActRelu, func(v float64) float64 { return math.Max(v, 0) }},
		{device.ActSigmoid, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{device.ActTanh, math.Tanh},
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		ba, ok := d.(device.BiasAct)
		if !ok {
			t.Skipf("%s has no fused bias activation", d.Name())
		}
		r := rand.New(rand.NewPCG(10, 10))
		for _, a := range acts {
			for _, s := range [][2]int{{1, 1}, {7, 129}, {129, 7}, {1000, 129}} {
				rows, n := s[0], s[1]
				x, bias := randNZ(r, rows*n), randNZ(r, n)
				want := make([]float32, rows*n)
				for i := range want {
					want[i] = float32(a.f(float64(x[i] + bias[i%n])))
				}
				bufs := newBufs(t, d, x, bias)
				dst := scratch(t, d, rows*n)
				must(t, ba.BiasAct(dst, bufs[0], bufs[1], rows, n, a.act))
				name := fmt.Sprintf("bias act %d %dx%d", a.act, rows, n)
				testutil.AllClose(t, name, testutil.Download(t, d, dst, rows*n), want, atol, rtol)
			}
		}
	})
}

func TestBiasActGrad(t *testing.T) {
	acts := []struct {
		act device.Activation
		f   func(y float64) float64 // the derivative from the output
	}{
		{device.Identity, func(float64) float64 { return 1 }},
		{device.ActRelu, func(y float64) float64 {
			if y > 0 {
				return 1
			}
			return 0
		}},
		{device.ActSigmoid, func(y float64) float64 { return y * (1 - y) }},
		{device.ActTanh, func(y float64) float64 { return 1 - y*y }},
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		bg, ok := d.(device.BiasActGrad)
		if !ok {
			t.Skipf("%s has no fused bias activation gradient", d.Name())
		}
		r := rand.New(rand.NewPCG(14, 14))
		for _, a := range acts {
			for _, s := range [][2]int{{1, 1}, {7, 129}, {129, 7}, {128, 256}, {1000, 129}} {
				rows, n := s[0], s[1]
				y, g, db0 := randNZ(r, rows*n), randNZ(r, rows*n), randNZ(r, n)
				if a.act == device.ActRelu {
					for i := range y { // a ReLU output: half zeros
						y[i] = max(y[i], 0)
					}
				}
				wantDx := make([]float32, rows*n)
				sums := make([]float64, n)
				for i := range wantDx {
					v := f64(g[i]) * a.f(f64(y[i]))
					wantDx[i] = float32(v)
					sums[i%n] += v
				}
				for _, acc := range []bool{false, true} {
					wantDb := make([]float32, n)
					for j := range wantDb {
						wantDb[j] = float32(sums[j])
						if acc {
							wantDb[j] = float32(sums[j] + f64(db0[j]))
						}
					}
					name := fmt.Sprintf("bias act grad %d %dx%d accumulate=%v", a.act, rows, n, acc)
					bufs := newBufs(t, d, y, g, db0)
					dx := scratch(t, d, rows*n)
					must(t, bg.BiasActGrad(dx, bufs[2], bufs[0], bufs[1], rows, n, a.act, acc))
					testutil.AllClose(t, name+" dx", testutil.Download(t, d, dx, rows*n), wantDx, atol, rtol)
					testutil.AllClose(t, name+" dbias", testutil.Download(t, d, bufs[2], n), wantDb, sumTol, sumTol)
					// In place into g, without a bias.
					must(t, bg.BiasActGrad(bufs[1], nil, bufs[0], bufs[1], rows, n, a.act, acc))
					testutil.AllClose(t, name+" in place", testutil.Download(t, d, bufs[1], rows*n), wantDx, atol, rtol)
				}
			}
		}
	})
}

func TestSGDStep(t *testing.T) {
	cases := []device.SGDParams{
		{LR: 0.1},
		{LR: 0.05, WeightDecay: 0.01},
		{LR: 0.1, Momentum: 0.9},
		{LR: 0.1, Momentum: 0.9, Dampening: 0.3, WeightDecay: 0.02},
		{LR: 0.1, Momentum: 0.9, Nesterov: true},
		{LR: 0.01, Momentum: 0.5, Nesterov: true, WeightDecay: 0.1},
		{LR: 0.1, Momentum: 0.9, Dampening: 0.3, WeightDecay: 0.02, Maximize: true},
		{LR: 0.05, WeightDecay: 0.01, Maximize: true},
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		opt, ok := d.(device.Optimizers)
		if !ok {
			t.Skipf("%s has no fused optimizers", d.Name())
		}
		r := rand.New(rand.NewPCG(11, 11))
		for _, hp := range cases {
			for _, n := range []int{7, 1000, 40000} {
				p0 := randNZ(r, n)
				p, buf := make([]float64, n), make([]float64, n)
				for i, v := range p0 {
					p[i] = f64(v)
				}
				bufs := newBufs(t, d, p0, make([]float32, n), make([]float32, n))
				for step := range 4 {
					g := randNZ(r, n)
					hp.First = step == 0
					for i := range p {
						gi := f64(g[i])
						if hp.Maximize {
							gi = -gi
						}
						gi += f64(hp.WeightDecay) * p[i]
						if hp.Momentum != 0 {
							if hp.First {
								buf[i] = gi
							} else {
								buf[i] = f64(hp.Momentum)*buf[i] + (1-f64(hp.Dampening))*gi
							}
							if hp.Nesterov {
								gi += f64(hp.Momentum) * buf[i]
							} else {
								gi = buf[i]
							}
						}
						p[i] -= f64(hp.LR) * gi
					}
					must(t, d.CopyIn(bufs[1], g))
					must(t, opt.SGDStep(bufs[0], bufs[1], bufs[2], n, hp))
				}
				name := fmt.Sprintf("sgd %+v n=%d", hp, n)
				testutil.AllClose(t, name+" p", testutil.Download(t, d, bufs[0], n), f32s(p), atol, rtol)
				if hp.Momentum != 0 {
					testutil.AllClose(t, name+" buf", testutil.Download(t, d, bufs[2], n), f32s(buf), atol, rtol)
				}
			}
		}
	})
}

func TestAdamStep(t *testing.T) {
	cases := []device.AdamParams{
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		{LR: 1e-2, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1},
		{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Decoupled: true},
		{LR: 1e-2, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1, Maximize: true},
		{LR: 1e-2, Beta1: 0.8, Beta2: 0.9, Eps: 1e-6, WeightDecay: 0.1, AMSGrad: true},
		{LR: 1e-2, Beta1: 0.9, Beta2: 0.9, Eps: 1e-8, WeightDecay: 0.1, Decoupled: true, AMSGrad: true, Maximize: true},
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		opt, ok := d.(device.Optimizers)
		if !ok {
			t.Skipf("%s has no fused optimizers", d.Name())
		}
		r := rand.New(rand.NewPCG(12, 12))
		for _, hp := range cases {
			for _, n := range []int{7, 1000, 40000} {
				p0 := randNZ(r, n)
				p, m, v, vm := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
				for i, x := range p0 {
					p[i] = f64(x)
				}
				bufs := newBufs(t, d, p0, make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n))
				var vmax device.Buffer
				if hp.AMSGrad {
					vmax = bufs[4]
				}
				b1, b2, lr, wd, eps := f64(hp.Beta1), f64(hp.Beta2), f64(hp.LR), f64(hp.WeightDecay), f64(hp.Eps)
				for step := 1; step <= 5; step++ {
					g := randNZ(r, n)
					hp.Step = step
					bc1, bc2 := 1-math.Pow(b1, float64(step)), 1-math.Pow(b2, float64(step))
					for i := range p {
						gi := f64(g[i])
						if hp.Maximize {
							gi = -gi
						}
						if hp.Decoupled {
							p[i] *= 1 - lr*wd
						} else {
							gi += wd * p[i]
						}
						m[i] = b1*m[i] + (1-b1)*gi
						v[i] = b2*v[i] + (1-b2)*gi*gi
						den := v[i]
						if hp.AMSGrad { // torch.optim.Adam(amsgrad=True)
							vm[i] = math.Max(vm[i], v[i])
							den = vm[i]
						}
						p[i] -= lr / bc1 * m[i] / (math.Sqrt(den)/math.Sqrt(bc2) + eps)
					}
					must(t, d.CopyIn(bufs[1], g))
					must(t, opt.AdamStep(bufs[0], bufs[1], bufs[2], bufs[3], vmax, n, hp))
				}
				if hp.AMSGrad {
					testutil.AllClose(t, fmt.Sprintf("adam %+v n=%d vmax", hp, n), testutil.Download(t, d, bufs[4], n), f32s(vm), atol, rtol)
				}
				name := fmt.Sprintf("adam %+v n=%d", hp, n)
				testutil.AllClose(t, name+" p", testutil.Download(t, d, bufs[0], n), f32s(p), atol, rtol)
				testutil.AllClose(t, name+" m", testutil.Download(t, d, bufs[2], n), f32s(m), atol, rtol)
				testutil.AllClose(t, name+" v", testutil.Download(t, d, bufs[3], n), f32s(v), atol, rtol)
			}
		}
	})
}

func f32s(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// foreign is a buffer no device allocated.
type foreign struct{ n int }

func (f foreign) Len() int { return f.n }

// errCase is a call that must fail, at once or at the next Sync (a GPU
// reports a bad index found by a kernel there).
type errCase struct {
	name string
	call func() error
}

func TestErrors(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		big := make([]float32, 64)
		for i := range big {
			big[i] = 1
		}
		bufs := newBufs(t, d, big, big[:4], big[:64])
		b, small, b2 := bufs[0], bufs[1], bufs[2]
		alien := foreign{64}
		cw := device.Contiguous(64)
		cases := []errCase{
			{"copy in too long", func() error { return d.CopyIn(small, big) }},
			{"copy out too long", func() error { return d.CopyOut(big, small) }},
			{"copy in foreign", func() error { return d.CopyIn(alien, big) }},
			{"fill too long", func() error { return d.Fill(small, 5, 1) }},
			{"copy small dst", func() error { return d.Copy(small, b, cw) }},
			{"copy small src", func() error { return d.Copy(b, small, cw) }},
			{"copy foreign", func() error { return d.Copy(b, alien, cw) }},
			{"unary small", func() error { return d.Unary(device.Exp, small, b, 64, 0, 0) }},
			{"unary unknown", func() error { return d.Unary(device.UnaryOp(99), b, b2, 64, 0, 0) }},
			{"unary foreign", func() error { return d.Unary(device.Exp, alien, b, 64, 0, 0) }},
			{"binary small b", func() error { return d.Binary(device.Add, b, b2, small, cw, 0, 0) }},
			{"binary walk too wide", func() error {
				return d.Binary(device.Add, b, b2, b, device.Walk{Shape: sh(8, 8), A: st(8, 1), B: st(9, 1)}, 0, 0)
			}},
			{"binary unknown", func() error { return d.Binary(device.BinaryOp(-1), b, b2, b, cw, 0, 0) }},
			{"binary foreign", func() error { return d.Binary(device.Add, b, alien, b2, cw, 0, 0) }},
			{"reduce small", func() error { return d.Reduce(device.Sum, b, small, 1, 64, 1) }},
			{"reduce unknown", func() error { return d.Reduce(device.ReduceOp(7), b, b2, 1, 64, 1) }},
			{"reduce foreign", func() error { return d.Reduce(device.Sum, alien, b, 1, 64, 1) }},
			{"matmul small dst", func() error { return d.MatMul(small, b, b2, 8, 8, 8, false, false, false) }},
			{"matmul small a", func() error { return d.MatMul(b, small, b2, 8, 8, 8, true, false, false) }},
			{"matmul foreign b", func() error { return d.MatMul(b, b2, alien, 8, 8, 8, false, true, false) }},
			{"matmul negative", func() error { return d.MatMul(b, b2, b2, -1, 8, 8, false, false, false) }},
			{"softmax small", func() error { return d.Softmax(small, b, 8, 8, false) }},
			{"gather small dst", func() error { return d.Gather(small, b, b2, 4, 8) }},
			{"gather index out of range", func() error { return d.Gather(b, b2, b, 1, 64) }},
			{"dropout small", func() error { return d.DropoutMask(small, 5, 0.5, 1) }},
			{"dropout bad p", func() error { return d.DropoutMask(b, 64, 1.5, 1) }},
		}
		if ce, ok := d.(device.SoftmaxCE); ok {
			cases = append(cases, errCase{"softmax ce label out of range", func() error {
				return ce.SoftmaxCrossEntropy(b, b2, b2, b, 8, 1, 1)
			}})
		}
		if ba, ok := d.(device.BiasAct); ok {
			cases = append(cases, errCase{"bias act small bias", func() error {
				return ba.BiasAct(b, b2, small, 8, 8, device.ActRelu)
			}})
		}
		if opt, ok := d.(device.Optimizers); ok {
			cases = append(cases,
				errCase{"sgd small buf", func() error {
					return opt.SGDStep(b, b2, small, 64, device.SGDParams{LR: 1, Momentum: 0.9})
				}},
				errCase{"adam foreign", func() error {
					return opt.AdamStep(b, b2, alien, b2, nil, 64, device.AdamParams{LR: 1, Step: 1})
				}})
		}
		for _, c := range cases {
			err := c.call()
			if err == nil {
				err = d.Sync()
			}
			if err == nil {
				t.Errorf("%s: no error", c.name)
			}
		}
	})
}

func TestCPUErrorMessages(t *testing.T) {
	c := device.NewCPU(1)
	b, err := c.Alloc(12)
	must(t, err)
	small, err := c.Alloc(10)
	must(t, err)
	freed, err := c.Alloc(12)
	must(t, err)
	c.Free(freed)
	for i := range small.(*device.CPUBuffer).Data() {
		small.(*device.CPUBuffer).Data()[i] = -12345
	}
	cases := []struct {
		err  error
		want string
	}{
		{c.MatMul(small, b, b, 3, 4, 4, false, false, false), "device: cpu matmul: dst has 10 values, need 12"},
		{c.MatMul(small, foreign{12}, b, 3, 4, 3, false, false, false), "device: cpu matmul: a is a device_test.foreign, not a cpu buffer"},
		{c.MatMul(b, b, b, 2, 2, 2, false, false, false), "device: cpu matmul: dst must not be an input"},
		{c.Unary(device.Exp, nil, b, 1, 0, 0), "device: cpu unary exp: dst is nil"},
		{c.Unary(device.UnaryOp(99), b, b, 1, 0, 0), "device: cpu unary: unknown op UnaryOp(99)"},
		{c.Binary(device.Mul, b, b, freed, device.Contiguous(12), 0, 0), "device: cpu binary mul: b was freed"},
		{c.Reduce(device.ArgMax, b, b, 2, 0, 3), "device: cpu reduce argmax: empty reduction axis"},
		{c.Gather(b, b, small, 2, 3), "device: cpu gather: index -12345"},
		{c.Copy(b, b, device.Walk{Shape: sh(2, 2), A: st(-1, 1)}), "device: cpu copy: negative stride"},
		{c.AdamStep(b, b, b, b, nil, 12, device.AdamParams{}), "device: cpu adam_step: step 0, want >= 1"},
		{c.BiasAct(b, b, b, 1, 1, device.Activation(9)), "device: cpu bias_act: unknown activation 9"},
	}
	for _, tc := range cases {
		if tc.err == nil || !strings.HasPrefix(tc.err.Error(), tc.want) {
			t.Errorf("got error %v, want %q", tc.err, tc.want)
		}
	}
	if _, err := c.Alloc(-1); err == nil {
		t.Error("Alloc(-1): no error")
	}
}

func TestCPUPool(t *testing.T) {
	c := device.NewCPU(0)
	if c.Threads() < 1 {
		t.Fatalf("Threads() = %d", c.Threads())
	}
	a, err := c.Alloc(100)
	must(t, err)
	c.Free(a)
	c.Free(a) // a second Free must not put it in the pool twice
	b, err := c.Alloc(100)
	must(t, err)
	if b != a {
		t.Error("Alloc after Free did not reuse the buffer")
	}
	d, err := c.Alloc(100)
	must(t, err)
	if d == b {
		t.Error("a buffer freed twice was handed out twice")
	}
	if err := c.Fill(b, 100, 1); err != nil {
		t.Errorf("reused buffer: %v", err)
	}
	c.Free(foreign{3}) // ignored
	c.Free(nil)
	allocs := testing.AllocsPerRun(100, func() {
		x, _ := c.Alloc(1000)
		c.Free(x)
	})
	if allocs != 0 {
		t.Errorf("Alloc/Free cycle allocates %v times", allocs)
	}
}

func TestCPUBufferData(t *testing.T) {
	c := device.NewCPU(1)
	b, err := c.Alloc(3)
	must(t, err)
	must(t, c.CopyIn(b, []float32{1, 2, 3}))
	data := b.(*device.CPUBuffer).Data()
	data[1] = 7
	got := testutil.Download(t, c, b, 3)
	testutil.AllClose(t, "data", got, []float32{1, 7, 3}, 0, 0)
}

// TestCPUThreadsAgree checks that splitting work across goroutines gives the
// same bits as one goroutine.
func TestCPUThreadsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	x := randNZ(r, 300*257)
	run := func(c *device.CPU) []float32 {
		bufs := newBufs(t, c, x)
		out := scratch(t, c, 300*257)
		sum := scratch(t, c, 257)
		must(t, c.Softmax(out, bufs[0], 300, 257, false))
		must(t, c.Reduce(device.Sum, sum, out, 1, 300, 257))
		must(t, c.BiasActGrad(out, sum, bufs[0], out, 300, 257, device.ActRelu, true))
		must(t, c.BiasAct(out, out, sum, 300, 257, device.ActRelu))
		// Three SGD steps with momentum, on enough values to be split.
		const np = 300_001
		p := newBufs(t, c, randNZ(rand.New(rand.NewPCG(1, 1)), np), randNZ(rand.New(rand.NewPCG(2, 2)), np), make([]float32, np))
		for step := range 3 {
			hp := device.SGDParams{LR: 0.1, Momentum: 0.9, WeightDecay: 0.01, First: step == 0}
			must(t, c.SGDStep(p[0], p[1], p[2], np, hp))
		}
		// Gather 200 rows of x, in an order that repeats some.
		idx := make([]float32, 200)
		for i := range idx {
			idx[i] = float32(i * 7 % 300)
		}
		rows := newBufs(t, c, idx, make([]float32, 200*257))
		must(t, c.Gather(rows[1], bufs[0], rows[0], 200, 257))
		got := append(testutil.Download(t, c, out, 300*257), testutil.Download(t, c, sum, 257)...)
		got = append(got, testutil.Download(t, c, rows[1], 200*257)...)
		return append(got, testutil.Download(t, c, p[0], np)...)
	}
	testutil.AllClose(t, "1 vs 4 threads", run(device.NewCPU(1)), run(device.NewCPU(4)), 0, 0)
}

func TestOpen(t *testing.T) {
	for _, name := range []string{"cpu", "auto"} {
		if device.CUDABuilt && name == "auto" {
			continue
		}
		d, err := device.Open(name)
		if err != nil || d.Name() != "cpu" {
			t.Errorf("Open(%q) = %v, %v", name, d, err)
		}
	}
	if _, err := device.Open("tpu"); err == nil {
		t.Error("Open(tpu): no error")
	}
}

func TestReluSpecialValues(t *testing.T) {
	inf := float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	x := []float32{0, negZero, inf, -inf, 1, -1, 0.5}
	wantRelu := []float32{0, 0, inf, 0, 1, 0, 0.5}
	wantGrad := []float32{0, 0, 3, 0, 3, 0, 3}
	check := func(t *testing.T, d device.Device, x, wantRelu, wantGrad []float32) {
		n := len(x)
		bufs := newBufs(t, d, x, make([]float32, n), make([]float32, n))
		must(t, d.Fill(bufs[1], n, 3))
		must(t, d.Unary(device.Relu, bufs[2], bufs[0], n, 0, 0))
		testutil.AllClose(t, "relu", testutil.Download(t, d, bufs[2], n), wantRelu, 0, 0)
		must(t, d.Binary(device.ReluGrad, bufs[2], bufs[0], bufs[1], device.Contiguous(n), 0, 0))
		testutil.AllClose(t, "relu_grad", testutil.Download(t, d, bufs[2], n), wantGrad, 0, 0)
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) { check(t, d, x, wantRelu, wantGrad) })
	// The CPU also defines NaN (propagated by relu, blocked by its gradient)
	// and subnormals.
	nan, tiny := float32(math.NaN()), float32(1e-45)
	check(t, device.NewCPU(1), []float32{nan, tiny, -tiny}, []float32{nan, tiny, 0}, []float32{0, 3, 0})
}
