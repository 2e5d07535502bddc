package main

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gograd/gograd/safetensors"
)

// truncate cuts the file at path to frac of its length.
func truncate(t *testing.T, path string, frac float64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(fi.Size())*frac)); err != nil {
		t.Fatal(err)
	}
}

// copyMNIST copies the four MNIST files into a new directory.
func copyMNIST(t *testing.T) string {
	t.Helper()
	src := mnistDir(t)
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.Contains(e.Name(), "-ubyte") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// editCheckpoint rewrites the checkpoint of run dir with edit applied to
// its config.
func editCheckpoint(t *testing.T, dir string, edit func(cfg map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, checkpointFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(f.Metadata["config"]), &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Metadata["config"] = string(b)
	if err := safetensors.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
}

// TestRuntimeErrors checks that bad data, files and checkpoints give exit 1
// with one line that names the problem, and leave every file as it was.
func TestRuntimeErrors(t *testing.T) {
	run, _ := fixtureRun(t)
	dataDir := mnistDir(t)
	for _, tc := range []struct {
		name string
		// setup prepares the files and returns the command line and the
		// directory whose files must stay intact.
		setup func(t *testing.T) (args []string, keep string)
		want  []string
	}{
		{"missing data dir", func(t *testing.T) ([]string, string) {
			tmp := t.TempDir()
			return []string{"train", "-data", filepath.Join(tmp, "nope"), "-out", filepath.Join(tmp, "run")}, tmp
		}, []string{"nope", "does not exist", "fashion-mnist"}},
		{"truncated IDX file", func(t *testing.T) ([]string, string) {
			d := copyMNIST(t)
			matches, _ := filepath.Glob(filepath.Join(d, "train-labels-idx1-ubyte*"))
			if len(matches) != 1 {
				t.Fatalf("train labels in %s: %v", d, matches)
			}
			truncate(t, matches[0], 0.5)
			return []string{"train", "-data", d, "-out", filepath.Join(d, "run")}, d
		}, []string{"train-labels-idx1-ubyte"}},
		{"missing IDX file", func(t *testing.T) ([]string, string) {
			d := copyMNIST(t)
			matches, _ := filepath.Glob(filepath.Join(d, "t10k-images-idx3-ubyte*"))
			os.Remove(matches[0])
			return []string{"eval", "-data", d, "-model", filepath.Join(run, modelFile)}, d
		}, []string{"t10k-images-idx3-ubyte"}},
		{"existing run without -overwrite", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			return []string{"train", "-data", dataDir, "-limit", "1000", "-out", d}, d
		}, []string{"already holds a run", "-resume", "-overwrite"}},
		{"truncated checkpoint for -resume", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			truncate(t, filepath.Join(d, checkpointFile), 0.6)
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"checkpoint.safetensors", "safetensors:"}},
		{"garbage checkpoint for -resume", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			os.WriteFile(filepath.Join(d, checkpointFile), []byte("this is not a checkpoint"), 0o644)
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"checkpoint.safetensors", "safetensors:"}},
		{"model file as checkpoint", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			b, _ := os.ReadFile(filepath.Join(d, modelFile))
			os.WriteFile(filepath.Join(d, checkpointFile), b, 0o644)
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"not a gograd checkpoint"}},
		{"missing checkpoint for -resume", func(t *testing.T) ([]string, string) {
			d := t.TempDir()
			return []string{"train", "-resume", d}, d
		}, []string{"checkpoint.safetensors", "no such file"}},
		{"checkpoint with other hidden sizes", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editCheckpoint(t, d, func(cfg map[string]any) { cfg["hidden"] = []int{16}; cfg["epochs"] = 4 })
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"checkpoint.safetensors", "shape [32 784]", "[16 784]"}},
		{"checkpoint with an invalid config", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editCheckpoint(t, d, func(cfg map[string]any) { cfg["optimizer"] = "rmsprop" })
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"checkpoint.safetensors", `"rmsprop"`}},
		{"checkpoint with other data", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editCheckpoint(t, d, func(cfg map[string]any) { cfg["limit"] = 3000; cfg["epochs"] = 5 })
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"trained on 1800 images", "2700"}},
		{"truncated model for eval", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			truncate(t, filepath.Join(d, modelFile), 0.5)
			return []string{"eval", "-model", filepath.Join(d, modelFile), "-data", dataDir}, d
		}, []string{"model.safetensors", "safetensors:"}},
		{"checkpoint as model for eval", func(t *testing.T) ([]string, string) {
			return []string{"eval", "-model", filepath.Join(run, checkpointFile), "-data", dataDir}, run
		}, []string{"not a gograd model"}},
		{"missing model for eval", func(t *testing.T) ([]string, string) {
			d := t.TempDir()
			return []string{"eval", "-model", filepath.Join(d, "none.safetensors")}, d
		}, []string{"none.safetensors", "no such file"}},
		{"truncated model for predict", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			truncate(t, filepath.Join(d, modelFile), 0.9)
			img := writeDigitPNG(t, d, "digit.png", testImage(t, 0), false, 28)
			return []string{"predict", "-model", filepath.Join(d, modelFile), img}, d
		}, []string{"model.safetensors", "safetensors:"}},
		{"model with shapes that disagree with its metadata", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			path := filepath.Join(d, modelFile)
			f, err := safetensors.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f.Metadata = maps.Clone(f.Metadata)
			f.Metadata["hidden"] = "64"
			if err := safetensors.WriteFile(path, f); err != nil {
				t.Fatal(err)
			}
			return []string{"eval", "-model", path, "-data", dataDir}, d
		}, []string{"model.safetensors", "shape [32 784]", "[64 784]"}},
		{"huge -hidden", func(t *testing.T) ([]string, string) {
			d := t.TempDir()
			return []string{"train", "-data", dataDir, "-limit", "1000", "-hidden", "100000000", "-out", filepath.Join(d, "run")}, d
		}, []string{"needs about", "of memory to train", "-hidden 100000000"}},
		{"checkpoint with a huge hidden size", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editCheckpoint(t, d, func(cfg map[string]any) { cfg["hidden"] = []int{100000000}; cfg["epochs"] = 4 })
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"needs about", "of memory"}},
		{"model metadata with a huge hidden size", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editModelMetadata(t, d, "hidden", "100000000")
			return []string{"eval", "-model", filepath.Join(d, modelFile), "-data", dataDir}, d
		}, []string{"model.safetensors", `hidden="100000000"`, "shape [32 784]", "[100000000 784]"}},
		{"model metadata with dropout NaN", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editModelMetadata(t, d, "dropout", "NaN")
			return []string{"eval", "-model", filepath.Join(d, modelFile), "-data", dataDir}, d
		}, []string{"model.safetensors", `dropout="NaN"`}},
		{"model with every metadata item wrong", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editModelMetadata(t, d, "in", "100")
			editModelMetadata(t, d, "out", "x")
			editModelMetadata(t, d, "activation", "gelu")
			return []string{"eval", "-model", filepath.Join(d, modelFile), "-data", dataDir}, d
		}, []string{"3 problems", "in=100", "784 inputs", `out="x"`, `activation="gelu"`}},
		{"model with NaN weights for eval", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			poisonModel(t, d)
			return []string{"eval", "-model", filepath.Join(d, modelFile), "-data", dataDir}, d
		}, []string{"model.safetensors", "3 weights are NaN or infinite", "lower -lr"}},
		{"model with NaN weights for predict", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			poisonModel(t, d)
			img := writeDigitPNG(t, d, "digit.png", testImage(t, 0), false, 28)
			return []string{"predict", "-model", filepath.Join(d, modelFile), img}, d
		}, []string{"model.safetensors", "NaN or infinite"}},
		{"checkpoint batch beyond the epoch", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editCheckpointMetadata(t, d, func(f *safetensors.File) { f.Metadata["batch"] = "99" })
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"checkpoint.safetensors", "batch=99", "only 14 batches"}},
		{"checkpoint with a wrong step count", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editCheckpointMetadata(t, d, func(f *safetensors.File) { f.Metadata["steps"] = "5" })
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"checkpoint.safetensors", "steps=5", "28 steps"}},
		{"checkpoint without optimizer buffers", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editCheckpoint(t, d, func(cfg map[string]any) { cfg["epochs"] = 4; cfg["schedule"] = "none" })
			editCheckpointMetadata(t, d, func(f *safetensors.File) {
				f.Tensors = slices.DeleteFunc(f.Tensors, func(t safetensors.Tensor) bool { return t.Name == "optim.2.momentum_buffer" })
			})
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"checkpoint.safetensors", "lacks optim.2.momentum_buffer"}},
		{"checkpoint with a NaN dropout", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			editCheckpointMetadata(t, d, func(f *safetensors.File) {
				f.Metadata["config"] = strings.Replace(f.Metadata["config"], `"dropout":0`, `"dropout":"NaN"`, 1)
			})
			return []string{"train", "-resume", d, "-data", dataDir}, d
		}, []string{"checkpoint.safetensors", "dropout"}},
		{"run directory in use", func(t *testing.T) ([]string, string) {
			d := copyRun(t, run)
			release, err := lockRun(d)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(release)
			return []string{"train", "-resume", d, "-data", dataDir, "-epochs", "2"}, d
		}, []string{"is being written by another gograd train (pid " + strconv.Itoa(os.Getpid()) + ")"}},
		{"new run into a directory in use", func(t *testing.T) ([]string, string) {
			d := t.TempDir()
			release, err := lockRun(d)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(release)
			return []string{"train", "-data", dataDir, "-limit", "1000", "-out", d}, d
		}, []string{"is being written by another gograd train"}},
		{"plain state_dict without an activation", func(t *testing.T) ([]string, string) {
			d := t.TempDir()
			path := writeStateDict(t, run, d, nil)
			return []string{"eval", "-model", path, "-data", dataDir}, d
		}, []string{"give -activation relu|sigmoid|tanh"}},
		{"state_dict with every layer problem at once", func(t *testing.T) ([]string, string) {
			d := t.TempDir()
			path := filepath.Join(d, "bad.safetensors")
			w := safetensors.Tensor{Name: "0.weight", Shape: []int{4, 6}, Data: make([]float32, 24)}
			f := &safetensors.File{Tensors: []safetensors.Tensor{w,
				{Name: "0.bias", Shape: []int{5}, Data: make([]float32, 5)},
				{Name: "2.weight", Shape: []int{3, 7}, Data: make([]float32, 21)},
				{Name: "4.weight", Shape: []int{2, 3}, Data: make([]float32, 6)},
				{Name: "4.bias", Shape: []int{2}, Data: make([]float32, 2)}}}
			if err := safetensors.WriteFile(path, f); err != nil {
				t.Fatal(err)
			}
			return []string{"eval", "-model", path, "-data", dataDir, "-activation", "tanh"}, d
		}, []string{"0.bias has shape [5]", "no 2.bias", "2.weight [3 7] takes 7 inputs", "0.weight [4 6], gives 4"}},
		{"-activation that conflicts with the model", func(t *testing.T) ([]string, string) {
			return []string{"eval", "-model", filepath.Join(run, modelFile), "-data", dataDir, "-activation", "tanh"}, run
		}, []string{"-activation tanh conflicts with the file's activation=relu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, keep := tc.setup(t)
			before := snapshot(t, keep)
			r := gograd(args...)
			if r.code != exitError || !strings.HasPrefix(r.stderr, "gograd: ") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("want exit 1 and one line on stderr, got %v", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("message lacks %q: %s", w, r.stderr)
				}
			}
			after := snapshot(t, keep)
			if !maps.Equal(before, after) {
				var changed []string
				for k := range after {
					if before[k] != after[k] {
						changed = append(changed, k)
					}
				}
				for k := range before {
					if _, ok := after[k]; !ok {
						changed = append(changed, k+" (removed)")
					}
				}
				t.Errorf("files changed: %v", changed)
			}
		})
	}
}

// editModelMetadata sets metadata key of the model of run dir to value.
func editModelMetadata(t *testing.T, dir, key, value string) {
	t.Helper()
	path := filepath.Join(dir, modelFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Metadata = maps.Clone(f.Metadata)
	f.Metadata[key] = value
	if err := safetensors.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
}

// editCheckpointMetadata rewrites the checkpoint of run dir with edit
// applied to the file.
func editCheckpointMetadata(t *testing.T, dir string, edit func(f *safetensors.File)) {
	t.Helper()
	path := filepath.Join(dir, checkpointFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Metadata = maps.Clone(f.Metadata)
	edit(f)
	if err := safetensors.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
}

// poisonModel makes three weights of the model of run dir NaN, +Inf and
// -Inf.
func poisonModel(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, modelFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w := f.Tensors[len(f.Tensors)-1].Data
	w[0], w[1], w[2] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))
	if err := safetensors.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
}

// writeStateDict writes the weights of the model of run as a PyTorch
// state_dict would hold them (names of a torch.nn.Sequential of Linear and
// ReLU layers), with metadata md, into dir and returns its path.
func writeStateDict(t *testing.T, run, dir string, md map[string]string) string {
	t.Helper()
	f, err := safetensors.ReadFile(filepath.Join(run, modelFile))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "torch.safetensors")
	if err := safetensors.WriteFile(path, &safetensors.File{Tensors: f.Tensors, Metadata: md}); err != nil {
		t.Fatal(err)
	}
	return path
}
