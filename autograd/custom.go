package autograd

import "github.com/gograd/gograd/tensor"

// Custom records an operation defined outside this package: value is its
// output, computed from inputs, and backward maps the output's gradient to
// one new gradient per input (nil where none), which Custom adds to the
// inputs' gradients and then frees.
func Custom(name string, value *tensor.Tensor, inputs []*Var, backward func(g *tensor.Tensor) []*tensor.Tensor) *Var {
	return begin(name, func(out *Var, t *temps) {
		for i, g := range backward(out.Grad) {
			if g != nil {
				out.in(i).addGrad(t.keep(g), t)
			}
		}
	}, inputs...).set(value)
}
