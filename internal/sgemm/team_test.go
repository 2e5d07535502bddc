package sgemm

import (
	"testing"
	"time"
)

// square returns the problem of a product of two zero n×n matrices.
func square(n int) problem {
	a := make([]float32, n*n)
	b := make([]float32, n*n)
	c := make([]float32, n*n)
	return problem{m: n, n: n, k: n, alpha: 1, a: a, lda: n, b: b, ldb: n, c: c, ldc: n}
}

// handTask gives p to a helper of ctx's team, waits until it is done and
// returns that helper. The task is not taken back, so the helper itself
// runs it.
func handTask(ctx *Context, p problem) *helper {
	team := ctx.helpers()
	h := team.claim()
	for h == nil {
		h = team.claim()
	}
	done := &pending{}
	done.left.Add(1)
	done.wg.Add(1)
	h.hand(&task{ctx: ctx, p: p, done: done})
	done.wait()
	return h
}

// untilParked returns how long h takes to go to sleep, at most limit.
func untilParked(h *helper, limit time.Duration) time.Duration {
	start := time.Now()
	for !h.parked.Load() {
		if time.Since(start) > limit {
			break
		}
		osyield()
	}
	return time.Since(start)
}

// TestHelperSleepsAfterShortTasks checks that a helper given a short task
// now and then goes to sleep soon after it, rather than polling for
// spinTime.
func TestHelperSleepsAfterShortTasks(t *testing.T) {
	ctx := New(2)
	defer ctx.Close()
	p := square(16)
	fastest := time.Hour
	for range 10 {
		h := handTask(ctx, p)
		fastest = min(fastest, untilParked(h, 20*time.Millisecond))
		time.Sleep(2 * time.Millisecond)
	}
	if fastest > spinTime/2 {
		t.Errorf("after a task of a few microseconds the helper polled for at least %v before sleeping, want under %v", fastest, spinTime/2)
	}
}

// TestHelperPollsAfterLongTasks checks that a helper that has spent most of
// its time working keeps polling for its next task: training runs products
// back to back and must find its helpers awake.
func TestHelperPollsAfterLongTasks(t *testing.T) {
	ctx := New(2)
	defer ctx.Close()
	p := square(128)
	longest := time.Duration(0)
	for range 5 {
		var h *helper
		for start := time.Now(); time.Since(start) < 4*spinTime; {
			h = handTask(ctx, p)
		}
		longest = max(longest, untilParked(h, 20*time.Millisecond))
	}
	if longest < spinTime/2 {
		t.Errorf("after %v of tasks back to back the helper slept within %v, want it to poll for about %v", 4*spinTime, longest, spinTime)
	}
}
