//go:build mpi

package dist_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gograd/gograd/dist"
)

// The tests of the MPI backend run as the ranks of a job: .ci/run starts
// the test binary under `mpirun -np 2`. Started directly (go test -tags mpi),
// a test that needs ranks starts that job itself, with only itself selected.

// world is this rank's communicator when the binary runs under mpirun.
var world dist.Communicator

// faultEnv selects the fault a rank of TestMPIFaultWorker injects.
const faultEnv = "GOGRAD_DIST_FAULT"

// testTimeout bounds every collective of the tests; the fault tests use a
// short one.
const (
	testTimeout  = 60 * time.Second
	faultTimeout = 2 * time.Second
)

func underMPIRun() bool { return os.Getenv("OMPI_COMM_WORLD_SIZE") != "" }

func TestMain(m *testing.M) {
	if !underMPIRun() {
		os.Exit(m.Run())
	}
	timeout := testTimeout
	if os.Getenv(faultEnv) != "" {
		timeout = faultTimeout
	}
	c, err := dist.OpenConfig(dist.Config{Backend: "mpi", Timeout: timeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	world = c
	code := m.Run()
	if err := c.Close(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// mpirun runs this test binary as np ranks with only the test name
// selected, and returns its combined output, the error of the run and how
// long it took.
func mpirun(t *testing.T, np int, name string, env ...string) (string, error, time.Duration) {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatalf("mpirun not found: install openmpi-bin and libopenmpi-dev (apt-get install -y openmpi-bin libopenmpi-dev)")
	}
	cmd := exec.Command("mpirun", "-np", fmt.Sprint(np), "--allow-run-as-root", "--oversubscribe",
		os.Args[0], "-test.run", "^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return out.String(), err, time.Since(start)
}

// ranks returns this rank's communicator of a 2-rank job. Outside mpirun it
// runs the test as such a job, reports its result, and returns nil: the
// caller returns at once.
func ranks(t *testing.T) dist.Communicator {
	t.Helper()
	if world == nil {
		out, err, _ := mpirun(t, 2, t.Name())
		if err != nil || !strings.Contains(out, "--- PASS: "+t.Name()) {
			t.Fatalf("mpirun -np 2 %s: %v\n%s", t.Name(), err, out)
		}
		return nil
	}
	if world.Size() != 2 {
		t.Fatalf("the MPI tests need 2 ranks, this job has %d: run mpirun -np 2", world.Size())
	}
	return world
}

// must ends the whole job when a collective fails: the other rank could
// otherwise wait in its next collective for one that never comes.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %s: %v\n", world.Rank(), t.Name(), err)
		os.Exit(3)
	}
}
