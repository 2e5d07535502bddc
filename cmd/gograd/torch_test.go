package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// torchPython is the Python with Debian's PyTorch that bench/torch_load.py
// runs under.
const torchPython = "/usr/bin/python3"

// needTorch fails the test, saying what to install, where PyTorch cannot
// be imported; -short skips it.
func needTorch(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test runs PyTorch")
	}
	if _, err := os.Stat(torchPython); err != nil {
		t.Fatalf("this test needs %s with PyTorch: apt-get install python3 python3-torch python3-numpy", torchPython)
	}
	if out, err := exec.Command(torchPython, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		t.Fatalf("this test needs PyTorch and numpy for %s: apt-get install python3-torch python3-numpy (%v: %s)", torchPython, err, out)
	}
}

// evalReport is the part of an eval report that does not name the program:
// the accuracy, the per-class table and the confusion matrix.
func evalReport(t *testing.T, out string) string {
	t.Helper()
	i := strings.Index(out, "test accuracy: ")
	if i < 0 {
		t.Fatalf("no report in:\n%s", out)
	}
	return out[i:]
}

// torchLoad runs bench/torch_load.py with args.
func torchLoad(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(torchPython, append([]string{filepath.Join("..", "..", "bench", "torch_load.py")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("torch_load.py %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// A conv net with BatchNorm trained by gograd gives PyTorch the same
// predictions, image for image, as it gives gograd eval; and one trained
// in PyTorch (saved by torch_load.py's own safetensors writer, with the
// BatchNorm buffers) gives gograd eval the predictions it gave PyTorch.
func TestTorchRoundTripConv(t *testing.T) {
	dir := mnistDir(t)
	needTorch(t)
	spec := "conv6k3p1,bn,relu,pool2,conv8k3,relu,maxpool2s2p1,flatten,fc24,relu,fc"
	run := filepath.Join(t.TempDir(), "run")
	if r := gograd("train", "-data", dir, "-model", spec, "-limit", "1280", "-epochs", "1", "-val", "0", "-lr", "0.05", "-out", run); r.code != 0 {
		t.Fatalf("train: %v", r)
	}
	model := filepath.Join(run, modelFile)
	r := gograd("eval", "-model", model, "-data", dir)
	if r.code != 0 {
		t.Fatalf("eval: %v", r)
	}
	if got, want := evalReport(t, torchLoad(t, model, "--data", dir)), evalReport(t, r.stdout); got != want {
		t.Errorf("PyTorch's report of gograd's model:\n%s\ngograd's:\n%s", got, want)
	}

	exported := filepath.Join(t.TempDir(), "torch.safetensors")
	py := torchLoad(t, "--export", exported, "--spec", spec, "--steps", "20", "--data", dir)
	r = gograd("eval", "-model", exported, "-data", dir)
	if r.code != 0 {
		t.Fatalf("eval of the PyTorch model: %v", r)
	}
	if got, want := evalReport(t, r.stdout), evalReport(t, py); got != want {
		t.Errorf("gograd's report of PyTorch's model:\n%s\nPyTorch's:\n%s", got, want)
	}
}

// The named cnn model, whose four batch norms fuse their ReLUs, saves a
// checkpoint that bench/torch_load.py rebuilds as PyTorch's Sequential
// (BatchNorm2d and ReLU as two modules) and that gives PyTorch the
// predictions it gives gograd eval.
func TestTorchRoundTripCNN(t *testing.T) {
	dir := mnistDir(t)
	needTorch(t)
	run := filepath.Join(t.TempDir(), "run")
	if r := gograd("train", "-data", dir, "-model", "cnn", "-limit", "256", "-epochs", "1", "-val", "0", "-lr", "0.05", "-out", run); r.code != 0 {
		t.Fatalf("train: %v", r)
	}
	model := filepath.Join(run, modelFile)
	r := gograd("eval", "-model", model, "-data", dir)
	if r.code != 0 {
		t.Fatalf("eval: %v", r)
	}
	if got, want := evalReport(t, torchLoad(t, model, "--data", dir)), evalReport(t, r.stdout); got != want {
		t.Errorf("PyTorch's report of gograd's cnn:\n%s\ngograd's:\n%s", got, want)
	}
}
