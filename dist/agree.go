package dist

import (
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// Any reports whether flag is set on any rank. It is a collective (an
// all-reduce of one value on dev), for the decisions every rank must take
// at the same step: stopping on an interrupt that reached the ranks at
// different moments, for one.
func Any(comm Communicator, dev device.Device, flag bool) (bool, error) {
	v := float32(0)
	if flag {
		v = 1
	}
	t := tensor.FromSlice(dev, []float32{v})
	defer t.Free()
	if err := comm.AllReduce(Sum, t); err != nil {
		return false, err
	}
	return t.Item() > 0, nil
}
