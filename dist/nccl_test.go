//go:build cuda && mpi

package dist_test

import (
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// TestNCCLOneRank runs the NCCL backend as a job of one rank on GPU 0 (a
// 2-rank test needs two GPUs: NCCL refuses two ranks on one): its
// collectives are the identity at odd sizes, and DataParallel trains on the
// GPU exactly as without it, to the GPU's rounding. It needs a GPU and
// libnccl.so.2.
func TestNCCLOneRank(t *testing.T) {
	if underMPIRun() {
		t.Skip("opens its own one-rank job: run the test binary directly")
	}
	c, err := dist.Open("nccl")
	if err != nil {
		t.Fatalf("%v (this test needs an NVIDIA GPU and NCCL 2)", err)
	}
	defer c.Close()
	if c.Size() != 1 || c.Backend() != "nccl" {
		t.Fatalf("size %d, backend %s", c.Size(), c.Backend())
	}
	dev, err := device.NewCUDA(c.LocalRank())
	if err != nil {
		t.Fatal(err)
	}
	var ts []*tensor.Tensor
	var want [][]float32
	for k, n := range []int{1, 3, 1001, 100003} {
		v := make([]float32, n)
		for i := range v {
			v[i] = value(0, i, k)
		}
		ts, want = append(ts, tensor.FromSlice(dev, v)), append(want, v)
	}
	for _, op := range []dist.Op{dist.Sum, dist.Mean} {
		if err := c.AllReduce(op, ts...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Broadcast(0, ts...); err != nil {
		t.Fatal(err)
	}
	for k, x := range ts {
		for i, got := range x.Data() {
			if got != want[k][i] {
				t.Fatalf("tensor %d [%d] = %v after the collectives of one rank, want %v", k, i, got, want[k][i])
			}
		}
	}
	const in, out, batch = 30, 10, 32
	xs, ys := synthetic(batch*20, in, out, 4)
	a, err := newTrainer(dev, 1, []int{40}, xs, ys, in, out)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newTrainer(dev, 1, []int{40}, xs, ys, in, out)
	if a.dp, err = dist.NewDataParallel(c, nn.Vars(a.model.Parameters()), dist.DataParallelConfig{}); err != nil {
		t.Fatal(err)
	}
	s, _ := dist.NewSampler(len(ys), 0, 1, dist.SamplerConfig{Shuffle: true})
	for _, idx := range s.Batches(0, batch) {
		if _, err := a.step(idx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.step(idx); err != nil {
			t.Fatal(err)
		}
	}
	diff, err := maxDiff(a.weights(), b.weights())
	if err != nil || diff != 0 {
		t.Errorf("DataParallel over NCCL with one rank changed the training: %v, largest difference %g", err, diff)
	}
}
