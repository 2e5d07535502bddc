package nn

import (
	"fmt"
	"slices"

	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// StateDict copies m's parameters to the host, named as PyTorch names them.
func StateDict(m Module) []safetensors.Tensor {
	var ts []safetensors.Tensor
	for _, p := range m.Parameters() {
		ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: p.Value.Shape(), Data: p.Value.Data()})
	}
	return ts
}

// LoadStateDict copies the tensors of f into m's parameters. Every
// parameter must be present with its exact shape, and f may hold no other
// tensors; on any mismatch nothing is loaded.
func LoadStateDict(m Module, f *safetensors.File) error {
	params := m.Parameters()
	want := map[string]bool{}
	for _, p := range params {
		want[p.Name] = true
		t, ok := f.Lookup(p.Name)
		if !ok {
			return fmt.Errorf("nn: load: checkpoint has no tensor %q", p.Name)
		}
		if !slices.Equal(t.Shape, p.Value.Shape()) {
			return fmt.Errorf("nn: load: tensor %q has shape %v, the model wants %v", p.Name, t.Shape, p.Value.Shape())
		}
	}
	for _, t := range f.Tensors {
		if !want[t.Name] {
			return fmt.Errorf("nn: load: checkpoint has tensor %q, which the model does not have", t.Name)
		}
	}
	return tensor.Catch(func() {
		for _, p := range params {
			t, _ := f.Lookup(p.Name)
			p.Value.CopyFrom(t.Data)
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
