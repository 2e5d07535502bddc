package nn_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// readTorch reads a file written by testdata/batchnorm_gen.py.
func readTorch(t *testing.T, name string) *safetensors.File {
	t.Helper()
	f, err := safetensors.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 nn/testdata/batchnorm_gen.py)", err)
	}
	return f
}

// lookup returns the tensor called name of f.
func lookup(t *testing.T, f *safetensors.File, name string) *safetensors.Tensor {
	t.Helper()
	v, ok := f.Lookup(name)
	if !ok {
		t.Fatalf("testdata has no tensor %q", name)
	}
	return v
}

// TestBatchNormAgainstPyTorch trains each layer of the reference file for
// three steps and compares the outputs, the gradients, the running
// estimates and the batch count with PyTorch's, then the output in
// evaluation.
func TestBatchNormAgainstPyTorch(t *testing.T) {
	f := readTorch(t, "batchnorm_torch.safetensors")
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, dev := range []device.Device{d, composedOnly{d}} {
			for _, name := range []string{"bn1d2", "bn1d3", "bn2d", "bn2d1"} {
				x0 := lookup(t, f, name+".x.0")
				var m *nn.BatchNorm
				if len(x0.Shape) == 4 {
					m = nn.NewBatchNorm2d(dev, x0.Shape[1])
				} else {
					m = nn.NewBatchNorm1d(dev, x0.Shape[1])
				}
				m.Weight.Value.CopyFrom(lookup(t, f, name+".weight").Data)
				m.Bias.Value.CopyFrom(lookup(t, f, name+".bias").Data)
				tape := autograd.NewTape()
				for s := range 3 {
					at := func(k string) []float32 { return lookup(t, f, fmt.Sprintf("%s.%s.%d", name, k, s)).Data }
					what := fmt.Sprintf("%T %s step %d", dev, name, s)
					x := tape.Var(tensor.FromSlice(dev, at("x"), x0.Shape...), true)
					r := tensor.FromSlice(dev, at("r"), x0.Shape...)
					y := m.Forward(x)
					testutil.AllClose(t, what+" output", y.Value.Data(), at("y"), 1e-5, 1e-4)
					loss := autograd.SumAll(autograd.Mul(y, autograd.Const(r)))
					if err := loss.Backward(); err != nil {
						t.Fatal(err)
					}
					testutil.AllClose(t, what+" input gradient", x.Grad.Data(), at("gx"), 1e-5, 1e-3)
					testutil.AllClose(t, what+" weight gradient", m.Weight.Grad.Data(), at("gw"), 1e-5, 1e-4)
					testutil.AllClose(t, what+" bias gradient", m.Bias.Grad.Data(), at("gb"), 1e-5, 1e-4)
					testutil.AllClose(t, what+" running_mean", m.RunningMean.Data(), at("running_mean"), 1e-6, 1e-5)
					testutil.AllClose(t, what+" running_var", m.RunningVar.Data(), at("running_var"), 1e-6, 1e-5)
					if got, want := m.NumBatchesTracked.Item(), at("num_batches_tracked")[0]; got != want {
						t.Errorf("%s: num_batches_tracked %v, want %v", what, got, want)
					}
					nn.ZeroGrad(m)
				}
				m.SetTraining(false)
				var ye []float32
				tape.NoGrad(func() {
					ye = m.Forward(tape.Var(tensor.FromSlice(dev, lookup(t, f, name+".xe").Data, x0.Shape...), false)).Value.Data()
				})
				tape.Free()
				testutil.AllClose(t, fmt.Sprintf("%T %s evaluation", dev, name), ye, lookup(t, f, name+".ye").Data, 1e-5, 1e-4)
				if got := m.NumBatchesTracked.Item(); got != 3 {
					t.Errorf("%s: evaluation changed num_batches_tracked to %v", name, got)
				}
			}
		}
	})
}

// flatten2 is torch.nn.Flatten(2): [N, C, H, W] to [N, C, H·W].
type flatten2 struct{}

func (flatten2) Forward(x *autograd.Var) *autograd.Var {
	s := x.Shape()
	return autograd.Reshape(x, s[0], s[1], s[2]*s[3])
}
func (flatten2) Parameters() []nn.Param { return nil }
func (flatten2) SetTraining(bool)       {}

// bnSeq is the Sequential of testdata/batchnorm_state.safetensors.
func bnSeq(d device.Device) *nn.Sequential {
	return nn.NewSequential(nn.NewBatchNorm2d(d, 3), nn.ReLU{}, flatten2{}, nn.NewBatchNorm1d(d, 3))
}

// evalSeq runs m in evaluation on the reference input.
func evalSeq(t *testing.T, m nn.Module, f *safetensors.File, d device.Device) []float32 {
	m.SetTraining(false)
	tape := autograd.NewTape()
	defer tape.Free()
	var y []float32
	tape.NoGrad(func() {
		y = m.Forward(tape.Var(tensor.FromSlice(d, lookup(t, f, "seq.xe").Data, 5, 3, 2, 4), false)).Value.Data()
	})
	return y
}

// TestBatchNormStateDict loads a state_dict written by PyTorch (with
// num_batches_tracked as int64), checks the output in evaluation, then
// saves it, checks the names, shapes and dtypes against PyTorch's file and
// loads the saved file into a fresh model.
func TestBatchNormStateDict(t *testing.T) {
	ref := readTorch(t, "batchnorm_torch.safetensors")
	d := device.NewCPU(0)
	m := bnSeq(d)
	if _, err := nn.Load(filepath.Join("testdata", "batchnorm_state.safetensors"), m); err != nil {
		t.Fatal(err)
	}
	testutil.AllClose(t, "PyTorch's state_dict in evaluation", evalSeq(t, m, ref, d), lookup(t, ref, "seq.ye").Data, 1e-5, 1e-4)

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
	fresh := bnSeq(d)
	if _, err := nn.Load(path, fresh); err != nil {
		t.Fatal(err)
	}
	testutil.AllClose(t, "reloaded state_dict in evaluation", evalSeq(t, fresh, ref, d), lookup(t, ref, "seq.ye").Data, 1e-5, 1e-4)

	// A checkpoint without the buffers is refused, naming what is missing.
	var params []safetensors.Tensor
	for _, x := range saved.Tensors {
		if !strings.Contains(x.Name, "running") && !strings.Contains(x.Name, "num_batches") {
			params = append(params, x)
		}
	}
	if err := nn.LoadStateDict(bnSeq(d), &safetensors.File{Tensors: params}); err == nil || !strings.Contains(err.Error(), "running_mean") {
		t.Errorf("loading without the buffers: %v, want an error naming running_mean", err)
	}
}

// TestBatchNormModule checks the parameters (which exclude the buffers),
// the buffers' names, shapes and initial values, PyTorch's printing, and
// the shapes each layer accepts.
func TestBatchNormModule(t *testing.T) {
	d := device.NewCPU(1)
	b := nn.NewBatchNorm2d(d, 4)
	if b.Eps != 1e-5 || b.Momentum != 0.1 {
		t.Errorf("eps %g, momentum %g, want 1e-5 and 0.1", b.Eps, b.Momentum)
	}
	var names []string
	for _, p := range b.Parameters() {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"weight", "bias"}) || nn.NumParams(b) != 8 {
		t.Errorf("parameters %v (%d values), want weight and bias (8)", names, nn.NumParams(b))
	}
	want := map[string][]float32{"running_mean": {0, 0, 0, 0}, "running_var": {1, 1, 1, 1}, "num_batches_tracked": {0}}
	for _, buf := range b.Buffers() {
		if !slices.Equal(buf.Value.Data(), want[buf.Name]) {
			t.Errorf("buffer %s = %v, want %v", buf.Name, buf.Value.Data(), want[buf.Name])
		}
	}
	if got := fmt.Sprint(b); got != "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" {
		t.Errorf("String() = %q", got)
	}
	seq := nn.NewSequential(nn.NewLinear(d, 3, 4, true, rand.New(rand.NewPCG(1, 2))).WithActivation(device.ActRelu), nn.NewBatchNorm1d(d, 4))
	var bufNames []string
	for _, buf := range nn.Buffers(seq) {
		bufNames = append(bufNames, buf.Name)
	}
	if !slices.Equal(bufNames, []string{"2.running_mean", "2.running_var", "2.num_batches_tracked"}) {
		t.Errorf("Sequential buffers %v", bufNames)
	}
	for _, c := range []struct {
		m     *nn.BatchNorm
		shape []int
	}{{nn.NewBatchNorm1d(d, 4), []int{2, 4, 3, 1}}, {nn.NewBatchNorm1d(d, 4), []int{2, 3}}, {nn.NewBatchNorm2d(d, 4), []int{2, 4, 3}}, {nn.NewBatchNorm2d(d, 4), []int{4}}} {
		if err := tensor.Catch(func() { c.m.Forward(autograd.Const(tensor.Zeros(d, c.shape...))) }); err == nil {
			t.Errorf("%v accepted an input of %v", c.m, c.shape)
		}
	}
}

// bnCountingCPU is the CPU backend, fused kernels included, counting the
// buffers it hands out and takes back.
type bnCountingCPU struct {
	*device.CPU
	live int
}

func (c *bnCountingCPU) Alloc(n int) (device.Buffer, error) {
	c.live++
	return c.CPU.Alloc(n)
}

func (c *bnCountingCPU) Free(b device.Buffer) {
	c.live--
	c.CPU.Free(b)
}

// TestBatchNormMemoryFlat checks that training steps and evaluation passes
// release every buffer they allocate, on the fused path and the composed
// one, with the ReLU after the first batch norm fused or not.
func TestBatchNormMemoryFlat(t *testing.T) {
	for i := range 4 {
		composed, fused := i%2 == 1, i >= 2
		c := &bnCountingCPU{CPU: device.NewCPU(1)}
		var d device.Device = c
		if composed {
			d = composedOnly{c}
		}
		m := bnSeq(d)
		if fused { // the ReLU fused into the first batch norm
			m = bnSeqFused(d)
		}
		tape := autograd.NewTape()
		x := tensor.Full(d, 0.5, 4, 3, 2, 5)
		x.CopyFrom(testutil.RandSlice(rand.New(rand.NewPCG(1, 2)), 120, -1, 1))
		xv := tape.Var(x, true) // a leaf, used in every pass
		step := func() {
			m.SetTraining(true)
			loss := autograd.MeanAll(m.Forward(xv))
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			nn.ZeroGrad(m)
			m.SetTraining(false)
			tape.NoGrad(func() { m.Forward(tape.Var(x, false)) })
			tape.Free()
		}
		step()
		step()
		before := c.live
		for range 3 {
			step()
		}
		if c.live != before {
			t.Errorf("composed %v, fused relu %v: %d buffers live after 2 steps, %d after 5", composed, fused, before, c.live)
		}
	}
}
