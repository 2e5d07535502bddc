package autograd

import (
	"fmt"
	"slices"

	"github.com/gograd/gograd/tensor"
)

// LayerNorm normalises x over its last len(shape) axes, whose sizes must
// be shape, as torch.nn.functional.layer_norm does:
//
//	y = (x - mean) / sqrt(var + eps) · weight + bias
//
// with the mean and the biased variance taken over those axes. weight and
// bias have the given shape and may be nil. It is composed of the
// elementwise operations and reductions of this package, each with its own
// gradient.
func LayerNorm(x *Var, shape []int, weight, bias *Var, eps float32) *Var {
	xs := x.Shape()
	k := len(xs) - len(shape)
	if len(shape) == 0 || k < 0 || !slices.Equal(xs[k:], shape) ||
		(weight != nil && !slices.Equal(weight.Shape(), shape)) || (bias != nil && !slices.Equal(bias.Shape(), shape)) {
		shapes := [][]int{xs, shape}
		for _, p := range []*Var{weight, bias} {
			if p != nil {
				shapes = append(shapes, p.Shape())
			}
		}
		panic(&tensor.Error{Op: "layer_norm", Shapes: shapes, Err: fmt.Errorf("%w: normalised shape must end the input's", tensor.ErrShape)})
	}
	inner := 1
	for _, d := range shape {
		inner *= d
	}
	if inner == 0 {
		panic(&tensor.Error{Op: "layer_norm", Shapes: [][]int{xs, shape}, Err: fmt.Errorf("%w: nothing to normalise over", tensor.ErrShape)})
	}
	h := Reshape(x, x.Value.Len()/inner, inner)
	c := Sub(h, Mean(h, 1, true))
	rstd := PowScalar(AddScalar(Mean(Mul(c, c), 1, true), eps), -0.5)
	y := Reshape(Mul(c, rstd), xs...)
	if weight != nil {
		y = Mul(y, weight)
	}
	if bias != nil {
		y = Add(y, bias)
	}
	return y
}
