package autograd

import (
	"errors"
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// BatchNorm normalises x, [N, C, ...], per channel (axis 1), as
// torch.nn.functional.batch_norm(x, runMean, runVar, weight, bias,
// training, momentum, eps) does:
//
//	y = (x - mean) / sqrt(var + eps) · weight + bias
//
// weight and bias are [C]. In training, mean and var are the batch's
// statistics over every axis but 1 (the biased variance), and runMean and
// runVar, [C] tensors that may be nil, are updated in place:
// run = (1-momentum)·run + momentum·stat, with the unbiased variance, as
// PyTorch does. Training needs more than one value per channel. In
// evaluation the running estimates, which must be given, take the place of
// the statistics and are not changed.
//
// In training it is one node: the device's fused kernels
// (device.BatchNorm) compute the statistics and the output in one call and
// the three gradients in another; a device without them runs the same
// computation composed of this package's operations.
func BatchNorm(x, weight, bias *Var, runMean, runVar *tensor.Tensor, training bool, momentum, eps float32) *Var {
	xs := x.Shape()
	bad := func(err error) {
		shapes := [][]int{xs, weight.Shape(), bias.Shape()}
		for _, r := range []*tensor.Tensor{runMean, runVar} {
			if r != nil {
				shapes = append(shapes, r.Shape())
			}
		}
		panic(&tensor.Error{Op: "batch_norm", Shapes: shapes, Err: err})
	}
	if weight == nil || bias == nil {
		panic(&tensor.Error{Op: "batch_norm", Shapes: [][]int{xs}, Err: errors.New("autograd: batch_norm needs a weight and a bias")})
	}
	if len(xs) < 2 {
		bad(fmt.Errorf("%w: input must be [N, C, ...]", tensor.ErrShape))
	}
	c := xs[1]
	isC := func(t *tensor.Tensor) bool { return t == nil || (t.Dims() == 1 && t.Dim(0) == c) }
	if !isC(weight.Value) || !isC(bias.Value) || !isC(runMean) || !isC(runVar) {
		bad(fmt.Errorf("%w: weight, bias and running statistics must be [%d]", tensor.ErrShape, c))
	}
	if (runMean == nil) != (runVar == nil) {
		bad(errors.New("autograd: batch_norm needs both running statistics or neither"))
	}
	outer, inner := xs[0], 1
	for _, d := range xs[2:] {
		inner *= d
	}
	if !training {
		if runMean == nil {
			bad(errors.New("autograd: batch_norm in evaluation needs the running statistics"))
		}
		return batchNormEval(x, weight, bias, runMean, runVar, outer, c, inner, eps)
	}
	if outer*inner < 2 {
		bad(fmt.Errorf("%w: expected more than 1 value per channel when training", tensor.ErrShape))
	}
	f, ok := x.Value.Device().(device.BatchNorm)
	if !ok {
		return batchNormComposed(x, weight, bias, runMean, runVar, outer, c, inner, momentum, eps)
	}
	out := begin("batch_norm", batchNormBackward, x, weight, bias)
	y := out.newValue(x.Value, xs...)
	mean := out.newSaved(0, x.Value, c)
	invstd := out.newSaved(1, x.Value, c)
	var rm, rv device.Buffer
	if runMean != nil {
		rm, rv = runMean.Buffer(), runVar.Buffer()
	}
	if err := f.BatchNormForward(y.Buffer(), mean.Buffer(), invstd.Buffer(), rm, rv, x.Value.Buffer(),
		weight.Value.Buffer(), bias.Value.Buffer(), outer, c, inner, eps, momentum); err != nil {
		bad(err)
	}
	return out.args(outer, c, inner)
}

// batchNormBackward is BatchNorm's backward pass in training: one call of
// the device's fused kernel for dx, dweight and dbias.
func batchNormBackward(out *Var, t *temps) {
	x, w, b := out.in(0), out.in(1), out.in(2)
	outer, c, inner := out.fn.ints[0], out.fn.ints[1], out.fn.ints[2]
	f := out.Value.Device().(device.BatchNorm)
	var dx, dw, db device.Buffer
	var dxT, dwT, dbT *tensor.Tensor
	accX, accW, accB := false, false, false
	if x.requiresGrad {
		dxT, accX = x.gradDst()
		if accX { // the kernel stores: add its result afterwards
			dxT = t.keep(tensor.New(x.Value.Device(), x.Value.Shape()...))
		}
		dx = dxT.Buffer()
	}
	if w.requiresGrad {
		dwT, accW = w.gradDst()
	}
	if b.requiresGrad {
		dbT, accB = b.gradDst()
	}
	// The kernel accumulates both parameter gradients or neither; when
	// they differ, it stores both, the one that accumulates into a
	// temporary added afterwards.
	acc := (dwT != nil || dbT != nil) && (dwT == nil || accW) && (dbT == nil || accB)
	fix := func(g *tensor.Tensor, a bool) (device.Buffer, *tensor.Tensor) {
		if g == nil {
			return nil, nil
		}
		if a == acc {
			return g.Buffer(), nil
		}
		tmp := t.keep(tensor.New(g.Device(), c))
		return tmp.Buffer(), tmp
	}
	dw, dwTmp := fix(dwT, accW)
	db, dbTmp := fix(dbT, accB)
	if err := f.BatchNormBackward(dx, dw, db, x.Value.Buffer(), out.fn.saved[0].Buffer(), out.fn.saved[1].Buffer(),
		w.Value.Buffer(), out.Grad.Buffer(), outer, c, inner, acc); err != nil {
		panic(&tensor.Error{Op: "batch_norm_grad", Shapes: [][]int{x.Shape()}, Err: err})
	}
	for _, p := range [][2]*tensor.Tensor{{dwT, dwTmp}, {dbT, dbTmp}} {
		if p[1] != nil {
			p[0].AddInPlace(p[1])
		}
	}
	if accX {
		g, _ := x.gradDst()
		g.AddInPlace(dxT)
	}
}

// batchNormEval is BatchNorm in evaluation: x·scale + shift per channel,
// with scale = weight/sqrt(runVar + eps) and shift = bias - runMean·scale,
// composed of this package's operations (so gradients flow to x, weight
// and bias as in PyTorch).
func batchNormEval(x, weight, bias *Var, runMean, runVar *tensor.Tensor, outer, c, inner int, eps float32) *Var {
	rm, rv := Const(runMean), Const(runVar)
	scale := Mul(weight, PowScalar(AddScalar(rv, eps), -0.5))
	shift := Sub(bias, Mul(rm, scale))
	h := Reshape(x, outer, c, inner)
	y := Add(Mul(h, Reshape(scale, 1, c, 1)), Reshape(shift, 1, c, 1))
	return Reshape(y, x.Shape()...)
}

// batchNormComposed is BatchNorm in training on a device without the
// fused kernels, composed of this package's operations, with the running
// estimates updated from the statistics' values.
func batchNormComposed(x, weight, bias *Var, runMean, runVar *tensor.Tensor, outer, c, inner int, momentum, eps float32) *Var {
	h := Reshape(x, outer, c, inner)
	mean := Mean(Mean(h, 2, true), 0, true)
	d := Sub(h, mean)
	v := Mean(Mean(Mul(d, d), 2, true), 0, true)
	y := Mul(d, PowScalar(AddScalar(v, eps), -0.5))
	y = Add(Mul(y, Reshape(weight, 1, c, 1)), Reshape(bias, 1, c, 1))
	if runMean != nil {
		m := float32(outer * inner)
		update := func(run, stat *tensor.Tensor, scale float32) {
			s := stat.Reshape(c)
			run.ScaleInPlace(1 - momentum)
			u := tensor.MulScalar(s, momentum*scale)
			run.AddInPlace(u)
			u.Free()
		}
		update(runMean, mean.Value, 1)
		update(runVar, v.Value, m/(m-1))
	}
	return Reshape(y, x.Shape()...)
}
