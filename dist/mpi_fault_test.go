//go:build mpi

package dist_test

import (
	"fmt"
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/nn"
)

// faultBound is how long after a fault the tests allow for the job to end:
// the collective timeout (for a hung rank) plus mpirun tearing the job down.
const faultBound = faultTimeout + 15*time.Second

// TestMPIFaultWorker is the training job of the fault tests, run by them as
// 2 ranks: at step 10, rank 1 kills itself (GOGRAD_DIST_FAULT=kill) or
// stops, as a hung process would (GOGRAD_DIST_FAULT=hang). Rank 0 reports
// the error it gets, then closes its communicator, which aborts the job.
func TestMPIFaultWorker(t *testing.T) {
	fault := os.Getenv(faultEnv)
	if world == nil || fault == "" {
		t.Skip("the job that TestMPIFaultKill and TestMPIFaultHang run under mpirun")
	}
	c := world
	const in, out, batch = 20, 5, 32
	x, y := synthetic(batch*c.Size()*100, in, out, 1)
	tr, err := newTrainer(device.NewCPU(1), 1, []int{16}, x, y, in, out)
	must(t, err)
	tr.dp, err = dist.NewDataParallel(c, nn.Vars(tr.model.Parameters()), dist.DataParallelConfig{})
	must(t, err)
	s, err := dist.NewSampler(len(y), c.Rank(), c.Size(), dist.SamplerConfig{Shuffle: true})
	must(t, err)
	for k, b := range s.Batches(0, batch) {
		if k == 10 && c.Rank() == 1 {
			fmt.Fprintf(os.Stderr, "rank 1: injecting %s at step %d (%s)\n", fault, k, time.Now().Format(time.RFC3339Nano))
			sig := syscall.SIGKILL
			if fault == "hang" {
				sig = syscall.SIGSTOP
			}
			syscall.Kill(os.Getpid(), sig)
		}
		if _, err := tr.step(b); err != nil {
			fmt.Fprintf(os.Stderr, "rank %d: training failed: %v\n", c.Rank(), err)
			c.Close() // aborts the job
			t.Fatal("Close returned after a failed collective")
		}
	}
	t.Errorf("rank %d: training went on after the fault", c.Rank())
}

// runFault runs TestMPIFaultWorker with fault, and checks that the job
// fails within faultBound with output matching want.
func runFault(t *testing.T, fault string, want *regexp.Regexp) {
	if underMPIRun() {
		t.Skip("starts its own mpirun jobs: run the test binary directly")
	}
	out, err, took := mpirun(t, 2, "TestMPIFaultWorker", faultEnv+"="+fault)
	t.Logf("the job ended %v after it started (rank 1 injects the fault after 10 steps, well under a second)", took.Round(time.Millisecond))
	if err == nil {
		t.Fatalf("the job succeeded despite the fault:\n%s", out)
	}
	if took > faultBound {
		t.Errorf("the job took %v to end, more than the bound %v", took, faultBound)
	}
	if !want.MatchString(out) {
		t.Errorf("the output does not match %q:\n%s", want, out)
	} else {
		t.Logf("%s", want.FindString(out))
	}
}

// TestMPIFaultKill: a rank killed mid-training ends the job at once, and
// mpirun names it.
func TestMPIFaultKill(t *testing.T) {
	runFault(t, "kill", regexp.MustCompile(`process rank 1 with PID \d+ on node \S+ exited on signal 9`))
}

// TestMPIFaultHang: a rank that hangs mid-training makes the other fail
// after the timeout, with an error naming it.
func TestMPIFaultHang(t *testing.T) {
	runFault(t, "hang", regexp.MustCompile(`rank 0: training failed: dist: data parallel: bucket 1 of 1 \([^)]*\): dist: mpi: rank 0: all-reduce #\d+ \([^)]*\): timed out after 2s: rank 1 \(its last was #\d+\) never started it: hung or dead`))
}
