package autograd_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// transposed returns the rows×cols row-major matrix v transposed.
func transposed(v []float32, rows, cols int) []float32 {
	t := make([]float32, len(v))
	for i := range rows {
		for j := range cols {
			t[j*rows+i] = v[i*cols+j]
		}
	}
	return t
}

// TestLinearActTMatchesLinearAct checks LinearActT with the transposed
// weight against LinearAct: outputs and every gradient, at batches that
// fit one row of the product's tiles and batches that do not.
func TestLinearActTMatchesLinearAct(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, act := range []device.Activation{device.Identity, device.ActRelu, device.ActSigmoid, device.ActTanh} {
			for _, sh := range [][3]int{{1, 1, 1}, {1, 37, 45}, {5, 13, 9}, {23, 70, 33}, {40, 20, 17}} {
				for _, bias := range []bool{false, true} {
					batch, in, out := sh[0], sh[1], sh[2]
					name := fmt.Sprintf("act %d %v bias=%v", act, sh, bias)
					r := rand.New(rand.NewPCG(uint64(batch), uint64(act)+7))
					w0 := testutil.RandSlice(r, out*in, -1, 1)
					b0 := testutil.RandSlice(r, out, -1, 1)
					xv := testutil.RandSlice(r, batch*in, -1, 1)
					lv := testutil.RandSlice(r, batch*out, -1, 1)
					w := autograd.Param(tensor.FromSlice(d, w0, out, in))
					wt := autograd.Param(tensor.FromSlice(d, transposed(w0, out, in), in, out))
					var b, bt *autograd.Var
					if bias {
						b = autograd.Param(tensor.FromSlice(d, b0, out))
						bt = autograd.Param(tensor.FromSlice(d, b0, out))
					}
					tape, tapeT := autograd.NewTape(), autograd.NewTape()
					x := tape.Var(tensor.FromSlice(d, xv, batch, in), true)
					xt := tapeT.Var(tensor.FromSlice(d, xv, batch, in), true)
					weights := autograd.Const(tensor.FromSlice(d, lv, batch, out))
					y := autograd.LinearAct(x, w, b, act)
					yt := autograd.LinearActT(xt, wt, bt, act)
					testutil.AllClose(t, name+" y", yt.Value.Data(), y.Value.Data(), 1e-6, 1e-5)
					for _, l := range []*autograd.Var{autograd.SumAll(autograd.Mul(y, weights)), autograd.SumAll(autograd.Mul(yt, weights))} {
						if err := l.Backward(); err != nil {
							t.Fatal(err)
						}
					}
					testutil.AllClose(t, name+" dx", xt.Grad.Data(), x.Grad.Data(), 1e-5, 1e-4)
					testutil.AllClose(t, name+" dwt", wt.Grad.Data(), transposed(w.Grad.Data(), out, in), 1e-5, 1e-4)
					if bias {
						testutil.AllClose(t, name+" db", bt.Grad.Data(), b.Grad.Data(), 1e-5, 1e-4)
					}
					tape.Free()
					tapeT.Free()
				}
			}
		}
	})
}

func TestGradCheckLinearActT(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, act := range []device.Activation{device.Identity, device.ActSigmoid, device.ActTanh} {
			r := rand.New(rand.NewPCG(6, uint64(act)))
			in := []*tensor.Tensor{away(d, r, 4, 3), away(d, r, 3, 5), away(d, r, 5)}
			scalar := weighted(d, 9)
			f := func(v []*autograd.Var) *autograd.Var { return scalar(autograd.LinearActT(v[0], v[1], v[2], act)) }
			if err := autograd.GradCheck(f, in, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("linear_t act %d: %v", act, err)
			}
		}
	})
}

func TestLinearActTShapeErrors(t *testing.T) {
	d := device.NewCPU(1)
	x := autograd.Const(tensor.Zeros(d, 2, 3))
	for _, c := range []struct {
		name  string
		wt, b *autograd.Var
	}{
		{"weight not transposed", autograd.Const(tensor.Zeros(d, 4, 3)), nil},
		{"bias of in", autograd.Const(tensor.Zeros(d, 3, 4)), autograd.Const(tensor.Zeros(d, 3))},
		{"weight of 1 dim", autograd.Const(tensor.Zeros(d, 3)), nil},
	} {
		func() {
			defer func() {
				e, ok := recover().(*tensor.Error)
				if !ok || !errors.Is(e, tensor.ErrShape) {
					t.Errorf("%s: panic %v, want a shape error", c.name, e)
				}
			}()
			autograd.LinearActT(x, c.wt, c.b, device.ActRelu)
		}()
	}
}
