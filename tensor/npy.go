package tensor

import (
	"fmt"
	"io"

	"github.com/gograd/gograd/device"
	gt "gorgonia.org/tensor"
)

// WriteNpy writes the tensor to w in NumPy's .npy format.
func (t *Tensor) WriteNpy(w io.Writer) error {
	if err := t.ToDense().WriteNpy(w); err != nil {
		return fmt.Errorf("tensor: write npy: %w", err)
	}
	return nil
}

// ReadNpy reads a float32 .npy file from r into a new tensor on dev.
func ReadNpy(dev device.Device, r io.Reader) (*Tensor, error) {
	d := new(gt.Dense)
	if err := d.ReadNpy(r); err != nil {
		return nil, fmt.Errorf("tensor: read npy: %w", err)
	}
	return FromDense(dev, d)
}
