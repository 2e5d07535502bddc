package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// activations are the hidden activations a model file may name.
var activations = []string{"relu", "sigmoid", "tanh"}

// linearLayer is one Linear layer found in a state_dict.
type linearLayer struct {
	prefix       string // "0" for 0.weight and 0.bias
	weight, bias *safetensors.Tensor
}

// inferLinears finds the Linear layers of a state_dict: every tensor is a
// PREFIX.weight of shape [out, in] or a PREFIX.bias of shape [out], the
// prefixes end in layer numbers (0, 2, 4 as torch.nn.Sequential names them,
// or fc1, fc2), and each layer's input is the previous layer's output. It
// returns the layers in order, or every problem it found.
func inferLinears(f *safetensors.File) ([]linearLayer, []string) {
	var problems []string
	byPrefix := map[string]*linearLayer{}
	var order []string
	for i := range f.Tensors {
		t := &f.Tensors[i]
		prefix, kind, ok := cutLast(t.Name, ".")
		if !ok || (kind != "weight" && kind != "bias") {
			problems = append(problems, fmt.Sprintf("tensor %q is not the weight or bias of a Linear layer", t.Name))
			continue
		}
		l := byPrefix[prefix]
		if l == nil {
			l = &linearLayer{prefix: prefix}
			byPrefix[prefix] = l
			order = append(order, prefix)
		}
		if kind == "weight" {
			l.weight = t
		} else {
			l.bias = t
		}
	}
	if len(f.Tensors) == 0 {
		return nil, []string{"the file holds no tensors"}
	}
	// Order the layers by the number their prefix ends in.
	num := func(p string) (string, int, bool) {
		i := len(p)
		for i > 0 && p[i-1] >= '0' && p[i-1] <= '9' {
			i--
		}
		n, err := strconv.Atoi(p[i:])
		return p[:i], n, err == nil
	}
	stem := ""
	for k, p := range order {
		s, _, ok := num(p)
		if !ok {
			problems = append(problems, fmt.Sprintf("layer %q has no layer number, so the order of the layers is unknown", p))
		} else if k > 0 && s != stem {
			problems = append(problems, fmt.Sprintf("layers %q and %q have different names, so the order of the layers is unknown", order[0], p))
		}
		stem = s
	}
	if len(problems) > 0 {
		return nil, problems
	}
	slices.SortFunc(order, func(a, b string) int {
		_, x, _ := num(a)
		_, y, _ := num(b)
		return cmp.Compare(x, y)
	})
	var layers []linearLayer
	for _, p := range order {
		l := byPrefix[p]
		switch {
		case l.weight == nil:
			problems = append(problems, fmt.Sprintf("layer %q has a bias but no %s.weight", p, p))
			continue
		case len(l.weight.Shape) != 2:
			problems = append(problems, fmt.Sprintf("%s.weight has shape %v, want [out in]", p, l.weight.Shape))
			continue
		case l.bias == nil:
			problems = append(problems, fmt.Sprintf("layer %q has no %s.bias (gograd's Linear layers have one)", p, p))
		case !slices.Equal(l.bias.Shape, l.weight.Shape[:1]):
			problems = append(problems, fmt.Sprintf("%s.bias has shape %v, but %s.weight %v wants [%d]", p, l.bias.Shape, p, l.weight.Shape, l.weight.Shape[0]))
		}
		if n := len(layers); n > 0 && layers[n-1].weight.Shape[0] != l.weight.Shape[1] {
			q := layers[n-1]
			problems = append(problems, fmt.Sprintf("%s.weight %v takes %d inputs, but the layer before it, %s.weight %v, gives %d",
				p, l.weight.Shape, l.weight.Shape[1], q.prefix, q.weight.Shape, q.weight.Shape[0]))
		}
		layers = append(layers, *l)
	}
	return layers, problems
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// modelArch works out the architecture of a model file from its tensors and
// its metadata: the Linear layers from the tensor names and shapes, the
// activation and dropout from the metadata, and the activation from
// activationFlag where the metadata has none (a PyTorch state_dict). The
// error names every missing or conflicting item at once.
func modelArch(f *safetensors.File, activationFlag string) (arch, []linearLayer, error) {
	md := f.Metadata
	switch format := md["format"]; format {
	case "", modelFormat:
	case checkpointFormat:
		return arch{}, nil, fmt.Errorf("not a gograd model: its metadata has format %q, a training checkpoint (use the run's %s)", format, modelFile)
	default:
		return arch{}, nil, fmt.Errorf("not a gograd model: its metadata has format %q, not %q", format, modelFormat)
	}
	layers, problems := inferLinears(f)
	var a arch
	if len(layers) > 0 && len(problems) == 0 {
		a.In = layers[0].weight.Shape[1]
		for _, l := range layers[:len(layers)-1] {
			a.Hidden = append(a.Hidden, l.weight.Shape[0])
		}
		a.Out = layers[len(layers)-1].weight.Shape[0]
	}
	known := len(layers) > 0 && len(problems) == 0
	// The metadata, where present, must agree with the tensors.
	checkInt := func(key string, inferred int, what string) {
		v, ok := md[key]
		if !ok {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			problems = append(problems, fmt.Sprintf("metadata %s=%q is not a positive integer", key, v))
			return
		}
		if known && n != inferred {
			problems = append(problems, fmt.Sprintf("metadata %s=%d, but the tensors have %d %s", key, n, inferred, what))
		}
	}
	checkInt("in", a.In, "inputs")
	checkInt("out", a.Out, "outputs")
	if h, ok := md["hidden"]; ok {
		var l intList
		if h != "" {
			if err := l.Set(h); err != nil {
				problems = append(problems, fmt.Sprintf("metadata hidden=%q: %v", h, err))
			}
		}
		if known && len(problems) == 0 && !slices.Equal([]int(l), a.Hidden) {
			msg := fmt.Sprintf("metadata hidden=%q, but the tensors have hidden widths %q", h, joinInts(a.Hidden))
			// Name the first tensor whose shape differs.
			in := a.In
			for i, l := range l {
				if i < len(layers)-1 {
					if w := layers[i].weight; !slices.Equal(w.Shape, []int{l, in}) {
						msg += fmt.Sprintf(": %s.weight has shape %v, the metadata wants [%d %d]", layers[i].prefix, w.Shape, l, in)
						break
					}
				}
				in = l
			}
			problems = append(problems, msg)
		}
	}
	a.Activation = md["activation"]
	switch {
	case a.Activation == "" && activationFlag == "":
		problems = append(problems, fmt.Sprintf("the activation of the hidden layers is not in the file: give -activation %s", strings.Join(activations, "|")))
	case a.Activation == "":
		a.Activation = activationFlag
	case !slices.Contains(activations, a.Activation):
		problems = append(problems, fmt.Sprintf("metadata activation=%q: want %s", a.Activation, orList(activations)))
	case activationFlag != "" && activationFlag != a.Activation:
		problems = append(problems, fmt.Sprintf("-activation %s conflicts with the file's activation=%s", activationFlag, a.Activation))
	}
	if v, ok := md["dropout"]; ok {
		d, err := strconv.ParseFloat(v, 64)
		if err != nil || !(d >= 0 && d < 1) {
			problems = append(problems, fmt.Sprintf("metadata dropout=%q: want a probability in [0, 1)", v))
		}
		a.Dropout = d
	}
	if len(problems) > 0 {
		return a, nil, fmt.Errorf("cannot rebuild the model (%s): %s", plural(len(problems), "problem"), strings.Join(problems, "; "))
	}
	return a, layers, nil
}

// nonFinite counts the NaN and infinite values of ts and names the first
// tensor that has one.
func nonFinite(ts []safetensors.Tensor) (n int, first string) {
	for _, t := range ts {
		for _, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				if n == 0 {
					first = t.Name
				}
				n++
			}
		}
	}
	return n, first
}

// loadModel rebuilds the model stored at path on dev: a model file written
// by train (its layers from its metadata), or a PyTorch state_dict saved as
// safetensors: of Linear layers (its activation from activationFlag), or
// of any network with the layer metadata of a model file. A model whose
// weights are not all finite is refused.
func loadModel(path string, dev device.Device, activationFlag string) (*nn.Sequential, *modelDesc, map[string]string, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the model: %w", err)
	}
	if f.Metadata["format"] == netFormat || (f.Metadata["format"] == "" && f.Metadata[mdLayers] != "") {
		if activationFlag != "" {
			return nil, nil, nil, fmt.Errorf("model %s: -activation applies only to a file without layer metadata; its layers are %s", path, f.Metadata[mdLayers])
		}
		model, d, err := loadNet(f, dev)
		if err != nil {
			return nil, d, nil, fmt.Errorf("model %s: %w", path, err)
		}
		return model, d, f.Metadata, nil
	}
	a, layers, err := modelArch(f, activationFlag)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("model %s: %w", path, err)
	}
	if n, first := nonFinite(f.Tensors); n > 0 {
		return nil, nil, nil, fmt.Errorf("model %s: %d weights are NaN or infinite (the first in %s): the training that wrote it diverged; train again with a lower -lr",
			path, n, first)
	}
	// The dropout layers (identities when evaluating) are left out, and
	// the Linear layers renamed to the positions in gograd's MLP.
	a.Dropout = 0
	sd := &safetensors.File{}
	for i, l := range layers {
		sd.Tensors = append(sd.Tensors,
			safetensors.Tensor{Name: fmt.Sprintf("%d.weight", 2*i), Shape: l.weight.Shape, Data: l.weight.Data},
			safetensors.Tensor{Name: fmt.Sprintf("%d.bias", 2*i), Shape: l.bias.Shape, Data: l.bias.Data})
	}
	var model *nn.Sequential
	var loadErr error
	err = tensor.Catch(func() {
		if model, loadErr = a.mlp(dev, 0); loadErr == nil {
			loadErr = nn.LoadStateDict(model, sd)
		}
	})
	if err = cmp.Or(err, loadErr); err != nil {
		return nil, nil, nil, fmt.Errorf("model %s: %w", path, err)
	}
	d := legacyDesc(a)
	if _, ok := f.Metadata[mdLayers]; ok {
		// An MLP written with layer metadata: the images it takes and
		// the names of its classes.
		g, err := descFromMetadata(f.Metadata)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("model %s: %w", path, err)
		}
		if g.Dim() != a.In || g.In.Classes != a.Out {
			return nil, nil, nil, fmt.Errorf("model %s: metadata %s=%s and %s=%d do not fit the MLP's %d inputs and %d outputs",
				path, mdInput, f.Metadata[mdInput], mdClasses, g.In.Classes, a.In, a.Out)
		}
		d.In, d.ClassNames, d.legacy = g.In, g.ClassNames, false
	}
	return model, d, f.Metadata, nil
}
