// Package dense converts between gograd tensors and gorgonia.org/tensor's
// Dense arrays on the host. It is the only part of gograd that depends on
// gorgonia.org/tensor, so that programs which do not need the interop do
// not link it.
package dense

import (
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
	gt "gorgonia.org/tensor"
)

// ToDense copies t into a gorgonia.org/tensor Dense on the host.
func ToDense(t *tensor.Tensor) *gt.Dense {
	shape := t.Shape()
	if len(shape) == 0 {
		return gt.New(gt.FromScalar(t.Item()))
	}
	return gt.New(gt.WithShape(shape...), gt.WithBacking(t.Data()))
}

// FromDense copies a float32 Dense to a new tensor on dev. Views and
// transposed Dense arrays are materialised first; column-major data is
// rejected.
func FromDense(dev device.Device, d *gt.Dense) (*tensor.Tensor, error) {
	if d.Dtype() != gt.Float32 {
		return nil, fmt.Errorf("dense: from dense: dtype %v, want float32", d.Dtype())
	}
	shape := []int(d.Shape().Clone())
	if d.IsScalar() {
		return tensor.Scalar(dev, d.ScalarValue().(float32)), nil
	}
	if d.DataOrder().IsColMajor() {
		return nil, fmt.Errorf("dense: from dense: column-major data is not supported")
	}
	if d.IsMaterializable() {
		d = d.Materialize().(*gt.Dense)
	}
	var out *tensor.Tensor
	err := tensor.Catch(func() { out = tensor.FromSlice(dev, d.Float32s(), shape...) })
	return out, err
}
