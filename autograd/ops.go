package autograd

import (
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// Add returns a + b, broadcasting.
func Add(a, b *Var) *Var {
	out, grad := record("add", tensor.Add(a.Value, b.Value), a, b)
	if grad {
		out.backward = func(*Var) {
			a.accumulate(out.Grad, false)
			b.accumulate(out.Grad, false)
		}
	}
	return out
}

// Sub returns a - b, broadcasting.
func Sub(a, b *Var) *Var {
	out, grad := record("sub", tensor.Sub(a.Value, b.Value), a, b)
	if grad {
		out.backward = func(*Var) {
			a.accumulate(out.Grad, false)
			if b.requiresGrad {
				b.accumulate(tensor.Neg(out.Grad), true)
			}
		}
	}
	return out
}

// Mul returns a * b elementwise, broadcasting.
func Mul(a, b *Var) *Var {
	out, grad := record("mul", tensor.Mul(a.Value, b.Value), a, b)
	if grad {
		out.backward = func(*Var) {
			if a.requiresGrad {
				a.accumulate(tensor.Mul(out.Grad, b.Value), true)
			}
			if b.requiresGrad {
				b.accumulate(tensor.Mul(out.Grad, a.Value), true)
			}
		}
	}
	return out
}

// Div returns a / b elementwise, broadcasting.
func Div(a, b *Var) *Var {
	out, grad := record("div", tensor.Div(a.Value, b.Value), a, b)
	if grad {
		out.backward = func(*Var) {
			if a.requiresGrad {
				a.accumulate(tensor.Div(out.Grad, b.Value), true)
			}
			if b.requiresGrad { // d(a/b)/db = -out/b
				q := tensor.Div(out.Value, b.Value)
				g := tensor.Mul(out.Grad, q)
				q.Free()
				g.ScaleInPlace(-1)
				b.accumulate(g, true)
			}
		}
	}
	return out
}

// Neg returns -a.
func Neg(a *Var) *Var {
	out, grad := record("neg", tensor.Neg(a.Value), a)
	if grad {
		out.backward = func(*Var) { a.accumulate(tensor.Neg(out.Grad), true) }
	}
	return out
}

// AddScalar returns a + s.
func AddScalar(a *Var, s float32) *Var {
	out, grad := record("add_scalar", tensor.AddScalar(a.Value, s), a)
	if grad {
		out.backward = func(*Var) { a.accumulate(out.Grad, false) }
	}
	return out
}

// MulScalar returns a * s.
func MulScalar(a *Var, s float32) *Var {
	out, grad := record("mul_scalar", tensor.MulScalar(a.Value, s), a)
	if grad {
		out.backward = func(*Var) { a.accumulate(tensor.MulScalar(out.Grad, s), true) }
	}
	return out
}

// PowScalar returns a ^ p.
func PowScalar(a *Var, p float32) *Var {
	out, grad := record("pow_scalar", tensor.PowScalar(a.Value, p), a)
	if grad {
		out.backward = func(*Var) { // p * a^(p-1)
			d := tensor.PowScalar(a.Value, p-1)
			d.ScaleInPlace(p)
			g := tensor.Mul(out.Grad, d)
			d.Free()
			a.accumulate(g, true)
		}
	}
	return out
}

// Pow returns a ^ b elementwise, broadcasting; a must be positive where b's
// gradient is needed.
func Pow(a, b *Var) *Var {
	out, grad := record("pow", tensor.Pow(a.Value, b.Value), a, b)
	if grad {
		out.backward = func(*Var) {
			if a.requiresGrad { // b * a^b / a
				q := tensor.Div(out.Value, a.Value)
				d := tensor.Mul(q, b.Value)
				q.Free()
				g := tensor.Mul(out.Grad, d)
				d.Free()
				a.accumulate(g, true)
			}
			if b.requiresGrad { // a^b * ln a
				l := tensor.Log(a.Value)
				d := tensor.Mul(out.Value, l)
				l.Free()
				g := tensor.Mul(out.Grad, d)
				d.Free()
				b.accumulate(g, true)
			}
		}
	}
	return out
}

// Exp returns e^a.
func Exp(a *Var) *Var {
	out, grad := record("exp", tensor.Exp(a.Value), a)
	if grad {
		out.backward = func(*Var) { a.accumulate(tensor.Mul(out.Grad, out.Value), true) }
	}
	return out
}

// Log returns ln a.
func Log(a *Var) *Var {
	out, grad := record("log", tensor.Log(a.Value), a)
	if grad {
		out.backward = func(*Var) { a.accumulate(tensor.Div(out.Grad, a.Value), true) }
	}
	return out
}

// activation records op whose derivative is computed by gradOp from the
// value named by fromInput (the input) or else the output.
func activation(name string, op device.UnaryOp, gradOp device.BinaryOp, fromInput bool, a *Var) *Var {
	out, grad := record(name, tensor.Unary(op, a.Value, 0), a)
	if grad {
		out.backward = func(*Var) {
			v := out.Value
			if fromInput {
				v = a.Value
			}
			a.accumulate(tensor.Binary(gradOp, v, out.Grad), true)
		}
	}
	return out
}

// Relu returns max(a, 0).
func Relu(a *Var) *Var { return activation("relu", device.Relu, device.ReluGrad, true, a) }

// Sigmoid returns 1/(1+e^-a).
func Sigmoid(a *Var) *Var {
	return activation("sigmoid", device.Sigmoid, device.SigmoidGrad, false, a)
}

// Tanh returns tanh a.
func Tanh(a *Var) *Var { return activation("tanh", device.Tanh, device.TanhGrad, false, a) }

// Maximum returns the elementwise max of a and b. The gradient goes to the
// larger input, and to a on ties.
func Maximum(a, b *Var) *Var {
	out, grad := record("max", tensor.Maximum(a.Value, b.Value), a, b)
	if grad {
		out.backward = func(*Var) {
			mask := tensor.Binary(device.GreaterEq, a.Value, b.Value)
			if a.requiresGrad {
				a.accumulate(tensor.Mul(out.Grad, mask), true)
			}
			if b.requiresGrad { // 1 - mask
				inv := tensor.AddScalar(tensor.Neg(mask), 1)
				b.accumulate(tensor.Mul(out.Grad, inv), true)
				inv.Free()
			}
			mask.Free()
		}
	}
	return out
}

// MatMul returns op(a) · op(b) for matrices, where op transposes its
// argument when the flag is set.
func MatMul(a, b *Var, transA, transB bool) *Var {
	out, grad := record("matmul", tensor.MatMul(a.Value, b.Value, transA, transB), a, b)
	if grad {
		out.backward = func(*Var) {
			g := out.Grad
			if a.requiresGrad {
				switch {
				case !transA && !transB:
					a.addMatMul(g, b.Value, false, true)
				case !transA && transB:
					a.addMatMul(g, b.Value, false, false)
				case transA && !transB:
					a.addMatMul(b.Value, g, false, true)
				default:
					a.addMatMul(b.Value, g, true, true)
				}
			}
			if b.requiresGrad {
				switch {
				case !transA && !transB:
					b.addMatMul(a.Value, g, true, false)
				case !transA && transB:
					b.addMatMul(g, a.Value, true, false)
				case transA && !transB:
					b.addMatMul(a.Value, g, false, false)
				default:
					b.addMatMul(g, a.Value, true, true)
				}
			}
		}
	}
	return out
}

// Sum sums a along axis.
func Sum(a *Var, axis int, keepDims bool) *Var {
	return reduce("sum", tensor.Sum(a.Value, axis, keepDims), a, axis, 1)
}

// Mean averages a along axis.
func Mean(a *Var, axis int, keepDims bool) *Var {
	n := a.Value.Dim(axis)
	return reduce("mean", tensor.Mean(a.Value, axis, keepDims), a, axis, 1/float32(n))
}

// reduce records a reduction along axis whose gradient is the output
// gradient broadcast back, times scale.
func reduce(name string, v *tensor.Tensor, a *Var, axis int, scale float32) *Var {
	out, grad := record(name, v, a)
	if grad {
		out.backward = func(*Var) {
			shape := a.Value.Shape()
			if axis < 0 {
				axis += len(shape)
			}
			kept := append([]int(nil), shape...)
			kept[axis] = 1
			g := out.Grad.Reshape(kept...)
			e := tensor.Expand(g, shape...)
			g.Free()
			if scale != 1 {
				e.ScaleInPlace(scale)
			}
			a.accumulate(e, true)
		}
	}
	return out
}

// SumAll sums every element of a into a scalar.
func SumAll(a *Var) *Var { return reduceAll("sum", tensor.SumAll(a.Value), a, 1) }

// MeanAll averages every element of a into a scalar.
func MeanAll(a *Var) *Var {
	return reduceAll("mean", tensor.MeanAll(a.Value), a, 1/float32(a.Value.Len()))
}

func reduceAll(name string, v *tensor.Tensor, a *Var, scale float32) *Var {
	out, grad := record(name, v, a)
	if grad {
		out.backward = func(*Var) {
			e := tensor.Expand(out.Grad, a.Value.Shape()...)
			if scale != 1 {
				e.ScaleInPlace(scale)
			}
			a.accumulate(e, true)
		}
	}
	return out
}

// Reshape returns a with a new shape.
func Reshape(a *Var, shape ...int) *Var {
	out, grad := record("reshape", a.Value.Reshape(shape...), a)
	if grad {
		out.backward = func(*Var) { a.accumulate(out.Grad.Reshape(a.Value.Shape()...), true) }
	}
	return out
}

// Transpose permutes a's axes; with no axes it reverses them.
func Transpose(a *Var, axes ...int) *Var {
	n := a.Value.Dims()
	if len(axes) == 0 {
		for i := n - 1; i >= 0; i-- {
			axes = append(axes, i)
		}
	}
	out, grad := record("transpose", tensor.Transpose(a.Value, axes...), a)
	if grad {
		out.backward = func(*Var) {
			inv := make([]int, n)
			for i, p := range axes {
				if p < 0 {
					p += n
				}
				inv[p] = i
			}
			a.accumulate(tensor.Transpose(out.Grad, inv...), true)
		}
	}
	return out
}

// Softmax returns the softmax of a along axis.
func Softmax(a *Var, axis int) *Var {
	out, grad := record("softmax", tensor.Softmax(a.Value, axis), a)
	if grad {
		out.backward = func(*Var) { // y * (g - sum(g*y))
			gy := tensor.Mul(out.Grad, out.Value)
			s := tensor.Sum(gy, axis, true)
			gy.Free()
			d := tensor.Sub(out.Grad, s)
			s.Free()
			r := tensor.Mul(d, out.Value)
			d.Free()
			a.accumulate(r, true)
		}
	}
	return out
}

// LogSoftmax returns the log-softmax of a along axis.
func LogSoftmax(a *Var, axis int) *Var {
	out, grad := record("log_softmax", tensor.LogSoftmax(a.Value, axis), a)
	if grad {
		out.backward = func(*Var) { // g - softmax * sum(g)
			s := tensor.Sum(out.Grad, axis, true)
			p := tensor.Exp(out.Value)
			ps := tensor.Mul(p, s)
			p.Free()
			s.Free()
			r := tensor.Sub(out.Grad, ps)
			ps.Free()
			a.accumulate(r, true)
		}
	}
	return out
}
