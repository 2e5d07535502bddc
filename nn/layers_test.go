package nn_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/tensor"
)

// TestLayerNormModule checks nn.LayerNorm's state_dict names, PyTorch's
// printing and initialisation, and that it computes autograd.LayerNorm.
func TestLayerNormModule(t *testing.T) {
	d := device.NewCPU(1)
	ln := nn.NewLayerNorm(d, []int{3}, 1e-5)
	m := nn.NewSequential(nn.NewLinear(d, 2, 3, true, rand.New(rand.NewPCG(1, 2))), ln)
	var names []string
	for _, p := range m.Parameters() {
		names = append(names, p.Name)
	}
	if want := []string{"0.weight", "0.bias", "1.weight", "1.bias"}; !slices.Equal(names, want) {
		t.Errorf("parameters %v, want %v", names, want)
	}
	if got, want := fmt.Sprint(ln), "LayerNorm((3,), eps=1e-05, elementwise_affine=True)"; got != want {
		t.Errorf("prints %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(nn.NewLayerNorm(d, []int{2, 3}, 1e-6)), "LayerNorm((2, 3), eps=1e-06, elementwise_affine=True)"; got != want {
		t.Errorf("prints %q, want %q", got, want)
	}
	testutil.AllClose(t, "weight", ln.Weight.Value.Data(), []float32{1, 1, 1}, 0, 0)
	testutil.AllClose(t, "bias", ln.Bias.Value.Data(), []float32{0, 0, 0}, 0, 0)
	x := autograd.Const(tensor.FromSlice(d, []float32{1, 2, 4, -1, 0, 1}, 2, 3))
	want := autograd.LayerNorm(x, []int{3}, ln.Weight, ln.Bias, 1e-5).Value.Data()
	testutil.AllClose(t, "forward", ln.Forward(x).Value.Data(), want, 0, 0)
}

// countingCPU is a CPU that counts its live buffers.
type countingCPU struct {
	*device.CPU
	live *int
}

func (c countingCPU) Alloc(n int) (device.Buffer, error) {
	b, err := c.CPU.Alloc(n)
	if err == nil {
		*c.live++
	}
	return b, err
}

func (c countingCPU) Free(b device.Buffer) {
	if cb, ok := b.(*device.CPUBuffer); ok && cb != nil {
		*c.live--
	}
	c.CPU.Free(b)
}

// TestDeviceMemoryFlat runs 10,000 training steps of a small MLP, with a
// penalty on the weights and the loss read after each step, and checks
// that the number of live device buffers after each step is that after
// the first: every pass releases what it allocated, without Go's garbage
// collector.
func TestDeviceMemoryFlat(t *testing.T) {
	steps := 10000
	if testing.Short() {
		steps = 500
	}
	live := 0
	d := countingCPU{device.NewCPU(1), &live}
	m, err := nn.NewMLP(d, nn.MLPConfig{In: 6, Hidden: []int{5}, Out: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.NewSGD(nn.Vars(m.Parameters()), optim.SGDConfig{LR: 0.01, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	tp := autograd.NewTape()
	x := tp.Var(tensor.FromSlice(d, []float32{1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1}, 2, 6), false)
	y := tensor.FromSlice(d, []float32{0, 2}, 2)
	w := m.Modules[0].(*nn.Linear).Weight
	first := 0
	for step := range steps {
		penalty := autograd.MulScalar(autograd.SumAll(autograd.Mul(w, w)), 1e-3)
		loss := autograd.Add(nn.CrossEntropyLoss(m.Forward(x), y), penalty)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		_ = loss.Item()
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		nn.ZeroGrad(m)
		if step == 0 {
			first = live
		} else if live != first {
			t.Fatalf("step %d: %d live buffers, %d after the first step", step, live, first)
		}
	}
	tp.Free()
}
