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

// plainDevice hides a device's optional fused kernels, so that the
// composed fallbacks run.
type plainDevice struct{ device.Device }

// bnCheck are the finite-difference settings for batch norm: its output
// is normalised, so the float32 noise of the finite differences weighs
// more than for elementwise ops (the fused and composed gradients agree
// to 1e-5, see TestBatchNormFusedMatchesComposed).
var bnCheck = autograd.GradCheckOptions{Eps: 3e-2}

// bnShapes are inputs of odd sizes: [N, C], [N, C, L] and [N, C, H, W],
// batch 1 where more than one value per channel remains.
var bnShapes = [][]int{{5, 3}, {2, 1}, {3, 2, 5}, {1, 3, 5}, {2, 3, 3, 5}, {1, 2, 3, 3}, {3, 1, 1, 2}, {2, 5, 1, 7}}

// batchNormRef is batch_norm in training in float64 on the host: the
// output and the running estimates after one update.
func batchNormRef(x, w, b, rm, rv []float32, shape []int, momentum, eps float64) (y, mean, variance []float32) {
	outer, c, inner := shape[0], shape[1], 1
	for _, d := range shape[2:] {
		inner *= d
	}
	m := float64(outer * inner)
	y = make([]float32, len(x))
	mean, variance = make([]float32, c), make([]float32, c)
	for ch := range c {
		s, ss := 0.0, 0.0
		for o := range outer {
			for i := range inner {
				s += float64(x[(o*c+ch)*inner+i])
			}
		}
		mu := s / m
		for o := range outer {
			for i := range inner {
				d := float64(x[(o*c+ch)*inner+i]) - mu
				ss += d * d
			}
		}
		v := ss / m
		for o := range outer {
			for i := range inner {
				k := (o*c+ch)*inner + i
				y[k] = float32((float64(x[k])-mu)/math.Sqrt(v+eps)*float64(w[ch]) + float64(b[ch]))
			}
		}
		mean[ch] = float32((1-momentum)*float64(rm[ch]) + momentum*mu)
		variance[ch] = float32((1-momentum)*float64(rv[ch]) + momentum*v*m/(m-1))
	}
	return y, mean, variance
}

func TestBatchNorm(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, dev := range []device.Device{d, plainDevice{d}} {
			name := "fused"
			if _, ok := dev.(plainDevice); ok {
				name = "composed"
			}
			for i, shape := range bnShapes {
				r := rand.New(rand.NewPCG(uint64(i), 12))
				c := shape[1]
				x, w, b := away(dev, r, shape...), away(dev, r, c), away(dev, r, c)
				shifted := tensor.Add(x, tensor.Full(dev, 3, shape...)) // an offset the statistics must remove
				rm, rv := away(dev, r, c), tensor.FromSlice(dev, testutil.RandSlice(r, c, 0.5, 2), c)
				wantY, wantM, wantV := batchNormRef(shifted.Data(), w.Data(), b.Data(), rm.Data(), rv.Data(), shape, 0.1, 1e-5)
				y := autograd.BatchNorm(autograd.Const(shifted), autograd.Const(w), autograd.Const(b), rm, rv, true, 0.1, 1e-5)
				testutil.AllClose(t, name+" batch norm", y.Value.Data(), wantY, 2e-5, 1e-4)
				testutil.AllClose(t, name+" running mean", rm.Data(), wantM, 1e-6, 1e-5)
				testutil.AllClose(t, name+" running var", rv.Data(), wantV, 1e-6, 1e-5)

				train := func(in []*autograd.Var) *autograd.Var {
					return autograd.BatchNorm(in[0], in[1], in[2], nil, nil, true, 0.1, 1e-5)
				}
				if err := autograd.GradCheck(train, []*tensor.Tensor{x, w, b}, bnCheck); err != nil {
					t.Errorf("%s batch norm %v in training: %v", name, shape, err)
				}
				eval := func(in []*autograd.Var) *autograd.Var {
					return autograd.BatchNorm(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5)
				}
				if err := autograd.GradCheck(eval, []*tensor.Tensor{x, w, b}, bnCheck); err != nil {
					t.Errorf("%s batch norm %v in evaluation: %v", name, shape, err)
				}
			}
		}
	})
}

// TestBatchNormAccumulates checks the fused backward pass when the
// gradients already hold values: x used twice, and the weight's gradient
// accumulated while the bias's is not.
func TestBatchNormAccumulates(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(3, 12))
		shape := []int{3, 4, 5}
		x, w, b := away(d, r, shape...), away(d, r, 4), away(d, r, 4)
		twice := func(in []*autograd.Var) *autograd.Var {
			y := autograd.BatchNorm(in[0], in[1], in[2], nil, nil, true, 0.1, 1e-5)
			return autograd.Add(autograd.SumAll(autograd.Mul(y, in[0])), autograd.SumAll(autograd.Mul(in[1], in[1])))
		}
		if err := autograd.GradCheck(twice, []*tensor.Tensor{x, w, b}, bnCheck); err != nil {
			t.Errorf("batch norm with accumulated gradients: %v", err)
		}
	})
}

func TestBatchNormErrors(t *testing.T) {
	d := device.NewCPU(1)
	for _, c := range []struct {
		shape    []int
		training bool
		stats    bool
	}{
		{[]int{1, 3}, true, true},      // one value per channel
		{[]int{1, 3, 1}, true, false},  // one value per channel
		{[]int{4}, true, true},         // no channel axis
		{[]int{2, 3, 2}, false, false}, // evaluation without running estimates
		{[]int{2, 4, 2}, true, true},   // 4 channels, 3 features
	} {
		var rm, rv *tensor.Tensor
		if c.stats {
			rm, rv = tensor.Zeros(d, 3), tensor.Ones(d, 3)
		}
		err := tensor.Catch(func() {
			autograd.BatchNorm(autograd.Const(tensor.Zeros(d, c.shape...)), autograd.Const(tensor.Ones(d, 3)),
				autograd.Const(tensor.Zeros(d, 3)), rm, rv, c.training, 0.1, 1e-5)
		})
		var te *tensor.Error
		if !errors.As(err, &te) || te.Op != "batch_norm" {
			t.Errorf("batch norm of %v (training %v): got %v, want a batch_norm error", c.shape, c.training, err)
		}
	}
}

// TestBatchNormFusedMatchesComposed compares the fused kernels' gradients
// with those of the composed operations, with gradients that accumulate
// (x is used twice, the weight too).
func TestBatchNormFusedMatchesComposed(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for i, shape := range bnShapes {
			r := rand.New(rand.NewPCG(uint64(i), 13))
			c := shape[1]
			x, w, b := away(d, r, shape...), away(d, r, c), away(d, r, c)
			var got [2][]float32
			for k, dev := range []device.Device{d, plainDevice{d}} {
				tp := autograd.NewTape()
				xv := tp.Var(tensor.FromSlice(dev, x.Data(), shape...), true)
				wv, bv := autograd.Param(tensor.FromSlice(dev, w.Data(), c)), autograd.Param(tensor.FromSlice(dev, b.Data(), c))
				y := autograd.BatchNorm(xv, wv, bv, nil, nil, true, 0.1, 1e-5)
				l := autograd.Add(autograd.SumAll(autograd.Mul(y, xv)), autograd.SumAll(autograd.Mul(wv, wv)))
				if err := l.Backward(); err != nil {
					t.Fatal(err)
				}
				got[k] = append(append(xv.Grad.Data(), wv.Grad.Data()...), bv.Grad.Data()...)
			}
			testutil.AllClose(t, "fused against composed gradients", got[0], got[1], 1e-5, 1e-4)
		}
	})
}
