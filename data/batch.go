package data

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// splitStream and sampleStream are the PCG streams Split and Sample
// shuffle with; epochs use streams 0, 1, 2, ..., so none share one.
const (
	splitStream  = math.MaxUint64
	sampleStream = math.MaxUint64 - 1
)

// Split shuffles the indices of s with seed and puts round(valFrac*N) of
// them in val and the rest in train. Both keep the original relative order
// of their examples and own their memory. val is nil when it would be empty,
// as it is for valFrac 0, and train is then s itself. Split panics unless
// 0 <= valFrac < 1.
func Split(s *Set, valFrac float64, seed uint64) (train, val *Set) {
	if !(valFrac >= 0 && valFrac < 1) {
		panic(fmt.Sprintf("data: Split: valFrac %v is not in [0, 1)", valFrac))
	}
	nVal := int(math.Round(valFrac * float64(s.N)))
	if nVal == 0 {
		return s, nil
	}
	perm := identity(s.N)
	shuffle(perm, seed, splitStream)
	valIdx, trainIdx := perm[:nVal], perm[nVal:]
	slices.Sort(valIdx)
	slices.Sort(trainIdx)
	return gatherSet(s, trainIdx), gatherSet(s, valIdx)
}

// Sample returns n examples of s drawn without replacement by seed, in the
// order they have in s (all of s if n >= s.N), as a new Set. It is -limit
// for an image folder, whose examples come in class order, where the
// first n would hold only the first classes. It panics if n < 0.
func Sample(s *Set, n int, seed uint64) *Set {
	if n < 0 {
		panic(fmt.Sprintf("data: Sample(%d): negative size", n))
	}
	if n >= s.N {
		return s
	}
	perm := identity(s.N)
	shuffle(perm, seed, sampleStream)
	idx := perm[:n]
	slices.Sort(idx)
	return gatherSet(s, idx)
}

func gatherSet(s *Set, idx []int) *Set {
	d := s.Dim()
	out := &Set{
		Images: make([]float32, len(idx)*d),
		Labels: make([]uint8, len(idx)),
		N:      len(idx), Rows: s.Rows, Cols: s.Cols,
		Channels: s.Channels, Classes: s.Classes,
	}
	for i, j := range idx {
		copy(out.Images[i*d:(i+1)*d], s.Images[j*d:(j+1)*d])
		out.Labels[i] = s.Labels[j]
	}
	return out
}

// Gather copies the examples idx of s into a batch: x receives their pixels,
// len(idx)*s.Dim() values, and y their labels as float32. It allocates
// nothing, and panics if x or y has the wrong length or an index is out of
// range.
func Gather(s *Set, idx []int, x, y []float32) {
	d := s.Dim()
	if len(x) != len(idx)*d || len(y) != len(idx) {
		panic(fmt.Sprintf("data: Gather: %d examples of %d pixels need len(x) = %d and len(y) = %d, have %d and %d",
			len(idx), d, len(idx)*d, len(idx), len(x), len(y)))
	}
	for i, j := range idx {
		copy(x[i*d:(i+1)*d], s.Images[j*d:(j+1)*d])
		y[i] = float32(s.Labels[j])
	}
}

// Batches splits the indices 0..n-1 into mini-batches, epoch by epoch. With
// shuffling, the order of epoch e depends only on the seed and e, so a run
// resumed at epoch e (and batch k, Epoch(e)[k:]) sees the same batches as
// an uninterrupted one.
type Batches struct {
	n, batch int
	shuffle  bool
	seed     uint64
	dropLast bool
}

// NewBatches returns batches of batch indices out of n, shuffled per epoch
// with seed if shuffle is set. The last batch of an epoch holds the n%batch
// left-over indices, or is dropped if dropLast is set.
func NewBatches(n, batch int, shuffle bool, seed uint64, dropLast bool) (*Batches, error) {
	if n < 0 || batch < 1 {
		return nil, fmt.Errorf("data: NewBatches: need n >= 0 and batch >= 1, have n = %d, batch = %d", n, batch)
	}
	return &Batches{n: n, batch: batch, shuffle: shuffle, seed: seed, dropLast: dropLast}, nil
}

// Len is the number of batches in an epoch.
func (b *Batches) Len() int {
	if b.dropLast {
		return b.n / b.batch
	}
	return (b.n + b.batch - 1) / b.batch
}

// Epoch returns the batches of epoch e >= 0, in order. Every index appears
// once in an epoch, except the ones a dropped last batch held. The batches
// share one freshly allocated slice.
func (b *Batches) Epoch(e int) [][]int {
	if e < 0 {
		panic(fmt.Sprintf("data: Batches.Epoch(%d): negative epoch", e))
	}
	order := identity(b.n)
	if b.shuffle {
		shuffle(order, b.seed, uint64(e))
	}
	out := make([][]int, b.Len())
	for i := range out {
		lo := i * b.batch
		hi := min(lo+b.batch, b.n)
		out[i] = order[lo:hi:hi]
	}
	return out
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

// shuffle permutes p with a Fisher–Yates shuffle driven by PCG (seed,
// stream). Both PCG and the bounded draw below are fixed here, so an order
// does not change with the Go release.
func shuffle(p []int, seed, stream uint64) {
	src := rand.NewPCG(seed, stream)
	for i := len(p) - 1; i > 0; i-- {
		j := int(uint64n(src, uint64(i+1)))
		p[i], p[j] = p[j], p[i]
	}
}

// uint64n draws uniformly from [0, n), n > 0, by Lemire's multiply-and-reject
// method.
func uint64n(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}
