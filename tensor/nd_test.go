package tensor_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// specials are inputs at the edges of the new activations: zero, the clamp
// bounds, softplus's threshold, large magnitudes and NaN.
var specials = []float32{0, float32(math.Copysign(0, -1)), -0.5, 0.5, 1, -1, 20, 20.5, 19.5, -30, 30, 1e-7, -1e-7, float32(math.NaN())}

// actInput returns odd-sized random values in [-6, 6) followed by specials.
func actInput(r *rand.Rand, n int) []float32 {
	return append(testutil.RandSlice(r, n, -6, 6), specials...)
}

func geluTanhRef(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}
func geluErfRef(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
func sigmoidRef(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
func softplusRef(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}
func signRef(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0 // NaN too, as torch.sign in the installed PyTorch
}

// actCases are the new activations with their references (in float64) and
// the references of their derivatives; nil where a derivative is written
// out below instead.
type actCase struct {
	name string
	f    func(*tensor.Tensor) *tensor.Tensor
	grad func(x, g *tensor.Tensor) *tensor.Tensor
	ref  func(float64) float64
	dref func(float64) float64 // derivative
}

func actCases() []actCase {
	const slope, lo, hi = 0.1, -1.0, 1.0
	return []actCase{
		{"abs", tensor.Abs, tensor.AbsGrad, math.Abs, signRef},
		{"leaky_relu", func(t *tensor.Tensor) *tensor.Tensor { return tensor.LeakyReLU(t, slope) },
			func(x, g *tensor.Tensor) *tensor.Tensor { return tensor.LeakyReLUGrad(x, g, slope) },
			func(x float64) float64 {
				if x > 0 {
					return x
				}
				return float64(float32(slope)) * x
			},
			func(x float64) float64 {
				if x > 0 {
					return 1
				}
				return float64(float32(slope))
			}},
		{"gelu_tanh", func(t *tensor.Tensor) *tensor.Tensor { return tensor.GELU(t, true) },
			func(x, g *tensor.Tensor) *tensor.Tensor { return tensor.GELUGrad(x, g, true) }, geluTanhRef, nil},
		{"gelu_erf", func(t *tensor.Tensor) *tensor.Tensor { return tensor.GELU(t, false) },
			func(x, g *tensor.Tensor) *tensor.Tensor { return tensor.GELUGrad(x, g, false) }, geluErfRef,
			func(x float64) float64 {
				return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
			}},
		{"silu", tensor.SiLU, tensor.SiLUGrad, func(x float64) float64 { return x * sigmoidRef(x) },
			func(x float64) float64 { s := sigmoidRef(x); return s * (1 + x*(1-s)) }},
		{"softplus", tensor.Softplus, tensor.SoftplusGrad, softplusRef,
			func(x float64) float64 {
				if x > 20 {
					return 1
				}
				return sigmoidRef(x)
			}},
		{"clamp", func(t *tensor.Tensor) *tensor.Tensor { return tensor.Clamp(t, lo, hi) },
			func(x, g *tensor.Tensor) *tensor.Tensor { return tensor.ClampGrad(x, g, lo, hi) },
			func(x float64) float64 {
				if math.IsNaN(x) {
					return x
				}
				return math.Min(math.Max(x, lo), hi)
			},
			func(x float64) float64 {
				if x >= lo && x <= hi {
					return 1
				}
				return 0
			}},
		{"sign", tensor.Sign, nil, signRef, nil},
	}
}

// TestActivations checks each new activation and its gradient against a
// float64 reference at odd sizes and at the special inputs, on every
// device, and the gradient references against central differences of the
// forward references (away from kinks).
func TestActivations(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(31)
		for _, c := range actCases() {
			for _, n := range []int{1, 7, 1001} {
				v := actInput(r, n)
				gv := testutil.RandSlice(r, len(v), -2, 2)
				x := tensor.FromSlice(d, v)
				want := make([]float32, len(v))
				for i, e := range v {
					want[i] = float32(c.ref(float64(e)))
				}
				y := c.f(x)
				testutil.AllClose(t, fmt.Sprint(c.name, " ", n), y.Data(), want, 1e-6, 2e-6)
				y.Free()
				if c.grad == nil {
					x.Free()
					continue
				}
				dref := c.dref
				if dref == nil { // the tanh GELU: from the written-out formula's own finite difference
					dref = func(x float64) float64 { h := 1e-6; return (c.ref(x+h) - c.ref(x-h)) / (2 * h) }
				}
				g := tensor.FromSlice(d, gv)
				for i, e := range v {
					want[i] = float32(float64(gv[i]) * dref(float64(e)))
				}
				gx := c.grad(x, g)
				testutil.AllClose(t, fmt.Sprint(c.name, " grad ", n), gx.Data(), want, 1e-5, 1e-5)
				x.Free()
				g.Free()
				gx.Free()
			}
		}
	})
	// The derivative references against central differences of the forward ones.
	for _, c := range actCases() {
		if c.dref == nil {
			continue
		}
		for _, x := range []float64{-3.3, -0.7, 0.4, 2.9, 19, 21} {
			if c.name == "clamp" && math.Abs(math.Abs(x)-1) < 1e-3 {
				continue
			}
			h := 1e-6
			fd := (c.ref(x+h) - c.ref(x-h)) / (2 * h)
			if math.Abs(fd-c.dref(x)) > 1e-5*(1+math.Abs(fd)) {
				t.Errorf("%s: derivative at %g is %g, central difference %g", c.name, x, c.dref(x), fd)
			}
		}
	}
}

// TestActivationPyTorchEdges pins the values PyTorch 1.13 gives at the
// kinks and at NaN (python3-torch: torch.clamp, abs, sign, leaky_relu and
// softplus, forward and backward).
func TestActivationPyTorchEdges(t *testing.T) {
	d := device.NewCPU(1)
	nan := float32(math.NaN())
	x := tensor.FromSlice(d, []float32{-2, -1, 0, 0.5, 1, 2, nan})
	g := tensor.Ones(d, 7)
	cases := []struct {
		name string
		got  *tensor.Tensor
		want []float32
	}{
		{"clamp grad", tensor.ClampGrad(x, g, -1, 1), []float32{0, 1, 1, 1, 1, 0, 0}},
		{"abs grad", tensor.AbsGrad(x, g), []float32{-1, -1, 0, 1, 1, 1, 0}},
		{"sign", tensor.Sign(x), []float32{-1, -1, 0, 1, 1, 1, 0}},
		{"leaky_relu grad", tensor.LeakyReLUGrad(x, g, 0.1), []float32{0.1, 0.1, 0.1, 1, 1, 1, 0.1}},
		{"clamp min > max", tensor.Clamp(tensor.FromSlice(d, []float32{0.5}), 2, 1), []float32{1}},
		{"clamp NaN", tensor.Clamp(tensor.FromSlice(d, []float32{nan}), -1, 1), []float32{nan}},
		{"softplus threshold", tensor.Softplus(tensor.FromSlice(d, []float32{20, 21})), []float32{20, 21}},
	}
	for _, c := range cases {
		testutil.AllClose(t, c.name, c.got.Data(), c.want, 1e-7, 1e-6)
	}
}

// ndShapes are broadcasting pairs of ranks 1 to 6 at odd sizes, including
// rank-5 and rank-6 walks that do not collapse to fewer axes.
var ndShapes = [][2][]int{
	{{7}, {7}},
	{{3, 5}, {5}},
	{{3, 1, 5}, {1, 4, 1}},
	{{2, 3, 1, 5}, {3, 4, 1}},
	{{2, 1, 3, 1, 5}, {1, 3, 1, 4, 1}},
	{{3, 1, 2, 1, 3, 1}, {1, 2, 1, 3, 1, 5}},
	{{2, 3, 2, 3, 2, 3}, {1}},
}

func TestCompareWhere(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(32)
		for _, p := range ndShapes {
			as, bs := p[0], p[1]
			a, av := randT(d, r, -1, 1, as...)
			bv := testutil.RandSlice(r, numel(bs), -1, 1)
			for i := 0; i < len(bv); i += 3 { // ties
				bv[i] = av[i%len(av)]
			}
			b := tensor.FromSlice(d, bv, bs...)
			shape := tensor.Add(a, b).Shape()
			n := numel(shape)
			wg, we, ww := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range n {
				idx := unravel(i, shape)
				x, y := at(av, as, idx), at(bv, bs, idx)
				if x > y {
					wg[i] = 1
				}
				if x == y {
					we[i] = 1
				}
				ww[i] = y
				if x > 0 {
					ww[i] = float32(math.NaN()) // the selected side of where, below
				}
			}
			name := fmt.Sprint(as, bs)
			gr, eq := tensor.Greater(a, b), tensor.Equal(a, b)
			checkShape(t, "greater "+name, gr, shape...)
			testutil.AllClose(t, "greater "+name, gr.Data(), wg, 0, 0)
			testutil.AllClose(t, "equal "+name, eq.Data(), we, 0, 0)
			// where(a > 0, NaN, b): NaN exactly where selected, b's values elsewhere.
			cond := tensor.Greater(a, tensor.Scalar(d, 0))
			nan := tensor.Scalar(d, float32(math.NaN()))
			wh := tensor.Where(cond, nan, b)
			checkShape(t, "where "+name, wh, shape...)
			testutil.AllClose(t, "where "+name, wh.Data(), ww, 0, 0)
			// and the other way round: the unselected NaN never shows.
			wh2 := tensor.Where(cond, b, nan)
			for i, v := range wh2.Data() {
				if (ww[i] != ww[i]) == (v != v) {
					t.Fatalf("where %s: [%d] = %v with cond %v", name, i, v, ww[i] != ww[i])
				}
			}
		}
		mustFail(t, "where mismatch", tensor.ErrShape, func() {
			tensor.Where(tensor.Zeros(d, 3), tensor.Zeros(d, 4), tensor.Zeros(d, 3))
		})
	})
}

// TestRankSixOps checks elementwise ops, reductions and transposes of
// rank-5 and rank-6 tensors whose walks keep all their axes.
func TestRankSixOps(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(33)
		for _, p := range ndShapes[4:] {
			a, av := randT(d, r, -1, 1, p[0]...)
			b, bv := randT(d, r, -1, 1, p[1]...)
			got := tensor.Sub(a, b)
			shape := got.Shape()
			want := make([]float32, numel(shape))
			for i := range want {
				idx := unravel(i, shape)
				want[i] = at(av, p[0], idx) - at(bv, p[1], idx)
			}
			testutil.AllClose(t, fmt.Sprint("sub ", p), got.Data(), want, 0, 0)
			perm := []int{4, 2, 0, 3, 1}
			if len(shape) == 6 {
				perm = []int{5, 3, 1, 4, 0, 2}
			}
			tr := tensor.Transpose(got, perm...)
			tshape := tr.Shape()
			tw := make([]float32, len(want))
			for i := range tw {
				idx := unravel(i, tshape)
				src := make([]int, len(idx))
				for k, pk := range perm {
					src[pk] = idx[k]
				}
				tw[i] = at(want, shape, src)
			}
			testutil.AllClose(t, fmt.Sprint("transpose ", p), tr.Data(), tw, 0, 0)
			// AddInPlace with a broadcast operand of rank 6.
			acc := got.Clone()
			acc.AddInPlace(b)
			for i := range want {
				want[i] += at(bv, p[1], unravel(i, shape))
			}
			testutil.AllClose(t, fmt.Sprint("add in place ", p), acc.Data(), want, 1e-6, 1e-6)
		}
		// Same element count, other shape: an error, not a silent add.
		x := tensor.Zeros(d, 2, 3)
		mustFail(t, "add in place 2x3 += 3x2", tensor.ErrShape, func() { x.AddInPlace(tensor.Zeros(d, 3, 2)) })
		mustFail(t, "add in place 6 += 2x3", tensor.ErrShape, func() { tensor.Zeros(d, 6).AddInPlace(x) })
	})
}

// ref6 reads a row-major array of shape at idx.
func ref6(v []float32, shape, idx []int) float32 {
	off := 0
	for d := range shape {
		off = off*shape[d] + idx[d]
	}
	return v[off]
}

// oddShapes are one shape per rank 1 to 6, at odd sizes.
var oddShapes = [][]int{{7}, {3, 5}, {3, 1, 5}, {2, 3, 5, 3}, {3, 2, 1, 3, 5}, {2, 3, 1, 3, 2, 5}}

func TestSliceIndexSelect(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(34)
		for _, shape := range oddShapes {
			x, v := randT(d, r, -1, 1, shape...)
			for axis := range shape {
				n := shape[axis]
				for _, se := range [][2]int{{0, n}, {1, n}, {0, n - 1}, {n / 2, n/2 + 1}, {n, n}, {-2, -1}} {
					start, end := se[0], se[1]
					if start < 0 {
						start += n
					}
					if end < 0 {
						end += n
					}
					if start < 0 || end < start || end > n {
						continue
					}
					got := tensor.Slice(x, axis, se[0], se[1])
					want := slices.Clone(shape)
					want[axis] = end - start
					checkShape(t, "slice", got, want...)
					ref := make([]float32, numel(want))
					for i := range ref {
						idx := unravel(i, want)
						idx[axis] += start
						ref[i] = ref6(v, shape, idx)
					}
					testutil.AllClose(t, fmt.Sprint("slice ", shape, axis, se), got.Data(), ref, 0, 0)
					got.Free()
				}
				idx := []int{n - 1, 0, 0, n / 2}
				if n > 2 {
					idx = append(idx, 1, 2, -1)
				}
				got := tensor.IndexSelect(x, axis, idx)
				want := slices.Clone(shape)
				want[axis] = len(idx)
				checkShape(t, "index select", got, want...)
				ref := make([]float32, numel(want))
				for i := range ref {
					ix := unravel(i, want)
					j := idx[ix[axis]]
					if j < 0 {
						j += n
					}
					ix[axis] = j
					ref[i] = ref6(v, shape, ix)
				}
				testutil.AllClose(t, fmt.Sprint("index select ", shape, axis), got.Data(), ref, 0, 0)
				got.Free()
			}
		}
		x := tensor.Zeros(d, 3, 4)
		for name, fn := range map[string]func(){
			"slice past the end":   func() { tensor.Slice(x, 1, 2, 5) },
			"slice reversed":       func() { tensor.Slice(x, 1, 3, 2) },
			"slice axis":           func() { tensor.Slice(x, 2, 0, 1) },
			"index out of range":   func() { tensor.IndexSelect(x, 0, []int{0, 3}) },
			"index below range":    func() { tensor.IndexSelect(x, 0, []int{-4}) },
			"concat shapes":        func() { tensor.Concat(0, x, tensor.Zeros(d, 3, 5)) },
			"concat ranks":         func() { tensor.Concat(0, x, tensor.Zeros(d, 3)) },
			"concat none":          func() { tensor.Concat(0) },
			"stack shapes":         func() { tensor.Stack(0, x, tensor.Zeros(d, 4, 3)) },
			"stack axis":           func() { tensor.Stack(3, x, x) },
			"pad count":            func() { tensor.Pad(x, [][2]int{{1, 1}}, 0) },
			"pad negative size":    func() { tensor.Pad(x, [][2]int{{-2, -2}, {0, 0}}, 0) },
			"rank 7":               func() { tensor.Slice(tensor.Zeros(d, 2, 1, 2, 1, 2, 1, 2), 0, 0, 1) },
			"where devices differ": func() { tensor.Where(x, x, tensor.Zeros(device.NewCPU(1), 3, 4)) },
		} {
			err := tensor.Catch(fn)
			var te *tensor.Error
			if !errors.As(err, &te) {
				t.Errorf("%s: error %v, want a *tensor.Error", name, err)
			}
		}
	})
}

func TestConcatStack(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(35)
		for _, shape := range oddShapes {
			for axis := range shape {
				sizes := []int{shape[axis], 1, 3}
				var ts []*tensor.Tensor
				var vs [][]float32
				for _, s := range sizes {
					sh := slices.Clone(shape)
					sh[axis] = s
					x, v := randT(d, r, -1, 1, sh...)
					ts, vs = append(ts, x), append(vs, v)
				}
				got := tensor.Concat(axis, ts...)
				want := slices.Clone(shape)
				want[axis] = sizes[0] + sizes[1] + sizes[2]
				checkShape(t, "concat", got, want...)
				ref := make([]float32, numel(want))
				for i := range ref {
					idx := unravel(i, want)
					k := 0
					for idx[axis] >= sizes[k] {
						idx[axis] -= sizes[k]
						k++
					}
					sh := slices.Clone(shape)
					sh[axis] = sizes[k]
					ref[i] = ref6(vs[k], sh, idx)
				}
				testutil.AllClose(t, fmt.Sprint("concat ", shape, axis), got.Data(), ref, 0, 0)
			}
			if len(shape) == 6 {
				continue // stacking makes rank 7
			}
			a, av := randT(d, r, -1, 1, shape...)
			b, bv := randT(d, r, -1, 1, shape...)
			for axis := 0; axis <= len(shape); axis++ {
				got := tensor.Stack(axis, a, b, a)
				want := slices.Insert(slices.Clone(shape), axis, 3)
				checkShape(t, "stack", got, want...)
				ref := make([]float32, numel(want))
				for i := range ref {
					idx := unravel(i, want)
					k := idx[axis]
					idx = slices.Delete(idx, axis, axis+1)
					ref[i] = ref6([][]float32{av, bv, av}[k], shape, idx)
				}
				testutil.AllClose(t, fmt.Sprint("stack ", shape, axis), got.Data(), ref, 0, 0)
			}
			neg := tensor.Stack(-1, a, b)
			checkShape(t, "stack -1", neg, append(slices.Clone(shape), 2)...)
		}
	})
}

func TestPad(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(36)
		for _, shape := range oddShapes {
			x, v := randT(d, r, -1, 1, shape...)
			padSets := [][2]int{{1, 2}, {0, 0}, {-1, 1}, {2, -1}, {0, -1}, {3, 0}}
			for k := range 4 {
				pads := make([][2]int, len(shape))
				for i := range pads {
					p := padSets[(i+k)%len(padSets)]
					if shape[i]+p[0]+p[1] < 0 {
						p = [2]int{0, 0}
					}
					pads[i] = p
				}
				got := tensor.Pad(x, pads, 7.5)
				want := make([]int, len(shape))
				for i, p := range pads {
					want[i] = shape[i] + p[0] + p[1]
				}
				checkShape(t, "pad", got, want...)
				ref := make([]float32, numel(want))
				for i := range ref {
					idx := unravel(i, want)
					inside := true
					for a, p := range pads {
						idx[a] -= p[0]
						inside = inside && idx[a] >= 0 && idx[a] < shape[a]
					}
					ref[i] = 7.5
					if inside {
						ref[i] = ref6(v, shape, idx)
					}
				}
				testutil.AllClose(t, fmt.Sprint("pad ", shape, pads), got.Data(), ref, 0, 0)
				got.Free()
			}
		}
		// Cropping away everything on one axis and padding another.
		x := tensor.Ones(d, 3, 2)
		got := tensor.Pad(x, [][2]int{{-5, 4}, {1, 0}}, 2)
		checkShape(t, "crop all", got, 2, 3)
		testutil.AllClose(t, "crop all", got.Data(), []float32{2, 2, 2, 2, 2, 2}, 0, 0)
		// A unit axis that is all padding still pads (every backend must
		// keep it in the walk).
		one := tensor.Ones(d, 1, 3)
		got = tensor.Pad(one, [][2]int{{-1, 1}, {0, 0}}, 4)
		checkShape(t, "unit axis cropped", got, 1, 3)
		testutil.AllClose(t, "unit axis cropped", got.Data(), []float32{4, 4, 4}, 0, 0)
		got = tensor.Pad(x, [][2]int{{4, -6}, {0, 0}}, 3)
		checkShape(t, "pad past", got, 1, 2)
		testutil.AllClose(t, "pad past", got.Data(), []float32{3, 3}, 0, 0)
	})
}
