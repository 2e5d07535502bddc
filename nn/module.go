package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// Param is a named trainable variable.
type Param struct {
	Name string
	*autograd.Var
}

// Module is a layer or a composition of layers.
type Module interface {
	// Forward computes the module's output. It records on x's tape.
	Forward(x *autograd.Var) *autograd.Var
	// Parameters lists the trainable variables with their state_dict names.
	Parameters() []Param
	// SetTraining switches between training (true) and evaluation mode,
	// which changes what Dropout does.
	SetTraining(training bool)
}

// ZeroGrad zeroes the gradients of every parameter of m.
func ZeroGrad(m Module) { eachVar(m, (*autograd.Var).ZeroGrad) }

// eachVar calls fn on each parameter of m, in Parameters' order, without
// building their names for the modules of this package.
func eachVar(m Module, fn func(*autograd.Var)) {
	switch m := m.(type) {
	case *Sequential:
		for _, c := range m.Modules {
			eachVar(c, fn)
		}
	case *Linear:
		fn(m.Weight)
		if m.Bias != nil {
			fn(m.Bias)
		}
	default:
		for _, p := range m.Parameters() {
			fn(p.Var)
		}
	}
}

// Vars returns the variables of params, in order.
func Vars(params []Param) []*autograd.Var {
	vs := make([]*autograd.Var, len(params))
	for i, p := range params {
		vs[i] = p.Var
	}
	return vs
}

// NumParams counts the scalar parameters of m.
func NumParams(m Module) int {
	n := 0
	for _, p := range m.Parameters() {
		n += p.Value.Len()
	}
	return n
}

// stateless is embedded by modules without parameters or modes.
type stateless struct{}

func (stateless) Parameters() []Param { return nil }
func (stateless) SetTraining(bool)    {}

// Linear is a fully connected layer y = x·Wᵀ + b, with W of [out, in].
type Linear struct {
	In, Out int
	Weight  *autograd.Var
	Bias    *autograd.Var // nil when the layer has no bias
}

// NewLinear returns a layer with PyTorch's default initialisation: weight
// and bias uniform in ±1/sqrt(in), drawn from rng.
func NewLinear(dev device.Device, in, out int, bias bool, rng *rand.Rand) *Linear {
	bound := float32(1 / math.Sqrt(float64(in)))
	l := &Linear{In: in, Out: out, Weight: autograd.Param(tensor.RandU(dev, rng, -bound, bound, out, in))}
	if bias {
		l.Bias = autograd.Param(tensor.RandU(dev, rng, -bound, bound, out))
	}
	return l
}

// Forward computes x·Wᵀ + b for x of [batch, in].
func (l *Linear) Forward(x *autograd.Var) *autograd.Var { return autograd.Linear(x, l.Weight, l.Bias) }

// Parameters returns "weight" and, with a bias, "bias".
func (l *Linear) Parameters() []Param {
	ps := []Param{{"weight", l.Weight}}
	if l.Bias != nil {
		ps = append(ps, Param{"bias", l.Bias})
	}
	return ps
}

// SetTraining does nothing: Linear behaves the same in both modes.
func (l *Linear) SetTraining(bool) {}

// String describes the layer as PyTorch prints it.
func (l *Linear) String() string {
	return fmt.Sprintf("Linear(in_features=%d, out_features=%d, bias=%v)", l.In, l.Out, l.Bias != nil)
}

// ReLU applies max(x, 0).
type ReLU struct{ stateless }

// Forward applies the activation.
func (ReLU) Forward(x *autograd.Var) *autograd.Var { return autograd.Relu(x) }

// String names the layer.
func (ReLU) String() string { return "ReLU()" }

// Sigmoid applies 1/(1+e^-x).
type Sigmoid struct{ stateless }

// Forward applies the activation.
func (Sigmoid) Forward(x *autograd.Var) *autograd.Var { return autograd.Sigmoid(x) }

// String names the layer.
func (Sigmoid) String() string { return "Sigmoid()" }

// Tanh applies tanh x.
type Tanh struct{ stateless }

// Forward applies the activation.
func (Tanh) Forward(x *autograd.Var) *autograd.Var { return autograd.Tanh(x) }

// String names the layer.
func (Tanh) String() string { return "Tanh()" }

// Dropout zeroes elements with probability P during training and scales the
// rest by 1/(1-P). Each call draws a new mask from Seed and the call count,
// so a run is reproducible; Calls is part of the training state.
type Dropout struct {
	P        float32
	Seed     uint64
	Calls    uint64
	training bool
}

// NewDropout returns a dropout layer in training mode.
func NewDropout(p float32, seed uint64) *Dropout { return &Dropout{P: p, Seed: seed, training: true} }

// Forward applies dropout in training mode and is the identity otherwise.
func (d *Dropout) Forward(x *autograd.Var) *autograd.Var {
	if !d.training || d.P == 0 {
		return x
	}
	d.Calls++
	return autograd.Dropout(x, d.P, d.Seed^(d.Calls*0xD1B54A32D192ED03))
}

// Parameters returns nil: dropout has none.
func (d *Dropout) Parameters() []Param { return nil }

// SetTraining switches the mode.
func (d *Dropout) SetTraining(training bool) { d.training = training }

// String describes the layer.
func (d *Dropout) String() string { return fmt.Sprintf("Dropout(p=%g)", d.P) }

// Sequential applies its modules in order.
type Sequential struct {
	Modules []Module
}

// NewSequential returns the composition of mods.
func NewSequential(mods ...Module) *Sequential { return &Sequential{Modules: mods} }

// Forward applies each module in turn. A Linear layer followed by an
// activation module runs as one autograd.LinearAct node, which adds the
// bias and applies the activation in one pass, and computes their
// gradients in one pass.
func (s *Sequential) Forward(x *autograd.Var) *autograd.Var {
	for i := 0; i < len(s.Modules); i++ {
		if l, ok := s.Modules[i].(*Linear); ok && i+1 < len(s.Modules) {
			if act, ok := activationOf(s.Modules[i+1]); ok {
				x = autograd.LinearAct(x, l.Weight, l.Bias, act)
				i++
				continue
			}
		}
		x = s.Modules[i].Forward(x)
	}
	return x
}

// activationOf returns the activation that module m applies, if it is one
// of the activation modules.
func activationOf(m Module) (device.Activation, bool) {
	switch m.(type) {
	case ReLU, *ReLU:
		return device.ActRelu, true
	case Sigmoid, *Sigmoid:
		return device.ActSigmoid, true
	case Tanh, *Tanh:
		return device.ActTanh, true
	}
	return device.Identity, false
}

// Parameters names each module's parameters with its index, as PyTorch does.
func (s *Sequential) Parameters() []Param {
	var ps []Param
	for i, m := range s.Modules {
		for _, p := range m.Parameters() {
			ps = append(ps, Param{fmt.Sprintf("%d.%s", i, p.Name), p.Var})
		}
	}
	return ps
}

// SetTraining sets the mode of every module.
func (s *Sequential) SetTraining(training bool) {
	for _, m := range s.Modules {
		m.SetTraining(training)
	}
}

// String lists the modules as PyTorch prints a Sequential.
func (s *Sequential) String() string {
	var b strings.Builder
	b.WriteString("Sequential(\n")
	for i, m := range s.Modules {
		fmt.Fprintf(&b, "  (%d): %v\n", i, m)
	}
	b.WriteString(")")
	return b.String()
}

// CrossEntropyLoss is the mean softmax cross-entropy of logits [batch,
// classes] against integer labels [batch] (as float32), as PyTorch's.
func CrossEntropyLoss(logits *autograd.Var, labels *tensor.Tensor) *autograd.Var {
	return autograd.SoftmaxCrossEntropy(logits, labels)
}

// MSELoss is the mean squared error.
func MSELoss(pred, target *autograd.Var) *autograd.Var { return autograd.MSE(pred, target) }
