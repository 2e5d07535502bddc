package main

import (
	"context"
	"encoding/csv"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

func TestTrainWritesRunDir(t *testing.T) {
	dir, res := fixtureRun(t)
	if res.stderr != "" {
		t.Errorf("train wrote to stderr, which is not a terminal: %q", res.stderr)
	}
	for _, want := range []string{"device: cpu", "data: ", "1800 training, 200 validation, 10000 test", "784-32-10 relu, 25450 parameters",
		"Linear(in_features=784, out_features=32, bias=true)", "epoch 1/2", "epoch 2/2", "samples/s"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("train output lacks %q:\n%s", want, res.stdout)
		}
	}

	// The model loads with nn.Load into the architecture it names.
	f, err := safetensors.ReadFile(filepath.Join(dir, modelFile))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"in": "784", "hidden": "32", "out": "10", "activation": "relu", "dropout": "0"} {
		if f.Metadata[k] != want {
			t.Errorf("model metadata %s = %q, want %q", k, f.Metadata[k], want)
		}
	}
	var names []string
	for _, ts := range f.Tensors {
		names = append(names, ts.Name)
	}
	if want := []string{"0.bias", "0.weight", "2.bias", "2.weight"}; !slices.Equal(names, want) {
		t.Errorf("model tensors %v, want %v", names, want)
	}
	m, err := nn.NewMLP(device.NewCPU(0), nn.MLPConfig{In: 784, Hidden: []int{32}, Out: 10, Activation: "relu", Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nn.Load(filepath.Join(dir, modelFile), m); err != nil {
		t.Fatal(err)
	}

	// One metrics row per epoch, consistent with the summary lines.
	rows := readCSV(t, filepath.Join(dir, metricsFile))
	if want := []string{"epoch", "lr", "train_loss", "val_acc", "test_acc", "epoch_seconds", "samples_per_sec"}; !slices.Equal(rows[0], want) {
		t.Errorf("metrics header %v, want %v", rows[0], want)
	}
	if len(rows) != 3 {
		t.Fatalf("metrics.csv has %d rows, want a header and 2", len(rows))
	}
	for i, r := range rows[1:] {
		if r[0] != strconv.Itoa(i+1) {
			t.Errorf("row %d: epoch %s", i+1, r[0])
		}
		for j, v := range r[1:] {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || x < 0 {
				t.Errorf("row %d column %s: %q", i+1, rows[0][j+1], v)
			}
		}
	}
	loss1, _ := strconv.ParseFloat(rows[1][2], 64)
	loss2, _ := strconv.ParseFloat(rows[2][2], 64)
	if !(loss2 < loss1) {
		t.Errorf("training loss did not fall: %v then %v", loss1, loss2)
	}

	// The plots decode, are large, and are not blank.
	for _, name := range []string{curvesFile, confusionFile} {
		pf, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(pf)
		pf.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b := img.Bounds()
		colors := map[[4]uint32]bool{}
		for y := b.Min.Y; y < b.Max.Y; y += 3 {
			for x := b.Min.X; x < b.Max.X; x += 3 {
				r, g, bl, a := img.At(x, y).RGBA()
				colors[[4]uint32{r, g, bl, a}] = true
			}
		}
		if b.Dx() < 500 || b.Dy() < 400 || len(colors) < 20 {
			t.Errorf("%s: %dx%d with %d colours looks empty", name, b.Dx(), b.Dy(), len(colors))
		}
	}

	// The checkpoint is complete.
	ck, err := readCheckpoint(filepath.Join(dir, checkpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Epoch != 2 || ck.Batch != 0 || ck.Steps != 2*14 || len(ck.Optim) != 4 || len(ck.Model) != 4 || ck.TrainN != 1800 {
		t.Errorf("checkpoint: epoch %d batch %d steps %d, %d optimizer buffers, %d tensors, %d examples",
			ck.Epoch, ck.Batch, ck.Steps, len(ck.Optim), len(ck.Model), ck.TrainN)
	}

	// eval agrees with train's final test accuracy and with metrics.csv.
	r := gograd("eval", "-model", filepath.Join(dir, modelFile), "-data", mnistDir(t))
	if r.code != 0 {
		t.Fatalf("eval: %v", r)
	}
	evalAcc := parsePct(t, testAccLine, r.stdout)
	trainAcc := parsePct(t, doneLine, res.stdout)
	csvAcc, _ := strconv.ParseFloat(rows[2][4], 64)
	if evalAcc != trainAcc || math.Abs(evalAcc-100*csvAcc) > 1e-9 {
		t.Errorf("eval says %v%%, train says %v%%, metrics.csv %v", evalAcc, trainAcc, csvAcc)
	}
	for _, want := range []string{"class  precision  recall  support", "confusion matrix (rows: true class, columns: predicted class)", "  980\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("eval output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// modelTensors reads the tensors of a model file.
func modelTensors(t *testing.T, path string) []safetensors.Tensor {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f.Tensors
}

// sameBits reports the first difference between two lists of tensors,
// compared bit for bit.
func sameBits(a, b []safetensors.Tensor) string {
	if len(a) != len(b) {
		return "different numbers of tensors"
	}
	for i := range a {
		if a[i].Name != b[i].Name || !slices.Equal(a[i].Shape, b[i].Shape) {
			return "tensor " + a[i].Name + " differs in name or shape"
		}
		for j := range a[i].Data {
			if math.Float32bits(a[i].Data[j]) != math.Float32bits(b[i].Data[j]) {
				return a[i].Name + "[" + strconv.Itoa(j) + "] = " + strconv.FormatFloat(float64(a[i].Data[j]), 'g', -1, 32) +
					" vs " + strconv.FormatFloat(float64(b[i].Data[j]), 'g', -1, 32)
			}
		}
	}
	return ""
}

// metricsWithoutTimes drops the timing columns of metrics.csv.
func metricsWithoutTimes(t *testing.T, path string) [][]string {
	rows := readCSV(t, path)
	for i := range rows {
		rows[i] = rows[i][:5]
	}
	return rows
}

// TestResumeEqualsUninterrupted stops runs after an epoch (and resumes them
// with more epochs) or in the middle of an epoch on a signal (and resumes
// them), and checks that the final weights equal those of a run that was
// never stopped, bit for bit, as do the losses and accuracies per epoch.
func TestResumeEqualsUninterrupted(t *testing.T) {
	dataDir := mnistDir(t)
	for _, tc := range []struct {
		name string
		args []string
		// stopAfter (epoch, batch) cancels the run's context; stopAfter.epoch
		// < 0 runs -epochs 1 first and resumes with -epochs 3 instead.
		stopEpoch, stopBatch int
	}{
		{"sgd momentum, stop after epoch 1", []string{"-optimizer", "sgd", "-momentum", "0.9", "-schedule", "step", "-step-size", "1", "-gamma", "0.5"}, -1, 0},
		{"sgd nesterov weight decay, interrupt in epoch 2", []string{"-optimizer", "sgd", "-nesterov", "-weight-decay", "0.001"}, 1, 5},
		{"adam dropout, stop after epoch 1", []string{"-optimizer", "adam", "-dropout", "0.3", "-schedule", "step", "-step-size", "2"}, -1, 0},
		{"adam dropout, interrupt in epoch 2", []string{"-optimizer", "adam", "-dropout", "0.3"}, 1, 5},
		{"adam dropout, interrupt in epoch 1", []string{"-optimizer", "adam", "-dropout", "0.3"}, 0, 3},
		{"adamw dropout, stop after epoch 1", []string{"-optimizer", "adamw", "-dropout", "0.2", "-schedule", "none"}, -1, 0},
		{"adamw, interrupt at the end of epoch 1", []string{"-optimizer", "adamw", "-hidden", "24,16"}, 0, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := append([]string{"train", "-data", dataDir, "-limit", "2000", "-hidden", "32"}, tc.args...)
			straight := filepath.Join(t.TempDir(), "straight")
			if r := gograd(append(base, "-epochs", "3", "-out", straight)...); r.code != 0 {
				t.Fatalf("uninterrupted run: %v", r)
			}
			stopped := filepath.Join(t.TempDir(), "stopped")
			if tc.stopEpoch < 0 {
				if r := gograd(append(base, "-epochs", "1", "-out", stopped)...); r.code != 0 {
					t.Fatalf("first epoch: %v", r)
				}
				if r := gograd("train", "-resume", stopped, "-epochs", "3"); r.code != 0 {
					t.Fatalf("resumed run: %v", r)
				}
			} else {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				stop := func(epoch, batch int) {
					if epoch == tc.stopEpoch && batch == tc.stopBatch {
						cancel()
					}
				}
				r := gogradWith(ctx, stop, append(base, "-epochs", "3", "-out", stopped)...)
				if r.code != exitInterrupted || !strings.Contains(r.stderr, "gograd train -resume "+stopped) {
					t.Fatalf("interrupted run: want exit 130 and how to resume, got %v", r)
				}
				ck, err := readCheckpoint(filepath.Join(stopped, checkpointFile))
				if err != nil {
					t.Fatal(err)
				}
				wantEpoch, wantBatch := tc.stopEpoch, tc.stopBatch
				if wantBatch == 14 { // the last batch: the epoch completes first
					wantEpoch, wantBatch = wantEpoch+1, 0
				}
				if ck.Epoch != wantEpoch || ck.Batch != wantBatch {
					t.Errorf("checkpoint at epoch %d batch %d, want %d, %d", ck.Epoch, ck.Batch, wantEpoch, wantBatch)
				}
				if r := gograd("train", "-resume", stopped); r.code != 0 || !strings.Contains(r.stdout, "resuming") {
					t.Fatalf("resumed run: %v", r)
				}
			}
			if d := sameBits(modelTensors(t, filepath.Join(straight, modelFile)), modelTensors(t, filepath.Join(stopped, modelFile))); d != "" {
				t.Errorf("resumed model differs from the uninterrupted one: %s", d)
			}
			a := metricsWithoutTimes(t, filepath.Join(straight, metricsFile))
			b := metricsWithoutTimes(t, filepath.Join(stopped, metricsFile))
			if !slices.EqualFunc(a, b, slices.Equal) {
				t.Errorf("metrics differ:\nuninterrupted %v\nresumed       %v", a, b)
			}
		})
	}
}

// TestInterruptKeepsLastEpochModel checks that an interrupt leaves
// model.safetensors at the last completed epoch, and that a finished run
// resumes to nothing.
func TestInterruptKeepsLastEpochModel(t *testing.T) {
	dataDir := mnistDir(t)
	dir := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := gogradWith(ctx, func(epoch, batch int) {
		if epoch == 1 && batch == 2 {
			cancel()
		}
	}, "train", "-data", dataDir, "-limit", "2000", "-hidden", "16", "-epochs", "2", "-out", dir)
	if r.code != exitInterrupted {
		t.Fatalf("want exit 130, got %v", r)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, modelFile))
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["epochs"] != "1" {
		t.Errorf("model.safetensors is from epoch %q, want the last completed one, 1", f.Metadata["epochs"])
	}
	if rows := readCSV(t, filepath.Join(dir, metricsFile)); len(rows) != 2 {
		t.Errorf("metrics.csv has %d lines, want a header and epoch 1", len(rows))
	}
	if r := gograd("train", "-resume", dir); r.code != 0 {
		t.Fatalf("resume: %v", r)
	}
	r = gograd("train", "-resume", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("resuming a finished run: %v", r)
	}
	r = gograd("train", "-resume", dir, "-epochs", "4")
	if r.code != exitUsage || !strings.Contains(r.stderr, "cannot be extended") {
		t.Errorf("extending a cosine run: want a usage error, got %v", r)
	}
}

// BenchmarkTrainStep times one training step of the default model on the
// CPU: gather the batch on the device, forward, backward, SGD update.
func BenchmarkTrainStep(b *testing.B) {
	dev := device.NewCPU(0)
	n, dim, batch := 1024, 784, 128
	rng := rand.New(rand.NewPCG(1, 1))
	set := &data.Set{Images: make([]float32, n*dim), Labels: make([]uint8, n), N: n, Rows: 28, Cols: 28}
	for i := range set.Images {
		set.Images[i] = rng.Float32()
	}
	for i := range set.Labels {
		set.Labels[i] = uint8(rng.IntN(10))
	}
	cfg := trainConfig{Epochs: 1, Batch: batch, Hidden: []int{512, 256}, Activation: "relu", Optimizer: "sgd",
		LR: 0.05, Momentum: 0.9, Schedule: "none", StepSize: 1, Gamma: 1, Seed: 1}
	tr := &trainer{cfg: cfg, dev: dev, train: set}
	defer tr.release()
	var err error
	if tr.model, err = cfg.arch(dim, 10).mlp(dev, 1); err != nil {
		b.Fatal(err)
	}
	if tr.opt, err = cfg.optimizer(tr.model); err != nil {
		b.Fatal(err)
	}
	tr.images = tensor.FromSlice(dev, set.Images, n, dim)
	tr.labels = tensor.FromSlice(dev, labelsOf(set), n)
	tr.xb, tr.yb, tr.idx = tensor.New(dev, batch, dim), tensor.New(dev, batch), tensor.New(dev, batch)
	tr.lossSum = tensor.Zeros(dev)
	tr.hostIdx = make([]float32, batch)
	batches, err := data.NewBatches(n, batch, true, 1, true)
	if err != nil {
		b.Fatal(err)
	}
	order := batches.Epoch(0)
	tape := autograd.NewTape()
	defer tape.Free()
	x := tape.Var(tr.xb, false)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := tr.step(x, order[i%len(order)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}
