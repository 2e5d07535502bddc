//go:build cuda

package device_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// BenchmarkCUDASgemm times MatMul on the GPU with CUDA events: the square
// 4096 and 1024 products that bench/sgemm.py also times with torch.matmul,
// and the products of an MLP 784-512-256-10 training step on a batch of 128.
// TFLOP/s counts 2mkn flops per product.
func BenchmarkCUDASgemm(b *testing.B) {
	d := cuDevice(b)
	cases := []struct {
		m, k, n        int
		transA, transB bool
		acc            bool
	}{
		{4096, 4096, 4096, false, false, false},
		{1024, 1024, 1024, false, false, false},
		{128, 784, 512, false, false, false}, // layer 1 forward
		{784, 128, 512, true, false, true},   // layer 1 weight gradient
		{128, 512, 256, false, false, false}, // layer 2 forward
		{128, 256, 512, false, true, false},  // layer 2 input gradient
		{512, 128, 256, true, false, true},   // layer 2 weight gradient
		{128, 256, 10, false, false, false},  // layer 3 forward
		{128, 10, 256, false, true, false},   // layer 3 input gradient
		{256, 128, 10, true, false, true},    // layer 3 weight gradient
	}
	for _, c := range cases {
		tr := map[[2]bool]string{{false, false}: "NN", {true, false}: "TN", {false, true}: "NT", {true, true}: "TT"}[[2]bool{c.transA, c.transB}]
		name := fmt.Sprintf("%dx%dx%d_%s", c.m, c.k, c.n, tr)
		b.Run(name, func(b *testing.B) {
			bufs := benchBufs(b, d, c.m*c.k, c.k*c.n, c.m*c.n)
			flops := 2 * float64(c.m) * float64(c.k) * float64(c.n)
			reps := max(1, int(2e9/flops)) // about 2 GFLOP per timed batch
			mm := func() error {
				for range reps {
					if err := d.MatMul(bufs[2], bufs[0], bufs[1], c.m, c.k, c.n, c.transA, c.transB, c.acc); err != nil {
						return err
					}
				}
				return nil
			}
			if _, err := d.Time(mm); err != nil { // warm-up
				b.Fatal(err)
			}
			var gpu time.Duration
			b.ReportAllocs()
			for b.Loop() {
				dt, err := d.Time(mm)
				if err != nil {
					b.Fatal(err)
				}
				gpu += dt
			}
			runs := float64(b.N * reps)
			b.ReportMetric(flops*runs/gpu.Seconds()/1e12, "TFLOP/s")
			b.ReportMetric(gpu.Seconds()*1e6/runs, "gpu-us/op")
			b.Logf("kernel %s %s", name, d.SgemmKernel(c.m, c.k, c.n))
		})
	}
}

// BenchmarkCUDAMLPStep times one SGD training step of the MLP 784-512-256-10
// (ReLU) on a batch of 128, written directly with device operations: the
// batch gathered on the device, three fused linear + activation layers,
// softmax cross-entropy, the backward products and bias sums, the SGD update
// of all six tensors in one multi-tensor launch (as optim.SGD does), and the
// mean loss copied to the host, as the PyTorch protocol does every step. It
// measures what launching costs: about 25 small operations per step.
// samples/s is wall time, synchronised every step.
func BenchmarkCUDAMLPStep(b *testing.B) {
	d := cuDevice(b)
	const batch, data = 128, 60000
	dims := []int{784, 512, 256, 10}
	r := rand.New(rand.NewPCG(3, 4))
	xs := benchBufs(b, d, data*784)[0]
	ys := make([]float32, data)
	for i := range ys {
		ys[i] = float32(r.IntN(10))
	}
	yAll := testutil.Upload(b, d, ys)
	b.Cleanup(func() { d.Free(yAll) })
	var w, bias, gw, gb, mw, mb, act, grad []device.Buffer
	for l := range 3 {
		in, out := dims[l], dims[l+1]
		bufs := benchBufs(b, d, in*out, out, in*out, out, in*out, out, batch*out, batch*out)
		w, bias, gw, gb = append(w, bufs[0]), append(bias, bufs[1]), append(gw, bufs[2]), append(gb, bufs[3])
		mw, mb, act, grad = append(mw, bufs[4]), append(mb, bufs[5]), append(act, bufs[6]), append(grad, bufs[7])
	}
	tmp := benchBufs(b, d, batch*784, batch, batch, batch, 1, batch*512)
	x, y, idx, loss, meanLoss, dh := tmp[0], tmp[1], tmp[2], tmp[3], tmp[4], tmp[5]
	perm := make([]float32, batch)
	hp := device.SGDParams{LR: 0.05, Momentum: 0.9}
	var params, grads, moms []device.Buffer
	var sizes []int
	for l := range 3 {
		params, grads, moms = append(params, w[l], bias[l]), append(grads, gw[l], gb[l]), append(moms, mw[l], mb[l])
		sizes = append(sizes, dims[l]*dims[l+1], dims[l+1])
	}
	host := make([]float32, 1)
	step := func(s int) error {
		for i := range perm {
			perm[i] = float32((s*batch + i*7919) % data)
		}
		errs := []error{
			d.CopyIn(idx, perm),
			d.Gather(x, xs, idx, batch, 784),
			d.Gather(y, yAll, idx, batch, 1),
		}
		in := x
		for l := range 3 {
			f := device.ActRelu
			if l == 2 {
				f = device.Identity
			}
			errs = append(errs,
				d.MatMul(act[l], in, w[l], batch, dims[l], dims[l+1], false, false, false),
				d.BiasAct(act[l], act[l], bias[l], batch, dims[l+1], f))
			in = act[l]
		}
		errs = append(errs,
			d.SoftmaxCrossEntropy(loss, grad[2], act[2], y, batch, 10, 1.0/batch),
			d.Reduce(device.Mean, meanLoss, loss, 1, batch, 1))
		for l := 2; l >= 0; l-- {
			in := x
			if l > 0 {
				in = act[l-1]
			}
			errs = append(errs,
				d.MatMul(gw[l], in, grad[l], dims[l], batch, dims[l+1], true, false, false),
				d.Reduce(device.Sum, gb[l], grad[l], 1, batch, dims[l+1]))
			if l > 0 {
				errs = append(errs,
					d.MatMul(dh, grad[l], w[l], batch, dims[l+1], dims[l], false, true, false),
					d.Binary(device.ReluGrad, grad[l-1], act[l-1], dh, device.Contiguous(batch*dims[l]), 0, 0))
			}
		}
		hp.First = s == 0
		errs = append(errs, d.SGDStepMulti(params, grads, moms, sizes, hp))
		errs = append(errs, d.CopyOut(host, meanLoss))
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	for s := range 10 { // warm-up: allocator, module, clocks
		if err := step(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	s := 10
	for b.Loop() {
		if err := step(s); err != nil {
			b.Fatal(err)
		}
		s++
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
	b.Logf("loss after %d steps: %v", s, host[0])
}

// BenchmarkCUDASGDSteps times the SGD update (momentum 0.9) of the six
// tensors of the MLP 784-512-256-10, synchronised every step: one SGDStep
// launch per tensor, or one SGDStepMulti launch for all of them.
func BenchmarkCUDASGDSteps(b *testing.B) {
	d := cuDevice(b)
	sizes := []int{784 * 512, 512, 512 * 256, 256, 256 * 10, 10}
	var ps, gs, ms []device.Buffer
	for _, n := range sizes {
		bufs := benchBufs(b, d, n, n, n)
		ps, gs, ms = append(ps, bufs[0]), append(gs, bufs[1]), append(ms, bufs[2])
	}
	hp := device.SGDParams{LR: 1e-6, Momentum: 0.9}
	cases := []struct {
		name string
		step func() error
	}{
		{"per_tensor", func() error {
			for i, n := range sizes {
				if err := d.SGDStep(ps[i], gs[i], ms[i], n, hp); err != nil {
					return err
				}
			}
			return d.Sync()
		}},
		{"multi", func() error {
			if err := d.SGDStepMulti(ps, gs, ms, sizes, hp); err != nil {
				return err
			}
			return d.Sync()
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if err := c.step(); err != nil { // uploads the multi-tensor table
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.step(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
