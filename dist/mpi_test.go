//go:build mpi

package dist_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/tensor"
)

// value is what rank r holds at index i in the collective tests: small
// integers, so that every sum is exact.
func value(r, i, salt int) float32 { return float32((i*7+salt*13)%97 - 48 + 100*r) }

// TestMPICollectives: all-reduce (sum and mean, one tensor and fused
// groups mixing small and large ones) and broadcast from either root, at
// odd sizes, on CPU buffers.
func TestMPICollectives(t *testing.T) {
	c := ranks(t)
	if c == nil {
		return
	}
	d := device.NewCPU(1)
	rank := c.Rank()
	sizes := []int{1, 3, 17, 1001, 16383, 16384, 100003}
	fill := func(n, salt int) *tensor.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = value(rank, i, salt)
		}
		return tensor.FromSlice(d, v)
	}
	check := func(what string, t0 *tensor.Tensor, salt int, want func(i int) float32) {
		t.Helper()
		for i, got := range t0.Data() {
			if w := want(i); got != w {
				t.Errorf("%s, %d values: [%d] = %v, want %v", what, t0.Len(), i, got, w)
				return
			}
		}
	}
	for _, n := range sizes {
		x := fill(n, 1)
		must(t, c.AllReduce(dist.Sum, x))
		check("sum", x, 1, func(i int) float32 { return value(0, i, 1) + value(1, i, 1) })
		y := fill(n, 2)
		must(t, c.AllReduce(dist.Mean, y))
		check("mean", y, 2, func(i int) float32 { return (value(0, i, 2) + value(1, i, 2)) / 2 })
	}
	// One fused group of every size, started asynchronously, and a second
	// group in flight at the same time.
	var group, other []*tensor.Tensor
	for k, n := range sizes {
		group = append(group, fill(n, 10+k))
		other = append(other, fill(n+2, 20+k))
	}
	r1, err := c.StartAllReduce(dist.Mean, group...)
	must(t, err)
	r2, err := c.StartAllReduce(dist.Sum, other...)
	must(t, err)
	must(t, r2.Wait())
	must(t, r1.Wait())
	must(t, r1.Wait()) // waiting twice is harmless
	for k := range sizes {
		check("fused mean", group[k], 10+k, func(i int) float32 { return (value(0, i, 10+k) + value(1, i, 10+k)) / 2 })
		check("fused sum", other[k], 20+k, func(i int) float32 { return value(0, i, 20+k) + value(1, i, 20+k) })
	}
	for root := range 2 {
		var ts []*tensor.Tensor
		for k, n := range sizes {
			ts = append(ts, fill(n, 30+k))
		}
		must(t, c.Broadcast(root, ts...))
		for k := range sizes {
			check("broadcast", ts[k], 30+k, func(i int) float32 { return value(root, i, 30+k) })
		}
	}
	must(t, c.Barrier())
	for _, flags := range [][2]bool{{false, false}, {false, true}, {true, false}} {
		got, err := dist.Any(c, d, flags[rank])
		must(t, err)
		if want := flags[0] || flags[1]; got != want {
			t.Errorf("Any with flags %v: %v, want %v", flags, got, want)
		}
	}

	// Bad calls fail on the calling rank alone and start nothing.
	freed := fill(5, 0)
	freed.Free()
	for _, bad := range []func() error{
		func() error { return c.AllReduce(dist.Sum, freed) },
		func() error { x := fill(4, 0); return c.AllReduce(dist.Sum, x, x) },
		func() error { return c.AllReduce(dist.Op(7), fill(4, 0)) },
		func() error { return c.Broadcast(2, fill(4, 0)) },
	} {
		var de *dist.Error
		if err := bad(); !errors.As(err, &de) || de.Rank != rank {
			t.Errorf("bad call: got %v, want a *dist.Error of rank %d", err, rank)
		}
	}
	must(t, c.Barrier())
}

// TestMPIProgressesAlone: a started all-reduce completes without MPI calls
// of the caller's, who does something else meanwhile (here, sleeps): the
// MPI thread progresses it, in the background where the rank has CPUs to
// spare (this is what lets DataParallel overlap the all-reduces with
// Backward where a core is free), else as soon as the caller waits. Either
// way little is left for Wait.
func TestMPIProgressesAlone(t *testing.T) {
	c := ranks(t)
	if c == nil {
		return
	}
	x := tensor.FromSlice(device.NewCPU(1), make([]float32, 1<<17)) // 0.5 MB
	best := time.Hour
	for range 5 {
		must(t, c.Barrier())
		r, err := c.StartAllReduce(dist.Sum, x)
		must(t, err)
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		must(t, r.Wait())
		best = min(best, time.Since(start))
	}
	t.Logf("rank %d: Wait after 50 ms away: %v at best", c.Rank(), best)
	if best > 2*time.Millisecond {
		t.Errorf("rank %d: Wait took %v at best of 5 for an all-reduce of 0.5 MB started 50 ms before: the MPI thread does not progress it", c.Rank(), best)
	}
}
