package autograd

import (
	"fmt"
	"math"
	"strings"

	"github.com/gograd/gograd/tensor"
)

// GradCheckOptions tunes GradCheck. Zero values pick the defaults.
type GradCheckOptions struct {
	Eps float64 // finite-difference step; default 1e-2
	Tol float64 // largest relative error allowed; default 1e-2
	// Floor is the smallest magnitude the relative error divides by, so that
	// near-zero gradients are compared absolutely; default 1e-2.
	Floor float64
}

// GradCheck compares the gradients Backward computes for f, a function of
// the inputs returning a scalar, with central finite differences
// (f(x+eps) - f(x-eps)) / 2eps, element by element. It returns an error
// naming the first mismatches, where |analytic - numeric| exceeds
// Tol * max(|analytic|, |numeric|, Floor). The inputs are not modified.
func GradCheck(f func(in []*Var) *Var, inputs []*tensor.Tensor, opt GradCheckOptions) (err error) {
	if opt.Eps == 0 {
		opt.Eps = 1e-2
	}
	if opt.Tol == 0 {
		opt.Tol = 1e-2
	}
	if opt.Floor == 0 {
		opt.Floor = 1e-2
	}
	if e := tensor.Catch(func() { err = gradCheck(f, inputs, opt) }); e != nil {
		return fmt.Errorf("autograd: grad check: %w", e)
	}
	return err
}

func gradCheck(f func(in []*Var) *Var, inputs []*tensor.Tensor, opt GradCheckOptions) error {
	tp := NewTape()
	vars := make([]*Var, len(inputs))
	for i, t := range inputs {
		vars[i] = tp.Var(t.Clone(), true)
	}
	out := f(vars)
	if err := out.Backward(); err != nil {
		return err
	}
	hosts := make([][]float32, len(inputs))
	for i, t := range inputs {
		hosts[i] = t.Data()
	}
	eval := func() float64 {
		tp := NewTape()
		in := make([]*Var, len(inputs))
		for i, t := range inputs {
			in[i] = tp.Var(tensor.FromSlice(t.Device(), hosts[i], t.Shape()...), false)
		}
		var v float64
		tp.NoGrad(func() { v = float64(f(in).Item()) })
		tp.Free()
		for _, x := range in {
			x.Value.Free()
		}
		return v
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
			x := hosts[i][j]
			hosts[i][j] = x + float32(opt.Eps)
			up := eval()
			hosts[i][j] = x - float32(opt.Eps)
			down := eval()
			hosts[i][j] = x
			numeric := (up - down) / (2 * opt.Eps)
			a := float64(analytic[j])
			rel := math.Abs(a-numeric) / max(math.Abs(a), math.Abs(numeric), opt.Floor)
			worst = max(worst, rel)
			if !(rel <= opt.Tol) && len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("input %d element %d: analytic %.6g, numeric %.6g (relative error %.3g)", i, j, a, numeric, rel))
			}
		}
		v.Value.Free()
		v.Grad.Free()
	}
	if len(bad) > 0 {
		return fmt.Errorf("autograd: gradient mismatch (worst relative error %.3g > %.3g):\n  %s", worst, opt.Tol, strings.Join(bad, "\n  "))
	}
	return nil
}
