package autograd

import (
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// SoftmaxCrossEntropy returns the mean over the batch of the cross-entropy
// between softmax(logits) and integer labels: logits is [batch, classes],
// labels a [batch] tensor of class indices stored as float32. It is
// PyTorch's CrossEntropyLoss. The forward pass computes the gradient too,
// with the device's fused kernel where it has one.
func SoftmaxCrossEntropy(logits *Var, labels *tensor.Tensor) *Var {
	lv := logits.Value
	if lv.Dims() != 2 || labels.Dims() != 1 || labels.Dim(0) != lv.Dim(0) {
		panic(&tensor.Error{Op: "softmax cross-entropy", Shapes: [][]int{lv.Shape(), labels.Shape()}, Err: tensor.ErrShape})
	}
	rows, n := lv.Dim(0), lv.Dim(1)
	dev := lv.Device()
	out, grad := begin("cross_entropy", logits)
	perRow := out.reuseScratch(0, lv, rows)
	dlogits := out.reuseScratch(1, lv, rows, n)
	if f, ok := dev.(device.SoftmaxCE); ok {
		err := f.SoftmaxCrossEntropy(perRow.Buffer(), dlogits.Buffer(), lv.Buffer(), labels.Buffer(), rows, n, 1/float32(rows))
		if err != nil {
			panic(&tensor.Error{Op: "softmax cross-entropy", Shapes: [][]int{lv.Shape()}, Err: err})
		}
	} else {
		composedSoftmaxCE(perRow, dlogits, lv, labels)
	}
	out.setValue(tensor.MeanAll(perRow))
	if grad {
		out.backward = crossEntropyBackward
	}
	return out
}

// crossEntropyBackward scales the gradient that the forward pass computed
// (kept in scratch[1]) by the loss's gradient.
func crossEntropyBackward(out *Var) {
	logits := out.inputs[0]
	if !logits.requiresGrad {
		return
	}
	g, acc := logits.gradDst()
	if !acc {
		tensor.BinaryInto(device.Mul, g, out.scratch[1], out.Grad)
		return
	}
	d := tensor.Mul(out.scratch[1], out.Grad)
	g.AddInPlace(d)
	d.Free()
}

// composedSoftmaxCE computes the per-row loss and the gradient from basic
// operations, for devices without the fused kernel. The one-hot labels are
// built on the host.
func composedSoftmaxCE(perRow, dlogits, logits, labels *tensor.Tensor) {
	rows, n := logits.Dim(0), logits.Dim(1)
	lab := labels.Data()
	onehot := make([]float32, rows*n)
	for r, l := range lab {
		c := int(l)
		if c < 0 || c >= n {
			panic(&tensor.Error{Op: "softmax cross-entropy", Err: fmt.Errorf("autograd: label %d out of range [0, %d)", c, n)})
		}
		onehot[r*n+c] = 1
	}
	oh := tensor.FromSlice(logits.Device(), onehot, rows, n)
	lsm := tensor.LogSoftmax(logits, 1)
	picked := tensor.Mul(lsm, oh)
	s := tensor.Sum(picked, 1, false)
	picked.Free()
	s.ScaleInPlace(-1)
	dev := logits.Device()
	if err := dev.Copy(perRow.Buffer(), s.Buffer(), device.Contiguous(rows)); err != nil {
		panic(&tensor.Error{Op: "softmax cross-entropy", Err: err})
	}
	s.Free()
	p := tensor.Exp(lsm)
	lsm.Free()
	d := tensor.Sub(p, oh)
	p.Free()
	oh.Free()
	d.ScaleInPlace(1 / float32(rows))
	if err := dev.Copy(dlogits.Buffer(), d.Buffer(), device.Contiguous(rows*n)); err != nil {
		panic(&tensor.Error{Op: "softmax cross-entropy", Err: err})
	}
	d.Free()
}

// MSE returns the mean squared error between pred and target, which must
// have the same shape.
func MSE(pred, target *Var) *Var {
	if !tensor.SameShape(pred.Value, target.Value) {
		panic(&tensor.Error{Op: "mse", Shapes: [][]int{pred.Shape(), target.Shape()}, Err: tensor.ErrShape})
	}
	diff := tensor.Sub(pred.Value, target.Value)
	sq := tensor.Unary(device.Square, diff, 0)
	loss := tensor.MeanAll(sq)
	sq.Free()
	out, grad := record("mse", loss, pred, target)
	if !grad {
		diff.Free()
		return out
	}
	out.saved = append(out.saved, diff)
	out.backward = func(*Var) { // 2 (pred - target) / n
		g := tensor.Mul(diff, out.Grad)
		g.ScaleInPlace(2 / float32(g.Len()))
		if target.requiresGrad {
			target.accumulate(tensor.Neg(g), true)
		}
		pred.accumulate(g, true)
	}
	return out
}

// Dropout zeroes each element of a with probability p and scales the rest
// by 1/(1-p). The mask comes from a counter-based hash of seed, so it is
// the same on every device. With p == 0 it returns a unchanged.
func Dropout(a *Var, p float32, seed uint64) *Var {
	if p == 0 {
		return a
	}
	if p < 0 || p >= 1 {
		panic(&tensor.Error{Op: "dropout", Err: fmt.Errorf("autograd: dropout probability %v outside [0, 1)", p)})
	}
	dev := a.Value.Device()
	mask := tensor.New(dev, a.Shape()...)
	if err := dev.DropoutMask(mask.Buffer(), mask.Len(), p, seed); err != nil {
		panic(&tensor.Error{Op: "dropout", Err: err})
	}
	out, grad := record("dropout", tensor.Mul(a.Value, mask), a)
	if !grad {
		mask.Free()
		return out
	}
	out.saved = append(out.saved, mask)
	out.backward = func(*Var) { a.accumulate(tensor.Mul(out.Grad, mask), true) }
	return out
}
