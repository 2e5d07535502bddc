package autograd

import "github.com/gograd/gograd/tensor"

// Custom records an operation defined outside this package: value is its
// output, computed from inputs, and backward maps the output's gradient to
// one gradient per input (nil where none), which Custom accumulates and then
// frees.
func Custom(name string, value *tensor.Tensor, inputs []*Var, backward func(g *tensor.Tensor) []*tensor.Tensor) *Var {
	out, grad := record(name, value, inputs...)
	if grad {
		out.backward = func(*Var) {
			for i, g := range backward(out.Grad) {
				if g != nil {
					inputs[i].accumulate(g, true)
				}
			}
		}
	}
	return out
}
