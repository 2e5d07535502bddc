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
// computation composed of this package's operations. In evaluation it is
// one node too, a per-channel scale and shift, with gradients for x,
// weight and bias as in PyTorch.
func BatchNorm(x, weight, bias *Var, runMean, runVar *tensor.Tensor, training bool, momentum, eps float32) *Var {
	return BatchNormAct(x, weight, bias, runMean, runVar, training, momentum, eps, device.Identity)
}

// BatchNormAct is BatchNorm followed by the activation act: device.Identity
// (BatchNorm itself) or device.ActRelu, Relu(BatchNorm(...)) with the same
// values and gradients. In training on a device with the fused kernels
// (device.BatchNorm) it is one node: the forward kernel writes the ReLU of
// the normalised values and the backward kernel masks the gradient by
// y > 0 in the same passes over the data, as if a Relu node sat between.
// Elsewhere (evaluation, a device without the kernels) it is BatchNorm's
// nodes followed by a Relu node.
func BatchNormAct(x, weight, bias *Var, runMean, runVar *tensor.Tensor, training bool, momentum, eps float32, act device.Activation) *Var {
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
	if act != device.Identity && act != device.ActRelu {
		panic(&tensor.Error{Op: "batch_norm", Shapes: [][]int{xs}, Err: fmt.Errorf("autograd: batch_norm fuses no activation %v: want identity or relu", act)})
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
		return activate(batchNormEval(x, weight, bias, runMean, runVar, outer, c, inner, eps), act)
	}
	if outer*inner < 2 {
		bad(fmt.Errorf("%w: expected more than 1 value per channel when training", tensor.ErrShape))
	}
	f, ok := x.Value.Device().(device.BatchNorm)
	if !ok {
		return activate(batchNormComposed(x, weight, bias, runMean, runVar, outer, c, inner, momentum, eps), act)
	}
	name := "batch_norm"
	if act == device.ActRelu {
		name = "batch_norm_relu"
	}
	out := begin(name, batchNormBackward, x, weight, bias)
	y := out.newValue(x.Value, xs...)
	mean := out.newSaved(0, x.Value, c)
	invstd := out.newSaved(1, x.Value, c)
	var rm, rv device.Buffer
	if runMean != nil {
		rm, rv = runMean.Buffer(), runVar.Buffer()
	}
	if err := f.BatchNormForward(y.Buffer(), mean.Buffer(), invstd.Buffer(), rm, rv, x.Value.Buffer(),
		weight.Value.Buffer(), bias.Value.Buffer(), outer, c, inner, eps, momentum, act); err != nil {
		bad(err)
	}
	return out.args(outer, c, inner, int(act))
}

// activate applies act, Identity or ActRelu, as its own node.
func activate(y *Var, act device.Activation) *Var {
	if act == device.ActRelu {
		return Relu(y)
	}
	return y
}

// batchNormBackward is BatchNorm's backward pass in training: one call of
// the device's fused kernel for dx, dweight and dbias, which with a fused
// ReLU reads the node's output for the mask.
func batchNormBackward(out *Var, t *temps) {
	x, w, b := out.in(0), out.in(1), out.in(2)
	outer, c, inner := out.fn.ints[0], out.fn.ints[1], out.fn.ints[2]
	act := device.Activation(out.fn.ints[3])
	var y device.Buffer
	if act != device.Identity {
		y = out.Value.Buffer()
	}
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
	if err := f.BatchNormBackward(dx, dw, db, x.Value.Buffer(), y, out.fn.saved[0].Buffer(), out.fn.saved[1].Buffer(),
		w.Value.Buffer(), out.Grad.Buffer(), outer, c, inner, act, acc); err != nil {
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

// batchNormEval is BatchNorm in evaluation, one node: y = x·scale + shift
// per channel, with rinv = 1/sqrt(runVar + eps), scale = weight·rinv and
// shift = bias - runMean·scale. It saves rinv and runMean·rinv, so that the
// backward pass, dx = g·scale, dweight = Σ g·(x·rinv - runMean·rinv) and
// dbias = Σ g, does not depend on later updates of the running estimates.
func batchNormEval(x, weight, bias *Var, runMean, runVar *tensor.Tensor, outer, c, inner int, eps float32) *Var {
	out := begin("batch_norm_eval", batchNormEvalBackward, x, weight, bias)
	ve := tensor.AddScalar(runVar, eps)
	rinv := out.save(0, tensor.PowScalar(ve, -0.5))
	ve.Free()
	mr := out.save(1, tensor.Mul(runMean, rinv))
	scale := tensor.Mul(weight.Value, rinv)
	ms := tensor.Mul(mr, weight.Value)
	shift := tensor.Sub(bias.Value, ms)
	xs, sc, sh := x.Value.Reshape(outer, c, inner), scale.Reshape(c, 1), shift.Reshape(c, 1)
	sx := tensor.Mul(xs, sc)
	y := tensor.Add(sx, sh)
	yv := y.Reshape(x.Shape()...)
	for _, t := range []*tensor.Tensor{scale, ms, shift, sx, xs, sc, sh, y} { // views first release a reference
		t.Free()
	}
	return out.set(yv).args(outer, c, inner)
}

// batchNormEvalBackward is the backward pass of batchNormEval.
func batchNormEvalBackward(out *Var, t *temps) {
	x, w, b := out.in(0), out.in(1), out.in(2)
	outer, c, inner := out.fn.ints[0], out.fn.ints[1], out.fn.ints[2]
	rinv, mr := out.fn.saved[0], out.fn.saved[1]
	g := out.Grad.Reshape(outer, c, inner)
	t.keep(g)
	channelSum := func(v *tensor.Tensor) *tensor.Tensor {
		return t.keep(tensor.Sum(t.keep(tensor.Sum(v, 2, false)), 0, false))
	}
	if x.requiresGrad {
		scale := t.keep(tensor.Mul(w.Value, rinv))
		dx := t.keep(tensor.Mul(g, t.keep(scale.Reshape(c, 1))))
		x.addGrad(t.keep(dx.Reshape(x.Shape()...)), t)
	}
	if w.requiresGrad {
		xs := t.keep(x.Value.Reshape(outer, c, inner))
		xhat := t.keep(tensor.Sub(t.keep(tensor.Mul(xs, t.keep(rinv.Reshape(c, 1)))), t.keep(mr.Reshape(c, 1))))
		w.addGrad(channelSum(t.keep(tensor.Mul(g, xhat))), t)
	}
	if b.requiresGrad {
		b.addGrad(channelSum(g), t)
	}
}

// batchNormComposed is BatchNorm in training on a device without the
// fused kernels, composed of this package's operations, with the running
// estimates updated from the statistics' values. The affine map runs with
// the channels last, so that every operation has an input on x's tape.
func batchNormComposed(x, weight, bias *Var, runMean, runVar *tensor.Tensor, outer, c, inner int, momentum, eps float32) *Var {
	h := Reshape(x, outer, c, inner)
	mean := Mean(Mean(h, 2, true), 0, true)
	d := Sub(h, mean)
	v := Mean(Mean(Mul(d, d), 2, true), 0, true)
	xhat := Transpose(Mul(d, PowScalar(AddScalar(v, eps), -0.5)), 0, 2, 1) // [outer, inner, c]
	y := Transpose(Add(Mul(xhat, weight), bias), 0, 2, 1)
	if runMean != nil {
		m := float32(outer * inner)
		update := func(run, stat *tensor.Tensor, scale float32) {
			s := stat.Reshape(c)
			run.ScaleInPlace(1 - momentum)
			u := tensor.MulScalar(s, momentum*scale)
			run.AddInPlace(u)
			u.Free()
			s.Free()
		}
		update(runMean, mean.Value, 1)
		update(runVar, v.Value, m/(m-1))
	}
	return Reshape(y, x.Shape()...)
}
