package autograd_test

import (
	"errors"
	"math"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// The Jacobian of softmax is diag(s) - s·sᵀ, and VJP with any v is vᵀ
// times it; a function that ignores its input has a zero Jacobian.
func TestJacobianAndVJP(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		xs := []float64{0.5, -1, 2, 0.25}
		x := tensor.FromSlice(d, []float32{0.5, -1, 2, 0.25})
		softmax := func(v *autograd.Var) *autograd.Var { return autograd.Softmax(v, 0) }
		J, err := autograd.Jacobian(softmax, x)
		if err != nil {
			t.Fatal(err)
		}
		if got := J.Shape(); len(got) != 2 || got[0] != 4 || got[1] != 4 {
			t.Fatalf("Jacobian of a [4] function of a [4] input has shape %v", got)
		}
		s := make([]float64, 4)
		sum := 0.0
		for i, v := range xs {
			s[i] = math.Exp(v)
			sum += s[i]
		}
		want := make([]float32, 16)
		for i := range 4 {
			for j := range 4 {
				w := -s[i] / sum * s[j] / sum
				if i == j {
					w += s[i] / sum
				}
				want[i*4+j] = float32(w)
			}
		}
		testutil.AllClose(t, "softmax Jacobian", J.Data(), want, 1e-6, 1e-5)

		vs := []float32{1, -2, 0.5, 3}
		y, vjp, err := autograd.VJP(softmax, x, tensor.FromSlice(d, vs))
		if err != nil {
			t.Fatal(err)
		}
		wantVJP := make([]float32, 4)
		for j := range 4 {
			for i := range 4 {
				wantVJP[j] += vs[i] * want[i*4+j]
			}
		}
		testutil.AllClose(t, "vjp", vjp.Data(), wantVJP, 1e-6, 1e-5)
		for i := range s {
			s[i] /= sum
		}
		testutil.AllClose(t, "vjp's f(x)", y.Data(), []float32{float32(s[0]), float32(s[1]), float32(s[2]), float32(s[3])}, 1e-7, 1e-6)
		testutil.AllClose(t, "input after Jacobian and VJP", x.Data(), []float32{0.5, -1, 2, 0.25}, 0, 0)

		c := autograd.Const(tensor.FromSlice(d, []float32{1, 2}))
		J0, err := autograd.Jacobian(func(*autograd.Var) *autograd.Var { return autograd.Exp(c) }, x)
		if err != nil {
			t.Fatal(err)
		}
		testutil.AllClose(t, "Jacobian of a constant function", J0.Data(), make([]float32, 8), 0, 0)
		_, _, err = autograd.VJP(softmax, x, tensor.FromSlice(d, []float32{1, 2}))
		if !errors.Is(err, tensor.ErrShape) {
			t.Errorf("VJP with a v of the wrong shape: %v, want a shape error", err)
		}
	})
}
