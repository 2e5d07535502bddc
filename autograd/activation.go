package autograd

import "github.com/gograd/gograd/tensor"

// Abs returns |a|; its gradient is sign(a) (0 at 0, as PyTorch's).
func Abs(a *Var) *Var { return begin("abs", absBackward, a).set(tensor.Abs(a.Value)) }

func absBackward(out *Var, t *temps) {
	out.in(0).addGrad(t.keep(tensor.AbsGrad(out.in(0).Value, out.Grad)), t)
}

// Clamp returns a limited to [min, max], as torch.clamp: the gradient
// passes where min <= a <= max and is 0 elsewhere.
func Clamp(a *Var, min, max float32) *Var {
	out := begin("clamp", clampBackward, a).set(tensor.Clamp(a.Value, min, max))
	out.fn.f = [2]float32{min, max}
	return out
}

func clampBackward(out *Var, t *temps) {
	a := out.in(0)
	a.addGrad(t.keep(tensor.ClampGrad(a.Value, out.Grad, out.fn.f[0], out.fn.f[1])), t)
}

// LeakyReLU returns a where a > 0 and slope·a elsewhere.
func LeakyReLU(a *Var, slope float32) *Var {
	out := begin("leaky_relu", leakyReLUBackward, a).set(tensor.LeakyReLU(a.Value, slope))
	out.fn.f[0] = slope
	return out
}

func leakyReLUBackward(out *Var, t *temps) { // 1 where a > 0, slope elsewhere
	a := out.in(0)
	a.addGrad(t.keep(tensor.LeakyReLUGrad(a.Value, out.Grad, out.fn.f[0])), t)
}

// GELU returns a·Φ(a), with the exact normal distribution function Φ, or
// with its tanh approximation when approximateTanh is set, as
// torch.nn.functional.gelu with approximate "none" or "tanh".
func GELU(a *Var, approximateTanh bool) *Var {
	return begin("gelu", geluBackward, a).set(tensor.GELU(a.Value, approximateTanh)).args(flag(approximateTanh))
}

func geluBackward(out *Var, t *temps) {
	a := out.in(0)
	a.addGrad(t.keep(tensor.GELUGrad(a.Value, out.Grad, out.fn.ints[0] == 1)), t)
}

// SiLU returns a·σ(a), the swish.
func SiLU(a *Var) *Var { return begin("silu", siluBackward, a).set(tensor.SiLU(a.Value)) }

func siluBackward(out *Var, t *temps) { // σ(a)·(1 + a·(1 - σ(a)))
	out.in(0).addGrad(t.keep(tensor.SiLUGrad(out.in(0).Value, out.Grad)), t)
}

// Softplus returns ln(1 + e^a), and a itself above 20, as PyTorch's
// softplus with beta 1 and threshold 20.
func Softplus(a *Var) *Var {
	return begin("softplus", softplusBackward, a).set(tensor.Softplus(a.Value))
}

func softplusBackward(out *Var, t *temps) { // σ(a)
	out.in(0).addGrad(t.keep(tensor.SoftplusGrad(out.in(0).Value, out.Grad)), t)
}

// Where returns a where cond is not 0 and b elsewhere, the three
// broadcast together, as torch.where. The gradient goes to the side each
// element was taken from; none flows to cond.
func Where(cond, a, b *Var) *Var {
	return begin("where", whereBackward, cond, a, b).set(tensor.Where(cond.Value, a.Value, b.Value))
}

func whereBackward(out *Var, t *temps) {
	cond, a, b := out.in(0), out.in(1), out.in(2)
	zero := t.keep(tensor.Zeros(out.Grad.Device()))
	if a.requiresGrad {
		a.addGrad(t.keep(tensor.Where(cond.Value, out.Grad, zero)), t)
	}
	if b.requiresGrad {
		b.addGrad(t.keep(tensor.Where(cond.Value, zero, out.Grad)), t)
	}
}
