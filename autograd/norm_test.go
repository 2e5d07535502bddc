package autograd_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// layerNormRef is layer_norm in float64 on the host.
func layerNormRef(x, w, b []float32, inner int, eps float64) []float32 {
	y := make([]float32, len(x))
	for o := 0; o < len(x); o += inner {
		row := x[o : o+inner]
		mean, v := 0.0, 0.0
		for _, e := range row {
			mean += float64(e)
		}
		mean /= float64(inner)
		for _, e := range row {
			v += (float64(e) - mean) * (float64(e) - mean)
		}
		v /= float64(inner)
		for i, e := range row {
			y[o+i] = float32((float64(e)-mean)/math.Sqrt(v+eps)*float64(w[i]) + float64(b[i]))
		}
	}
	return y
}

func TestLayerNorm(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for i, c := range []struct{ x, norm []int }{
			{[]int{5}, []int{5}},
			{[]int{3, 4}, []int{4}},
			{[]int{2, 3, 4}, []int{3, 4}},
			{[]int{2, 1, 3, 2}, []int{3, 2}},
			{[]int{2, 2, 1, 3, 2}, []int{1, 3, 2}},
			{[]int{2, 1, 2, 2, 1, 3}, []int{2, 1, 3}},
		} {
			r := rand.New(rand.NewPCG(uint64(i), 11))
			x, w, b := away(d, r, c.x...), away(d, r, c.norm...), away(d, r, c.norm...)
			inner := w.Len()
			y := autograd.LayerNorm(autograd.Const(x), c.norm, autograd.Const(w), autograd.Const(b), 1e-5)
			testutil.AllClose(t, "layer norm", y.Value.Data(), layerNormRef(x.Data(), w.Data(), b.Data(), inner, 1e-5), 1e-5, 1e-5)
			f := func(in []*autograd.Var) *autograd.Var { return autograd.LayerNorm(in[0], c.norm, in[1], in[2], 1e-5) }
			if err := autograd.GradCheck(f, []*tensor.Tensor{x, w, b}, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("layer norm %v over %v: %v", c.x, c.norm, err)
			}
			plain := func(in []*autograd.Var) *autograd.Var { return autograd.LayerNorm(in[0], c.norm, nil, nil, 1e-5) }
			if err := autograd.GradCheck(plain, []*tensor.Tensor{x}, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("layer norm %v over %v without affine: %v", c.x, c.norm, err)
			}
		}
		x := autograd.Const(tensor.Zeros(d, 2, 3))
		if err := tensor.Catch(func() { autograd.LayerNorm(x, []int{2}, nil, nil, 1e-5) }); !errors.Is(err, tensor.ErrShape) {
			t.Errorf("normalised shape [2] of a [2 3] input: %v", err)
		}
	})
}
