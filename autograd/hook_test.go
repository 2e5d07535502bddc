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

// TestGradHook checks that each hook runs once per pass, as soon as its
// variable's gradient is final: the gradient it sees is the one Backward
// leaves, the hooks of the last layer run before the first layer's
// gradients exist, and a weight read twice waits for both contributions.
func TestGradHook(t *testing.T) {
	d := device.NewCPU(1)
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(shape ...int) *tensor.Tensor {
		n := 1
		for _, s := range shape {
			n *= s
		}
		return tensor.FromSlice(d, testutil.RandSlice(r, n, -1, 1), shape...)
	}
	w1, b1 := autograd.Param(rnd(5, 3)), autograd.Param(rnd(5))
	w2, b2 := autograd.Param(rnd(4, 5)), autograd.Param(rnd(4))
	shared := autograd.Param(rnd(4, 4)) // read by two operations
	unused := autograd.Param(rnd(2))    // not in the graph
	params := []*autograd.Var{w1, b1, w2, b2, shared, unused}
	names := map[*autograd.Var]string{w1: "w1", b1: "b1", w2: "w2", b2: "b2", shared: "shared", unused: "unused"}

	var order []string
	seen := map[string][]float32{}
	for _, p := range params {
		p.SetGradHook(func(v *autograd.Var) {
			order = append(order, names[v])
			if v.Grad == nil {
				t.Errorf("hook of %s: no gradient", names[v])
				return
			}
			seen[names[v]] = v.Grad.Data()
			if names[v] == "w2" && w1.Grad != nil {
				t.Errorf("w2's hook ran after w1's gradient was computed")
			}
		})
	}
	tape := autograd.NewTape()
	x := tape.Var(rnd(6, 3), false)
	for pass := range 2 {
		order, seen = order[:0], map[string][]float32{}
		for _, p := range params {
			p.ZeroGrad()
		}
		h := autograd.LinearAct(x, w1, b1, device.ActRelu)
		y := autograd.Linear(h, w2, b2)                                                     // [6, 4]
		z := autograd.MatMul(autograd.MatMul(y, shared, false, false), shared, false, true) // shared twice
		loss := autograd.MeanAll(autograd.Mul(z, z))
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		loss.Value.Free()
		want := []string{"shared", "w2", "b2", "w1", "b1"}
		if !slices.Equal(order, want) {
			t.Fatalf("pass %d: hooks ran in the order %v, want %v", pass, order, want)
		}
		for _, p := range params[:5] {
			if got, final := seen[names[p]], p.Grad.Data(); !slices.Equal(got, final) {
				t.Errorf("pass %d: %s's hook saw %v, Backward left %v", pass, names[p], got, final)
			}
		}
	}
	// A removed hook no longer runs.
	for _, p := range params {
		p.SetGradHook(nil)
	}
	order = order[:0]
	loss := autograd.SumAll(autograd.Linear(x, w1, b1))
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	if len(order) != 0 {
		t.Errorf("removed hooks ran: %v", order)
	}
}

// TestGradHookLeafRoot: Backward from a parameter itself runs its hook.
func TestGradHookLeafRoot(t *testing.T) {
	d := device.NewCPU(1)
	p := autograd.Param(tensor.Scalar(d, 3))
	calls := 0
	p.SetGradHook(func(v *autograd.Var) { calls++ })
	if err := p.Backward(); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("hook ran %d times, want 1", calls)
	}
}
