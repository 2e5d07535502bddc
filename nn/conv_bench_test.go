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

// convBenchShapes are the convolutions of the cnn model at batch 128, all
// 3x3 with padding 1. The first layer's input is the data, which needs no
// gradient.
var convBenchShapes = []struct{ in, out, hw int }{{1, 32, 28}, {32, 32, 28}, {32, 64, 14}, {64, 64, 14}}

// BenchmarkConv2d times one Conv2d forward and backward (the weight and
// bias gradients, and the input's but for the first layer) at each of
// the cnn model's shapes, and reports GFLOP/s: 2·N·O·L·C·9 per product,
// three products (two for the first layer).
func BenchmarkConv2d(b *testing.B) {
	const batch = 128
	for _, s := range convBenchShapes {
		b.Run(fmt.Sprintf("%dto%d_%dx%d", s.in, s.out, s.hw, s.hw), func(b *testing.B) {
			dev := device.NewCPU(0)
			r := rand.New(rand.NewPCG(1, 2))
			conv := nn.NewConv2d(dev, s.in, s.out, 3, nn.ConvOptions{Padding: 1}, r)
			tp := autograd.NewTape()
			inGrad := s.in > 1
			x := tp.Var(tensor.FromSlice(dev, testutil.RandSlice(r, batch*s.in*s.hw*s.hw, -1, 1), batch, s.in, s.hw, s.hw), inGrad)
			step := func() {
				if err := autograd.SumAll(conv.Forward(x)).Backward(); err != nil {
					b.Fatal(err)
				}
				nn.ZeroGrad(conv)
				x.ZeroGrad()
			}
			step()
			b.ResetTimer()
			for range b.N {
				step()
			}
			products := 3.0
			if !inGrad {
				products = 2
			}
			flop := products * 2 * batch * float64(s.out*s.hw*s.hw*s.in*9)
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
