package dist_test

import (
	"fmt"
	"sync"

	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/tensor"
)

// local is a job of goroutines in one process, for testing DataParallel at
// several ranks without MPI: each collective is a rendezvous where every
// rank hands in its values and, once all have, reads everyone's. Sums add
// the ranks in rank order, so every rank gets the same bits.
type local struct {
	mu      sync.Mutex
	cond    *sync.Cond
	size    int
	round   int
	arrived int
	in      [][][]float32 // per rank, per tensor
	out     [][][]float32 // the last completed round's values
}

func newLocal(size int) []dist.Communicator {
	l := &local{size: size, in: make([][][]float32, size)}
	l.cond = sync.NewCond(&l.mu)
	cs := make([]dist.Communicator, size)
	for r := range cs {
		cs[r] = &localRank{l: l, rank: r}
	}
	return cs
}

// exchange hands in rank's values and returns every rank's.
func (l *local) exchange(rank int, vals [][]float32) [][][]float32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	round := l.round
	l.in[rank] = vals
	l.arrived++
	if l.arrived == l.size {
		l.out, l.in = l.in, make([][][]float32, l.size)
		l.arrived = 0
		l.round++
		l.cond.Broadcast()
	}
	for l.round == round {
		l.cond.Wait()
	}
	return l.out
}

type localRank struct {
	l    *local
	rank int
}

func (c *localRank) Backend() string { return "local" }
func (c *localRank) Rank() int       { return c.rank }
func (c *localRank) Size() int       { return c.l.size }
func (c *localRank) LocalRank() int  { return c.rank }
func (c *localRank) Barrier() error  { c.l.exchange(c.rank, nil); return nil }
func (c *localRank) Close() error    { return nil }

func values(ts []*tensor.Tensor) [][]float32 {
	v := make([][]float32, len(ts))
	for i, t := range ts {
		v[i] = t.Data()
	}
	return v
}

func (c *localRank) AllReduce(op dist.Op, ts ...*tensor.Tensor) error {
	all := c.l.exchange(c.rank, values(ts))
	for i, t := range ts {
		sum := make([]float32, t.Len())
		for r := range all {
			if len(all[r]) != len(ts) || len(all[r][i]) != len(sum) {
				return fmt.Errorf("local: rank %d: all-reduce of different sizes", c.rank)
			}
			for j, v := range all[r][i] {
				sum[j] += v
			}
		}
		if op == dist.Mean {
			for j := range sum {
				sum[j] /= float32(c.l.size)
			}
		}
		t.CopyFrom(sum)
	}
	return nil
}

type localDone struct{}

func (localDone) Wait() error { return nil }

func (c *localRank) StartAllReduce(op dist.Op, ts ...*tensor.Tensor) (dist.Request, error) {
	return localDone{}, c.AllReduce(op, ts...)
}

func (c *localRank) Broadcast(root int, ts ...*tensor.Tensor) error {
	all := c.l.exchange(c.rank, values(ts))
	for i, t := range ts {
		t.CopyFrom(all[root][i])
	}
	return nil
}

// onRanks runs fn as each rank of a local job of size, and returns their
// errors.
func onRanks(size int, fn func(c dist.Communicator) error) []error {
	cs := newLocal(size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r, c := range cs {
		wg.Go(func() { errs[r] = fn(c) })
	}
	wg.Wait()
	return errs
}
