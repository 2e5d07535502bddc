package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gograd/gograd/safetensors"
)

// encodeFile is f in the safetensors format.
func encodeFile(t testing.TB, f *safetensors.File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// seedModels are small model files for the fuzz tests' seed corpus: a
// gograd model, a PyTorch state_dict with fc names, and broken ones.
func seedModels(t testing.TB) [][]byte {
	w := func(name string, shape ...int) safetensors.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return safetensors.Tensor{Name: name, Shape: shape, Data: make([]float32, n)}
	}
	md := map[string]string{"format": modelFormat, "in": "3", "hidden": "2", "out": "4", "activation": "tanh", "dropout": "0.5"}
	return [][]byte{
		encodeFile(t, &safetensors.File{Tensors: []safetensors.Tensor{w("0.weight", 2, 3), w("0.bias", 2), w("3.weight", 4, 2), w("3.bias", 4)}, Metadata: md}),
		encodeFile(t, &safetensors.File{Tensors: []safetensors.Tensor{w("fc1.weight", 2, 3), w("fc1.bias", 2), w("fc2.weight", 4, 2), w("fc2.bias", 4)}}),
		encodeFile(t, &safetensors.File{Tensors: []safetensors.Tensor{w("0.weight", 2, 3, 1), w("x", 1), w("2.bias", 5)}, Metadata: map[string]string{"hidden": "0,x"}}),
		encodeFile(t, &safetensors.File{Tensors: []safetensors.Tensor{w("model.0.weight", 2, 3), w("optim.0.exp_avg", 6)},
			Metadata: map[string]string{"format": checkpointFormat, "config": "{}", "epoch": "1", "batch": "0", "steps": "3",
				"train_examples": "10", "dropout_calls": "[]", "partial": `{"loss_sum":"NaN","seconds":1}`, "metrics": `[{"epoch":1,"lr":"+Inf"}]`}}),
	}
}

// FuzzModelArch feeds arbitrary safetensors files to modelArch, which
// eval and predict use to rebuild a model. It must not panic; an accepted
// architecture must chain the file's Linear layers; errors are one line.
func FuzzModelArch(f *testing.F) {
	for _, s := range seedModels(f) {
		f.Add(s, "")
		f.Add(s, "relu")
	}
	f.Fuzz(func(t *testing.T, in []byte, act string) {
		file, err := safetensors.Decode(in)
		if err != nil {
			return
		}
		a, layers, err := modelArch(file, act)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		if len(layers) != len(a.Hidden)+1 || a.In < 1 || a.Out < 1 || !(a.Dropout >= 0 && a.Dropout < 1) {
			t.Fatalf("accepted %+v with %d layers", a, len(layers))
		}
		width := a.In
		for i, l := range layers {
			out := a.Out
			if i < len(a.Hidden) {
				out = a.Hidden[i]
			}
			if len(l.weight.Shape) != 2 || l.weight.Shape[0] != out || l.weight.Shape[1] != width || len(l.bias.Shape) != 1 || l.bias.Shape[0] != out {
				t.Fatalf("layer %d: weight %v bias %v for %d -> %d", i, l.weight.Shape, l.bias.Shape, width, out)
			}
			width = out
		}
	})
}

// FuzzCheckpoint feeds arbitrary safetensors files to checkpointFromFile,
// which -resume uses. It must not panic, and what it accepts must have a
// valid configuration and a consistent position.
func FuzzCheckpoint(f *testing.F) {
	for _, s := range seedModels(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := safetensors.Decode(in)
		if err != nil {
			return
		}
		ck, err := checkpointFromFile(file)
		if err != nil {
			return
		}
		if err := ck.Config.validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		if err := ck.checkProgress(); err != nil || len(ck.Metrics) != ck.Epoch {
			t.Fatalf("accepted an inconsistent position: %v", err)
		}
		if _, err := ck.file(); err != nil {
			t.Fatalf("an accepted checkpoint does not encode again: %v", err)
		}
	})
}
