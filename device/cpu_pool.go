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

// cpuTask is an operation split over an index range: run computes [lo, hi).
// Hot kernels implement it with a pooled struct, so that handing one to a
// helper allocates nothing; cpuFunc adapts a closure.
type cpuTask interface{ run(lo, hi int) }

// cpuFunc is a closure as a cpuTask.
type cpuFunc func(lo, hi int)

func (f cpuFunc) run(lo, hi int) { f(lo, hi) }

// cpuTeam is the helper goroutines of a CPU. It does not refer to the CPU,
// so that a CPU nobody holds can be collected and its helpers stopped.
type cpuTeam struct {
	helpers []*cpuHelper
	stop    sync.Once
}

// cpuHelper runs one part of a task at a time for the call that claimed it.
// The call writes task, lo and hi, then sets ready; the helper clears ready
// and sets done when the part is finished.
type cpuHelper struct {
	busy   atomic.Bool // claimed by a call until it has seen done
	ready  atomic.Bool
	done   atomic.Bool
	parked atomic.Bool // asleep, or about to sleep, on wake
	task   cpuTask
	lo, hi int
	wake   chan struct{}
	quit   chan struct{}
}

func newCPUTeam(n int) *cpuTeam {
	t := &cpuTeam{helpers: make([]*cpuHelper, n)}
	for i := range t.helpers {
		h := &cpuHelper{wake: make(chan struct{}, 1), quit: make(chan struct{})}
		t.helpers[i] = h
		go h.loop()
	}
	return t
}

// close ends the helpers once their current parts are done.
func (t *cpuTeam) close() {
	t.stop.Do(func() {
		for _, h := range t.helpers {
			close(h.quit)
		}
	})
}

// claim returns an idle helper, or nil when all are busy with other calls.
func (t *cpuTeam) claim() *cpuHelper {
	for _, h := range t.helpers {
		if h.busy.CompareAndSwap(false, true) {
			return h
		}
	}
	return nil
}

// start hands a claimed helper the part [lo, hi) of task.
func (h *cpuHelper) start(task cpuTask, lo, hi int) {
	h.task, h.lo, h.hi = task, lo, hi
	h.done.Store(false)
	h.ready.Store(true)
	if h.parked.Load() {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// wait returns once the helper has finished its part, and releases it.
func (h *cpuHelper) wait() {
	for deadline := time.Now().Add(cpuSpin); !h.done.Load(); {
		if time.Now().After(deadline) {
			time.Sleep(10 * time.Microsecond)
		} else {
			runtime.Gosched()
		}
	}
	h.busy.Store(false)
}

func (h *cpuHelper) loop() {
	for {
		deadline := time.Now().Add(cpuSpin)
		for !h.ready.Load() && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		if !h.ready.Load() {
			// Announce the sleep before the last look at ready: a call that
			// sets ready after that look sees parked and sends a wake-up.
			h.parked.Store(true)
			if !h.ready.Load() {
				select {
				case <-h.wake:
				case <-h.quit:
					return
				}
			}
			h.parked.Store(false)
			continue
		}
		h.task.run(h.lo, h.hi)
		h.task = nil
		h.ready.Store(false)
		h.done.Store(true)
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

// parallel runs fn over [0, n) in up to c.threads contiguous chunks, on the
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

// run splits task over [0, n) into up to c.threads chunks: the calling
// goroutine computes the first, idle helpers the others, and the caller the
// chunks no helper was free for. Chunks start at multiples of 16, so that
// vector kernels see the same blocks however the work is split, and two
// threads never write one cache line.
func (c *CPU) run(n int, task cpuTask) {
	t := min(c.threads, n)
	if t <= 1 {
		if n > 0 {
			task.run(0, n)
		}
		return
	}
	team := c.helpers()
	chunk := ((n+t-1)/t + 15) &^ 15
	var claimed [cpuMaxHelpers]*cpuHelper
	nc := 0
	lo := chunk
	for ; lo < n && nc < len(claimed); lo += chunk {
		h := team.claim()
		if h == nil {
			break
		}
		h.start(task, lo, min(lo+chunk, n))
		claimed[nc] = h
		nc++
	}
	task.run(0, min(chunk, n))
	for ; lo < n; lo += chunk {
		task.run(lo, min(lo+chunk, n))
	}
	for _, h := range claimed[:nc] {
		h.wait()
	}
}

// cpuMaxHelpers bounds the helpers one call hands parts to.
const cpuMaxHelpers = 63
