package dist_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

func TestOpen(t *testing.T) {
	c, err := dist.Open("none")
	if err != nil || c.Size() != 1 || c.Rank() != 0 || c.Backend() != "none" {
		t.Fatalf("Open(none) = %v, %v", c, err)
	}
	if _, err := dist.Open("gloo"); err == nil || !strings.Contains(err.Error(), `unknown backend "gloo"`) {
		t.Errorf("Open(gloo): %v", err)
	}
	if _, err := dist.OpenConfig(dist.Config{Backend: "none", Timeout: -1}); err == nil {
		t.Errorf("a negative timeout was accepted")
	}
	if !dist.MPIBuilt {
		if _, err := dist.Open("mpi"); !errors.Is(err, dist.ErrNoMPI) || !strings.Contains(err.Error(), "rebuild with -tags mpi") {
			t.Errorf("Open(mpi) without the mpi tag: %v", err)
		}
		if _, err := dist.Open("nccl"); !errors.Is(err, dist.ErrNoNCCL) || !strings.Contains(err.Error(), "-tags 'cuda mpi'") {
			t.Errorf("Open(nccl) without the cuda and mpi tags: %v", err)
		}
	}
}

// TestSingle: every collective of a job of one rank is the identity, and
// bad arguments are still refused.
func TestSingle(t *testing.T) {
	d := device.NewCPU(1)
	c := dist.Single()
	x := tensor.FromSlice(d, []float32{1, 2, 3})
	for _, op := range []dist.Op{dist.Sum, dist.Mean} {
		if err := c.AllReduce(op, x); err != nil {
			t.Fatal(err)
		}
		r, err := c.StartAllReduce(op, x)
		if err != nil || r.Wait() != nil {
			t.Fatal(err)
		}
	}
	if err := c.Broadcast(0, x); err != nil {
		t.Fatal(err)
	}
	if got := x.Data(); !slices.Equal(got, []float32{1, 2, 3}) {
		t.Errorf("the identity changed the values: %v", got)
	}
	var de *dist.Error
	if err := c.Broadcast(1, x); !errors.As(err, &de) {
		t.Errorf("Broadcast from root 1 of 1 rank: %v", err)
	}
	if err := c.AllReduce(dist.Sum, x, x); err == nil || !strings.Contains(err.Error(), "shares its buffer") {
		t.Errorf("a tensor given twice: %v", err)
	}
	y := tensor.FromSlice(d, []float32{1})
	y.Free()
	if err := c.AllReduce(dist.Sum, y); err == nil {
		t.Errorf("a freed tensor was accepted")
	}
	if err := c.AllReduce(dist.Sum, nil); err == nil {
		t.Errorf("a nil tensor was accepted")
	}
}

func TestErrorNamesRanks(t *testing.T) {
	e := &dist.Error{Backend: "mpi", Rank: 2, Op: "all-reduce #7 (2.1 MB)", Failed: []int{3},
		Err: fmt.Errorf("%w after 1s: rank 3 (its last was #6) never started it", dist.ErrTimeout)}
	want := "dist: mpi: rank 2: all-reduce #7 (2.1 MB): timed out after 1s: rank 3 (its last was #6) never started it"
	if e.Error() != want || !errors.Is(e, dist.ErrTimeout) {
		t.Errorf("%q\nwant %q", e.Error(), want)
	}
}

// TestSampler: the shards of an epoch are disjoint, equally long, cover the
// permutation of data.NewBatches (padded or cut to a multiple of the
// ranks), and batch k of the ranks together is batch k of one process with
// size times the batch.
func TestSampler(t *testing.T) {
	for _, tc := range []struct {
		n, size  int
		dropLast bool
	}{{100, 2, false}, {101, 2, false}, {101, 2, true}, {103, 4, false}, {103, 4, true}, {7, 1, false}} {
		name := fmt.Sprintf("n=%d size=%d dropLast=%v", tc.n, tc.size, tc.dropLast)
		cfg := dist.SamplerConfig{Shuffle: true, Seed: 9, DropLast: tc.dropLast}
		whole, _ := data.NewBatches(tc.n, tc.n, true, 9, false)
		for e := range 3 {
			perm := whole.Epoch(e)[0]
			count := map[int]int{}
			var shards [][]int
			for r := range tc.size {
				s, err := dist.NewSampler(tc.n, r, tc.size, cfg)
				if err != nil {
					t.Fatal(err)
				}
				sh := s.Epoch(e)
				if len(sh) != s.Len() {
					t.Fatalf("%s: shard of %d, Len %d", name, len(sh), s.Len())
				}
				for i, j := range sh {
					if want := perm[(r+i*tc.size)%tc.n]; j != want {
						t.Fatalf("%s: rank %d [%d] = %d, want %d", name, r, i, j, want)
					}
					count[j]++
				}
				shards = append(shards, sh)
			}
			total := len(shards[0]) * tc.size
			if tc.dropLast && total > tc.n || !tc.dropLast && (total < tc.n || total-tc.n >= tc.size) {
				t.Fatalf("%s: shards of %d for %d indices", name, len(shards[0]), tc.n)
			}
			repeats := 0
			for _, k := range count {
				repeats += k - 1
			}
			if want := max(total-tc.n, 0); repeats != want {
				t.Errorf("%s: %d indices repeated, want %d (padding)", name, repeats, want)
			}
			// Batches of 5 per rank against batches of 5*size of one process.
			one, _ := dist.NewSampler(tc.n, 0, 1, cfg)
			big := one.Batches(e, 5*tc.size)
			for r := range tc.size {
				s, _ := dist.NewSampler(tc.n, r, tc.size, cfg)
				for k, b := range s.Batches(e, 5) {
					if k >= len(big) {
						break // the padded tail has no counterpart
					}
					for _, j := range b {
						if !slices.Contains(big[k], j) {
							t.Fatalf("%s: rank %d batch %d holds %d, not in the global batch %v", name, r, k, j, big[k])
						}
					}
				}
			}
		}
	}
	if _, err := dist.NewSampler(10, 2, 2, dist.SamplerConfig{}); err == nil {
		t.Errorf("rank 2 of 2 was accepted")
	}
	if _, err := dist.NewSampler(1, 0, 2, dist.SamplerConfig{DropLast: true}); err == nil {
		t.Errorf("1 index for 2 ranks without padding was accepted")
	}
}

// TestDataParallelOneRank: with one rank, DataParallel leaves the training
// of a single process unchanged, bit for bit, and rebuilds its buckets in
// the order the gradients became ready.
func TestDataParallelOneRank(t *testing.T) {
	const in, out, batch, steps = 12, 4, 16, 20
	x, y := synthetic(batch*steps, in, out, 2)
	dev := device.NewCPU(1)
	a, err := newTrainer(dev, 1, []int{9, 7}, x, y, in, out)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newTrainer(dev, 1, []int{9, 7}, x, y, in, out)
	a.dp, err = dist.NewDataParallel(dist.Single(), nn.Vars(a.model.Parameters()),
		dist.DataParallelConfig{BucketBytes: 300, FirstBucketBytes: 128})
	if err != nil {
		t.Fatal(err)
	}
	// Parameters 0..5: w1 [9,12], b1, w2 [7,9], b2, w3 [4,7], b3.
	if got, want := a.dp.Buckets(), [][]int{{5, 4}, {3, 2}, {1}, {0}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("initial buckets %v, want %v", got, want)
	}
	s, _ := dist.NewSampler(len(y), 0, 1, dist.SamplerConfig{Shuffle: true, Seed: 1})
	for _, idx := range s.Batches(0, batch) {
		if _, err := a.step(idx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.step(idx); err != nil {
			t.Fatal(err)
		}
	}
	// Backward completes each layer's weight, then its bias.
	if got, want := a.dp.Buckets(), [][]int{{4, 5}, {2, 3}, {0}, {1}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("rebuilt buckets %v, want %v", got, want)
	}
	if st := a.dp.Stats(); st.Passes != steps || st.Values != 9*12+9+7*9+7+4*7+4 {
		t.Errorf("stats %+v", st)
	}
	wa, wb := a.weights(), b.weights()
	for k := range wa {
		if !slices.Equal(wa[k], wb[k]) {
			t.Fatalf("parameter %d differs from training without DataParallel", k)
		}
	}
	// Two Backward calls before a Wait are refused, then training goes on.
	xt := tensor.FromSlice(dev, x[:batch*in], batch, in)
	yt := tensor.FromSlice(dev, y[:batch], batch)
	for range 2 {
		loss := nn.CrossEntropyLoss(a.model.Forward(a.tape.Var(xt, false)), yt)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.dp.Wait(); err == nil || !strings.Contains(err.Error(), "ready twice") {
		t.Errorf("two Backward calls per Wait: %v", err)
	}
	nn.ZeroGrad(a.model)
	if _, err := a.step(s.Batches(0, batch)[0]); err != nil {
		t.Errorf("after a refused pass: %v", err)
	}
	a.dp.Close()
}

func TestDataParallelChecksParameters(t *testing.T) {
	dev := device.NewCPU(1)
	m, _ := nn.NewMLP(dev, nn.MLPConfig{In: 3, Hidden: []int{2}, Out: 2})
	ps := nn.Vars(m.Parameters())
	for name, bad := range map[string]func() error{
		"none": func() error {
			_, err := dist.NewDataParallel(dist.Single(), nil, dist.DataParallelConfig{})
			return err
		},
		"twice": func() error {
			_, err := dist.NewDataParallel(dist.Single(), append(ps, ps[0]), dist.DataParallelConfig{})
			return err
		},
		"negative": func() error {
			_, err := dist.NewDataParallel(dist.Single(), ps, dist.DataParallelConfig{BucketBytes: -1})
			return err
		},
	} {
		if err := bad(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
