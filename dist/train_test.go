package dist_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/tensor"
)

// synthetic returns n random inputs of in features and labels in [0, out).
func synthetic(n, in, out int, seed uint64) (x, y []float32) {
	r := rand.New(rand.NewPCG(seed, 7))
	x, y = make([]float32, n*in), make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for i := range y {
		y[i] = float32(r.IntN(out))
	}
	return x, y
}

// trainer trains an MLP on synthetic data with SGD, through a
// DataParallel when dp is set.
type trainer struct {
	dev   device.Device
	model *nn.Sequential
	opt   *optim.SGD
	tape  *autograd.Tape
	dp    *dist.DataParallel
	in    int
	x, y  []float32
}

func newTrainer(dev device.Device, seed uint64, hidden []int, x, y []float32, in, out int) (*trainer, error) {
	m, err := nn.NewMLP(dev, nn.MLPConfig{In: in, Hidden: hidden, Out: out, Seed: seed})
	if err != nil {
		return nil, err
	}
	opt, err := optim.NewSGD(nn.Vars(m.Parameters()), optim.SGDConfig{LR: 0.05, Momentum: 0.9})
	if err != nil {
		return nil, err
	}
	return &trainer{dev: dev, model: m, opt: opt, tape: autograd.NewTape(), in: in, x: x, y: y}, nil
}

// step trains on the samples idx and returns the loss.
func (tr *trainer) step(idx []int) (float32, error) {
	xb, yb := make([]float32, len(idx)*tr.in), make([]float32, len(idx))
	for i, j := range idx {
		copy(xb[i*tr.in:(i+1)*tr.in], tr.x[j*tr.in:(j+1)*tr.in])
		yb[i] = tr.y[j]
	}
	xt, yt := tensor.FromSlice(tr.dev, xb, len(idx), tr.in), tensor.FromSlice(tr.dev, yb, len(idx))
	defer xt.Free()
	defer yt.Free()
	loss := nn.CrossEntropyLoss(tr.model.Forward(tr.tape.Var(xt, false)), yt)
	if err := loss.Backward(); err != nil {
		return 0, err
	}
	l := loss.Item()
	loss.Value.Free()
	if tr.dp != nil {
		if err := tr.dp.Wait(); err != nil {
			return 0, err
		}
	}
	if err := tr.opt.Step(); err != nil {
		return 0, err
	}
	nn.ZeroGrad(tr.model)
	return l, nil
}

// weights returns the model's parameters as host slices.
func (tr *trainer) weights() [][]float32 {
	var w [][]float32
	for _, p := range tr.model.Parameters() {
		w = append(w, p.Value.Data())
	}
	return w
}

// maxDiff returns the largest |a-b| / max(1, |b|) over the weights.
func maxDiff(a, b [][]float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("%d tensors against %d", len(a), len(b))
	}
	worst := 0.0
	for k := range a {
		if len(a[k]) != len(b[k]) {
			return 0, fmt.Errorf("tensor %d: %d values against %d", k, len(a[k]), len(b[k]))
		}
		for i := range a[k] {
			d := float64(a[k][i]) - float64(b[k][i])
			if d < 0 {
				d = -d
			}
			s := max(1, float64(b[k][i]), -float64(b[k][i]))
			worst = max(worst, d/s)
		}
	}
	return worst, nil
}
