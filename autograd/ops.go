package autograd

import (
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// Each operation computes its value and names a backward function, which
// reads the output's gradient (out.Grad) and adds each input's share to
// that input's gradient: the local derivative, in one place per op.

// Add returns a + b, broadcasting.
func Add(a, b *Var) *Var { return begin("add", addBackward, a, b).set(tensor.Add(a.Value, b.Value)) }

func addBackward(out *Var, t *temps) {
	out.in(0).addGrad(out.Grad, t)
	out.in(1).addGrad(out.Grad, t)
}

// Sub returns a - b, broadcasting.
func Sub(a, b *Var) *Var { return begin("sub", subBackward, a, b).set(tensor.Sub(a.Value, b.Value)) }

func subBackward(out *Var, t *temps) {
	a, b := out.in(0), out.in(1)
	a.addGrad(out.Grad, t)
	if b.requiresGrad {
		b.addGrad(t.keep(tensor.Neg(out.Grad)), t)
	}
}

// Mul returns a * b elementwise, broadcasting.
func Mul(a, b *Var) *Var { return begin("mul", mulBackward, a, b).set(tensor.Mul(a.Value, b.Value)) }

func mulBackward(out *Var, t *temps) {
	a, b := out.in(0), out.in(1)
	if a.requiresGrad {
		a.addGrad(t.keep(tensor.Mul(out.Grad, b.Value)), t)
	}
	if b.requiresGrad {
		b.addGrad(t.keep(tensor.Mul(out.Grad, a.Value)), t)
	}
}

// Div returns a / b elementwise, broadcasting.
func Div(a, b *Var) *Var { return begin("div", divBackward, a, b).set(tensor.Div(a.Value, b.Value)) }

func divBackward(out *Var, t *temps) {
	a, b := out.in(0), out.in(1)
	if a.requiresGrad {
		a.addGrad(t.keep(tensor.Div(out.Grad, b.Value)), t)
	}
	if b.requiresGrad { // d(a/b)/db = -(a/b)/b
		q := t.keep(tensor.Div(out.Value, b.Value))
		b.addGrad(t.keep(tensor.Mul(out.Grad, t.keep(tensor.Neg(q)))), t)
	}
}

// Neg returns -a.
func Neg(a *Var) *Var { return begin("neg", negBackward, a).set(tensor.Neg(a.Value)) }

func negBackward(out *Var, t *temps) { out.in(0).addGrad(t.keep(tensor.Neg(out.Grad)), t) }

// AddScalar returns a + s.
func AddScalar(a *Var, s float32) *Var {
	return begin("add_scalar", addScalarBackward, a).set(tensor.AddScalar(a.Value, s))
}

func addScalarBackward(out *Var, t *temps) { out.in(0).addGrad(out.Grad, t) }

// MulScalar returns a * s.
func MulScalar(a *Var, s float32) *Var {
	out := begin("mul_scalar", mulScalarBackward, a).set(tensor.MulScalar(a.Value, s))
	out.fn.f[0] = s
	return out
}

func mulScalarBackward(out *Var, t *temps) {
	out.in(0).addGrad(t.keep(tensor.MulScalar(out.Grad, out.fn.f[0])), t)
}

// PowScalar returns a ^ p.
func PowScalar(a *Var, p float32) *Var {
	out := begin("pow_scalar", powScalarBackward, a).set(tensor.PowScalar(a.Value, p))
	out.fn.f[0] = p
	return out
}

func powScalarBackward(out *Var, t *temps) { // p · a^(p-1)
	a, p := out.in(0), out.fn.f[0]
	d := t.keep(tensor.PowScalar(a.Value, p-1))
	d.ScaleInPlace(p)
	a.addGrad(t.keep(tensor.Mul(out.Grad, d)), t)
}

// Pow returns a ^ b elementwise, broadcasting; a must be positive where b's
// gradient is needed.
func Pow(a, b *Var) *Var { return begin("pow", powBackward, a, b).set(tensor.Pow(a.Value, b.Value)) }

func powBackward(out *Var, t *temps) {
	a, b := out.in(0), out.in(1)
	if a.requiresGrad { // b · a^b / a
		d := t.keep(tensor.Mul(t.keep(tensor.Div(out.Value, a.Value)), b.Value))
		a.addGrad(t.keep(tensor.Mul(out.Grad, d)), t)
	}
	if b.requiresGrad { // a^b · ln a
		d := t.keep(tensor.Mul(out.Value, t.keep(tensor.Log(a.Value))))
		b.addGrad(t.keep(tensor.Mul(out.Grad, d)), t)
	}
}

// Exp returns e^a.
func Exp(a *Var) *Var { return begin("exp", expBackward, a).set(tensor.Exp(a.Value)) }

func expBackward(out *Var, t *temps) {
	out.in(0).addGrad(t.keep(tensor.Mul(out.Grad, out.Value)), t)
}

// Log returns ln a.
func Log(a *Var) *Var { return begin("log", logBackward, a).set(tensor.Log(a.Value)) }

func logBackward(out *Var, t *temps) {
	out.in(0).addGrad(t.keep(tensor.Div(out.Grad, out.in(0).Value)), t)
}

// Relu returns max(a, 0).
func Relu(a *Var) *Var { return begin("relu", reluBackward, a).set(tensor.Relu(a.Value)) }

func reluBackward(out *Var, t *temps) { // 1 where a > 0
	out.in(0).addGrad(t.keep(tensor.Binary(device.ReluGrad, out.in(0).Value, out.Grad)), t)
}

// Sigmoid returns 1/(1+e^-a).
func Sigmoid(a *Var) *Var { return begin("sigmoid", sigmoidBackward, a).set(tensor.Sigmoid(a.Value)) }

func sigmoidBackward(out *Var, t *temps) { // y(1-y)
	out.in(0).addGrad(t.keep(tensor.Binary(device.SigmoidGrad, out.Value, out.Grad)), t)
}

// Tanh returns tanh a.
func Tanh(a *Var) *Var { return begin("tanh", tanhBackward, a).set(tensor.Tanh(a.Value)) }

func tanhBackward(out *Var, t *temps) { // 1 - y²
	out.in(0).addGrad(t.keep(tensor.Binary(device.TanhGrad, out.Value, out.Grad)), t)
}

// Maximum returns the elementwise max of a and b, broadcasting. As
// torch.maximum, the gradient goes to the larger input, and is split
// equally between a and b where they are equal.
func Maximum(a, b *Var) *Var {
	return begin("max", maximumBackward, a, b).set(tensor.Maximum(a.Value, b.Value))
}

func maximumBackward(out *Var, t *temps) {
	a, b := out.in(0), out.in(1)
	ge := t.keep(tensor.Binary(device.GreaterEq, a.Value, b.Value)) // 1 where a wins or ties
	le := t.keep(tensor.Binary(device.GreaterEq, b.Value, a.Value)) // 1 where b wins or ties
	n := t.keep(tensor.Add(ge, le))                                 // 2 on ties, else 1
	if a.requiresGrad {
		a.addGrad(t.keep(tensor.Mul(out.Grad, t.keep(tensor.Div(ge, n)))), t)
	}
	if b.requiresGrad {
		b.addGrad(t.keep(tensor.Mul(out.Grad, t.keep(tensor.Div(le, n)))), t)
	}
}

// MatMul returns op(a) · op(b) for matrices, where op transposes its
// argument when the flag is set.
func MatMul(a, b *Var, transA, transB bool) *Var {
	out := begin("matmul", matMulBackward, a, b).set(tensor.MatMul(a.Value, b.Value, transA, transB))
	return out.args(flag(transA), flag(transB))
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func matMulBackward(out *Var, _ *temps) {
	a, b, g := out.in(0), out.in(1), out.Grad
	switch ta, tb := out.fn.ints[0] == 1, out.fn.ints[1] == 1; {
	case !ta && !tb: // dA = G·Bᵀ, dB = Aᵀ·G
		a.addMatMul(g, b.Value, false, true)
		b.addMatMul(a.Value, g, true, false)
	case !ta && tb: // dA = G·B, dB = Gᵀ·A
		a.addMatMul(g, b.Value, false, false)
		b.addMatMul(g, a.Value, true, false)
	case ta && !tb: // dA = B·Gᵀ, dB = A·G
		a.addMatMul(b.Value, g, false, true)
		b.addMatMul(a.Value, g, false, false)
	default: // dA = Bᵀ·Gᵀ, dB = Gᵀ·Aᵀ
		a.addMatMul(b.Value, g, true, true)
		b.addMatMul(g, a.Value, true, true)
	}
}

// Sum sums a along axis.
func Sum(a *Var, axis int, keepDims bool) *Var {
	out := begin("sum", reduceBackward, a).set(tensor.Sum(a.Value, axis, keepDims))
	out.fn.f[0] = 1
	return out.args(axis)
}

// Mean averages a along axis.
func Mean(a *Var, axis int, keepDims bool) *Var {
	out := begin("mean", reduceBackward, a).set(tensor.Mean(a.Value, axis, keepDims))
	out.fn.f[0] = 1 / float32(a.Value.Dim(axis))
	return out.args(axis)
}

func reduceBackward(out *Var, t *temps) { // the gradient, broadcast back along the axis, times f
	a := out.in(0)
	shape := a.Value.Shape()
	axis := out.fn.ints[0]
	if axis < 0 {
		axis += len(shape)
	}
	kept := append([]int(nil), shape...)
	kept[axis] = 1
	e := t.keep(tensor.Expand(t.keep(out.Grad.Reshape(kept...)), shape...))
	if out.fn.f[0] != 1 {
		e.ScaleInPlace(out.fn.f[0])
	}
	a.addGrad(e, t)
}

// SumAll sums every element of a into a scalar.
func SumAll(a *Var) *Var {
	out := begin("sum", reduceAllBackward, a).set(tensor.SumAll(a.Value))
	out.fn.f[0] = 1
	return out
}

// MeanAll averages every element of a into a scalar.
func MeanAll(a *Var) *Var {
	out := begin("mean", reduceAllBackward, a).set(tensor.MeanAll(a.Value))
	out.fn.f[0] = 1 / float32(a.Value.Len())
	return out
}

func reduceAllBackward(out *Var, t *temps) {
	a := out.in(0)
	e := t.keep(tensor.Expand(out.Grad, a.Value.Shape()...))
	if out.fn.f[0] != 1 {
		e.ScaleInPlace(out.fn.f[0])
	}
	a.addGrad(e, t)
}

// Reshape returns a with a new shape.
func Reshape(a *Var, shape ...int) *Var {
	return begin("reshape", reshapeBackward, a).set(a.Value.Reshape(shape...))
}

func reshapeBackward(out *Var, t *temps) {
	a := out.in(0)
	a.addGrad(t.keep(out.Grad.Reshape(a.Value.Shape()...)), t)
}

// Transpose permutes a's axes; with no axes it reverses them.
func Transpose(a *Var, axes ...int) *Var {
	n := a.Value.Dims()
	if len(axes) == 0 {
		for i := n - 1; i >= 0; i-- {
			axes = append(axes, i)
		}
	}
	out := begin("transpose", transposeBackward, a).set(tensor.Transpose(a.Value, axes...))
	inv := make([]int, n)
	for i, p := range axes {
		if p < 0 {
			p += n
		}
		inv[p] = i
	}
	out.fn.ints = inv
	return out
}

func transposeBackward(out *Var, t *temps) {
	out.in(0).addGrad(t.keep(tensor.Transpose(out.Grad, out.fn.ints...)), t)
}

// Softmax returns the softmax of a along axis.
func Softmax(a *Var, axis int) *Var {
	return begin("softmax", softmaxBackward, a).set(tensor.Softmax(a.Value, axis)).args(axis)
}

func softmaxBackward(out *Var, t *temps) { // y · (g - Σ g·y)
	s := t.keep(tensor.Sum(t.keep(tensor.Mul(out.Grad, out.Value)), out.fn.ints[0], true))
	d := t.keep(tensor.Sub(out.Grad, s))
	out.in(0).addGrad(t.keep(tensor.Mul(d, out.Value)), t)
}

// LogSoftmax returns the log-softmax of a along axis.
func LogSoftmax(a *Var, axis int) *Var {
	return begin("log_softmax", logSoftmaxBackward, a).set(tensor.LogSoftmax(a.Value, axis)).args(axis)
}

func logSoftmaxBackward(out *Var, t *temps) { // g - softmax · Σ g
	s := t.keep(tensor.Sum(out.Grad, out.fn.ints[0], true))
	ps := t.keep(tensor.Mul(t.keep(tensor.Exp(out.Value)), s))
	out.in(0).addGrad(t.keep(tensor.Sub(out.Grad, ps)), t)
}
