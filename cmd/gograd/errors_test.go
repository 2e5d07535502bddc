package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
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
		}, []string{"MNIST directory", "nope", "no such file"}},
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
