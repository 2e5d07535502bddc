package device

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// cpuSpin is how long an idle helper of a CPU polls for work before it
// sleeps. Operations arrive back to back in a training step, and waking a
// sleeping goroutine costs tens of microseconds, as much as the work.
const cpuSpin = time.Millisecond

// cpuChunksPerThread is how many chunks an operation split across threads
// is cut into per thread. Threads take chunks until none is left, so a
// thread that the operating system pauses (on a shared machine) holds up
// the others by one chunk at most, not by a whole share.
const cpuChunksPerThread = 8

// cpuTask is an operation split over an index range: run computes [lo, hi).
// Hot kernels implement it with a pooled struct, so that handing one to a
// helper allocates nothing; cpuFunc adapts a closure.
type cpuTask interface{ run(lo, hi int) }

// cpuFunc is a closure as a cpuTask.
type cpuFunc func(lo, hi int)

func (f cpuFunc) run(lo, hi int) { f(lo, hi) }

// cpuJob is the operation a CPU's threads are working on. Its state packs
// the job's epoch (a count of jobs, 24 bits from bit 40), its number of
// chunks (20 bits from bit 20) and the index of the next chunk to take, so
// that a helper still looking at a finished job cannot take a chunk of the
// next one: its compare-and-swap fails. The other fields are read only
// after a chunk is taken, and the job does not change before that chunk is
// counted done.
type cpuJob struct {
	state atomic.Uint64
	left  atomic.Int64 // chunks not finished
	task  cpuTask
	n     int
	chunk int // values per chunk, a multiple of 16
}

const (
	cpuEpochShift  = 40
	cpuChunksShift = 20
	cpuField       = 1<<20 - 1
)

// cpuEpoch returns the epoch of a job state.
func cpuEpoch(s uint64) uint64 { return s >> cpuEpochShift }

// work takes and runs chunks of the job of the given epoch until none is
// left.
func (j *cpuJob) work(epoch uint64) {
	for {
		s := j.state.Load()
		next, chunks := s&cpuField, s>>cpuChunksShift&cpuField
		if cpuEpoch(s) != epoch || next >= chunks {
			return
		}
		if !j.state.CompareAndSwap(s, s+1) {
			continue
		}
		lo := int(next) * j.chunk
		j.task.run(lo, min(lo+j.chunk, j.n))
		j.left.Add(-1)
	}
}

// cpuTeam is the helper goroutines of a CPU and the job they share. It does
// not refer to the CPU, so that a CPU nobody holds can be collected and its
// helpers stopped.
type cpuTeam struct {
	mu      sync.Mutex // held by the call that owns job
	job     cpuJob
	epoch   uint64
	helpers []*cpuHelper
	stop    sync.Once
	quit    chan struct{}
}

// cpuHelper is a goroutine that works on each new job of its team.
type cpuHelper struct {
	parked atomic.Bool // asleep, or about to sleep, on wake
	wake   chan struct{}
}

func newCPUTeam(n int) *cpuTeam {
	t := &cpuTeam{helpers: make([]*cpuHelper, n), quit: make(chan struct{})}
	for i := range t.helpers {
		h := &cpuHelper{wake: make(chan struct{}, 1)}
		t.helpers[i] = h
		go t.loop(h)
	}
	return t
}

// close ends the helpers.
func (t *cpuTeam) close() { t.stop.Do(func() { close(t.quit) }) }

func (t *cpuTeam) loop(h *cpuHelper) {
	seen := uint64(0)
	for {
		deadline := time.Now().Add(cpuSpin)
		for cpuEpoch(t.job.state.Load()) == seen && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		if e := cpuEpoch(t.job.state.Load()); e != seen {
			seen = e
			t.job.work(e)
			continue
		}
		// Announce the sleep before the last look: a call that publishes a
		// job after that look sees parked and sends a wake-up.
		h.parked.Store(true)
		if cpuEpoch(t.job.state.Load()) == seen {
			select {
			case <-h.wake:
			case <-t.quit:
				return
			}
		}
		h.parked.Store(false)
	}
}

// helpers returns the CPU's team, starting it on first use.
func (c *CPU) helpers() *cpuTeam {
	c.teamOnce.Do(func() {
		c.team = newCPUTeam(c.threads - 1)
		runtime.AddCleanup(c, (*cpuTeam).close, c.team)
	})
	return c.team
}

// serial reports whether an operation over n items costing work elementary
// steps runs on the calling goroutine alone.
func (c *CPU) serial(n, work int) bool {
	return min(c.threads, n) <= 1 || work < cpuParallelMin
}

// parallel runs fn over [0, n) split across the CPU's threads, on the
// calling goroutine alone when work (elementary steps in all) is small.
// The closure escapes, so hot kernels check serial first or use run.
func (c *CPU) parallel(n, work int, fn func(lo, hi int)) {
	if c.serial(n, work) {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	c.run(n, cpuFunc(fn))
}

// run splits task over [0, n) into chunks that start at multiples of 16,
// so that vector kernels see the same blocks however the work is split and
// two threads never write one cache line. The calling goroutine and the
// helpers take chunks until none is left. While another call holds the
// helpers, the task runs on the calling goroutine alone.
func (c *CPU) run(n int, task cpuTask) {
	if c.threads <= 1 || n <= 16 {
		if n > 0 {
			task.run(0, n)
		}
		return
	}
	t := c.helpers()
	if !t.mu.TryLock() {
		task.run(0, n)
		return
	}
	j := &t.job
	parts := min(c.threads*cpuChunksPerThread, cpuField)
	j.task, j.n = task, n
	j.chunk = ((n+parts-1)/parts + 15) &^ 15
	chunks := (n + j.chunk - 1) / j.chunk
	j.left.Store(int64(chunks))
	t.epoch = (t.epoch + 1) & (1<<(64-cpuEpochShift) - 1)
	j.state.Store(t.epoch<<cpuEpochShift | uint64(chunks)<<cpuChunksShift) // publishes the fields above
	for _, h := range t.helpers {
		if h.parked.Load() {
			select {
			case h.wake <- struct{}{}:
			default:
			}
		}
	}
	j.work(t.epoch)
	for deadline := time.Now().Add(cpuSpin); j.left.Load() > 0; {
		if time.Now().After(deadline) {
			time.Sleep(10 * time.Microsecond)
		} else {
			runtime.Gosched()
		}
	}
	j.task = nil
	t.mu.Unlock()
}
