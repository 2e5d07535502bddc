package autograd_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// away returns values in ±[0.2, 1.5]: away from zero, so that relu's kink,
// log and division stay smooth within the finite-difference step.
func away(d device.Device, r *rand.Rand, shape ...int) *tensor.Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	v := testutil.RandSlice(r, n, 0.2, 1.5)
	for i := range v {
		if r.IntN(2) == 0 {
			v[i] = -v[i]
		}
	}
	return tensor.FromSlice(d, v, shape...)
}

func positive(d device.Device, r *rand.Rand, shape ...int) *tensor.Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return tensor.FromSlice(d, testutil.RandSlice(r, n, 0.5, 2), shape...)
}

// grid returns values k/10 + i/20 for random integers k in [-15, 15], so
// that values of different inputs i differ by at least 1/20.
func grid(d device.Device, r *rand.Rand, i int, shape ...int) *tensor.Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	v := make([]float32, n)
	for j := range v {
		v[j] = float32(r.IntN(31)-15)/10 + float32(i)/20
	}
	return tensor.FromSlice(d, v, shape...)
}

// weighted reduces a non-scalar output to a scalar with fixed random
// weights, so that every output element's gradient is exercised.
func weighted(d device.Device, seed uint64) func(v *autograd.Var) *autograd.Var {
	return func(v *autograd.Var) *autograd.Var {
		r := rand.New(rand.NewPCG(seed, 7))
		w := autograd.Const(tensor.FromSlice(d, testutil.RandSlice(r, v.Value.Len(), -1, 1), v.Shape()...))
		return autograd.SumAll(autograd.Mul(v, w))
	}
}

// unaryShapes are the shapes elementwise ops are checked at: ranks 0 to 6.
var unaryShapes = [][]int{{}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}, {2, 2, 1, 3, 2}, {2, 1, 2, 2, 1, 3}}

// binaryShapes are the operand shapes binary ops are checked at: the same
// shape at ranks 1 to 6, and broadcasting of either operand or both.
var binaryShapes = [][][]int{
	{{5}, {5}},
	{{3, 4}, {3, 4}},
	{{2, 3, 2}, {2, 3, 2}},
	{{2, 1, 3, 2}, {2, 1, 3, 2}},
	{{2, 2, 1, 3, 2}, {2, 2, 1, 3, 2}},
	{{2, 1, 2, 2, 1, 3}, {2, 1, 2, 2, 1, 3}},
	{{5, 3}, {3}},          // bias row
	{{4, 1}, {4, 3}},       // column, broadcast on the left operand
	{{2, 3, 4}, {1, 4}},    // batch of matrices and a row
	{{7}, {}},              // vector and scalar
	{{2, 1, 3}, {1, 4, 1}}, // both broadcast
	{{2, 1, 3, 1, 2}, {3, 2, 1}},
	{{2, 1, 2, 1, 2, 1}, {1, 2, 1, 2, 1, 2}},
}

type gradCase struct {
	name   string
	shapes [][]int
	pos    bool // inputs must be positive
	grid   bool // input i takes values k/10 + i/20, so that no two inputs are within 1/20
	f      func(in []*autograd.Var) *autograd.Var
}

func gradCases() []gradCase {
	bin := func(name string, op func(a, b *autograd.Var) *autograd.Var, pos bool) []gradCase {
		onGrid := name == "max"
		var cs []gradCase
		for _, sh := range binaryShapes {
			cs = append(cs, gradCase{name: name, shapes: sh, pos: pos, grid: onGrid, f: func(in []*autograd.Var) *autograd.Var { return op(in[0], in[1]) }})
		}
		return cs
	}
	un := func(name string, op func(a *autograd.Var) *autograd.Var, pos bool) []gradCase {
		var cs []gradCase
		for _, sh := range unaryShapes {
			cs = append(cs, gradCase{name: name, shapes: [][]int{sh}, pos: pos, f: func(in []*autograd.Var) *autograd.Var { return op(in[0]) }})
		}
		return cs
	}
	var cs []gradCase
	cs = append(cs, bin("add", autograd.Add, false)...)
	cs = append(cs, bin("sub", autograd.Sub, false)...)
	cs = append(cs, bin("mul", autograd.Mul, false)...)
	cs = append(cs, bin("div", autograd.Div, true)...)
	cs = append(cs, bin("pow", autograd.Pow, true)...)
	cs = append(cs, bin("max", autograd.Maximum, false)...)
	cs = append(cs, un("neg", autograd.Neg, false)...)
	cs = append(cs, un("exp", autograd.Exp, false)...)
	cs = append(cs, un("log", autograd.Log, true)...)
	cs = append(cs, un("relu", autograd.Relu, false)...)
	cs = append(cs, un("sigmoid", autograd.Sigmoid, false)...)
	cs = append(cs, un("tanh", autograd.Tanh, false)...)
	cs = append(cs, un("add_scalar", func(a *autograd.Var) *autograd.Var { return autograd.AddScalar(a, 1.5) }, false)...)
	cs = append(cs, un("mul_scalar", func(a *autograd.Var) *autograd.Var { return autograd.MulScalar(a, -2.5) }, false)...)
	cs = append(cs, un("pow_scalar", func(a *autograd.Var) *autograd.Var { return autograd.PowScalar(a, 2.5) }, true)...)
	cs = append(cs, un("sum_all", autograd.SumAll, false)...)
	cs = append(cs, un("mean_all", autograd.MeanAll, false)...)
	for _, ax := range []int{0, 1, -1} {
		cs = append(cs,
			gradCase{name: "sum_axis", shapes: [][]int{{3, 4, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Sum(in[0], ax, false) }},
			gradCase{name: "mean_axis_keep", shapes: [][]int{{3, 4, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Mean(in[0], ax, true) }},
			gradCase{name: "softmax", shapes: [][]int{{3, 4, 5}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Softmax(in[0], ax) }},
			gradCase{name: "log_softmax", shapes: [][]int{{3, 4, 5}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.LogSoftmax(in[0], ax) }},
		)
	}
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		ta, tb := tr[0], tr[1]
		a, b := []int{3, 5}, []int{5, 4}
		if ta {
			a = []int{5, 3}
		}
		if tb {
			b = []int{4, 5}
		}
		cs = append(cs, gradCase{name: "matmul", shapes: [][]int{a, b}, f: func(in []*autograd.Var) *autograd.Var { return autograd.MatMul(in[0], in[1], ta, tb) }})
	}
	cs = append(cs,
		gradCase{name: "linear", shapes: [][]int{{4, 3}, {5, 3}, {5}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Linear(in[0], in[1], in[2]) }},
		gradCase{name: "linear_nobias", shapes: [][]int{{1, 7}, {2, 7}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Linear(in[0], in[1], nil) }},
		gradCase{name: "reshape", shapes: [][]int{{3, 4}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Reshape(in[0], 2, -1, 3) }},
		gradCase{name: "transpose", shapes: [][]int{{2, 3, 4}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Transpose(in[0], 2, 0, 1) }},
		gradCase{name: "transpose_rev", shapes: [][]int{{3, 5}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Transpose(in[0]) }},
		gradCase{name: "mse", shapes: [][]int{{4, 3}, {4, 3}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.MSE(in[0], in[1]) }},
		gradCase{name: "dropout", shapes: [][]int{{6, 5}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Dropout(in[0], 0.3, 42) }},
		// Composed graphs: an MLP layer and a variable used on two paths.
		gradCase{name: "mlp", shapes: [][]int{{4, 3}, {5, 3}, {5}, {2, 5}}, f: func(in []*autograd.Var) *autograd.Var {
			h := autograd.Tanh(autograd.Linear(in[0], in[1], in[2]))
			return autograd.MatMul(h, in[3], false, true)
		}},
		gradCase{name: "two_paths", shapes: [][]int{{3, 2}, {2}}, f: func(in []*autograd.Var) *autograd.Var {
			s := autograd.Mul(in[0], in[1])
			return autograd.Add(autograd.Sigmoid(s), autograd.Mul(s, in[0]))
		}},
	)
	return cs
}

func TestGradCheckEveryOp(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for i, c := range gradCases() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			var in []*tensor.Tensor
			for k, sh := range c.shapes {
				switch {
				case c.grid:
					in = append(in, grid(d, r, k, sh...))
				case c.pos:
					in = append(in, positive(d, r, sh...))
				default:
					in = append(in, away(d, r, sh...))
				}
			}
			if err := autograd.GradCheck(c.f, in, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("%s %v: %v", c.name, c.shapes, err)
			}
		}
	})
}

func TestGradCheckCrossEntropy(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, sh := range [][2]int{{1, 3}, {5, 4}, {7, 10}} {
			r := rand.New(rand.NewPCG(uint64(sh[0]), 2))
			labels := make([]float32, sh[0])
			for i := range labels {
				labels[i] = float32(r.IntN(sh[1]))
			}
			lab := tensor.FromSlice(d, labels)
			f := func(v []*autograd.Var) *autograd.Var { return autograd.SoftmaxCrossEntropy(v[0], lab) }
			if err := autograd.GradCheck(f, []*tensor.Tensor{away(d, r, sh[0], sh[1])}, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("cross-entropy %v: %v", sh, err)
			}
		}
	})
}

// wrongSquare records x*x with the backward of x (gradient 1 instead of 2x).
func wrongSquare(x *autograd.Var) *autograd.Var {
	return autograd.Custom("wrong_square", tensor.Mul(x.Value, x.Value), []*autograd.Var{x}, func(g *tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{g.Clone()}
	})
}

func TestGradCheckCatchesWrongBackward(t *testing.T) {
	d := device.NewCPU(1)
	r := rand.New(rand.NewPCG(3, 3))
	err := autograd.GradCheck(func(v []*autograd.Var) *autograd.Var { return autograd.SumAll(wrongSquare(v[0])) },
		[]*tensor.Tensor{away(d, r, 4)}, autograd.GradCheckOptions{})
	if err == nil || !strings.Contains(err.Error(), "gradient mismatch") {
		t.Fatalf("GradCheck accepted a wrong backward: %v", err)
	}
	// The same custom op with the right backward passes.
	right := func(v []*autograd.Var) *autograd.Var {
		x := v[0]
		return autograd.SumAll(autograd.Custom("square", tensor.Mul(x.Value, x.Value), []*autograd.Var{x}, func(g *tensor.Tensor) []*tensor.Tensor {
			two := tensor.MulScalar(x.Value, 2)
			defer two.Free()
			return []*tensor.Tensor{tensor.Mul(g, two)}
		}))
	}
	if err := autograd.GradCheck(right, []*tensor.Tensor{away(d, r, 4)}, autograd.GradCheckOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestAccumulationAndZeroGrad(t *testing.T) {
	d := device.NewCPU(1)
	w := autograd.Param(tensor.FromSlice(d, []float32{1, 2, 3}))
	step := func() {
		tp := autograd.NewTape()
		x := tp.Var(tensor.FromSlice(d, []float32{4, 5, 6}), false)
		loss := autograd.SumAll(autograd.Mul(w, x))
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
	}
	step()
	step()
	testutil.AllClose(t, "accumulated", w.Grad.Data(), []float32{8, 10, 12}, 0, 0)
	w.ZeroGrad()
	step()
	testutil.AllClose(t, "after ZeroGrad", w.Grad.Data(), []float32{4, 5, 6}, 0, 0)
}

func TestBackwardTwiceFails(t *testing.T) {
	d := device.NewCPU(1)
	tp := autograd.NewTape()
	a := tp.Var(tensor.FromSlice(d, []float32{2, 3}), true)
	loss := autograd.SumAll(autograd.Exp(a))
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	if err := loss.Backward(); !errors.Is(err, autograd.ErrFreed) {
		t.Fatalf("second Backward: got %v, want ErrFreed", err)
	}
	if tp.Len() != 0 {
		t.Fatalf("tape holds %d nodes after Backward", tp.Len())
	}
	// Retained graphs may run Backward again; gradients add up.
	tp2 := autograd.NewTape()
	b := tp2.Var(tensor.FromSlice(d, []float32{1}), true)
	l2 := autograd.MulScalar(b, 3)
	if err := l2.BackwardRetain(); err != nil {
		t.Fatal(err)
	}
	if err := l2.BackwardRetain(); err != nil {
		t.Fatal(err)
	}
	if g := b.Grad.Item(); g != 6 {
		t.Fatalf("grad after two retained backward passes = %v, want 6", g)
	}
}

func TestNoGradAndDetach(t *testing.T) {
	d := device.NewCPU(1)
	tp := autograd.NewTape()
	a := tp.Var(tensor.FromSlice(d, []float32{2}), true)
	var y *autograd.Var
	tp.NoGrad(func() { y = autograd.Mul(a, a) })
	if y.RequiresGrad() {
		t.Fatal("op inside NoGrad requires a gradient")
	}
	if err := y.Backward(); err == nil {
		t.Fatal("Backward from a NoGrad value succeeded")
	}
	z := autograd.Mul(a, a)
	det := autograd.Detach(z)
	loss := autograd.Mul(det, a) // only the direct path to a counts
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	if g := a.Grad.Item(); g != 4 {
		t.Fatalf("grad through detached value = %v, want 4 (= a*a)", g)
	}
	if v := det.Item(); v != 4 {
		t.Fatalf("detached value after Backward = %v, want 4", v)
	}
}

func TestShapeMismatchIsAnError(t *testing.T) {
	d := device.NewCPU(1)
	a := autograd.Const(tensor.Zeros(d, 2, 3))
	b := autograd.Const(tensor.Zeros(d, 4, 5))
	err := tensor.Catch(func() { autograd.MatMul(a, b, false, false) })
	if err == nil || !errors.Is(err, tensor.ErrShape) || !strings.Contains(err.Error(), "matmul") || !strings.Contains(err.Error(), "[2 3]") || !strings.Contains(err.Error(), "[4 5]") {
		t.Fatalf("matmul of [2 3] and [4 5]: %v", err)
	}
}
