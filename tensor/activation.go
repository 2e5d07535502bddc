package tensor

import "github.com/gograd/gograd/device"

// unary2 applies op elementwise with the scalars alpha and beta.
func unary2(op device.UnaryOp, x *Tensor, alpha, beta float32) *Tensor {
	out := New(x.dev, x.shape...)
	check(op.String(), x.dev.Unary(op, out.st.buf, x.Buffer(), x.Len(), alpha, beta), x.shape)
	return out
}

// binary2 applies op elementwise with broadcasting and the scalars alpha
// and beta.
func binary2(op device.BinaryOp, a, b *Tensor, alpha, beta float32) *Tensor {
	name := op.String()
	sameDevice(name, a, b)
	var sh, sa, sb [2 * device.MaxDims]int
	shape := broadcastInto(sh[:0], name, a.shape, b.shape)
	out := New(a.dev, shape...)
	w := makeWalk(name, shape, stridesInto(sa[:0], a.shape, shape), stridesInto(sb[:0], b.shape, shape))
	check(name, a.dev.Binary(op, out.st.buf, a.Buffer(), b.Buffer(), w, alpha, beta), a.shape, b.shape)
	return out
}

// Abs returns |t|.
func Abs(t *Tensor) *Tensor { return unary2(device.Abs, t, 0, 0) }

// Sign returns -1, 0 or 1 for each element of t; 0 for NaN, as PyTorch's
// sign.
func Sign(t *Tensor) *Tensor { return unary2(device.Sign, t, 0, 0) }

// Clamp returns min(max(t, min), max) elementwise, as torch.clamp: NaN
// stays NaN, and when min > max every element is max.
func Clamp(t *Tensor, min, max float32) *Tensor { return unary2(device.Clamp, t, min, max) }

// LeakyReLU returns t where t > 0 and slope*t elsewhere.
func LeakyReLU(t *Tensor, slope float32) *Tensor { return unary2(device.LeakyRelu, t, slope, 0) }

// GELU returns x·Φ(x), exactly (erf) or, with approximateTanh, by
// PyTorch's tanh approximation 0.5x(1+tanh(sqrt(2/π)(x+0.044715x³))).
func GELU(t *Tensor, approximateTanh bool) *Tensor {
	if approximateTanh {
		return unary2(device.GeluTanh, t, 0, 0)
	}
	return unary2(device.GeluErf, t, 0, 0)
}

// SiLU returns x·sigmoid(x).
func SiLU(t *Tensor) *Tensor { return unary2(device.Silu, t, 0, 0) }

// Softplus returns ln(1+e^x), and x itself where x > 20, as PyTorch's
// softplus with beta 1 and threshold 20.
func Softplus(t *Tensor) *Tensor { return unary2(device.Softplus, t, 0, 0) }

// AbsGrad returns g·sign(x), the gradient of Abs at x for the upstream
// gradient g (0 at x = 0, as PyTorch). x and g broadcast.
func AbsGrad(x, g *Tensor) *Tensor { return binary2(device.AbsGrad, x, g, 0, 0) }

// LeakyReLUGrad returns g where x > 0 and slope·g elsewhere.
func LeakyReLUGrad(x, g *Tensor, slope float32) *Tensor {
	return binary2(device.LeakyReluGrad, x, g, slope, 0)
}

// GELUGrad returns g·GELU'(x), of the exact GELU or, with tanh, of its
// tanh approximation.
func GELUGrad(x, g *Tensor, tanh bool) *Tensor {
	if tanh {
		return binary2(device.GeluTanhGrad, x, g, 0, 0)
	}
	return binary2(device.GeluErfGrad, x, g, 0, 0)
}

// SiLUGrad returns g·SiLU'(x) = g·s(1+x(1-s)) with s = sigmoid(x).
func SiLUGrad(x, g *Tensor) *Tensor { return binary2(device.SiluGrad, x, g, 0, 0) }

// SoftplusGrad returns g·sigmoid(x), and g where x > 20.
func SoftplusGrad(x, g *Tensor) *Tensor { return binary2(device.SoftplusGrad, x, g, 0, 0) }

// ClampGrad returns g where min <= x <= max and 0 elsewhere (NaN included),
// the gradient of Clamp as PyTorch computes it: the bounds pass it.
func ClampGrad(x, g *Tensor, min, max float32) *Tensor {
	return binary2(device.ClampGrad, x, g, min, max)
}

// Greater returns 1 where a > b and 0 elsewhere, broadcasting.
func Greater(a, b *Tensor) *Tensor { return binary2(device.Greater, a, b, 0, 0) }

// Equal returns 1 where a == b and 0 elsewhere (NaN equals nothing),
// broadcasting.
func Equal(a, b *Tensor) *Tensor { return binary2(device.Equal, a, b, 0, 0) }

// Where returns a where cond is not 0 and b elsewhere, the three
// broadcast together. The side not selected never reaches the result, so
// a NaN there does not propagate.
func Where(cond, a, b *Tensor) *Tensor {
	const name = "where"
	sameDevice(name, cond, a)
	sameDevice(name, cond, b)
	var s1, s2, sc, sa, sb [2 * device.MaxDims]int
	shape := broadcastInto(s1[:0], name, cond.shape, a.shape)
	shape = broadcastInto(s2[:0], name, shape, b.shape)
	out := New(a.dev, shape...)
	w := makeWalk(name, shape, stridesInto(sc[:0], cond.shape, shape), stridesInto(sa[:0], a.shape, shape), stridesInto(sb[:0], b.shape, shape))
	check(name, a.dev.Ternary(device.Where, out.st.buf, cond.Buffer(), a.Buffer(), b.Buffer(), w), cond.shape, a.shape, b.shape)
	return out
}
