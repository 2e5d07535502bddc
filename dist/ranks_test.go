package dist_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/nn"
)

// TestDataParallelThreeRanks: 3 ranks (goroutines) of batch 16 for 30
// steps end with the weights of one process with batch 48, and with the
// same bits on every rank, whatever their initial seeds.
func TestDataParallelThreeRanks(t *testing.T) {
	const size, in, out, perRank, steps = 3, 20, 6, 16, 30
	n := size * perRank * steps
	x, y := synthetic(n, in, out, 8)
	hidden := []int{13, 11}
	weights := make([][][]float32, size)
	errs := onRanks(size, func(c dist.Communicator) error {
		tr, err := newTrainer(device.NewCPU(1), uint64(10+c.Rank()), hidden, x, y, in, out)
		if err != nil {
			return err
		}
		if tr.dp, err = dist.NewDataParallel(c, nn.Vars(tr.model.Parameters()), dist.DataParallelConfig{BucketBytes: 600, FirstBucketBytes: 300}); err != nil {
			return err
		}
		s, err := dist.NewSampler(n, c.Rank(), size, dist.SamplerConfig{Shuffle: true, Seed: 2})
		if err != nil {
			return err
		}
		for _, b := range s.Batches(0, perRank) {
			if _, err := tr.step(b); err != nil {
				return err
			}
		}
		weights[c.Rank()] = tr.weights()
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	ref, err := newTrainer(device.NewCPU(1), 10, hidden, x, y, in, out)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := dist.NewSampler(n, 0, 1, dist.SamplerConfig{Shuffle: true, Seed: 2})
	for _, b := range s.Batches(0, perRank*size) {
		if _, err := ref.step(b); err != nil {
			t.Fatal(err)
		}
	}
	diff, err := maxDiff(weights[0], ref.weights())
	if err != nil || diff > 1e-5 || math.IsNaN(diff) {
		t.Errorf("weights differ from one process with batch %d by %.3g (%v)", perRank*size, diff, err)
	}
	t.Logf("largest relative difference to one process: %.3g", diff)
	for r := 1; r < size; r++ {
		for k := range weights[0] {
			for i, v := range weights[r][k] {
				if math.Float32bits(v) != math.Float32bits(weights[0][k][i]) {
					t.Fatalf("rank %d's parameter %d differs from rank 0's at %d", r, k, i)
				}
			}
		}
	}
}

// TestDataParallelMismatchThreeRanks: when one rank's model differs, every
// rank gets an error naming it.
func TestDataParallelMismatchThreeRanks(t *testing.T) {
	errs := onRanks(3, func(c dist.Communicator) error {
		hidden := []int{5}
		if c.Rank() == 2 {
			hidden = []int{6}
		}
		m, err := nn.NewMLP(device.NewCPU(1), nn.MLPConfig{In: 4, Hidden: hidden, Out: 3})
		if err != nil {
			return err
		}
		_, err = dist.NewDataParallel(c, nn.Vars(m.Parameters()), dist.DataParallelConfig{})
		return err
	})
	want := fmt.Sprintf("rank 0 has 4 parameters (%d values), rank 2 has 4 (%d values)", 4*5+5+5*3+3, 4*6+6+6*3+3)
	for r, err := range errs {
		if !errors.Is(err, dist.ErrModelMismatch) || !strings.Contains(err.Error(), want) {
			t.Errorf("rank %d: %v, want ErrModelMismatch saying %q", r, err, want)
		}
	}
}

func TestAny(t *testing.T) {
	for _, set := range [][]bool{{false, false, false}, {false, true, false}, {true, true, true}} {
		got := make([]bool, len(set))
		errs := onRanks(len(set), func(c dist.Communicator) error {
			var err error
			got[c.Rank()], err = dist.Any(c, device.NewCPU(1), set[c.Rank()])
			return err
		})
		want := set[0] || set[1] || set[2]
		for r := range set {
			if errs[r] != nil || got[r] != want {
				t.Errorf("flags %v: rank %d got %v (%v), want %v", set, r, got[r], errs[r], want)
			}
		}
	}
	if got, err := dist.Any(dist.Single(), device.NewCPU(1), true); !got || err != nil {
		t.Errorf("one rank: %v, %v", got, err)
	}
}
