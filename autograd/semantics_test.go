package autograd_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// An L2 penalty written on parameters alone records a graph, as PyTorch
// does: d/dw Σ w² = 2w.
func TestL2PenaltyOnParameters(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		w := autograd.Param(tensor.FromSlice(d, []float32{1, -2, 3}))
		loss := autograd.SumAll(autograd.Mul(w, w))
		if !loss.RequiresGrad() {
			t.Fatal("a function of a parameter does not require a gradient")
		}
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		testutil.AllClose(t, "dL/dw", w.Grad.Data(), []float32{2, -4, 6}, 0, 0)
	})
}

// loss = Σ(x·w) + Σ(w·w), with x on a tape and the penalty on parameters
// alone: dL/dw = x + 2w, whichever term comes first.
func TestL2PenaltyMixedWithData(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, penaltyFirst := range []bool{false, true} {
			w := autograd.Param(tensor.FromSlice(d, []float32{1, -2, 3}))
			tp := autograd.NewTape()
			x := tp.Var(tensor.FromSlice(d, []float32{4, 5, 6}), false)
			data := func() *autograd.Var { return autograd.SumAll(autograd.Mul(x, w)) }
			penalty := func() *autograd.Var { return autograd.SumAll(autograd.Mul(w, w)) }
			var loss *autograd.Var
			if penaltyFirst {
				p := penalty()
				loss = autograd.Add(p, data())
			} else {
				loss = autograd.Add(data(), penalty())
			}
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			testutil.AllClose(t, "dL/dw", w.Grad.Data(), []float32{4 + 2, 5 - 4, 6 + 6}, 1e-6, 0)
			tp.Free()
		}
	})
}

// After BackwardRetain every intermediate holds its own gradient, never a
// view of another's: u = 2w feeds p = u·k first and then v = u + c (c of
// [1, 3], so v is [1, 3]); L = Σp + Σv². PyTorch's formulas: dL/dv = 2v,
// dL/du = k + 2v (summed over v's leading axis), dL/dw = 2·dL/du.
func TestRetainedIntermediateGradients(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		tp := autograd.NewTape()
		defer tp.Free()
		w := tp.Var(tensor.FromSlice(d, []float32{1, 2, 3}), true)
		k := autograd.Const(tensor.FromSlice(d, []float32{10, 20, 30}))
		c := autograd.Const(tensor.FromSlice(d, []float32{0.5, -1, 2}, 1, 3))
		u := autograd.MulScalar(w, 2)
		p := autograd.Mul(u, k)
		v := autograd.Add(u, c)
		loss := autograd.Add(autograd.SumAll(p), autograd.SumAll(autograd.Mul(v, v)))
		if err := loss.BackwardRetain(); err != nil {
			t.Fatal(err)
		}
		vv := v.Value.Data()
		dv := make([]float32, 3)
		du := make([]float32, 3)
		dw := make([]float32, 3)
		kv := []float32{10, 20, 30}
		for i := range 3 {
			dv[i] = 2 * vv[i]
			du[i] = kv[i] + dv[i]
			dw[i] = 2 * du[i]
		}
		testutil.AllClose(t, "dL/dv", v.Grad.Data(), dv, 1e-5, 1e-6)
		testutil.AllClose(t, "dL/du", u.Grad.Data(), du, 1e-5, 1e-6)
		testutil.AllClose(t, "dL/dw", w.Grad.Data(), dw, 1e-5, 1e-6)
		testutil.AllClose(t, "dL/dp", p.Grad.Data(), []float32{1, 1, 1}, 0, 0)
	})
}

// torch.maximum splits the gradient equally between tied inputs and gives
// all of it to the larger one otherwise.
func TestMaximumTiesSplitEqually(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		tp := autograd.NewTape()
		defer tp.Free()
		a := tp.Var(tensor.FromSlice(d, []float32{1, 2, 3, -1}), true)
		b := tp.Var(tensor.FromSlice(d, []float32{1, 0, 5, -1}), true)
		if err := autograd.SumAll(autograd.Maximum(a, b)).Backward(); err != nil {
			t.Fatal(err)
		}
		testutil.AllClose(t, "da", a.Grad.Data(), []float32{0.5, 1, 0, 0.5}, 0, 0)
		testutil.AllClose(t, "db", b.Grad.Data(), []float32{0.5, 0, 1, 0.5}, 0, 0)
	})
}

// A variable held past its pass never shows the next pass's values: using
// it is a clear error that says how to keep a value.
func TestHeldVarIsReleasedNotRecycled(t *testing.T) {
	d := device.NewCPU(1)
	tp := autograd.NewTape()
	defer tp.Free()
	x := tp.Var(tensor.FromSlice(d, []float32{0, 1}), true)
	h := autograd.MulScalar(x, 2)
	if err := autograd.SumAll(h).Backward(); err != nil {
		t.Fatal(err)
	}
	x2 := tp.Var(tensor.FromSlice(d, []float32{5, 7}), true)
	h2 := autograd.MulScalar(x2, 3)
	if h2 == h {
		t.Fatal("the next pass's node is the one the caller still holds")
	}
	err := tensor.Catch(func() { autograd.Exp(h) })
	if !errors.Is(err, autograd.ErrReleased) || !strings.Contains(err.Error(), "Detach") {
		t.Fatalf("using a released variable: %v, want ErrReleased naming Detach", err)
	}
	if err := tensor.Catch(func() { h.Value.Data() }); err == nil {
		t.Fatal("reading a released value succeeded")
	}
	if err := tensor.Catch(func() { autograd.Detach(h) }); !errors.Is(err, autograd.ErrReleased) {
		t.Errorf("Detach of a released variable: %v, want ErrReleased", err)
	}
	testutil.AllClose(t, "next pass", h2.Value.Data(), []float32{15, 21}, 0, 0)
	s := autograd.SumAll(h2)
	loss := autograd.MulScalar(s, 2)
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	if got := loss.Item(); got != 72 {
		t.Errorf("the root's value after Backward is %v, want 72", got)
	}
	if err := tensor.Catch(func() { s.Item() }); !errors.Is(err, autograd.ErrReleased) {
		t.Errorf("Item of a released intermediate: %v, want ErrReleased", err)
	}
}

// Backward through a graph one of whose intermediates another scope
// released fails with ErrReleased and leaves the leaves ready for the
// next Backward.
func TestBackwardThroughReleasedIntermediate(t *testing.T) {
	d := device.NewCPU(1)
	ta, tb := autograd.NewTape(), autograd.NewTape()
	defer tb.Free()
	x := ta.Var(tensor.FromSlice(d, []float32{1, 2}), true)
	y := tb.Var(tensor.FromSlice(d, []float32{3, 4}), true)
	a := autograd.Exp(x)       // on ta
	b := autograd.Mul(y, a)    // on tb, y's tape
	ta.Free()                  // releases a, not b
	loss := autograd.SumAll(b) // on tb
	if err := loss.Backward(); !errors.Is(err, autograd.ErrReleased) {
		t.Fatalf("Backward through a released intermediate: %v, want ErrReleased", err)
	}
	l2 := autograd.SumAll(autograd.Mul(y, y))
	if err := l2.Backward(); err != nil {
		t.Fatal(err)
	}
	testutil.AllClose(t, "dl2/dy", y.Grad.Data(), []float32{6, 8}, 0, 0)
}

// Backward may run from any scalar: a parameter itself, an intermediate of
// a pass, or a graph of parameters alone; and NoGrad on a tape stops the
// recording of the operations on that tape.
func TestBackwardFromAnyScalar(t *testing.T) {
	d := device.NewCPU(1)
	w := autograd.Param(tensor.FromSlice(d, []float32{3}))
	if err := w.Backward(); err != nil {
		t.Fatal(err)
	}
	testutil.AllClose(t, "dw/dw", w.Grad.Data(), []float32{1}, 0, 0)
	w.ZeroGrad()

	tp := autograd.NewTape()
	defer tp.Free()
	x := tp.Var(tensor.FromSlice(d, []float32{1, 2}), true)
	s := autograd.SumAll(autograd.Mul(x, x)) // an intermediate scalar of a longer pass
	_ = autograd.Exp(s)
	if err := s.Backward(); err != nil {
		t.Fatal(err)
	}
	testutil.AllClose(t, "ds/dx", x.Grad.Data(), []float32{2, 4}, 0, 0)

	var y *autograd.Var
	tp.NoGrad(func() { y = autograd.Mul(x, w) })
	if y.RequiresGrad() {
		t.Error("an operation on the tape inside NoGrad records a gradient")
	}
}
