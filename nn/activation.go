package nn

import (
	"fmt"

	"github.com/gograd/gograd/autograd"
)

// LeakyReLU applies x where x > 0 and Slope·x elsewhere
// (torch.nn.LeakyReLU's negative_slope, 0.01 by default there).
type LeakyReLU struct {
	stateless
	Slope float32
}

// Forward applies the activation.
func (l LeakyReLU) Forward(x *autograd.Var) *autograd.Var { return autograd.LeakyReLU(x, l.Slope) }

// String describes the layer as PyTorch prints it.
func (l LeakyReLU) String() string { return fmt.Sprintf("LeakyReLU(negative_slope=%g)", l.Slope) }

// GELU applies x·Φ(x), exactly or, with Tanh, with the tanh approximation
// (torch.nn.GELU's approximate "none" or "tanh").
type GELU struct {
	stateless
	Tanh bool
}

// Forward applies the activation.
func (g GELU) Forward(x *autograd.Var) *autograd.Var { return autograd.GELU(x, g.Tanh) }

// String describes the layer as PyTorch prints it.
func (g GELU) String() string {
	if g.Tanh {
		return "GELU(approximate='tanh')"
	}
	return "GELU(approximate='none')"
}

// SiLU applies x·σ(x).
type SiLU struct{ stateless }

// Forward applies the activation.
func (SiLU) Forward(x *autograd.Var) *autograd.Var { return autograd.SiLU(x) }

// String names the layer.
func (SiLU) String() string { return "SiLU()" }

// Softplus applies ln(1 + e^x), and x itself above 20 (torch.nn.Softplus
// with its defaults, beta 1 and threshold 20).
type Softplus struct{ stateless }

// Forward applies the activation.
func (Softplus) Forward(x *autograd.Var) *autograd.Var { return autograd.Softplus(x) }

// String describes the layer as PyTorch prints it.
func (Softplus) String() string { return "Softplus(beta=1.0, threshold=20.0)" }
