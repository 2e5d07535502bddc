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
	case *Conv2d:
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

// Linear is a fully connected layer y = x·Wᵀ + b, with W of [out, in],
// optionally followed by an activation that it fuses (see WithActivation).
type Linear struct {
	In, Out int
	Weight  *autograd.Var
	Bias    *autograd.Var // nil when the layer has no bias
	// Act is the activation the layer applies to its output, fused with
	// the product: device.Identity for none.
	Act device.Activation
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

// WithActivation makes the layer apply act (device.ActRelu, ActSigmoid or
// ActTanh) to its output as one autograd.LinearAct node, which adds the
// bias and applies the activation in one pass over the product and
// computes their gradients in one pass too. In a Sequential the fused
// layer stands for two modules, the Linear and the activation, as
// torch.nn.Sequential(Linear, ReLU) numbers them: parameter names and
// checkpoints are those of the unfused pair. It returns l.
func (l *Linear) WithActivation(act device.Activation) *Linear {
	if act < device.Identity || act > device.ActTanh {
		panic(&tensor.Error{Op: "linear", Err: fmt.Errorf("nn: unknown activation %d", int(act))})
	}
	l.Act = act
	return l
}

// Forward computes act(x·Wᵀ + b) for x of [batch, in].
func (l *Linear) Forward(x *autograd.Var) *autograd.Var {
	return autograd.LinearAct(x, l.Weight, l.Bias, l.Act)
}

// Span describes the modules of a torch.nn.Sequential that l stands for:
// the Linear layer and, when it fuses one, its activation.
func (l *Linear) Span() []string {
	s := []string{fmt.Sprintf("Linear(in_features=%d, out_features=%d, bias=%v)", l.In, l.Out, l.Bias != nil)}
	if name := activationNames[l.Act]; name != "" {
		s = append(s, name)
	}
	return s
}

// activationNames are the PyTorch modules of the fused activations.
var activationNames = [...]string{device.ActRelu: "ReLU()", device.ActSigmoid: "Sigmoid()", device.ActTanh: "Tanh()"}

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

// String describes the layer as PyTorch prints it, with its fused
// activation after a comma.
func (l *Linear) String() string { return strings.Join(l.Span(), ", ") }

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

// Spanner is a module that stands for several consecutive modules of a
// torch.nn.Sequential, as a Linear layer with a fused activation stands
// for the Linear and the activation. Span describes each, as PyTorch
// prints it; a Sequential numbers its parameters and prints its modules
// accordingly, so that state_dict names match PyTorch's.
type Spanner interface {
	Module
	Span() []string
}

// span returns the descriptions of the PyTorch modules m stands for.
func span(m Module) []string {
	if s, ok := m.(Spanner); ok {
		return s.Span()
	}
	return []string{fmt.Sprint(m)}
}

// Forward applies each module in turn. Fusion is the modules' own: a
// Linear layer fuses the activation it was given with WithActivation, and
// a Linear followed by an activation module runs as two operations.
func (s *Sequential) Forward(x *autograd.Var) *autograd.Var {
	for _, m := range s.Modules {
		x = m.Forward(x)
	}
	return x
}

// Parameters names each module's parameters with its index, as PyTorch does.
// A module that stands for several (a Spanner) takes the index of the
// first.
func (s *Sequential) Parameters() []Param {
	var ps []Param
	i := 0
	for _, m := range s.Modules {
		for _, p := range m.Parameters() {
			ps = append(ps, Param{fmt.Sprintf("%d.%s", i, p.Name), p.Var})
		}
		i += len(span(m))
	}
	return ps
}

// Buffers names each module's buffers with its index, as Parameters
// names the parameters.
func (s *Sequential) Buffers() []Buffer {
	var bs []Buffer
	i := 0
	for _, m := range s.Modules {
		for _, b := range Buffers(m) {
			b.Name = fmt.Sprintf("%d.%s", i, b.Name)
			bs = append(bs, b)
		}
		i += len(span(m))
	}
	return bs
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
	i := 0
	for _, m := range s.Modules {
		for _, d := range span(m) {
			fmt.Fprintf(&b, "  (%d): %s\n", i, d)
			i++
		}
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

// LayerNorm normalises its input over the last axes, of Shape, and applies
// an elementwise affine map, as torch.nn.LayerNorm with
// elementwise_affine=True: its parameters are "weight" (ones) and "bias"
// (zeros).
type LayerNorm struct {
	Shape  []int
	Eps    float32
	Weight *autograd.Var
	Bias   *autograd.Var
}

// NewLayerNorm returns a layer norm over the trailing shape, with
// PyTorch's initialisation; eps is 1e-5 in PyTorch's default.
func NewLayerNorm(dev device.Device, shape []int, eps float32) *LayerNorm {
	return &LayerNorm{Shape: append([]int(nil), shape...), Eps: eps,
		Weight: autograd.Param(tensor.Ones(dev, shape...)), Bias: autograd.Param(tensor.Zeros(dev, shape...))}
}

// Forward normalises x.
func (l *LayerNorm) Forward(x *autograd.Var) *autograd.Var {
	return autograd.LayerNorm(x, l.Shape, l.Weight, l.Bias, l.Eps)
}

// Parameters returns "weight" and "bias".
func (l *LayerNorm) Parameters() []Param { return []Param{{"weight", l.Weight}, {"bias", l.Bias}} }

// SetTraining does nothing: LayerNorm behaves the same in both modes.
func (l *LayerNorm) SetTraining(bool) {}

// String describes the layer as PyTorch prints it.
func (l *LayerNorm) String() string {
	dims := make([]string, len(l.Shape))
	for i, d := range l.Shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(dims) == 1 {
		tuple += ","
	}
	return fmt.Sprintf("LayerNorm((%s), eps=%g, elementwise_affine=True)", tuple, l.Eps)
}
