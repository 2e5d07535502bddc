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
	out := begin("cross_entropy", crossEntropyBackward, logits)
	perRow := out.newSaved(0, lv, rows)
	dlogits := out.newSaved(1, lv, rows, n)
	if f, ok := lv.Device().(device.SoftmaxCE); ok {
		err := f.SoftmaxCrossEntropy(perRow.Buffer(), dlogits.Buffer(), lv.Buffer(), labels.Buffer(), rows, n, 1/float32(rows))
		if err != nil {
			panic(&tensor.Error{Op: "softmax cross-entropy", Shapes: [][]int{lv.Shape()}, Err: err})
		}
	} else {
		composedSoftmaxCE(perRow, dlogits, lv, labels)
	}
	tensor.ReduceAllInto(device.Mean, out.newValue(lv), perRow)
	return out
}

// crossEntropyBackward scales the gradient that the forward pass computed
// (saved[1]) by the loss's gradient.
func crossEntropyBackward(out *Var, t *temps) {
	logits := out.in(0)
	if g, acc := logits.gradDst(); acc {
		g.AddInPlace(t.keep(tensor.Mul(out.fn.saved[1], out.Grad)))
	} else {
		tensor.BinaryInto(device.Mul, g, out.fn.saved[1], out.Grad)
	}
}

// composedSoftmaxCE computes the per-row loss and the gradient from basic
// operations, for devices without the fused kernel. The one-hot labels are
// built on the host.
func composedSoftmaxCE(perRow, dlogits, logits, labels *tensor.Tensor) {
	rows, n := logits.Dim(0), logits.Dim(1)
	onehot := make([]float32, rows*n)
	for r, l := range labels.Data() {
		c := int(l)
		if c < 0 || c >= n {
			panic(&tensor.Error{Op: "softmax cross-entropy", Err: fmt.Errorf("autograd: label %d out of range [0, %d)", c, n)})
		}
		onehot[r*n+c] = 1
	}
	var t temps
	defer t.free()
	oh := t.keep(tensor.FromSlice(logits.Device(), onehot, rows, n))
	lsm := t.keep(tensor.LogSoftmax(logits, 1))
	s := t.keep(tensor.Sum(t.keep(tensor.Mul(lsm, oh)), 1, false))
	tensor.UnaryInto(device.MulScalar, perRow, s, -1)
	d := t.keep(tensor.Sub(t.keep(tensor.Exp(lsm)), oh))
	tensor.UnaryInto(device.MulScalar, dlogits, d, 1/float32(rows))
}

// MSE returns the mean squared error between pred and target, which must
// have the same shape.
func MSE(pred, target *Var) *Var {
	if !tensor.SameShape(pred.Value, target.Value) {
		panic(&tensor.Error{Op: "mse", Shapes: [][]int{pred.Shape(), target.Shape()}, Err: tensor.ErrShape})
	}
	out := begin("mse", mseBackward, pred, target)
	diff := out.save(0, tensor.Sub(pred.Value, target.Value))
	sq := out.newSaved(1, diff, diff.Shape()...) // freed with the node
	tensor.UnaryInto(device.Square, sq, diff, 0)
	return out.set(tensor.MeanAll(sq))
}

func mseBackward(out *Var, t *temps) { // 2 (pred - target) / n
	pred, target := out.in(0), out.in(1)
	g := t.keep(tensor.Mul(out.fn.saved[0], out.Grad))
	g.ScaleInPlace(2 / float32(g.Len()))
	pred.addGrad(g, t)
	if target.requiresGrad {
		target.addGrad(t.keep(tensor.Neg(g)), t)
	}
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
	out := begin("dropout", dropoutBackward, a)
	dev := a.Value.Device()
	mask := out.newSaved(0, a.Value, a.Value.Shape()...)
	if err := dev.DropoutMask(mask.Buffer(), mask.Len(), p, seed); err != nil {
		panic(&tensor.Error{Op: "dropout", Err: err})
	}
	return out.set(tensor.Mul(a.Value, mask))
}

func dropoutBackward(out *Var, t *temps) {
	out.in(0).addGrad(t.keep(tensor.Mul(out.Grad, out.fn.saved[0])), t)
}
