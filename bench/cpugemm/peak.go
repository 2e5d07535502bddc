package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// fmaLoop is an FMA loop of the CPU: its name, the FLOP of one iteration
// and the loop itself.
type fmaLoop struct {
	name string
	flop int
	run  func(n int)
}

// peak prints, for each FMA loop and for 1 and threads threads at once
// (each locked to an OS thread), the FMA rate in GFLOP/s: the best of reps
// runs of about batch each:
//
//	peak <loop> threads <t> <gflops>
func peak(threads, reps int, batch time.Duration) error {
	loops := fmaLoops()
	if len(loops) == 0 {
		return fmt.Errorf("cpugemm: -peak: this build or CPU has no FMA loop")
	}
	for _, l := range loops {
		// Size one call at about batch on one thread.
		n := 1 << 16
		for {
			t0 := time.Now()
			l.run(n)
			if time.Since(t0) > batch/4 {
				break
			}
			n *= 2
		}
		for _, t := range []int{1, threads} {
			best := 0.0
			for range reps {
				var wg sync.WaitGroup
				t0 := time.Now()
				for range t {
					wg.Add(1)
					go func() {
						defer wg.Done()
						runtime.LockOSThread()
						l.run(n)
					}()
				}
				wg.Wait()
				best = max(best, float64(t*n*l.flop)/time.Since(t0).Seconds()/1e9)
			}
			fmt.Printf("peak %s threads %d %.1f\n", l.name, t, best)
			if threads == 1 {
				break
			}
		}
	}
	return nil
}
