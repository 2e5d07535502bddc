package main

import (
	"bytes"
	"encoding/csv"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gograd/gograd/device"
)

// TestCrashSafety kills `gograd train` with SIGKILL at 20 moments, some
// chosen at random and some while a checkpoint or model file is being
// written, resuming after each kill. After every kill each run file present
// must load, and the run must continue with -resume (or start again where
// no checkpoint was written yet); the final model must equal that of a run
// that was never killed, bit for bit.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds gograd and kills it 20 times")
	}
	dataDir := mnistDir(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "gograd")
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	args := []string{"train", "-data", dataDir, "-limit", "1200", "-batch", "64", "-hidden", "96", "-epochs", "4",
		"-optimizer", "adam", "-dropout", "0.2", "-schedule", "step", "-step-size", "2"}
	runBin := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = new(bytes.Buffer), new(bytes.Buffer)
		return cmd
	}
	ref := filepath.Join(tmp, "ref")
	start := time.Now()
	if cmd := runBin(append(args, "-out", ref)...); cmd.Run() != nil {
		t.Fatalf("uninterrupted run: %s", cmd.Stderr)
	}
	total := time.Since(start)
	want := modelTensors(t, filepath.Join(ref, modelFile))

	seed := uint64(time.Now().UnixNano())
	t.Logf("an uninterrupted run takes %v; kill times from seed %d", total.Round(time.Millisecond), seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := filepath.Join(tmp, "run")
	kills, finished, during := 0, 0, 0
	for kills < 20 {
		cmd := runBin(append(args, "-out", dir)...)
		if _, err := os.Stat(filepath.Join(dir, checkpointFile)); err == nil {
			cmd = runBin("train", "-resume", dir)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Every third kill waits for a temporary file of the checkpoint
		// (or, alternately, the model) being written; the others come at a
		// random moment within the first 60% of an uninterrupted run's
		// duration (a resumed run has less to do).
		var watch string
		if kills%3 == 2 {
			watch = "." + []string{checkpointFile, modelFile}[(kills/3)%2] + ".tmp-"
		}
		deadline := time.After(time.Duration(rng.Int64N(int64(total) * 6 / 10)))
		killed, writing := false, false
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%v ended on its own with %v:\n%s", cmd.Args, err, cmd.Stderr)
				}
				break wait
			case <-deadline:
				if watch == "" {
					cmd.Process.Kill()
					killed = true
					<-done
					break wait
				}
			case <-time.After(200 * time.Microsecond):
				if watch != "" && tempFilePresent(dir, watch) {
					cmd.Process.Kill()
					killed, writing = true, true
					<-done
					break wait
				}
			}
		}
		checkRunLoads(t, dir)
		if !killed {
			// The run finished before its kill: it must equal the
			// uninterrupted one; start another.
			finished++
			if finished > 40 {
				t.Fatalf("%d runs finished before their kill; only %d kills so far", finished, kills)
			}
			if d := sameBits(want, modelTensors(t, filepath.Join(dir, modelFile))); d != "" {
				t.Fatalf("a run that was killed %d times differs from the uninterrupted one: %s", kills, d)
			}
			os.RemoveAll(dir)
			continue
		}
		kills++
		if writing {
			during++
		}
	}
	// The last resume runs to the end.
	cmd := runBin(append(args, "-out", dir)...)
	if _, err := os.Stat(filepath.Join(dir, checkpointFile)); err == nil {
		cmd = runBin("train", "-resume", dir)
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, cmd.Stderr)
	}
	checkRunLoads(t, dir)
	if d := sameBits(want, modelTensors(t, filepath.Join(dir, modelFile))); d != "" {
		t.Fatalf("the run that was killed differs from the uninterrupted one: %s", d)
	}
	if a, b := metricsWithoutTimes(t, filepath.Join(ref, metricsFile)), metricsWithoutTimes(t, filepath.Join(dir, metricsFile)); len(a) != len(b) {
		t.Errorf("metrics have %d rows, want %d", len(b), len(a))
	}
	t.Logf("%d kills, %d of them while a file was being written; %d runs finished between kills", kills, during, finished)
	if during < 6 {
		t.Errorf("only %d kills came while a file was being written", during)
	}
}

// tempFilePresent reports whether dir holds a file whose name starts with
// prefix.
func tempFilePresent(dir, prefix string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			return true
		}
	}
	return false
}

// checkRunLoads checks that every run file in dir loads: the model with
// eval's loader, the checkpoint with -resume's, the metrics as CSV and the
// plots as PNG. Temporary files and a stale lock may be present.
func checkRunLoads(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		var err error
		switch name := e.Name(); {
		case name == modelFile:
			_, _, _, err = loadModel(path, device.NewCPU(1), "")
		case name == checkpointFile:
			_, err = readCheckpoint(path)
		case name == metricsFile:
			var b []byte
			if b, err = os.ReadFile(path); err == nil {
				_, err = csv.NewReader(bytes.NewReader(b)).ReadAll()
			}
		case name == curvesFile || name == confusionFile:
			var f *os.File
			if f, err = os.Open(path); err == nil {
				_, err = png.Decode(f)
				f.Close()
			}
		case name == lockFile || isTempRunFile(name):
		default:
			t.Errorf("%s holds an unexpected %s", dir, name)
		}
		if err != nil {
			t.Fatalf("after a kill, %s does not load: %v", path, err)
		}
	}
}
