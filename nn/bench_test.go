package nn_test

import (
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/tensor"
)

// BenchmarkTrainStepMLP times one training step of the 784-512-256-10 MLP
// on a batch of 128 on the CPU: forward, cross-entropy, backward, an SGD
// step with momentum and ZeroGrad.
func BenchmarkTrainStepMLP(b *testing.B) {
	const batch = 128
	dev := device.NewCPU(0)
	m, err := nn.NewMLP(dev, nn.MLPConfig{In: 784, Hidden: []int{512, 256}, Out: 10, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	opt, err := optim.NewSGD(nn.Vars(m.Parameters()), optim.SGDConfig{LR: 0.01, Momentum: 0.9})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	labels := make([]float32, batch)
	for i := range labels {
		labels[i] = float32(r.IntN(10))
	}
	tp := autograd.NewTape() // released by every Backward, so reused
	x := tp.Var(tensor.FromSlice(dev, testutil.RandSlice(r, batch*784, 0, 1), batch, 784), false)
	y := tensor.FromSlice(dev, labels, batch)
	b.ReportAllocs()
	for b.Loop() {
		loss := nn.CrossEntropyLoss(m.Forward(x), y)
		if err := loss.Backward(); err != nil {
			b.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			b.Fatal(err)
		}
		nn.ZeroGrad(m)
		loss.Value.Free() // Backward keeps the loss value for the caller
	}
	b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "samples/s")
}
