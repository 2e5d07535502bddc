package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// bnSeqFused is bnSeq with the ReLU fused into the first batch norm.
func bnSeqFused(d device.Device) *nn.Sequential {
	return nn.NewSequential(nn.NewBatchNorm2d(d, 3).WithActivation(device.ActRelu), flatten2{}, nn.NewBatchNorm1d(d, 3))
}

// TestBatchNormReluModule compares a BatchNorm2d with a fused ReLU with
// the BatchNorm2d followed by a ReLU module, on the fused kernels and on
// the composed fallback, for three training steps and an evaluation pass:
// outputs, gradients, running estimates and num_batches_tracked must agree
// bit for bit (NaN with NaN), with inputs holding exact zeros and, in a
// second round, a NaN.
func TestBatchNormReluModule(t *testing.T) {
	for _, composed := range []bool{false, true} {
		for _, nanX := range []bool{false, true} {
			var d device.Device = device.NewCPU(2)
			if composed {
				d = composedOnly{d}
			}
			name := fmt.Sprintf("composed %v NaN %v", composed, nanX)
			r := rand.New(rand.NewPCG(9, 3))
			shape := []int{3, 5, 7, 9}
			xs := testutil.RandSlice(r, 3*5*7*9, -2, 2)
			for k := 0; k < len(xs); k += 5 {
				xs[k] = 0
			}
			if nanX {
				xs[17] = float32(math.NaN())
			}
			gs := testutil.RandSlice(r, len(xs), -1, 1)
			var got [2][][]float32
			for k, fused := range []bool{true, false} {
				bn := nn.NewBatchNorm2d(d, 5)
				bn.Weight.Value.CopyFrom(testutil.RandSlice(rand.New(rand.NewPCG(4, 4)), 5, -1.5, 1.5))
				bn.Bias.Value.CopyFrom(testutil.RandSlice(rand.New(rand.NewPCG(5, 5)), 5, -1, 1))
				var m nn.Module = nn.NewSequential(bn, nn.ReLU{})
				if fused {
					m = nn.NewSequential(bn.WithActivation(device.ActRelu))
				}
				var out [][]float32
				for step := range 3 {
					tape := autograd.NewTape()
					xv := tape.Var(tensor.FromSlice(d, xs, shape...), true)
					y := m.Forward(xv)
					out = append(out, y.Value.Data())
					l := autograd.SumAll(autograd.Mul(y, autograd.Const(tensor.FromSlice(d, gs, shape...))))
					if err := l.Backward(); err != nil {
						t.Fatal(err)
					}
					out = append(out, xv.Grad.Data(), bn.Weight.Grad.Data(), bn.Bias.Grad.Data())
					if step < 2 {
						nn.ZeroGrad(m)
					}
					tape.Free()
				}
				m.SetTraining(false)
				tape := autograd.NewTape()
				tape.NoGrad(func() { out = append(out, m.Forward(tape.Var(tensor.FromSlice(d, xs, shape...), false)).Value.Data()) })
				tape.Free()
				for _, b := range bn.Buffers() {
					out = append(out, b.Value.Data())
				}
				got[k] = out
			}
			for j := range got[1] {
				sameBits(t, fmt.Sprintf("%s value %d", name, j), got[0][j], got[1][j])
			}
		}
	}
}

// TestBatchNormReluStateDict checks that a Sequential whose BatchNorm2d
// fuses its ReLU numbers its modules as torch.nn.Sequential(BatchNorm2d,
// ReLU, ...) does: it loads PyTorch's state_dict, gives PyTorch's output
// in evaluation, saves the same names, shapes and dtypes, and prints both
// modules.
func TestBatchNormReluStateDict(t *testing.T) {
	ref := readTorch(t, "batchnorm_torch.safetensors")
	d := device.NewCPU(0)
	m := bnSeqFused(d)
	if _, err := nn.Load(filepath.Join("testdata", "batchnorm_state.safetensors"), m); err != nil {
		t.Fatal(err)
	}
	testutil.AllClose(t, "PyTorch's state_dict in evaluation, fused", evalSeq(t, m, ref, d), lookup(t, ref, "seq.ye").Data, 1e-5, 1e-4)
	path := filepath.Join(t.TempDir(), "bn.safetensors")
	if err := nn.Save(path, m, nil); err != nil {
		t.Fatal(err)
	}
	saved, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	torch := readTorch(t, "batchnorm_state.safetensors")
	if len(saved.Tensors) != len(torch.Tensors) {
		t.Fatalf("saved %d tensors, PyTorch's state_dict has %d", len(saved.Tensors), len(torch.Tensors))
	}
	for i, w := range torch.Tensors {
		g := saved.Tensors[i]
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || g.DType != w.DType || !slices.Equal(g.Data, w.Data) {
			t.Errorf("saved %s %v %q, PyTorch wrote %s %v %q", g.Name, g.Shape, g.DType, w.Name, w.Shape, w.DType)
		}
	}
	if got, want := m.String(), bnSeq(d).String(); got != want {
		t.Errorf("fused Sequential prints\n%s\nwant\n%s", got, want)
	}
	if got, want := fmt.Sprint(m.Modules[0]), "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True), ReLU()"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if err := tensor.Catch(func() { nn.NewBatchNorm1d(d, 3).WithActivation(device.ActTanh) }); err == nil {
		t.Error("WithActivation(tanh) was accepted")
	}
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
