//go:build mpi

package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildMPI builds gograd with -tags mpi and returns its path. The tests
// need Open MPI's mpirun (Debian's openmpi-bin); as root, they set the two
// variables that let it run.
func buildMPI(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatalf("this test needs mpirun: apt-get install -y openmpi-bin libopenmpi-dev (%v)", err)
	}
	bin := filepath.Join(t.TempDir(), "gograd")
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-tags", "mpi", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags mpi: %v\n%s", err, out)
	}
	t.Setenv("OMPI_ALLOW_RUN_AS_ROOT", "1")
	t.Setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
	return bin
}

// mpirunArgs is the start of an mpirun command line: ranks of one host,
// each line of output tagged with the rank and stream ([1,0]<stdout>:).
var mpirunArgs = []string{"--oversubscribe", "--tag-output"}

func runCmd(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestMPITrain trains 2 ranks with batch 64 each and one process with
// batch 128 on the same 50 steps: the weights agree to float tolerance (the
// order of the reductions differs), the ranks' weights are bit-identical,
// rank 0 alone writes the run directory and prints, and -resume refuses
// another number of processes.
func TestMPITrain(t *testing.T) {
	dataDir := mnistDir(t)
	bin := buildMPI(t)
	tmp := t.TempDir()
	dir0, dir1 := filepath.Join(tmp, "rank0"), filepath.Join(tmp, "rank1")
	for _, d := range []string{dir0, dir1} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// 7200 images less 10% for validation: 50 steps of 128.
	common := []string{"train", "-data", dataDir, "-limit", "7200", "-epochs", "1", "-hidden", "64,32", "-out", "run"}
	two := append(append([]string(nil), common...), "-dist", "mpi", "-batch", "64")
	// Each rank runs in a directory of its own: rank 1's must stay empty.
	args := append(append([]string(nil), mpirunArgs...), "-np", "1", "-wdir", dir0, bin)
	args = append(append(args, two...), ":", "-np", "1", "-wdir", dir1, bin)
	args = append(args, two...)
	out, err := runCmd("mpirun", args...)
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	t.Logf("2 ranks:\n%s", out)
	for _, want := range []string{"[1,0]<stdout>:data-parallel: -dist mpi, 2 processes, batch 64 each (128 in all)",
		"[1,0]<stdout>:epoch 1: weights identical on the 2 processes", "[1,0]<stdout>:epoch 1/1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "[1,1]<") {
		t.Errorf("rank 1 printed something:\n%s", out)
	}
	if ents, err := os.ReadDir(dir1); err != nil || len(ents) != 0 {
		t.Errorf("rank 1 wrote into its directory: %v %v", ents, err)
	}
	run2 := filepath.Join(dir0, "run")
	one := filepath.Join(tmp, "one")
	oneArgs := append(append([]string(nil), common...), "-batch", "128")
	oneArgs[len(common)-1] = one
	if out, err := runCmd(bin, oneArgs...); err != nil {
		t.Fatalf("one process: %v\n%s", err, out)
	}
	a, b := modelTensors(t, filepath.Join(run2, modelFile)), modelTensors(t, filepath.Join(one, modelFile))
	if len(a) != len(b) || len(a) != 6 {
		t.Fatalf("%d and %d tensors, want 6", len(a), len(b))
	}
	worst, bits := 0.0, 0
	for i := range a {
		if a[i].Name != b[i].Name || len(a[i].Data) != len(b[i].Data) {
			t.Fatalf("tensor %d: %s of %d and %s of %d values", i, a[i].Name, len(a[i].Data), b[i].Name, len(b[i].Data))
		}
		for k, x := range a[i].Data {
			y := b[i].Data[k]
			if x != y {
				bits++
			}
			d := math.Abs(float64(x-y)) / (1e-3 + math.Abs(float64(y)))
			if d > worst || math.IsNaN(d) {
				worst = d
			}
		}
	}
	t.Logf("2 ranks against 1 process: %d values differ, the worst by %.3g (relative)", bits, worst)
	if !(worst < 1e-3) {
		t.Errorf("the weights of 2 ranks of batch 64 and of 1 process of batch 128 differ by up to %.3g (relative), want < 1e-3", worst)
	}
	// The two runs took the same 50 steps.
	ck2, err := readCheckpoint(filepath.Join(run2, checkpointFile))
	if err != nil {
		t.Fatal(err)
	}
	ck1, err := readCheckpoint(filepath.Join(one, checkpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if ck2.Steps != 50 || ck1.Steps != 50 || ck2.WorldSize != 2 || ck1.WorldSize != 1 {
		t.Errorf("steps %d and %d, world sizes %d and %d: want 50 steps each, world sizes 2 and 1", ck2.Steps, ck1.Steps, ck2.WorldSize, ck1.WorldSize)
	}

	// -resume with another number of processes is refused, both ways.
	out, err = runCmd(bin, "train", "-resume", run2)
	if code := exitCode(err); code != exitUsage || !strings.Contains(out, "the run in "+run2+" was trained by 2 processes and this job has 1 process") ||
		!strings.Contains(out, "resume it with: mpirun -np 2 gograd train -dist mpi -resume "+run2) {
		t.Errorf("one process resuming a 2-rank run: want exit 2 naming both sizes and the mpirun command, got exit %d:\n%s", code, out)
	}
	out, err = runCmd("mpirun", append(append([]string(nil), mpirunArgs...), "-np", "2", bin, "train", "-dist", "mpi", "-resume", one)...)
	if err == nil || !strings.Contains(out, "[1,0]<stderr>:gograd train: the run in "+one+" was trained by 1 process and this job has 2 processes") ||
		!strings.Contains(out, "resume it with: gograd train -resume "+one) || strings.Contains(out, "[1,1]<") {
		t.Errorf("2 ranks resuming a 1-process run: want a failure that rank 0 alone reports, naming both sizes, got %v:\n%s", err, out)
	}
	// A new run over an existing one: rank 0 alone decides, and reports.
	again := append(append([]string(nil), common[:len(common)-1]...), run2, "-dist", "mpi", "-batch", "64") // -out run2
	out, err = runCmd("mpirun", append(append(append([]string(nil), mpirunArgs...), "-np", "2", bin), again...)...)
	if err == nil || !strings.Contains(out, "[1,0]<stderr>:gograd: rank 0: "+run2+" already holds a run") || strings.Contains(out, "[1,1]<") {
		t.Errorf("2 ranks training into an existing run: want a failure that rank 0 alone reports, got %v:\n%s", err, out)
	}
}

// startMPI starts mpirun with args and returns it, with a channel of its
// output lines.
func startMPI(t *testing.T, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command("mpirun", append(append([]string(nil), mpirunArgs...), args...)...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, lines
}

// waitFor reads lines until one contains want, and returns all it read.
func waitFor(t *testing.T, lines <-chan string, want string) string {
	t.Helper()
	var b strings.Builder
	timeout := time.After(5 * time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the job ended before printing %q:\n%s", want, b.String())
			}
			b.WriteString(l + "\n")
			if strings.Contains(l, want) {
				return b.String()
			}
		case <-timeout:
			t.Fatalf("no %q within 5 minutes:\n%s", want, b.String())
		}
	}
}

// drain returns the remaining lines.
func drain(lines <-chan string) string {
	var b strings.Builder
	for l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// rankPID returns the process id of rank of the job that mpirun started.
func rankPID(t *testing.T, mpirun *exec.Cmd, rank int) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(mpirun.Process.Pid) {
			continue
		}
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if slices.Contains(strings.Split(string(environ), "\x00"), "OMPI_COMM_WORLD_RANK="+strconv.Itoa(rank)) {
			return pid
		}
	}
	t.Fatalf("no process of rank %d under mpirun %d", rank, mpirun.Process.Pid)
	return 0
}

// TestMPIInterrupt interrupts a 2-rank run (mpirun passes SIGINT on to
// the ranks, which agree to stop at the same batch), resumes it with 2
// ranks, and compares it with an uninterrupted run: the same weights bit
// for bit.
func TestMPIInterrupt(t *testing.T) {
	dataDir := mnistDir(t)
	bin := buildMPI(t)
	tmp := t.TempDir()
	dir, ref := filepath.Join(tmp, "run"), filepath.Join(tmp, "ref")
	args := []string{"-np", "2", bin, "train", "-dist", "mpi", "-data", dataDir, "-batch", "64", "-epochs", "4", "-hidden", "256,128"}
	cmd, lines := startMPI(t, append(args, "-out", dir)...)
	out := waitFor(t, lines, "epoch 1/4")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	out += drain(lines)
	err := cmd.Wait()
	t.Logf("interrupted:\n%s", out)
	if strings.Contains(out, "done: test accuracy") {
		t.Fatal("the run finished its 4 epochs before the interrupt reached it")
	}
	if err == nil || !regexp.MustCompile(`\[1,0\]<stderr>:gograd: interrupted in epoch [234] after batch \d+; saved`).MatchString(out) ||
		!strings.Contains(out, "[1,0]<stderr>:Resume with: mpirun -np 2 gograd train -dist mpi -resume "+dir) ||
		strings.Contains(out, "[1,1]<") {
		t.Fatalf("want rank 0 alone to report the interrupt after epoch 1 and how to resume, and a failed job; got %v", err)
	}
	resumed, err := runCmd("mpirun", append(append([]string(nil), mpirunArgs...), "-np", "2", bin, "train", "-dist", "mpi", "-resume", dir)...)
	if err != nil || !strings.Contains(resumed, "resuming "+dir+" at epoch ") || !strings.Contains(resumed, "done: test accuracy") {
		t.Fatalf("resume: %v\n%s", err, resumed)
	}
	if out, err := runCmd("mpirun", append(append(append([]string(nil), mpirunArgs...), args...), "-out", ref)...); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	if d := sameBits(modelTensors(t, filepath.Join(dir, modelFile)), modelTensors(t, filepath.Join(ref, modelFile))); d != "" {
		t.Errorf("the interrupted and resumed run differs from the uninterrupted one: %s", d)
	}
}

// TestMPIKilledRank kills rank 1 in the middle of training: mpirun ends
// the job at once, naming the rank.
func TestMPIKilledRank(t *testing.T) {
	dataDir := mnistDir(t)
	bin := buildMPI(t)
	cmd, lines := startMPI(t, "-np", "2", bin, "train", "-dist", "mpi", "-data", dataDir, "-batch", "64", "-epochs", "3",
		"-out", filepath.Join(t.TempDir(), "run"))
	out := waitFor(t, lines, "run directory:")
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(rankPID(t, cmd, 1), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	out += drain(lines)
	err := cmd.Wait()
	took := time.Since(killed)
	t.Logf("the job ended %v after the kill:\n%s", took.Round(time.Millisecond), out)
	if err == nil || !strings.Contains(out, "process rank 1") || !strings.Contains(out, "signal 9") {
		t.Errorf("want a failed job naming rank 1, killed by signal 9; got %v", err)
	}
	if took > 30*time.Second {
		t.Errorf("the job took %v to end after rank 1 was killed, want at most 30s", took)
	}
}

func exitCode(err error) int {
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestMPIHungRank stops rank 1 in the middle of training: rank 0's
// collective fails after -dist-timeout and ends the job.
func TestMPIHungRank(t *testing.T) {
	dataDir := mnistDir(t)
	bin := buildMPI(t)
	cmd, lines := startMPI(t, "-np", "2", bin, "train", "-dist", "mpi", "-dist-timeout", "2s", "-data", dataDir,
		"-batch", "64", "-epochs", "3", "-out", filepath.Join(t.TempDir(), "run"))
	out := waitFor(t, lines, "run directory:")
	time.Sleep(500 * time.Millisecond)
	pid := rankPID(t, cmd, 1)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	stopped := time.Now()
	out += drain(lines)
	err := cmd.Wait()
	took := time.Since(stopped)
	t.Logf("the job ended %v after rank 1 stopped:\n%s", took.Round(time.Millisecond), out)
	// Stopped between collectives, rank 1 is named; stopped inside one
	// (the likelier: a step is mostly all-reduce wait on a loaded
	// machine), every rank has started it and no rank can be blamed.
	if err == nil || !regexp.MustCompile(`\[1,0\]<stderr>:gograd: rank 0: .*timed out after 2s: (rank 1 .*never started it|every rank started it, but it did not complete)`).MatchString(out) {
		t.Errorf("want rank 0 to fail after the 2s timeout, naming rank 1 where it can; got %v", err)
	}
	if took > 30*time.Second {
		t.Errorf("the job took %v to end after rank 1 stopped, want about 2s", took)
	}
}
