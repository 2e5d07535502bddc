package nn_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// BenchmarkBatchNorm2d times a training pass through a BatchNorm2d layer
// at the cnn model's shapes, as a model runs it: the forward pass on a
// tape, a mean as the loss, and Backward to the input, the weight and the
// bias. (device's BenchmarkBatchNorm times the kernels alone.)
// BenchmarkBatchNorm2dRelu times the pair that follows a convolution in
// the cnn model.
func BenchmarkBatchNorm2d(b *testing.B) {
	d := device.NewCPU(0)
	for _, s := range []struct{ c, hw int }{{32, 28}, {64, 14}} {
		m := nn.NewBatchNorm2d(d, s.c)
		n := 128 * s.c * s.hw * s.hw
		x := tensor.FromSlice(d, testutil.RandSlice(rand.New(rand.NewPCG(1, 2)), n, -1, 1), 128, s.c, s.hw, s.hw)
		tape := autograd.NewTape()
		xv := tape.Var(x, true)
		b.Run(fmt.Sprintf("128x%dx%dx%d", s.c, s.hw, s.hw), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := autograd.MeanAll(m.Forward(xv)).Backward(); err != nil {
					b.Fatal(err)
				}
				nn.ZeroGrad(m)
				xv.ZeroGrad()
			}
		})
		tape.Free()
	}
}

// BenchmarkBatchNorm2dRelu times a training pass through a BatchNorm2d
// followed by a ReLU at the cnn model's shapes, as two modules and with the
// ReLU fused into the batch norm.
func BenchmarkBatchNorm2dRelu(b *testing.B) {
	d := device.NewCPU(0)
	for _, s := range []struct{ c, hw int }{{32, 28}, {64, 14}} {
		n := 128 * s.c * s.hw * s.hw
		x := tensor.FromSlice(d, testutil.RandSlice(rand.New(rand.NewPCG(1, 2)), n, -1, 1), 128, s.c, s.hw, s.hw)
		tape := autograd.NewTape()
		xv := tape.Var(x, true)
		for _, fused := range []bool{false, true} {
			bn := nn.NewBatchNorm2d(d, s.c)
			m := nn.NewSequential(bn, nn.ReLU{})
			name := "unfused"
			if fused {
				m, name = nn.NewSequential(bn.WithActivation(device.ActRelu)), "fused"
			}
			b.Run(fmt.Sprintf("128x%dx%dx%d/%s", s.c, s.hw, s.hw, name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := autograd.MeanAll(m.Forward(xv)).Backward(); err != nil {
						b.Fatal(err)
					}
					nn.ZeroGrad(m)
					xv.ZeroGrad()
				}
			})
		}
		tape.Free()
	}
}
