package device_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// benchBufs allocates buffers of the given lengths on d, filled with random
// values, and frees them when the benchmark ends.
func benchBufs(b *testing.B, d device.Device, lens ...int) []device.Buffer {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	bufs := make([]device.Buffer, len(lens))
	for i, n := range lens {
		bufs[i] = testutil.Upload(b, d, testutil.RandSlice(r, n, -1, 1))
		buf := bufs[i]
		b.Cleanup(func() { d.Free(buf) })
	}
	return bufs
}

// BenchmarkMatMul times the three products of an MLP layer of 784 inputs and
// 512 outputs on a batch of 128: the forward pass (NN), the input gradient
// (NT) and the weight gradient (TN, accumulated as gradients are).
func BenchmarkMatMul(b *testing.B) {
	const batch, in, out = 128, 784, 512
	cases := []struct {
		name           string
		m, k, n        int
		transA, transB bool
		acc            bool
	}{
		{"NN forward", batch, in, out, false, false, false},
		{"NT input grad", batch, out, in, false, true, false},
		{"TN weight grad", in, batch, out, true, false, true},
	}
	d := device.NewCPU(0)
	for _, c := range cases {
		b.Run(fmt.Sprintf("%s %dx%dx%d", c.name, c.m, c.k, c.n), func(b *testing.B) {
			bufs := benchBufs(b, d, c.m*c.k, c.k*c.n, c.m*c.n)
			b.ReportAllocs()
			for b.Loop() {
				if err := d.MatMul(bufs[2], bufs[0], bufs[1], c.m, c.k, c.n, c.transA, c.transB, c.acc); err != nil {
					b.Fatal(err)
				}
			}
			flops := 2 * float64(c.m) * float64(c.k) * float64(c.n) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkOps times the other operations of an MLP training step at the
// same layer size.
func BenchmarkOps(b *testing.B) {
	const batch, in, out, classes = 128, 784, 512, 10
	d, d1 := device.NewCPU(0), device.NewCPU(1)
	bias := device.Walk{Shape: [device.MaxDims]int{1, 1, 1, 1, batch, out}, A: [device.MaxDims]int{0, 0, 0, 0, out, 1}, B: [device.MaxDims]int{0, 0, 0, 0, 0, 1}}
	cases := []struct {
		name string
		lens []int
		run  func(bufs []device.Buffer) error
	}{
		{"binary add bias row 128x512", []int{batch * out, batch * out, out}, func(bf []device.Buffer) error {
			return d.Binary(device.Add, bf[0], bf[1], bf[2], bias, 0, 0)
		}},
		{"binary relu_grad 128x512", []int{batch * out, batch * out, batch * out}, func(bf []device.Buffer) error {
			return d.Binary(device.ReluGrad, bf[0], bf[1], bf[2], device.Contiguous(batch*out), 0, 0)
		}},
		{"bias_act relu 128x512", []int{batch * out, batch * out, out}, func(bf []device.Buffer) error {
			return d.BiasAct(bf[0], bf[1], bf[2], batch, out, device.ActRelu)
		}},
		{"reduce sum columns 128x512", []int{out, batch * out}, func(bf []device.Buffer) error {
			return d.Reduce(device.Sum, bf[0], bf[1], 1, batch, out)
		}},
		{"softmax_ce 128x10", []int{batch, batch * classes, batch * classes, batch}, func(bf []device.Buffer) error {
			if err := d.Fill(bf[3], batch, 3); err != nil {
				return err
			}
			return d.SoftmaxCrossEntropy(bf[0], bf[1], bf[2], bf[3], batch, classes, 1.0/batch)
		}},
		{"sgd momentum 784x512", []int{in * out, in * out, in * out}, func(bf []device.Buffer) error {
			return d.SGDStep(bf[0], bf[1], bf[2], in*out, device.SGDParams{LR: 1e-3, Momentum: 0.9})
		}},
		{"sgd momentum 784x512 one thread", []int{in * out, in * out, in * out}, func(bf []device.Buffer) error {
			return d1.SGDStep(bf[0], bf[1], bf[2], in*out, device.SGDParams{LR: 1e-3, Momentum: 0.9})
		}},
		{"bias_act_grad relu 128x512", []int{batch * out, out, batch * out, batch * out}, func(bf []device.Buffer) error {
			return d.BiasActGrad(bf[0], bf[1], bf[2], bf[3], batch, out, device.ActRelu, true)
		}},
		{"adam 784x512", []int{in * out, in * out, in * out, in * out}, func(bf []device.Buffer) error {
			return d.AdamStep(bf[0], bf[1], bf[2], bf[3], nil, in*out, device.AdamParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1})
		}},
		{"transpose copy 784x512", []int{in * out, in * out}, func(bf []device.Buffer) error {
			w := device.Walk{Shape: [device.MaxDims]int{1, 1, 1, 1, out, in}, A: [device.MaxDims]int{0, 0, 0, 0, 1, out}}
			return d.Copy(bf[0], bf[1], w)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			bufs := benchBufs(b, d, c.lens...)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.run(bufs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
