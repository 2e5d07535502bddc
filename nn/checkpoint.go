package nn

import (
	"fmt"
	"slices"

	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// StateDict copies m's parameters, then its buffers (see Buffered), to
// the host, named as PyTorch names them.
func StateDict(m Module) []safetensors.Tensor {
	var ts []safetensors.Tensor
	for _, p := range m.Parameters() {
		ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: p.Value.Shape(), Data: p.Value.Data()})
	}
	for _, b := range Buffers(m) {
		ts = append(ts, safetensors.Tensor{Name: b.Name, Shape: b.Value.Shape(), Data: b.Value.Data(), DType: b.DType})
	}
	return ts
}

// stateEntry is a tensor of m's state_dict: a parameter's value or a buffer.
type stateEntry struct {
	name  string
	value *tensor.Tensor
}

// state lists the tensors of m's state_dict.
func state(m Module) []stateEntry {
	var es []stateEntry
	for _, p := range m.Parameters() {
		es = append(es, stateEntry{p.Name, p.Value})
	}
	for _, b := range Buffers(m) {
		es = append(es, stateEntry{b.Name, b.Value})
	}
	return es
}

// LoadStateDict copies the tensors of f into m's parameters and buffers.
// Every one must be present with its exact shape, and f may hold no other
// tensors; on any mismatch nothing is loaded. An integer buffer may come
// as I64 (as PyTorch writes num_batches_tracked) or F32.
func LoadStateDict(m Module, f *safetensors.File) error {
	entries := state(m)
	want := map[string]bool{}
	for _, e := range entries {
		want[e.name] = true
		t, ok := f.Lookup(e.name)
		if !ok {
			return fmt.Errorf("nn: load: checkpoint has no tensor %q", e.name)
		}
		if !slices.Equal(t.Shape, e.value.Shape()) {
			return fmt.Errorf("nn: load: tensor %q has shape %v, the model wants %v", e.name, t.Shape, e.value.Shape())
		}
	}
	for _, t := range f.Tensors {
		if !want[t.Name] {
			return fmt.Errorf("nn: load: checkpoint has tensor %q, which the model does not have", t.Name)
		}
	}
	return tensor.Catch(func() {
		for _, e := range entries {
			t, _ := f.Lookup(e.name)
			e.value.CopyFrom(t.Data)
		}
	})
}

// Save writes m's parameters and metadata to path atomically: an interrupted
// save leaves any previous file intact.
func Save(path string, m Module, metadata map[string]string) error {
	if err := safetensors.WriteFile(path, &safetensors.File{Tensors: StateDict(m), Metadata: metadata}); err != nil {
		return fmt.Errorf("nn: save: %w", err)
	}
	return nil
}

// Load reads the parameters saved at path into m and returns the file's
// metadata.
func Load(path string, m Module) (map[string]string, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nn: load: %w", err)
	}
	if err := LoadStateDict(m, f); err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return f.Metadata, nil
}
