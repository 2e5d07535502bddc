package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// netFormat marks a model file whose metadata describes its layers with a
// layer spec; an MLP's file keeps modelFormat and its MLP keys besides, so
// that programs that read only those still read it.
const netFormat = "gograd-sequential-1"

// Metadata keys of a model file that describe its network generically.
const (
	mdLayers     = "layers"      // the resolved layer spec, every fc's width explicit
	mdInput      = "input"       // C,H,W of one image
	mdClasses    = "classes"     // the number of outputs
	mdClassNames = "class_names" // a JSON array of the class names, optional
	mdModel      = "model"       // the -model it was trained with, optional
	mdData       = "data"        // the -data it was trained on, optional
)

// modelDesc describes a network: its layers, the images it takes and the
// classes it gives. It is what a model file's metadata records.
type modelDesc struct {
	// Name is the -model given: mlp, lenet5, cnn or a spec.
	Name string
	// Layers are resolved: every fc has its width.
	Layers []layerSpec
	// Shapes is the output shape of each layer (see resolve).
	Shapes [][]int
	In     netShape
	// ClassNames names the classes, if known.
	ClassNames []string
	// MLP is set for an MLP, built by nn.NewMLP as before layer specs.
	MLP *arch
	// legacy marks an MLP file without layer metadata, whose input is
	// known only as a number of pixels.
	legacy bool
}

// newModelDesc resolves the -model value name (a named model or a spec)
// for images and classes of in; hidden, activation and dropout make the
// mlp.
func newModelDesc(name string, in netShape, hidden []int, activation string, dropout float64) (*modelDesc, error) {
	spec := name
	var mlp *arch
	switch name {
	case "mlp", "":
		spec = mlpSpec(hidden, activation, dropout)
		mlp = &arch{In: in.C * in.H * in.W, Hidden: hidden, Out: in.Classes, Activation: activation, Dropout: dropout}
	default:
		if s, ok := namedModels[name]; ok {
			spec = s
		}
	}
	layers, err := parseSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("-model %q: %w", name, err)
	}
	d, err := describe(layers, in)
	if err != nil {
		return nil, fmt.Errorf("-model %q: %w", name, err)
	}
	d.Name, d.MLP = cmp.Or(name, "mlp"), mlp
	return d, nil
}

// describe resolves layers for in.
func describe(layers []layerSpec, in netShape) (*modelDesc, error) {
	resolved, shapes, err := resolve(layers, in)
	if err != nil {
		return nil, err
	}
	return &modelDesc{Layers: resolved, Shapes: shapes, In: in}, nil
}

// Spec is the resolved layer spec.
func (d *modelDesc) Spec() string { return formatSpec(d.Layers) }

// Dim is the number of values of one input image.
func (d *modelDesc) Dim() int { return d.In.C * d.In.H * d.In.W }

// String describes the model for the log.
func (d *modelDesc) String() string {
	s := fmt.Sprintf("%dx%dx%d -> %d", d.In.C, d.In.H, d.In.W, d.In.Classes)
	if d.MLP != nil {
		return d.MLP.String()
	}
	if _, named := namedModels[d.Name]; named {
		return fmt.Sprintf("%s (%s), %s", d.Name, d.Spec(), s)
	}
	return fmt.Sprintf("%s, %s", d.Spec(), s)
}

// digits reports whether the model takes 28x28 gray images, as MNIST's.
func (d *modelDesc) digits() bool { return d.In.C == 1 && d.In.H == 28 && d.In.W == 28 }

// imageInput gives a Sequential's first layer its [N, C, H, W] input from
// the [N, C*H*W] rows that batches hold. It stands for no PyTorch module.
type imageInput struct {
	c, h, w int
}

func (m imageInput) Forward(x *autograd.Var) *autograd.Var {
	return autograd.Reshape(x, x.Value.Dim(0), m.c, m.h, m.w)
}
func (imageInput) Parameters() []nn.Param { return nil }
func (imageInput) SetTraining(bool)       {}
func (imageInput) Span() []string         { return nil }

// build makes the network on dev, initialised from seed as PyTorch
// initialises each layer. An MLP is nn.NewMLP's; the generic builder gives
// the same one.
func (d *modelDesc) build(dev device.Device, seed uint64) (model *nn.Sequential, err error) {
	if d.MLP != nil {
		return d.MLP.mlp(dev, seed)
	}
	err = tensor.Catch(func() { model, err = d.buildLayers(dev, seed) })
	return model, err
}

// buildLayers builds the layers one by one, an activation after an fc
// fused into it as nn.NewMLP does and a relu after a bn fused into the
// batch norm, dropouts seeded as there.
func (d *modelDesc) buildLayers(dev device.Device, seed uint64) (*nn.Sequential, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6772616400)) // nn.NewMLP's stream
	var mods []nn.Module
	shape := []int{d.In.C, d.In.H, d.In.W}
	if d.Layers[0].Kind != kindFC {
		mods = append(mods, imageInput{d.In.C, d.In.H, d.In.W})
	} else {
		shape = []int{d.Dim()}
	}
	dropouts := 0
	for i, l := range d.Layers {
		var prev *nn.Linear
		var prevBN *nn.BatchNorm
		if n := len(mods); n > 0 && i > 0 {
			switch d.Layers[i-1].Kind {
			case kindFC:
				prev, _ = mods[n-1].(*nn.Linear)
			case kindBN:
				prevBN, _ = mods[n-1].(*nn.BatchNorm)
			}
		}
		// fuse makes the layer before apply act when it can, an fc any
		// activation and a bn a relu, and then returns nil; else m.
		fuse := func(act device.Activation, m nn.Module) nn.Module {
			if prev != nil && prev.Act == device.Identity {
				prev.WithActivation(act)
				return nil
			}
			if prevBN != nil && prevBN.Act == device.Identity && act == device.ActRelu {
				prevBN.WithActivation(act)
				return nil
			}
			return m
		}
		var m nn.Module
		switch l.Kind {
		case kindConv:
			m = nn.NewConv2d(dev, shape[0], l.N, l.K, nn.ConvOptions{Stride: l.S, Padding: l.P, Dilation: l.D, Groups: l.G, NoBias: l.NoBias}, rng)
		case kindBN:
			if len(shape) == 3 {
				m = nn.NewBatchNorm2d(dev, shape[0])
			} else {
				m = nn.NewBatchNorm1d(dev, shape[0])
			}
		case kindReLU:
			m = fuse(device.ActRelu, nn.ReLU{})
		case kindSigmoid:
			m = fuse(device.ActSigmoid, nn.Sigmoid{})
		case kindTanh:
			m = fuse(device.ActTanh, nn.Tanh{})
		case kindMaxPool:
			m = nn.NewMaxPool2d(l.K, l.S, l.P)
		case kindAvgPool:
			m = nn.NewAvgPool2d(l.K, l.S, l.P)
		case kindGAP:
			m = nn.NewAdaptiveAvgPool2d(1)
		case kindFlatten:
			m = nn.Flatten{}
		case kindFC:
			m = nn.NewLinear(dev, shape[0], l.N, true, rng)
		case kindDropout:
			m = nn.NewDropout(float32(l.Prob), seed+uint64(dropouts)+1)
			dropouts++
		default:
			return nil, fmt.Errorf("layer %d: unknown kind %q", i+1, l.Kind)
		}
		if m != nil {
			mods = append(mods, m)
		}
		shape = d.Shapes[i]
	}
	return nn.NewSequential(mods...), nil
}

// metadata records the description in a model file's metadata.
func (d *modelDesc) metadata() map[string]string {
	md := map[string]string{
		"format":  netFormat,
		mdLayers:  d.Spec(),
		mdInput:   fmt.Sprintf("%d,%d,%d", d.In.C, d.In.H, d.In.W),
		mdClasses: strconv.Itoa(d.In.Classes),
	}
	if d.Name != "" {
		md[mdModel] = d.Name
	}
	if d.ClassNames != nil {
		b, _ := json.Marshal(d.ClassNames)
		md[mdClassNames] = string(b)
	}
	if d.MLP != nil {
		for k, v := range d.MLP.metadata() {
			md[k] = v
		}
	}
	return md
}

// descFromMetadata rebuilds the description that metadata records, or
// says what is wrong with it.
func descFromMetadata(md map[string]string) (*modelDesc, error) {
	var problems []string
	in := netShape{}
	var dims intList
	if err := dims.Set(md[mdInput]); err != nil || len(dims) != 3 {
		problems = append(problems, fmt.Sprintf("metadata %s=%q: want C,H,W of the input images, as 1,28,28", mdInput, md[mdInput]))
	} else {
		in.C, in.H, in.W = dims[0], dims[1], dims[2]
	}
	n, err := strconv.Atoi(md[mdClasses])
	if err != nil || n < 1 || n > data.MaxClasses {
		problems = append(problems, fmt.Sprintf("metadata %s=%q: want the number of classes, 1 to %d", mdClasses, md[mdClasses], data.MaxClasses))
	}
	in.Classes = n
	layers, err := parseSpec(md[mdLayers])
	if err != nil {
		problems = append(problems, fmt.Sprintf("metadata %s=%q: %v", mdLayers, md[mdLayers], err))
	}
	var names []string
	if s, ok := md[mdClassNames]; ok {
		if err := json.Unmarshal([]byte(s), &names); err != nil || len(names) != in.Classes {
			problems = append(problems, fmt.Sprintf("metadata %s: want a JSON array of %d names", mdClassNames, in.Classes))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("cannot rebuild the model (%s): %s", plural(len(problems), "problem"), strings.Join(problems, "; "))
	}
	d, err := describe(layers, in)
	if err != nil {
		return nil, fmt.Errorf("cannot rebuild the model: metadata %s=%q: %w", mdLayers, md[mdLayers], err)
	}
	d.Name, d.ClassNames = md[mdModel], names
	return d, nil
}

// legacyDesc describes an MLP file without layer metadata (written before
// layer specs, or a PyTorch state_dict of Linear layers): its input is a
// square gray image when its width is a square, else a row of pixels.
func legacyDesc(a arch) *modelDesc {
	side := 1
	for side*side < a.In {
		side++
	}
	in := netShape{C: 1, H: 1, W: a.In, Classes: a.Out}
	if side*side == a.In {
		in.H, in.W = side, side
	}
	a.Dropout = 0
	d, err := describe(mustSpec(mlpSpec(a.Hidden, a.Activation, 0)), in)
	if err != nil {
		panic("cmd/gograd: an MLP's spec does not resolve: " + err.Error())
	}
	d.Name, d.MLP, d.legacy = "mlp", &a, true
	return d
}

// mustSpec parses a spec made by this program.
func mustSpec(s string) []layerSpec {
	l, err := parseSpec(s)
	if err != nil {
		panic("cmd/gograd: " + err.Error())
	}
	return l
}

// loadNet rebuilds a model file with layer metadata on dev and loads its
// tensors, which must be exactly the network's state_dict.
func loadNet(f *safetensors.File, dev device.Device) (*nn.Sequential, *modelDesc, error) {
	d, err := descFromMetadata(f.Metadata)
	if err != nil {
		return nil, nil, err
	}
	if n, first := nonFinite(f.Tensors); n > 0 {
		return nil, d, fmt.Errorf("%d weights are NaN or infinite (the first in %s): the training that wrote it diverged; train again with a lower -lr", n, first)
	}
	var model *nn.Sequential
	var loadErr error
	err = tensor.Catch(func() {
		if model, loadErr = d.build(dev, 0); loadErr == nil {
			loadErr = nn.LoadStateDict(model, f)
		}
	})
	if err = cmp.Or(err, loadErr); err != nil {
		return nil, d, fmt.Errorf("the tensors do not fit its layers %s: %w", d.Spec(), err)
	}
	return model, d, nil
}

// className names class k for output.
func (d *modelDesc) className(k int) string {
	if k < len(d.ClassNames) && !slices.Equal(d.ClassNames, data.DigitClasses) {
		return d.ClassNames[k]
	}
	return strconv.Itoa(k)
}

// classNames are the names that reports and plots give the classes: nil
// where the classes are digits or have no names, and their indices name
// them.
func (d *modelDesc) classNames() []string {
	if len(d.ClassNames) != d.In.Classes || slices.Equal(d.ClassNames, data.DigitClasses) {
		return nil
	}
	return d.ClassNames
}

// describe makes t.desc for the images and classes of train.
func (t *trainer) describe(train *data.Set) error {
	in := netShape{C: train.C(), H: train.Rows, W: train.Cols, Classes: train.NumClasses()}
	d, err := newModelDesc(t.cfg.Model, in, t.cfg.Hidden, t.cfg.Activation, t.cfg.Dropout)
	if err != nil {
		return err
	}
	d.ClassNames = train.Classes
	t.desc = d
	return nil
}

// params counts the parameters of the network, as a float64 so that
// absurd sizes do not overflow.
func (d *modelDesc) params() float64 {
	n := 0.0
	shape := []int{d.In.C, d.In.H, d.In.W}
	for i, l := range d.Layers {
		switch l.Kind {
		case kindConv:
			n += float64(l.N) * float64(shape[0]/l.G) * float64(l.K*l.K)
			if !l.NoBias {
				n += float64(l.N)
			}
		case kindBN:
			n += 2 * float64(shape[0])
		case kindFC:
			in := 1.0
			for _, s := range shape {
				in *= float64(s)
			}
			n += in*float64(l.N) + float64(l.N)
		}
		shape = d.Shapes[i]
	}
	return n
}

// netMemory estimates the bytes training d needs beyond its data, as
// trainMemory does for an MLP: weights, gradients and optimizer buffers
// with their host copies, and every layer's output for a training batch
// (forward and backward, with room for the convolutions' unfolded inputs)
// and an evaluation batch.
func netMemory(cfg *trainConfig, d *modelDesc) float64 {
	bufs := 0.0
	switch {
	case cfg.Optimizer == "adam" || cfg.Optimizer == "adamw":
		bufs = 2
	case cfg.Momentum > 0:
		bufs = 1
	}
	width := float64(d.Dim())
	for i, s := range d.Shapes {
		n := 1.0
		for _, v := range s {
			n *= float64(v)
		}
		if l := d.Layers[i]; l.Kind == kindConv {
			n *= 1 + float64(l.K*l.K) // the unfolded input of about the output's size times the kernel
		}
		width += n
	}
	acts := 4*float64(cfg.Batch)*width + 2*float64(evalBatch)*width
	return 4 * (d.params()*(2+bufs)*2 + acts)
}
