package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/gograd/gograd/device"
)

// MLPConfig describes a multi-layer perceptron.
type MLPConfig struct {
	In         int     // input features
	Hidden     []int   // hidden layer widths
	Out        int     // output classes
	Activation string  // "relu", "sigmoid" or "tanh"
	Dropout    float32 // dropout after each hidden activation; 0 for none
	Seed       uint64  // seeds the initialisation and the dropout masks
}

// NewMLP builds a Linear layer with a fused activation (and a Dropout) for
// each hidden width and a final Linear, as a Sequential with PyTorch's
// default initialisation. Its parameters are named as those of
// torch.nn.Sequential(Linear, ReLU, [Dropout,] Linear, ReLU, ..., Linear).
func NewMLP(dev device.Device, cfg MLPConfig) (*Sequential, error) {
	if cfg.In <= 0 || cfg.Out <= 0 {
		return nil, fmt.Errorf("nn: mlp: input %d and output %d must be positive", cfg.In, cfg.Out)
	}
	if cfg.Dropout < 0 || cfg.Dropout >= 1 {
		return nil, fmt.Errorf("nn: mlp: dropout %v outside [0, 1)", cfg.Dropout)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6772616400))
	var mods []Module
	in := cfg.In
	for i, h := range cfg.Hidden {
		if h <= 0 {
			return nil, fmt.Errorf("nn: mlp: hidden width %d must be positive", h)
		}
		var act device.Activation
		switch cfg.Activation {
		case "relu", "":
			act = device.ActRelu
		case "sigmoid":
			act = device.ActSigmoid
		case "tanh":
			act = device.ActTanh
		default:
			return nil, fmt.Errorf("nn: mlp: unknown activation %q (want relu, sigmoid or tanh)", cfg.Activation)
		}
		mods = append(mods, NewLinear(dev, in, h, true, rng).WithActivation(act))
		if cfg.Dropout > 0 {
			mods = append(mods, NewDropout(cfg.Dropout, cfg.Seed+uint64(i)+1))
		}
		in = h
	}
	mods = append(mods, NewLinear(dev, in, cfg.Out, true, rng))
	return NewSequential(mods...), nil
}
