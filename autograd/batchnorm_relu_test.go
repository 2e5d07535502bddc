package autograd_test

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// reluGapInput returns x of shape, a weight and a bias, and running
// estimates equal to x's batch statistics, such that the batch norm's
// output stays well away from the ReLU's kink at 0: in each channel the
// upper half of the values is moved up by 2, and the bias puts the kink in
// the middle of the gap, so that the finite differences of the fused
// batch norm and ReLU never cross it, in training or in evaluation.
func reluGapInput(d device.Device, r *rand.Rand, shape []int) (x, w, b, rm, rv *tensor.Tensor) {
	outer, c, inner := shape[0], shape[1], 1
	for _, s := range shape[2:] {
		inner *= s
	}
	xs := away(d, r, shape...).Data()
	ws := away(d, r, c).Data()
	bs, ms, vs := make([]float32, c), make([]float32, c), make([]float32, c)
	m := outer * inner
	at := func(ch, k int) int { return ((k/inner)*c+ch)*inner + k%inner }
	for ch := range c {
		idx := make([]int, m)
		for k := range m {
			idx[k] = at(ch, k)
		}
		slices.SortFunc(idx, func(i, j int) int { return cmp.Compare(xs[i], xs[j]) })
		for _, i := range idx[m/2:] {
			xs[i] += 2
		}
		s, ss := 0.0, 0.0
		for _, i := range idx {
			s += float64(xs[i])
		}
		mu := s / float64(m)
		for _, i := range idx {
			ss += (float64(xs[i]) - mu) * (float64(xs[i]) - mu)
		}
		v := ss / float64(m)
		mid := (float64(xs[idx[m/2-1]])+float64(xs[idx[m/2]]))/2 - mu
		bs[ch] = float32(-float64(ws[ch]) * mid / math.Sqrt(v+1e-5))
		ms[ch], vs[ch] = float32(mu), float32(v)
	}
	return tensor.FromSlice(d, xs, shape...), tensor.FromSlice(d, ws, c), tensor.FromSlice(d, bs, c),
		tensor.FromSlice(d, ms, c), tensor.FromSlice(d, vs, c)
}

// TestBatchNormReluGrad checks the gradients of the batch norm with a
// fused ReLU, by the fused kernels and by the composed fallback, in
// training and in evaluation, against finite differences at odd sizes.
func TestBatchNormReluGrad(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, dev := range []device.Device{d, plainDevice{d}} {
			name := "fused"
			if _, ok := dev.(plainDevice); ok {
				name = "composed"
			}
			for i, shape := range bnShapes {
				r := rand.New(rand.NewPCG(uint64(i), 21))
				x, w, b, rm, rv := reluGapInput(dev, r, shape)
				y := autograd.BatchNormAct(autograd.Const(x), autograd.Const(w), autograd.Const(b), nil, nil, true, 0.1, 1e-5, device.ActRelu)
				pos, zero := 0, 0
				for _, v := range y.Value.Data() {
					if v > 0 {
						pos++
					} else if v == 0 {
						zero++
					}
				}
				if pos == 0 || zero == 0 || pos+zero != len(x.Data()) {
					t.Fatalf("%s %v: %d outputs positive and %d zero of %d, want both kinds and nothing else", name, shape, pos, zero, len(x.Data()))
				}
				train := func(in []*autograd.Var) *autograd.Var {
					return autograd.BatchNormAct(in[0], in[1], in[2], nil, nil, true, 0.1, 1e-5, device.ActRelu)
				}
				if err := autograd.GradCheck(train, []*tensor.Tensor{x, w, b}, bnCheck); err != nil {
					t.Errorf("%s batch norm and relu %v in training: %v", name, shape, err)
				}
				eval := func(in []*autograd.Var) *autograd.Var {
					return autograd.BatchNormAct(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5, device.ActRelu)
				}
				if err := autograd.GradCheck(eval, []*tensor.Tensor{x, w, b}, bnCheck); err != nil {
					t.Errorf("%s batch norm and relu %v in evaluation: %v", name, shape, err)
				}
			}
		}
	})
}

// TestBatchNormReluMatchesUnfused compares BatchNormAct with ActRelu with
// Relu(BatchNorm(...)), on the device's fused kernels and on the composed
// fallback, in training and in evaluation: outputs, running estimates and
// the gradients of x, weight and bias must agree bit for bit (NaN with
// NaN). The inputs hold exact zeros, a channel that normalises to exact
// zeros (weight and bias 0), an upstream gradient with zeros and NaNs, and
// in a second round a NaN in x.
func TestBatchNormReluMatchesUnfused(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, dev := range []device.Device{d, plainDevice{d}} {
			for i, shape := range bnShapes {
				for _, nanX := range []bool{false, true} {
					for _, training := range []bool{true, false} {
						name := fmt.Sprintf("%T %v training %v NaN in x %v", dev, shape, training, nanX)
						r := rand.New(rand.NewPCG(uint64(i), 22))
						c := shape[1]
						xs := away(dev, r, shape...).Data()
						for k := 0; k < len(xs); k += 3 {
							xs[k] = 0
						}
						if nanX {
							xs[len(xs)-1] = float32(math.NaN())
						}
						ws, bs := away(dev, r, c).Data(), away(dev, r, c).Data()
						ws[0], bs[0] = 0, 0
						gs := away(dev, r, shape...).Data()
						for k := 1; k < len(gs); k += 4 {
							gs[k] = 0
						}
						gs[0] = float32(math.NaN()) // in the channel of zeros: the mask drops it
						rm0, rv0 := away(dev, r, c).Data(), testutil.RandSlice(r, c, 0.5, 2)
						var got [2][][]float32
						for k, fused := range []bool{true, false} {
							tp := autograd.NewTape()
							xv := tp.Var(tensor.FromSlice(dev, xs, shape...), true)
							wv, bv := autograd.Param(tensor.FromSlice(dev, ws, c)), autograd.Param(tensor.FromSlice(dev, bs, c))
							rm, rv := tensor.FromSlice(dev, rm0, c), tensor.FromSlice(dev, rv0, c)
							var y *autograd.Var
							if fused {
								y = autograd.BatchNormAct(xv, wv, bv, rm, rv, training, 0.1, 1e-5, device.ActRelu)
							} else {
								y = autograd.Relu(autograd.BatchNorm(xv, wv, bv, rm, rv, training, 0.1, 1e-5))
							}
							yv := y.Value.Data()
							l := autograd.SumAll(autograd.Mul(y, autograd.Const(tensor.FromSlice(dev, gs, shape...))))
							if err := l.Backward(); err != nil {
								t.Fatal(err)
							}
							got[k] = [][]float32{yv, rm.Data(), rv.Data(), xv.Grad.Data(), wv.Grad.Data(), bv.Grad.Data()}
							tp.Free()
						}
						for j, what := range []string{"y", "running_mean", "running_var", "dx", "dweight", "dbias"} {
							sameBits(t, name+" "+what, got[0][j], got[1][j])
						}
						if !nanX {
							if db := got[0][5][0]; db != 0 {
								t.Errorf("%s: dbias of the channel of zeros %g, want 0", name, db)
							}
						}
					}
				}
			}
		}
	})
}

// sameBits reports values of got whose bits differ from want's, any NaN
// matching any NaN.
func sameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", name, len(got), len(want))
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			t.Errorf("%s[%d] = %g, want %g", name, i, g, w)
			return
		}
	}
}

// TestBatchNormReluNodes checks that the fused batch norm and ReLU is one
// node in training on a device with the fused kernels, and that
// BatchNormAct refuses the activations it does not fuse.
func TestBatchNormReluNodes(t *testing.T) {
	d := device.NewCPU(1)
	r := rand.New(rand.NewPCG(5, 22))
	nodes := func(f func(x, w, b *autograd.Var) *autograd.Var) int {
		tp := autograd.NewTape()
		defer tp.Free()
		x := tp.Var(away(d, r, 3, 2, 4), true)
		w, b := autograd.Param(away(d, r, 2)), autograd.Param(away(d, r, 2))
		n := tp.Len()
		f(x, w, b)
		return tp.Len() - n
	}
	fused := nodes(func(x, w, b *autograd.Var) *autograd.Var {
		return autograd.BatchNormAct(x, w, b, nil, nil, true, 0.1, 1e-5, device.ActRelu)
	})
	unfused := nodes(func(x, w, b *autograd.Var) *autograd.Var {
		return autograd.Relu(autograd.BatchNorm(x, w, b, nil, nil, true, 0.1, 1e-5))
	})
	if fused != 1 || unfused != 2 {
		t.Errorf("fused batch norm and relu took %d nodes, unfused %d: want 1 and 2", fused, unfused)
	}
	err := tensor.Catch(func() {
		autograd.BatchNormAct(autograd.Const(away(d, r, 3, 2)), autograd.Const(away(d, r, 2)), autograd.Const(away(d, r, 2)),
			nil, nil, true, 0.1, 1e-5, device.ActTanh)
	})
	var te *tensor.Error
	if !errors.As(err, &te) || te.Op != "batch_norm" {
		t.Errorf("batch norm with tanh: got %v, want a batch_norm error", err)
	}
}
