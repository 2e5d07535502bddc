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
