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

// ConvOptions are a Conv2d layer's options beyond its sizes. The zero
// value is PyTorch's default: stride 1, padding 0, dilation 1, groups 1,
// with a bias.
type ConvOptions struct {
	Stride, Padding, Dilation, Groups int
	NoBias                            bool
}

// Conv2d is a 2-d convolution over [N, C, H, W] images, as
// torch.nn.Conv2d: Weight is [Out, In/Groups, Kernel, Kernel] and Bias,
// nil without one, [Out].
type Conv2d struct {
	In, Out, Kernel int
	Opts            ConvOptions // with PyTorch's defaults filled in
	Weight          *autograd.Var
	Bias            *autograd.Var
}

// NewConv2d returns a convolution from in to out channels with a square
// kernel, initialised as PyTorch initialises torch.nn.Conv2d: the weight
// Kaiming-uniform with a = sqrt(5) and the bias uniform in
// ±1/sqrt(fan_in), both of which are uniform in ±1/sqrt(fan_in) with
// fan_in = in/groups·kernel², drawn from rng, the weight first. Bad sizes
// panic with a *tensor.Error.
func NewConv2d(dev device.Device, in, out, kernel int, opts ConvOptions, rng *rand.Rand) *Conv2d {
	if opts.Stride == 0 {
		opts.Stride = 1
	}
	if opts.Dilation == 0 {
		opts.Dilation = 1
	}
	if opts.Groups == 0 {
		opts.Groups = 1
	}
	if in < 1 || out < 1 || kernel < 1 || opts.Stride < 1 || opts.Dilation < 1 || opts.Padding < 0 ||
		opts.Groups < 1 || in%opts.Groups != 0 || out%opts.Groups != 0 {
		panic(&tensor.Error{Op: "conv2d", Err: fmt.Errorf("%w: nn: Conv2d(%d, %d, kernel %d, %+v): sizes must be positive and groups divide both channel counts",
			tensor.ErrShape, in, out, kernel, opts)})
	}
	fanIn := in / opts.Groups * kernel * kernel
	bound := float32(1 / math.Sqrt(float64(fanIn)))
	c := &Conv2d{In: in, Out: out, Kernel: kernel, Opts: opts,
		Weight: autograd.Param(tensor.RandU(dev, rng, -bound, bound, out, in/opts.Groups, kernel, kernel))}
	if !opts.NoBias {
		c.Bias = autograd.Param(tensor.RandU(dev, rng, -bound, bound, out))
	}
	return c
}

// Forward convolves x, [N, In, H, W], into [N, Out, OutH, OutW].
func (c *Conv2d) Forward(x *autograd.Var) *autograd.Var {
	o := c.Opts
	return autograd.Conv2d(x, c.Weight, c.Bias, autograd.ConvOptions{Stride: o.Stride, Padding: o.Padding, Dilation: o.Dilation, Groups: o.Groups})
}

// Parameters returns weight and bias (when the layer has one), PyTorch's names.
func (c *Conv2d) Parameters() []Param {
	if c.Bias == nil {
		return []Param{{"weight", c.Weight}}
	}
	return []Param{{"weight", c.Weight}, {"bias", c.Bias}}
}

// SetTraining does nothing: a convolution has no modes.
func (c *Conv2d) SetTraining(bool) {}

// String describes the layer as PyTorch prints it.
func (c *Conv2d) String() string {
	var b strings.Builder
	o := c.Opts
	fmt.Fprintf(&b, "Conv2d(%d, %d, kernel_size=(%d, %d), stride=(%d, %d)", c.In, c.Out, c.Kernel, c.Kernel, o.Stride, o.Stride)
	if o.Padding != 0 {
		fmt.Fprintf(&b, ", padding=(%d, %d)", o.Padding, o.Padding)
	}
	if o.Dilation != 1 {
		fmt.Fprintf(&b, ", dilation=(%d, %d)", o.Dilation, o.Dilation)
	}
	if o.Groups != 1 {
		fmt.Fprintf(&b, ", groups=%d", o.Groups)
	}
	if c.Bias == nil {
		b.WriteString(", bias=False")
	}
	b.WriteString(")")
	return b.String()
}

// MaxPool2d takes the largest value of each window, as torch.nn.MaxPool2d
// (dilation 1, ceil_mode off).
type MaxPool2d struct {
	stateless
	Kernel, Stride, Padding int
}

// NewMaxPool2d returns a max pooling; stride 0 means the kernel size.
func NewMaxPool2d(kernel, stride, padding int) *MaxPool2d {
	if stride == 0 {
		stride = kernel
	}
	return &MaxPool2d{Kernel: kernel, Stride: stride, Padding: padding}
}

// Forward pools x, [N, C, H, W].
func (p *MaxPool2d) Forward(x *autograd.Var) *autograd.Var {
	return autograd.MaxPool2d(x, p.Kernel, p.Stride, p.Padding)
}

// String describes the layer as PyTorch prints it.
func (p *MaxPool2d) String() string {
	return fmt.Sprintf("MaxPool2d(kernel_size=%d, stride=%d, padding=%d, dilation=1, ceil_mode=False)", p.Kernel, p.Stride, p.Padding)
}

// AvgPool2d averages each window, padding included, as
// torch.nn.AvgPool2d with its defaults (count_include_pad=True).
type AvgPool2d struct {
	stateless
	Kernel, Stride, Padding int
}

// NewAvgPool2d returns an average pooling; stride 0 means the kernel size.
func NewAvgPool2d(kernel, stride, padding int) *AvgPool2d {
	if stride == 0 {
		stride = kernel
	}
	return &AvgPool2d{Kernel: kernel, Stride: stride, Padding: padding}
}

// Forward pools x, [N, C, H, W].
func (p *AvgPool2d) Forward(x *autograd.Var) *autograd.Var {
	return autograd.AvgPool2d(x, p.Kernel, p.Stride, p.Padding)
}

// String describes the layer as PyTorch prints it.
func (p *AvgPool2d) String() string {
	return fmt.Sprintf("AvgPool2d(kernel_size=%d, stride=%d, padding=%d)", p.Kernel, p.Stride, p.Padding)
}

// AdaptiveAvgPool2d averages [N, C, H, W] images down to Size×Size, as
// torch.nn.AdaptiveAvgPool2d; Size 1 is global average pooling.
type AdaptiveAvgPool2d struct {
	stateless
	Size int
}

// NewAdaptiveAvgPool2d returns an adaptive average pooling to size×size
// (size at least 1).
func NewAdaptiveAvgPool2d(size int) *AdaptiveAvgPool2d { return &AdaptiveAvgPool2d{Size: size} }

// Forward pools x, [N, C, H, W].
func (p *AdaptiveAvgPool2d) Forward(x *autograd.Var) *autograd.Var {
	return autograd.AdaptiveAvgPool2d(x, p.Size)
}

// String describes the layer as PyTorch prints it.
func (p *AdaptiveAvgPool2d) String() string {
	return fmt.Sprintf("AdaptiveAvgPool2d(output_size=%d)", p.Size)
}

// Flatten reshapes [N, ...] into [N, rest], as torch.nn.Flatten with its
// defaults (start_dim 1).
type Flatten struct{}

// Forward flattens every axis of x but the first.
func (Flatten) Forward(x *autograd.Var) *autograd.Var {
	v := x.Value
	if v.Dims() < 1 {
		panic(&tensor.Error{Op: "flatten", Shapes: [][]int{v.Shape()}, Err: fmt.Errorf("%w: nn: flatten of a scalar", tensor.ErrShape)})
	}
	n := v.Dim(0)
	rest := 0
	if n > 0 {
		rest = v.Len() / n
	}
	return autograd.Reshape(x, n, rest)
}

// Parameters returns nil: Flatten has none.
func (Flatten) Parameters() []Param { return nil }

// SetTraining does nothing.
func (Flatten) SetTraining(bool) {}

// String describes the layer as PyTorch prints it.
func (Flatten) String() string { return "Flatten(start_dim=1, end_dim=-1)" }
