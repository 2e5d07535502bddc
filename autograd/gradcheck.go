package autograd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gograd/gograd/tensor"
)

// GradCheckOptions tunes GradCheck. Zero values pick the defaults.
type GradCheckOptions struct {
	Eps float64 // finite-difference step h; default 1e-2
	Tol float64 // largest relative error allowed; default 2e-3
	// Floor is the smallest magnitude the relative error divides by, so that
	// near-zero gradients are compared absolutely; default 5e-2.
	Floor float64
}

// GradCheck compares the gradients Backward computes for f, a function of
// the inputs, with finite differences, element by element. A non-scalar
// output y is reduced to L = Σ wᵢ·yᵢ with fixed random weights in ±1, so
// that every output element's gradient counts.
//
// The numeric derivative is taken in float64 from f's float32 values: L is
// summed in float64 on the host, and the central differences
// D(h) = (L(x+h) - L(x-h)) / 2h at h and h/2 are combined by Richardson
// extrapolation, (4·D(h/2) - D(h)) / 3, whose truncation error is O(h⁴)
// instead of O(h²). What remains is the float32 rounding of f's values,
// about 1e-7·|y| per element divided by h. The default tolerance, 2e-3
// relative to max(|analytic|, |numeric|, Floor), is about twice the largest
// error of the 290 checks of this package's tests (9e-4, a two-layer
// network) and 300 times their median (6e-6), and far below the error of a
// wrong derivative. Inputs must stay 2h away from kinks (relu, abs, max,
// clamp).
//
// GradCheck returns an error naming the first mismatches. The inputs are
// not modified.
func GradCheck(f func(in []*Var) *Var, inputs []*tensor.Tensor, opt GradCheckOptions) (err error) {
	if opt.Eps == 0 {
		opt.Eps = 1e-2
	}
	if opt.Tol == 0 {
		opt.Tol = 2e-3
	}
	if opt.Floor == 0 {
		opt.Floor = 5e-2
	}
	if e := tensor.Catch(func() { err = gradCheck(f, inputs, opt) }); e != nil {
		return fmt.Errorf("autograd: grad check: %w", e)
	}
	return err
}

func gradCheck(f func(in []*Var) *Var, inputs []*tensor.Tensor, opt GradCheckOptions) error {
	tp := NewTape() // owns f's intermediates, released by Backward
	defer tp.Free()
	vars := make([]*Var, len(inputs))
	for i, t := range inputs {
		vars[i] = tp.Var(t.Clone(), true)
	}
	y := f(vars)
	r := rand.New(rand.NewPCG(uint64(y.Value.Len()), 0x67726164))
	w := make([]float32, y.Value.Len())
	for i := range w {
		w[i] = float32(2*r.Float64() - 1)
	}
	if len(w) == 1 {
		w[0] = 1
	}
	wt := tensor.FromSlice(y.Value.Device(), w, y.Shape()...)
	defer wt.Free()
	loss := SumAll(Mul(y, Const(wt)))
	if err := loss.Backward(); err != nil {
		return err
	}
	hosts := make([][]float32, len(inputs))
	for i, t := range inputs {
		hosts[i] = t.Data()
	}
	eval := func() float64 {
		tp := NewTape() // owns every intermediate of f
		in := make([]*Var, len(inputs))
		for i, t := range inputs {
			in[i] = tp.Var(tensor.FromSlice(t.Device(), hosts[i], t.Shape()...), false)
		}
		s := 0.0
		for i, v := range f(in).Value.Data() {
			s += float64(w[i]) * float64(v)
		}
		tp.Free()
		for _, x := range in {
			x.Free()
		}
		return s
	}
	diff := func(i, j int, h float64) float64 {
		x := hosts[i][j]
		xp, xm := float32(float64(x)+h), float32(float64(x)-h)
		hosts[i][j] = xp
		up := eval()
		hosts[i][j] = xm
		down := eval()
		hosts[i][j] = x
		return (up - down) / (float64(xp) - float64(xm))
	}
	var bad []string
	worst := 0.0
	for i, v := range vars {
		var analytic []float32
		if v.Grad != nil {
			analytic = v.Grad.Data()
		} else {
			analytic = make([]float32, v.Value.Len())
		}
		for j := range hosts[i] {
			numeric := (4*diff(i, j, opt.Eps/2) - diff(i, j, opt.Eps)) / 3
			a := float64(analytic[j])
			rel := math.Abs(a-numeric) / max(math.Abs(a), math.Abs(numeric), opt.Floor)
			worst = max(worst, rel)
			if !(rel <= opt.Tol) && len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("input %d element %d: analytic %.6g, numeric %.6g (relative error %.3g)", i, j, a, numeric, rel))
			}
		}
		v.Free()
	}
	if len(bad) > 0 {
		return fmt.Errorf("autograd: gradient mismatch (worst relative error %.3g > %.3g):\n  %s", worst, opt.Tol, strings.Join(bad, "\n  "))
	}
	return nil
}
