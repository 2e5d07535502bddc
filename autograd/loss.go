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
	shape := logits.Value.Shape()
	if len(shape) != 2 || labels.Dims() != 1 || labels.Dim(0) != shape[0] {
		panic(&tensor.Error{Op: "softmax cross-entropy", Shapes: [][]int{shape, labels.Shape()}, Err: tensor.ErrShape})
	}
	rows, n := shape[0], shape[1]
	dev := logits.Value.Device()
	perRow := tensor.New(dev, rows)
	dlogits := tensor.New(dev, rows, n)
	if f, ok := dev.(device.SoftmaxCE); ok {
		err := f.SoftmaxCrossEntropy(perRow.Buffer(), dlogits.Buffer(), logits.Value.Buffer(), labels.Buffer(), rows, n, 1/float32(rows))
		if err != nil {
			panic(&tensor.Error{Op: "softmax cross-entropy", Shapes: [][]int{shape}, Err: err})
		}
	} else {
		composedSoftmaxCE(perRow, dlogits, logits.Value, labels)
	}
	loss := tensor.MeanAll(perRow)
	perRow.Free()
	out, grad := record("cross_entropy", loss, logits)
	if !grad {
		dlogits.Free()
		return out
	}
	out.saved = append(out.saved, dlogits)
	out.backward = func() { logits.accumulate(tensor.Mul(dlogits, out.Grad), true) }
	return out
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
	out.backward = func() { // 2 (pred - target) / n
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
	out.backward = func() { a.accumulate(tensor.Mul(out.Grad, mask), true) }
	return out
}
