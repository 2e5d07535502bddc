package autograd_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// TestGradHook checks SetGradHook on the parameters of a three-layer
// network whose first weight is also used by a penalty (two contributions):
// each hook runs once per Backward, when the gradient is complete (it
// equals the gradient after Backward), in the order gradients become
// ready (the last layer first), before Backward has reached the earlier
// layers, and not at all once removed.
func TestGradHook(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(2, 2))
		param := func(shape ...int) *autograd.Var {
			n := 1
			for _, s := range shape {
				n *= s
			}
			return autograd.Param(tensor.FromSlice(d, testutil.RandSlice(r, n, -1, 1), shape...))
		}
		w1, b1, w2, b2, w3 := param(5, 4), param(5), param(6, 5), param(6), param(3, 6)
		names := map[*autograd.Var]string{w1: "w1", b1: "b1", w2: "w2", b2: "b2", w3: "w3"}
		var order []string
		seen := map[string][]float32{}
		w1Early := false
		for v, name := range names {
			v.SetGradHook(func(v *autograd.Var) {
				order = append(order, name)
				seen[name] = v.Grad.Data()
				if name == "w3" && w1.Grad == nil {
					w1Early = true
				}
			})
		}
		tp := autograd.NewTape()
		defer tp.Free()
		x := tp.Var(tensor.FromSlice(d, testutil.RandSlice(r, 8, -1, 1), 2, 4), false)
		pass := func() {
			h := autograd.LinearAct(x, w1, b1, device.ActTanh)
			h = autograd.LinearAct(h, w2, b2, device.ActRelu)
			y := autograd.Linear(h, w3, nil)
			penalty := autograd.MulScalar(autograd.SumAll(autograd.Mul(w1, w1)), 0.1)
			loss := autograd.Add(penalty, autograd.MeanAll(autograd.Mul(y, y)))
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
		}
		pass()
		// The layers' gradients are ready from the last layer back; w1 and b1
		// come last, in an order that depends on when the penalty's
		// contribution to w1 is added.
		ok := func(order []string) bool {
			return len(order) == 5 && slices.Equal(order[:3], []string{"w3", "w2", "b2"}) &&
				slices.Contains(order[3:], "w1") && slices.Contains(order[3:], "b1")
		}
		want := "[w3 w2 b2] then w1 and b1"
		if !ok(order) {
			t.Errorf("hooks ran in the order %v, want %v", order, want)
		}
		if !w1Early {
			t.Error("the last layer's hook ran after Backward reached the first layer")
		}
		for v, name := range names {
			testutil.AllClose(t, name+" at its hook", seen[name], v.Grad.Data(), 0, 0)
		}
		order = order[:0]
		pass() // gradients accumulate; each hook runs once more
		if !ok(order) {
			t.Errorf("second pass: hooks ran in the order %v, want %v", order, want)
		}
		for v, name := range names {
			testutil.AllClose(t, name+" at its hook, second pass", seen[name], v.Grad.Data(), 0, 0)
		}
		for v := range names {
			v.SetGradHook(nil)
		}
		order = order[:0]
		pass()
		if len(order) != 0 {
			t.Errorf("removed hooks ran: %v", order)
		}
		h := autograd.Relu(x)
		if err := tensor.Catch(func() { h.SetGradHook(func(*autograd.Var) {}) }); err == nil {
			t.Error("SetGradHook on an intermediate was accepted")
		}
	})
}
