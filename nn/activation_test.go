package nn_test

import (
	"fmt"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// TestNewActivationModules checks that each module computes its autograd
// op, prints as PyTorch prints it and has no parameters.
func TestNewActivationModules(t *testing.T) {
	d := device.NewCPU(1)
	x := autograd.Const(tensor.FromSlice(d, []float32{-2, -0.5, 0, 0.5, 3}))
	for _, c := range []struct {
		m    nn.Module
		want *autograd.Var
		str  string
	}{
		{nn.LeakyReLU{Slope: 0.01}, autograd.LeakyReLU(x, 0.01), "LeakyReLU(negative_slope=0.01)"},
		{nn.GELU{}, autograd.GELU(x, false), "GELU(approximate='none')"},
		{nn.GELU{Tanh: true}, autograd.GELU(x, true), "GELU(approximate='tanh')"},
		{nn.SiLU{}, autograd.SiLU(x), "SiLU()"},
		{nn.Softplus{}, autograd.Softplus(x), "Softplus(beta=1.0, threshold=20.0)"},
	} {
		testutil.AllClose(t, c.str, c.m.Forward(x).Value.Data(), c.want.Value.Data(), 0, 0)
		if got := fmt.Sprint(c.m); got != c.str {
			t.Errorf("prints %q, want %q", got, c.str)
		}
		if len(c.m.Parameters()) != 0 {
			t.Errorf("%s has parameters", c.str)
		}
	}
}
