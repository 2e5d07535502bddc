package sgemm

import (
	"sync"
	"sync/atomic"
	"time"
)

// spinTime is the longest a helper, or a caller waiting for its helpers,
// polls before it goes to sleep. Waking a sleeping goroutine on another core
// costs from tens of microseconds on bare metal to over a hundred on a
// virtual machine, as long as a mid-sized product takes; training runs
// products back to back, so helpers that poll for a while are found awake.
const spinTime = time.Millisecond

// A helper polls for its next task for no longer, in all, than it has spent
// running tasks: each task adds its running time to the helper's credit, up
// to spinTime, and each poll spends the time it lasts. Training, where a
// helper works most of the time, keeps it polling for the whole spinTime;
// a server that runs a short pass every millisecond or so lets its helper
// sleep between passes rather than poll for most of the time on a core the
// rest of the program wants.

// team is the set of helper goroutines of a Context. It does not refer to the
// Context, so that a Context nobody holds can be collected and its helpers
// stopped.
type team struct {
	helpers []*helper
	stopped sync.Once
}

// helper is a goroutine that runs one task at a time for whichever call
// claims it.
type helper struct {
	busy   atomic.Bool          // claimed by a call, until its task is done
	next   atomic.Pointer[task] // the task handed over, until the helper takes it
	parked atomic.Bool          // asleep, or about to sleep, on wake
	wake   chan struct{}
	quit   chan struct{}
}

// task is a part of a product handed to a helper.
type task struct {
	ctx  *Context
	p    problem
	done *pending
}

// pending counts the tasks of a call that are still running.
type pending struct {
	left atomic.Int32
	wg   sync.WaitGroup
}

func newTeam(n int) *team {
	t := &team{helpers: make([]*helper, n)}
	for i := range t.helpers {
		h := &helper{wake: make(chan struct{}, 1), quit: make(chan struct{})}
		t.helpers[i] = h
		go h.loop()
	}
	return t
}

// stop ends the helpers' goroutines once they finish their tasks.
func (t *team) stop() {
	t.stopped.Do(func() {
		for _, h := range t.helpers {
			close(h.quit)
		}
	})
}

// claim returns an idle helper, or nil when every helper is busy with
// another call.
func (t *team) claim() *helper {
	for _, h := range t.helpers {
		if h.busy.CompareAndSwap(false, true) {
			return h
		}
	}
	return nil
}

// hand gives a claimed helper its task, waking it if it sleeps.
func (h *helper) hand(t *task) {
	h.next.Store(t)
	if h.parked.Load() {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// reclaim takes back the task t handed to h if h has not started it, and then
// releases h. It reports whether it took t back.
func (h *helper) reclaim(t *task) bool {
	if !h.next.CompareAndSwap(t, nil) {
		return false
	}
	h.busy.Store(false)
	return true
}

func (h *helper) loop() {
	var t *task
	take := func() bool {
		t = h.next.Swap(nil)
		return t != nil
	}
	// credit is how long the helper may poll before it sleeps.
	credit := spinTime
	for {
		start := time.Now()
		if spin(take, credit) {
			credit -= time.Since(start)
			credit = min(spinTime, credit+h.run(t))
			continue
		}
		credit = 0
		// Announce the sleep before the last look at next: a call that hands a
		// task after that look sees parked and sends a wake-up.
		h.parked.Store(true)
		if take() {
			h.parked.Store(false)
			credit = min(spinTime, h.run(t))
			continue
		}
		select {
		case <-h.wake:
		case <-h.quit:
			return
		}
		h.parked.Store(false)
	}
}

// run runs t and returns how long that took.
func (h *helper) run(t *task) time.Duration {
	start := time.Now()
	t.ctx.run(&t.p)
	d := time.Since(start)
	done := t.done
	h.busy.Store(false)
	done.finish()
	return d
}

// finish marks one task done.
func (d *pending) finish() {
	d.left.Add(-1)
	d.wg.Done()
}

// wait returns when every task of the call is done, polling for a while
// before it sleeps.
func (d *pending) wait() {
	spin(func() bool { return d.left.Load() == 0 }, spinTime)
	d.wg.Wait()
}

// spin calls ready until it reports true, or until the time limit passes, and
// reports whether ready did. Between calls it yields the core to other
// threads that want it, as when another process runs, but not the thread to
// the Go scheduler: that would put the goroutine on the global run queue,
// from where the other threads' processor may take it and leave a core idle
// until the runtime wakes it again.
func spin(ready func() bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for i := 0; ; i++ {
		if ready() {
			return true
		}
		if i%8 == 7 {
			if time.Now().After(deadline) {
				return false
			}
			osyield()
		}
	}
}
