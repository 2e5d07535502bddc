package nn

import (
	"fmt"
	"strings"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// Buffer is a named tensor of a module's state that is not trained, as a
// PyTorch buffer: it is in the state_dict and in checkpoints, but not
// among the parameters, so optimizers never see it. DType is its dtype in
// a checkpoint: empty (float32) or safetensors.I64 for integer counters,
// which the tensor holds exactly up to 2^24.
type Buffer struct {
	Name  string
	Value *tensor.Tensor
	DType safetensors.DType
}

// Buffered is implemented by modules with buffers.
type Buffered interface {
	// Buffers lists the buffers with their state_dict names.
	Buffers() []Buffer
}

// Buffers returns m's buffers, or nil when it has none.
func Buffers(m Module) []Buffer {
	if b, ok := m.(Buffered); ok {
		return b.Buffers()
	}
	return nil
}

// BatchNorm normalises each channel (axis 1) of its input over the batch,
// as torch.nn.BatchNorm1d and BatchNorm2d with affine=True and
// track_running_stats=True. In training it uses the batch's mean and
// biased variance and updates the running estimates with Momentum (the
// variance unbiased) and counts the batch in NumBatchesTracked; in
// evaluation it uses the running estimates. Its parameters are "weight"
// (ones) and "bias" (zeros), and its buffers "running_mean" (zeros),
// "running_var" (ones) and "num_batches_tracked" (a scalar, int64 in a
// checkpoint). It may fuse the ReLU that follows it (see WithActivation).
type BatchNorm struct {
	Features      int
	Eps, Momentum float32
	Weight, Bias  *autograd.Var

	RunningMean, RunningVar *tensor.Tensor
	NumBatchesTracked       *tensor.Tensor // a scalar count
	// Act is the activation applied to the output, fused with the
	// normalisation: device.Identity for none, or device.ActRelu.
	Act device.Activation

	dims     int // 2: BatchNorm1d, of [N, C] or [N, C, L]; 4: BatchNorm2d
	training bool
}

// NewBatchNorm1d returns a batch norm over the features of [N, C] or
// [N, C, L] inputs, with PyTorch's defaults (eps 1e-5, momentum 0.1), in
// training mode.
func NewBatchNorm1d(dev device.Device, features int) *BatchNorm {
	return newBatchNorm(dev, features, 2)
}

// NewBatchNorm2d returns a batch norm over the channels of [N, C, H, W]
// inputs, with PyTorch's defaults (eps 1e-5, momentum 0.1), in training
// mode.
func NewBatchNorm2d(dev device.Device, features int) *BatchNorm {
	return newBatchNorm(dev, features, 4)
}

func newBatchNorm(dev device.Device, features, dims int) *BatchNorm {
	if features <= 0 {
		panic(&tensor.Error{Op: "batch_norm", Err: fmt.Errorf("nn: batch norm of %d features", features)})
	}
	return &BatchNorm{Features: features, Eps: 1e-5, Momentum: 0.1,
		Weight: autograd.Param(tensor.Ones(dev, features)), Bias: autograd.Param(tensor.Zeros(dev, features)),
		RunningMean: tensor.Zeros(dev, features), RunningVar: tensor.Ones(dev, features),
		NumBatchesTracked: tensor.Zeros(dev), dims: dims, training: true}
}

// Forward normalises x. A BatchNorm1d takes [N, C] or [N, C, L], a
// BatchNorm2d [N, C, H, W], with C = Features.
func (b *BatchNorm) Forward(x *autograd.Var) *autograd.Var {
	s := x.Shape()
	if (b.dims == 2 && len(s) != 2 && len(s) != 3) || (b.dims == 4 && len(s) != 4) || s[1] != b.Features {
		want := fmt.Sprintf("[N, %d, H, W]", b.Features)
		if b.dims == 2 {
			want = fmt.Sprintf("[N, %d] or [N, %d, L]", b.Features, b.Features)
		}
		panic(&tensor.Error{Op: "batch_norm", Shapes: [][]int{s}, Err: fmt.Errorf("%w: %s wants %s", tensor.ErrShape, b.name(), want)})
	}
	y := autograd.BatchNormAct(x, b.Weight, b.Bias, b.RunningMean, b.RunningVar, b.training, b.Momentum, b.Eps, b.Act)
	if b.training {
		tensor.UnaryInto(device.AddScalar, b.NumBatchesTracked, b.NumBatchesTracked, 1)
	}
	return y
}

// WithActivation makes the layer apply act (device.ActRelu, or
// device.Identity for none) to its output as one autograd.BatchNormAct
// node: in training on a device with the fused kernels, the forward pass
// writes max(0, BN(x)) and the backward pass masks the gradient by the
// output's sign in the same passes over the data; in evaluation it is the
// batch norm followed by a ReLU. In a Sequential the fused layer stands for
// two modules, the BatchNorm and the ReLU, as torch.nn.Sequential numbers
// them: parameter and buffer names and checkpoints are those of the
// unfused pair. It returns b.
func (b *BatchNorm) WithActivation(act device.Activation) *BatchNorm {
	if act != device.Identity && act != device.ActRelu {
		panic(&tensor.Error{Op: "batch_norm", Err: fmt.Errorf("nn: %s fuses no activation %v: want identity or relu", b.name(), act)})
	}
	b.Act = act
	return b
}

// Parameters returns "weight" and "bias".
func (b *BatchNorm) Parameters() []Param { return []Param{{"weight", b.Weight}, {"bias", b.Bias}} }

// Buffers returns "running_mean", "running_var" and "num_batches_tracked".
func (b *BatchNorm) Buffers() []Buffer {
	return []Buffer{{Name: "running_mean", Value: b.RunningMean}, {Name: "running_var", Value: b.RunningVar},
		{Name: "num_batches_tracked", Value: b.NumBatchesTracked, DType: safetensors.I64}}
}

// SetTraining switches between batch statistics (training) and the
// running estimates (evaluation).
func (b *BatchNorm) SetTraining(training bool) { b.training = training }

// Training reports whether the layer is in training mode.
func (b *BatchNorm) Training() bool { return b.training }

func (b *BatchNorm) name() string {
	if b.dims == 4 {
		return "BatchNorm2d"
	}
	return "BatchNorm1d"
}

// Span describes the modules of a torch.nn.Sequential that b stands for:
// the batch norm and, when it fuses one, its ReLU.
func (b *BatchNorm) Span() []string {
	s := []string{fmt.Sprintf("%s(%d, eps=%g, momentum=%g, affine=True, track_running_stats=True)", b.name(), b.Features, b.Eps, b.Momentum)}
	if name := activationNames[b.Act]; name != "" {
		s = append(s, name)
	}
	return s
}

// String describes the layer as PyTorch prints it, with its fused
// activation after a comma.
func (b *BatchNorm) String() string { return strings.Join(b.Span(), ", ") }
