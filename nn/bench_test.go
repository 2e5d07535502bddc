package nn_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/tensor"
)

// benchStep returns one training step of the 784-512-256-10 MLP on a batch
// of 128 on dev: forward, cross-entropy, backward, an SGD step with
// momentum and ZeroGrad.
func benchStep(b *testing.B, dev device.Device) func() {
	const batch = 128
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
	tp := autograd.NewTape() // each Backward ends a pass; the device pool reuses its buffers
	x := tp.Var(tensor.FromSlice(dev, testutil.RandSlice(r, batch*784, 0, 1), batch, 784), false)
	y := tensor.FromSlice(dev, labels, batch)
	return func() {
		loss := nn.CrossEntropyLoss(m.Forward(x), y)
		if err := loss.Backward(); err != nil {
			b.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			b.Fatal(err)
		}
		nn.ZeroGrad(m)
	}
}

// BenchmarkTrainStepMLP times one training step of the 784-512-256-10 MLP
// on a batch of 128 on the CPU: forward, cross-entropy, backward, an SGD
// step with momentum and ZeroGrad.
func BenchmarkTrainStepMLP(b *testing.B) {
	step := benchStep(b, device.NewCPU(0))
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.N)*128/b.Elapsed().Seconds(), "samples/s")
}

// timedCPU is a CPU that adds the time of its matrix products, fused
// kernels and optimizer steps to spent.
type timedCPU struct {
	*device.CPU
	spent *[numParts]time.Duration
}

// The parts of a training step that BenchmarkTrainStepParts reports.
const (
	partMatMul = iota
	partBiasAct
	partBiasActGrad
	partLoss
	partSGD
	numParts
)

var partNames = [numParts]string{"matmul-us", "bias_act-us", "bias_act_grad-us", "softmax_ce-us", "sgd-us"}

func (c timedCPU) add(part int, t0 time.Time) { c.spent[part] += time.Since(t0) }

func (c timedCPU) MatMul(dst, a, b device.Buffer, m, k, n int, ta, tb, acc bool) error {
	defer c.add(partMatMul, time.Now())
	return c.CPU.MatMul(dst, a, b, m, k, n, ta, tb, acc)
}

func (c timedCPU) BiasAct(dst, x, bias device.Buffer, rows, n int, act device.Activation) error {
	defer c.add(partBiasAct, time.Now())
	return c.CPU.BiasAct(dst, x, bias, rows, n, act)
}

func (c timedCPU) BiasActGrad(dx, db, y, g device.Buffer, rows, n int, act device.Activation, acc bool) error {
	defer c.add(partBiasActGrad, time.Now())
	return c.CPU.BiasActGrad(dx, db, y, g, rows, n, act, acc)
}

func (c timedCPU) SoftmaxCrossEntropy(loss, grad, logits, labels device.Buffer, rows, n int, scale float32) error {
	defer c.add(partLoss, time.Now())
	return c.CPU.SoftmaxCrossEntropy(loss, grad, logits, labels, rows, n, scale)
}

func (c timedCPU) SGDStepMulti(ps, gs, bufs []device.Buffer, ns []int, hp device.SGDParams) error {
	defer c.add(partSGD, time.Now())
	return c.CPU.SGDStepMulti(ps, gs, bufs, ns, hp)
}

// BenchmarkTrainStepParts is BenchmarkTrainStepMLP reporting where the
// time of a step goes: microseconds per step in the matrix products, the
// fused bias + activation and its backward, the loss and the SGD update;
// "other-us" is the rest (autograd, the small elementwise operations).
func BenchmarkTrainStepParts(b *testing.B) {
	var spent [numParts]time.Duration
	step := benchStep(b, timedCPU{device.NewCPU(0), &spent})
	step()
	spent = [numParts]time.Duration{}
	for b.Loop() {
		step()
	}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	rest := b.Elapsed()
	for i, d := range spent {
		b.ReportMetric(us(d), partNames[i])
		rest -= d
	}
	b.ReportMetric(us(rest), "other-us")
}
