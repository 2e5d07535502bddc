//go:build mpi

package dist_test

import (
	"errors"
	"math"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// TestMPIDataParallelMatchesOneProcess: 2 ranks with batch 64 each for 50
// steps end with the weights of 1 process with batch 128 (to float
// tolerance: only the order of the additions differs), and the two ranks'
// weights are bit-identical. The ranks start from different
// initialisations: DataParallel must broadcast rank 0's.
func TestMPIDataParallelMatchesOneProcess(t *testing.T) {
	c := ranks(t)
	if c == nil {
		return
	}
	const in, out, perRank, steps = 40, 10, 64, 50
	n := perRank * c.Size() * steps
	x, y := synthetic(n, in, out, 3)
	for _, tc := range []struct {
		name string
		cfg  dist.DataParallelConfig
		want int // buckets
	}{
		{"default buckets", dist.DataParallelConfig{}, 1},
		{"small buckets", dist.DataParallelConfig{BucketBytes: 4000, FirstBucketBytes: 1000}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := device.NewCPU(1)
			hidden := []int{33, 17}
			dp, err := newTrainer(dev, uint64(1+c.Rank()), hidden, x, y, in, out)
			must(t, err)
			dp.dp, err = dist.NewDataParallel(c, nn.Vars(dp.model.Parameters()), tc.cfg)
			must(t, err)
			defer dp.dp.Close()
			ref, err := newTrainer(dev, 1, hidden, x, y, in, out)
			must(t, err)

			sampler, err := dist.NewSampler(n, c.Rank(), c.Size(), dist.SamplerConfig{Shuffle: true, Seed: 5})
			must(t, err)
			whole, err := dist.NewSampler(n, 0, 1, dist.SamplerConfig{Shuffle: true, Seed: 5})
			must(t, err)
			mine, all := sampler.Batches(0, perRank), whole.Batches(0, perRank*c.Size())
			if len(mine) != steps || len(all) != steps {
				t.Fatalf("%d and %d batches, want %d", len(mine), len(all), steps)
			}
			for k := range steps {
				_, err := dp.step(mine[k])
				must(t, err)
				if _, err := ref.step(all[k]); err != nil {
					t.Fatal(err)
				}
			}
			if got := dp.dp.Stats().Buckets; got != tc.want {
				t.Errorf("%d buckets, want %d (%v)", got, tc.want, dp.dp.Buckets())
			}
			w := dp.weights()
			diff, err := maxDiff(w, ref.weights())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("rank %d: largest relative difference to one process with batch 128: %.3g", c.Rank(), diff)
			if diff > 1e-5 || math.IsNaN(diff) {
				t.Errorf("rank %d: weights differ from one process with batch 128 by %.3g (> 1e-5)", c.Rank(), diff)
			}
			// Bit-identical across ranks: every rank receives rank 1's
			// weights and compares them with its own, bit for bit.
			var theirs []*tensor.Tensor
			for _, v := range w {
				theirs = append(theirs, tensor.FromSlice(dev, v))
			}
			must(t, c.Broadcast(1, theirs...))
			bad := 0
			for k, v := range w {
				for i, b := range theirs[k].Data() {
					if math.Float32bits(b) != math.Float32bits(v[i]) {
						bad++
					}
				}
			}
			flag := tensor.FromSlice(dev, []float32{float32(bad)})
			must(t, c.AllReduce(dist.Sum, flag))
			if got := flag.Item(); got != 0 {
				t.Errorf("the ranks' weights differ in %v values", got)
			}
		})
	}
}

// TestMPIModelMismatch: ranks whose models differ in parameter count or in
// shapes both get an error naming the rank that differs, and the
// communicator stays usable.
func TestMPIModelMismatch(t *testing.T) {
	c := ranks(t)
	if c == nil {
		return
	}
	dev := device.NewCPU(1)
	for _, tc := range []struct {
		name   string
		hidden [2][]int // rank 0's and rank 1's
		want   string
	}{
		{"count", [2][]int{{8, 8}, {8}}, "rank 0 has 6 parameters (250 values), rank 1 has 4 (178 values)"},
		// 10*8+8 + 8*6+6 + 6*10+10 = 212 values against 10*6+6 + 6*8+8 + 8*10+10 = 212.
		{"shapes", [2][]int{{8, 6}, {6, 8}}, "the shapes of rank 1's 6 parameters differ from rank 0's"},
	} {
		m, err := nn.NewMLP(dev, nn.MLPConfig{In: 10, Hidden: tc.hidden[c.Rank()], Out: 10, Seed: 1})
		must(t, err)
		_, err = dist.NewDataParallel(c, nn.Vars(m.Parameters()), dist.DataParallelConfig{})
		if !errors.Is(err, dist.ErrModelMismatch) {
			t.Errorf("%s: got %v, want ErrModelMismatch", tc.name, err)
		} else if !contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\ndoes not say %q", tc.name, err, tc.want)
		}
	}
	must(t, c.Barrier())
}
