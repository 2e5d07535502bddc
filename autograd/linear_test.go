package autograd_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// composedAct applies act with the separate activation ops.
func composedAct(v *autograd.Var, act device.Activation) *autograd.Var {
	switch act {
	case device.ActRelu:
		return autograd.Relu(v)
	case device.ActSigmoid:
		return autograd.Sigmoid(v)
	case device.ActTanh:
		return autograd.Tanh(v)
	}
	return v
}

// TestLinearActMatchesComposed checks LinearAct against Linear followed by
// the activation op: the outputs and every gradient, over several passes on
// one tape, as a training loop runs them.
func TestLinearActMatchesComposed(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, act := range []device.Activation{device.Identity, device.ActRelu, device.ActSigmoid, device.ActTanh} {
			for _, sh := range [][3]int{{1, 1, 1}, {7, 13, 9}, {33, 20, 17}} {
				for _, bias := range []bool{false, true} {
					batch, in, out := sh[0], sh[1], sh[2]
					name := fmt.Sprintf("act %d %v bias=%v", act, sh, bias)
					r := rand.New(rand.NewPCG(uint64(batch), uint64(act)))
					w0 := testutil.RandSlice(r, out*in, -1, 1)
					b0 := testutil.RandSlice(r, out, -1, 1)
					params := func() (w, b *autograd.Var) {
						w = autograd.Param(tensor.FromSlice(d, w0, out, in))
						if bias {
							b = autograd.Param(tensor.FromSlice(d, b0, out))
						}
						return w, b
					}
					wf, bf := params()
					wc, bc := params()
					fused, composed := autograd.NewTape(), autograd.NewTape()
					for pass := range 3 {
						xv := testutil.RandSlice(r, batch*in, -1, 1)
						lv := testutil.RandSlice(r, batch*out, -1, 1)
						xf := fused.Var(tensor.FromSlice(d, xv, batch, in), true)
						xc := composed.Var(tensor.FromSlice(d, xv, batch, in), true)
						weights := autograd.Const(tensor.FromSlice(d, lv, batch, out))
						yf := autograd.LinearAct(xf, wf, bf, act)
						yc := composedAct(autograd.Linear(xc, wc, bc), act)
						pn := fmt.Sprintf("%s pass %d", name, pass)
						testutil.AllClose(t, pn+" y", yf.Value.Data(), yc.Value.Data(), 1e-6, 1e-5)
						lf := autograd.SumAll(autograd.Mul(yf, weights))
						lc := autograd.SumAll(autograd.Mul(yc, weights))
						if err := lf.Backward(); err != nil {
							t.Fatal(err)
						}
						if err := lc.Backward(); err != nil {
							t.Fatal(err)
						}
						testutil.AllClose(t, pn+" dx", xf.Grad.Data(), xc.Grad.Data(), 1e-5, 1e-4)
						testutil.AllClose(t, pn+" dw", wf.Grad.Data(), wc.Grad.Data(), 1e-5, 1e-4)
						if bias {
							testutil.AllClose(t, pn+" db", bf.Grad.Data(), bc.Grad.Data(), 1e-5, 1e-4)
						}
						if pass == 1 { // parameter gradients restart from nothing
							for _, p := range []*autograd.Var{wf, bf, wc, bc} {
								if p != nil {
									p.ZeroGrad()
								}
							}
						}
						lf.Value.Free()
						lc.Value.Free()
						weights.Value.Free()
					}
					fused.Free()
					composed.Free()
				}
			}
		}
	})
}

func TestGradCheckLinearAct(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		// ReLU's kink would trip finite differences; TestLinearActMatchesComposed covers it.
		for _, act := range []device.Activation{device.Identity, device.ActSigmoid, device.ActTanh} {
			r := rand.New(rand.NewPCG(5, uint64(act)))
			in := []*tensor.Tensor{away(d, r, 4, 3), away(d, r, 5, 3), away(d, r, 5)}
			scalar := weighted(d, 9)
			f := func(v []*autograd.Var) *autograd.Var { return scalar(autograd.LinearAct(v[0], v[1], v[2], act)) }
			if err := autograd.GradCheck(f, in, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("linear act %d: %v", act, err)
			}
		}
	})
}

// TestPassesReleaseTheirNodes checks the contract of a tape across
// passes: each pass gets new nodes, a node held past its pass is released
// (its use fails, it never shows the next pass's values), a value Detach
// kept survives.
func TestPassesReleaseTheirNodes(t *testing.T) {
	d := device.NewCPU(1)
	r := rand.New(rand.NewPCG(8, 8))
	w := autograd.Param(tensor.FromSlice(d, testutil.RandSlice(r, 12, -1, 1), 4, 3))
	b := autograd.Param(tensor.FromSlice(d, testutil.RandSlice(r, 4, -1, 1), 4))
	labels := tensor.FromSlice(d, []float32{0, 3}, 2)
	tp := autograd.NewTape()
	x := tp.Var(tensor.FromSlice(d, testutil.RandSlice(r, 6, -1, 1), 2, 3), false)
	var hidden []*autograd.Var
	var bufs []device.Buffer
	var kept *autograd.Var
	var want []float32
	for pass := range 3 {
		h := autograd.LinearAct(x, w, b, device.ActRelu)
		hidden, bufs = append(hidden, h), append(bufs, h.Value.Buffer())
		if pass == 0 {
			kept, want = autograd.Detach(h), h.Value.Data()
		}
		loss := autograd.SoftmaxCrossEntropy(h, labels)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		if tp.Len() != 0 {
			t.Fatalf("pass %d: %d nodes left on the tape", pass, tp.Len())
		}
		if err := tensor.Catch(func() { autograd.Relu(h) }); !errors.Is(err, autograd.ErrReleased) {
			t.Fatalf("pass %d: using the hidden layer after Backward: %v, want ErrReleased", pass, err)
		}
	}
	if hidden[1] == hidden[0] || hidden[2] == hidden[1] {
		t.Error("a pass reused a node of the previous pass")
	}
	if bufs[1] == bufs[0] {
		t.Error("pass 2 computed into the buffer that Detach shares")
	}
	testutil.AllClose(t, "detached value", kept.Value.Data(), want, 0, 0)
	tp.Free()
	if err := tensor.Catch(func() { hidden[0].Value.Data() }); !errors.Is(err, tensor.ErrFreed) {
		t.Errorf("value after its pass: got %v, want ErrFreed", err)
	}
}

func TestLinearActShapeErrors(t *testing.T) {
	d := device.NewCPU(1)
	x := autograd.Const(tensor.Zeros(d, 2, 3))
	w := autograd.Const(tensor.Zeros(d, 4, 5))
	err := tensor.Catch(func() { autograd.LinearAct(x, w, nil, device.ActRelu) })
	if !errors.Is(err, tensor.ErrShape) || !strings.Contains(err.Error(), "linear_relu") || !strings.Contains(err.Error(), "[4 5]") {
		t.Errorf("input of 3 features into a layer of 5: %v", err)
	}
	b := autograd.Const(tensor.Zeros(d, 3))
	w2 := autograd.Const(tensor.Zeros(d, 4, 3))
	if err := tensor.Catch(func() { autograd.LinearAct(x, w2, b, device.Identity) }); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("bias of 3 for 4 outputs: %v", err)
	}
}
