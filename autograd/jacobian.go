package autograd

import (
	"fmt"

	"github.com/gograd/gograd/tensor"
)

// VJP returns f(x) and the vector-Jacobian product vᵀ·J of f at x, as
// torch.autograd.functional.vjp does: v has f(x)'s shape and the product
// has x's shape. It is one backward pass of Σ v·f(x), the step backprop
// takes through every layer, without forming J. Where f(x) does not depend
// on x the product is zero. x is not modified; both results are new
// tensors, which the caller frees.
func VJP(f func(x *Var) *Var, x, v *tensor.Tensor) (y, vjp *tensor.Tensor, err error) {
	err = tensor.Catch(func() {
		tp := NewTape()
		defer tp.Free()
		xv := tp.Var(x, true)
		out := f(xv)
		if !tensor.SameShape(out.Value, v) {
			panic(&tensor.Error{Op: "vjp", Shapes: [][]int{out.Shape(), v.Shape()}, Err: tensor.ErrShape})
		}
		y = out.Value.Clone()
		loss := SumAll(Mul(out, Const(v)))
		if !loss.requiresGrad {
			vjp = tensor.Zeros(x.Device(), x.Shape()...)
			return
		}
		if e := loss.Backward(); e != nil {
			panic(&tensor.Error{Op: "vjp", Err: e})
		}
		vjp = xv.Grad
	})
	if err != nil {
		y.Free()
		return nil, nil, fmt.Errorf("autograd: vjp: %w", err)
	}
	return y, vjp, nil
}

// Jacobian returns the Jacobian of f at x, as
// torch.autograd.functional.jacobian does: J[i..., j...] = ∂f(x)[i...] /
// ∂x[j...], of shape f(x)'s shape followed by x's. Row i is the
// vector-Jacobian product with the i-th unit vector: f runs once and
// Backward once per output element, through the retained graph. x is not
// modified; the caller frees the result.
func Jacobian(f func(x *Var) *Var, x *tensor.Tensor) (jac *tensor.Tensor, err error) {
	err = tensor.Catch(func() {
		tp := NewTape()
		defer tp.Free()
		xv := tp.Var(x, true)
		out := f(xv)
		m, n := out.Value.Len(), x.Len()
		rows := make([]float32, m*n)
		if out.requiresGrad {
			unit := make([]float32, m)
			for i := range m {
				unit[i] = 1
				e := tensor.FromSlice(x.Device(), unit, out.Shape()...)
				unit[i] = 0
				if err := SumAll(Mul(out, Const(e))).BackwardRetain(); err != nil {
					panic(&tensor.Error{Op: "jacobian", Err: err})
				}
				e.Free()
				if xv.Grad != nil { // no gradient: row i is zero
					xv.Grad.CopyTo(rows[i*n : (i+1)*n])
					xv.Grad.Free()
					xv.Grad = nil
				}
			}
		}
		jac = tensor.FromSlice(x.Device(), rows, append(out.Shape(), x.Shape()...)...)
	})
	if err != nil {
		return nil, fmt.Errorf("autograd: jacobian: %w", err)
	}
	return jac, nil
}
