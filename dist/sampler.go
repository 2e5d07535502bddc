package dist

import (
	"fmt"

	"github.com/gograd/gograd/data"
)

// SamplerConfig configures a Sampler.
type SamplerConfig struct {
	// Shuffle permutes the indices anew every epoch, with Seed; the
	// permutation is the one data.NewBatches(n, ., true, Seed, .) uses, so
	// a job of one rank sees the batches of a single-process run.
	Shuffle bool
	Seed    uint64
	// DropLast drops the n % size indices left over at the end of the
	// permutation, so that every shard is a distinct part of it. Without
	// it, as PyTorch's DistributedSampler does, the permutation is padded
	// with its own first indices up to a multiple of size.
	DropLast bool
}

// Sampler gives each rank its shard of every epoch's permutation of the
// indices 0..n-1: the same permutation on every rank, cut into disjoint,
// equally long shards, rank r taking the positions r, r+size, r+2*size...
// Batch k of every rank thus holds the indices that batch k of a
// single-process run with size times the batch would hold.
type Sampler struct {
	n, rank, size int
	cfg           SamplerConfig
	perm          *data.Batches
}

// NewSampler returns the sampler of rank out of size over n indices.
func NewSampler(n, rank, size int, cfg SamplerConfig) (*Sampler, error) {
	if size < 1 || rank < 0 || rank >= size {
		return nil, fmt.Errorf("dist: sampler: rank %d out of range for %d ranks", rank, size)
	}
	if n < size && (cfg.DropLast || n == 0) {
		return nil, fmt.Errorf("dist: sampler: %d indices cannot give each of %d ranks one", n, size)
	}
	perm, err := data.NewBatches(n, max(n, 1), cfg.Shuffle, cfg.Seed, false)
	if err != nil {
		return nil, fmt.Errorf("dist: sampler: %w", err)
	}
	return &Sampler{n: n, rank: rank, size: size, cfg: cfg, perm: perm}, nil
}

// Len is the number of indices in each rank's shard of an epoch.
func (s *Sampler) Len() int {
	if s.cfg.DropLast {
		return s.n / s.size
	}
	return (s.n + s.size - 1) / s.size
}

// Epoch returns this rank's shard of epoch e >= 0.
func (s *Sampler) Epoch(e int) []int {
	if e < 0 {
		panic(fmt.Sprintf("dist: Sampler.Epoch(%d): negative epoch", e))
	}
	order := s.perm.Epoch(e)[0]
	out := make([]int, s.Len())
	for i := range out {
		out[i] = order[(s.rank+i*s.size)%len(order)] // the padding wraps around
	}
	return out
}

// Batches cuts this rank's shard of epoch e into batches of batch indices.
// The last, partial batch is dropped, as gograd train does: every rank then
// runs the same number of steps (a rank with one step more would wait for
// the others in its all-reduce until the timeout).
func (s *Sampler) Batches(e, batch int) [][]int {
	if batch < 1 {
		panic(fmt.Sprintf("dist: Sampler.Batches: batch %d < 1", batch))
	}
	shard := s.Epoch(e)
	out := make([][]int, len(shard)/batch)
	for i := range out {
		out[i] = shard[i*batch : (i+1)*batch : (i+1)*batch]
	}
	return out
}
