package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A layer spec describes a torch.nn.Sequential as a comma-separated list
// of layers, each a short token:
//
//	convN[kK][sS][pP][dD][gG][nb]  Conv2d to N channels: kernel K (default 3),
//	                               stride S (1), padding P (0), dilation D (1),
//	                               groups G (1); nb: no bias
//	bn                             BatchNorm2d after a convolution or pooling,
//	                               BatchNorm1d after flatten or fc
//	relu, sigmoid, tanh            activations
//	poolK[sS][pP], maxpoolK[sS][pP] MaxPool2d: kernel K, stride S (default K),
//	                               padding P (0)
//	avgpoolK[sS][pP]               AvgPool2d, likewise
//	gap                            AdaptiveAvgPool2d(1): global average pooling
//	flatten                        Flatten: [N, C, H, W] to [N, C*H*W]
//	fcN, fc                        Linear to N features; fc alone: to the
//	                               number of classes
//	dropoutP                       Dropout with probability P, as dropout0.5
//
// The input shape [C, H, W] and the number of classes come from the data;
// the last layer must give one output per class. A spec whose first layer
// is fc takes each image as a vector of C*H*W values (an MLP); a spec whose
// first layer is a convolution or a pooling takes [N, C, H, W] batches.
// An fc after a 4-D layer needs a flatten before it, as in PyTorch.
//
// Examples:
//
//	conv32k3p1,bn,relu,pool2,conv64k3p1,bn,relu,pool2,flatten,fc128,relu,fc
//	fc512,relu,fc256,relu,fc10

// layerKind is the kind of one layer of a spec.
type layerKind string

const (
	kindConv    layerKind = "conv"
	kindBN      layerKind = "bn"
	kindReLU    layerKind = "relu"
	kindSigmoid layerKind = "sigmoid"
	kindTanh    layerKind = "tanh"
	kindMaxPool layerKind = "pool"
	kindAvgPool layerKind = "avgpool"
	kindGAP     layerKind = "gap"
	kindFlatten layerKind = "flatten"
	kindFC      layerKind = "fc"
	kindDropout layerKind = "dropout"
)

// layerSpec is one parsed layer. Fields that a kind does not use are 0.
type layerSpec struct {
	Kind layerKind
	// N is the output channels of conv, the output features of fc (0: the
	// number of classes).
	N int
	// K, S, P, D, G are the kernel, stride, padding, dilation and groups of
	// conv and the pools.
	K, S, P, D, G int
	NoBias        bool
	// Prob is the probability of dropout.
	Prob float64
}

// Limits of a spec, so that a typo cannot ask for a network that does not
// fit in memory before its memory is estimated.
const (
	maxSpecLen    = 4096
	maxSpecLayers = 256
	maxSpecWidth  = 1 << 24
	maxSpecKernel = 1 << 10
)

// String formats l as its canonical token: parseSpec(l.String()) gives l.
func (l layerSpec) String() string {
	switch l.Kind {
	case kindConv:
		s := fmt.Sprintf("conv%dk%d", l.N, l.K)
		if l.S != 1 {
			s += fmt.Sprintf("s%d", l.S)
		}
		if l.P != 0 {
			s += fmt.Sprintf("p%d", l.P)
		}
		if l.D != 1 {
			s += fmt.Sprintf("d%d", l.D)
		}
		if l.G != 1 {
			s += fmt.Sprintf("g%d", l.G)
		}
		if l.NoBias {
			s += "nb"
		}
		return s
	case kindMaxPool, kindAvgPool:
		s := fmt.Sprintf("%s%d", l.Kind, l.K)
		if l.S != l.K {
			s += fmt.Sprintf("s%d", l.S)
		}
		if l.P != 0 {
			s += fmt.Sprintf("p%d", l.P)
		}
		return s
	case kindFC:
		if l.N == 0 {
			return "fc"
		}
		return fmt.Sprintf("fc%d", l.N)
	case kindDropout:
		return "dropout" + strconv.FormatFloat(l.Prob, 'g', -1, 64)
	}
	return string(l.Kind)
}

// formatSpec joins layers into a spec.
func formatSpec(layers []layerSpec) string {
	s := make([]string, len(layers))
	for i, l := range layers {
		s[i] = l.String()
	}
	return strings.Join(s, ",")
}

// namedModels are the models -model knows by name, as layer specs; mlp is
// built from -hidden, -activation and -dropout instead (see mlpSpec).
var namedModels = map[string]string{
	// LeNet-5 as bench/torch_mnist_cnn.py defines it.
	"lenet5": "conv6k5p2,relu,pool2,conv16k5,relu,pool2,flatten,fc120,relu,fc84,relu,fc",
	// A small VGG-style network with BatchNorm, as bench/torch_mnist_cnn.py
	// defines it.
	"cnn": "conv32k3p1,bn,relu,conv32k3p1,bn,relu,pool2,conv64k3p1,bn,relu,conv64k3p1,bn,relu,pool2,flatten,fc128,relu,fc",
}

// modelNames lists the names -model accepts besides a spec.
var modelNames = []string{"mlp", "lenet5", "cnn"}

// mlpSpec is the spec of the MLP of -hidden, -activation and -dropout.
func mlpSpec(hidden []int, activation string, dropout float64) string {
	var s []string
	for _, h := range hidden {
		s = append(s, fmt.Sprintf("fc%d", h), activation)
		if dropout > 0 {
			s = append(s, "dropout"+strconv.FormatFloat(dropout, 'g', -1, 64))
		}
	}
	return strings.Join(append(s, "fc"), ",")
}

// parseSpec parses a layer spec (see the grammar above).
func parseSpec(spec string) ([]layerSpec, error) {
	if len(spec) > maxSpecLen {
		return nil, fmt.Errorf("layer spec of %d bytes: at most %d", len(spec), maxSpecLen)
	}
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("empty layer spec")
	}
	tokens := strings.Split(spec, ",")
	if len(tokens) > maxSpecLayers {
		return nil, fmt.Errorf("layer spec of %d layers: at most %d", len(tokens), maxSpecLayers)
	}
	layers := make([]layerSpec, 0, len(tokens))
	for i, tok := range tokens {
		l, err := parseLayer(strings.TrimSpace(tok))
		if err != nil {
			return nil, fmt.Errorf("layer %d %q: %w", i+1, strings.TrimSpace(tok), err)
		}
		layers = append(layers, l)
	}
	return layers, nil
}

// parseLayer parses one token of a spec.
func parseLayer(tok string) (layerSpec, error) {
	switch tok {
	case "bn", "relu", "sigmoid", "tanh", "gap", "flatten":
		return layerSpec{Kind: layerKind(tok)}, nil
	case "fc":
		return layerSpec{Kind: kindFC}, nil
	case "":
		return layerSpec{}, errors.New("empty layer (two commas in a row?)")
	}
	switch {
	case strings.HasPrefix(tok, "dropout"):
		p, err := strconv.ParseFloat(tok[len("dropout"):], 64)
		if err != nil || !(p >= 0 && p < 1) {
			return layerSpec{}, errors.New("want dropoutP with a probability P in [0, 1), as dropout0.5")
		}
		return layerSpec{Kind: kindDropout, Prob: p}, nil
	case strings.HasPrefix(tok, "fc"):
		n, rest, err := number(tok[2:])
		if err != nil || rest != "" || n < 1 || n > maxSpecWidth {
			return layerSpec{}, fmt.Errorf("want fcN with N features in [1, %d], or fc for one per class", maxSpecWidth)
		}
		return layerSpec{Kind: kindFC, N: n}, nil
	case strings.HasPrefix(tok, "conv"):
		return parseConv(tok[4:])
	case strings.HasPrefix(tok, "maxpool"):
		return parsePool(kindMaxPool, tok[7:])
	case strings.HasPrefix(tok, "avgpool"):
		return parsePool(kindAvgPool, tok[7:])
	case strings.HasPrefix(tok, "pool"):
		return parsePool(kindMaxPool, tok[4:])
	}
	return layerSpec{}, errors.New("unknown layer: want convN[kK][sS][pP][dD][gG][nb], bn, relu, sigmoid, tanh, poolK[sS][pP], maxpoolK, avgpoolK, gap, flatten, fcN, fc or dropoutP")
}

// number reads the decimal number at the start of s, at most 7 digits.
func number(s string) (n int, rest string, err error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 7 {
		return 0, s, errors.New("want a number")
	}
	n, _ = strconv.Atoi(s[:i])
	return n, s[i:], nil
}

// options reads the [xN]... suffixes of a conv or pool token: each letter
// in allowed once, followed by a number; a final "nb" when nb is allowed.
func options(s, allowed string, nb bool) (map[byte]int, bool, error) {
	opts := map[byte]int{}
	noBias := false
	for s != "" {
		if nb && s == "nb" {
			noBias = true
			break
		}
		c := s[0]
		if !strings.ContainsRune(allowed, rune(c)) {
			return nil, false, fmt.Errorf("unexpected %q: want options %s each followed by a number", s, strings.Join(strings.Split(allowed, ""), ", "))
		}
		if _, dup := opts[c]; dup {
			return nil, false, fmt.Errorf("option %c given twice", c)
		}
		n, rest, err := number(s[1:])
		if err != nil {
			return nil, false, fmt.Errorf("option %c: want a number after it", c)
		}
		opts[c] = n
		s = rest
	}
	return opts, noBias, nil
}

// parseConv parses what follows "conv".
func parseConv(s string) (layerSpec, error) {
	n, rest, err := number(s)
	if err != nil || n < 1 || n > maxSpecWidth {
		return layerSpec{}, fmt.Errorf("want convN with N output channels in [1, %d]", maxSpecWidth)
	}
	opts, noBias, err := options(rest, "kspdg", true)
	if err != nil {
		return layerSpec{}, err
	}
	l := layerSpec{Kind: kindConv, N: n, K: 3, S: 1, D: 1, G: 1, NoBias: noBias}
	if v, ok := opts['k']; ok {
		l.K = v
	}
	if v, ok := opts['s']; ok {
		l.S = v
	}
	l.P = opts['p']
	if v, ok := opts['d']; ok {
		l.D = v
	}
	if v, ok := opts['g']; ok {
		l.G = v
	}
	switch {
	case l.K < 1 || l.K > maxSpecKernel:
		return l, fmt.Errorf("kernel %d: want 1 to %d", l.K, maxSpecKernel)
	case l.S < 1 || l.S > maxSpecKernel:
		return l, fmt.Errorf("stride %d: want 1 to %d", l.S, maxSpecKernel)
	case l.P > maxSpecKernel:
		return l, fmt.Errorf("padding %d: want 0 to %d", l.P, maxSpecKernel)
	case l.D < 1 || l.D > maxSpecKernel:
		return l, fmt.Errorf("dilation %d: want 1 to %d", l.D, maxSpecKernel)
	case l.G < 1 || n%l.G != 0:
		return l, fmt.Errorf("groups %d: want a divisor of the %d output channels", l.G, n)
	}
	return l, nil
}

// parsePool parses what follows "pool", "maxpool" or "avgpool".
func parsePool(kind layerKind, s string) (layerSpec, error) {
	k, rest, err := number(s)
	if err != nil || k < 1 || k > maxSpecKernel {
		return layerSpec{}, fmt.Errorf("want %sK with a kernel K in [1, %d]", kind, maxSpecKernel)
	}
	opts, _, err := options(rest, "sp", false)
	if err != nil {
		return layerSpec{}, err
	}
	l := layerSpec{Kind: kind, K: k, S: k, P: opts['p']}
	if v, ok := opts['s']; ok {
		l.S = v
	}
	switch {
	case l.S < 1 || l.S > maxSpecKernel:
		return l, fmt.Errorf("stride %d: want 1 to %d", l.S, maxSpecKernel)
	case 2*l.P > l.K:
		return l, fmt.Errorf("padding %d: at most half the kernel %d, as PyTorch requires", l.P, l.K)
	}
	return l, nil
}

// netShape is the input of a network: [C, H, W] images and classes.
type netShape struct {
	C, H, W, Classes int
}

// resolve checks that layers can take in's images and give one output per
// class, and returns them with every fc's width filled in (fc alone: the
// classes). It also returns the shape after each layer, as [C, H, W] while
// the tensor is 4-D and [F] after flatten or fc.
func resolve(layers []layerSpec, in netShape) ([]layerSpec, [][]int, error) {
	if in.C < 1 || in.H < 1 || in.W < 1 || in.Classes < 1 {
		return nil, nil, fmt.Errorf("input %dx%dx%d with %d classes: want positive sizes", in.C, in.H, in.W, in.Classes)
	}
	if in.C > maxSpecWidth || in.H > maxSpecWidth || in.W > maxSpecWidth || in.Classes > maxSpecWidth || int64(in.C)*int64(in.H)*int64(in.W) > 1<<31 {
		return nil, nil, fmt.Errorf("input %dx%dx%d with %d classes: too large", in.C, in.H, in.W, in.Classes)
	}
	out := make([]layerSpec, len(layers))
	copy(out, layers)
	var shapes [][]int
	shape := []int{in.C, in.H, in.W}
	if len(layers) > 0 && layers[0].Kind == kindFC {
		shape = []int{in.C * in.H * in.W} // an MLP takes vectors
	}
	fail := func(i int, format string, args ...any) ([]layerSpec, [][]int, error) {
		return nil, nil, fmt.Errorf("layer %d %q (input %s): %s", i+1, layers[i], shapeText(shape), fmt.Sprintf(format, args...))
	}
	for i := range out {
		l := &out[i]
		switch l.Kind {
		case kindConv, kindMaxPool, kindAvgPool:
			if len(shape) != 3 {
				return fail(i, "needs [C, H, W] images, not the vectors of an fc or flatten")
			}
			c, h, w := shape[0], shape[1], shape[2]
			if l.Kind == kindConv {
				if c%l.G != 0 {
					return fail(i, "groups %d do not divide the %d input channels", l.G, c)
				}
				c = l.N
			}
			ext := l.D*(l.K-1) + 1
			if l.Kind != kindConv {
				ext = l.K
			}
			h = (h+2*l.P-ext)/l.S + 1
			w = (w+2*l.P-ext)/l.S + 1
			if shape[1]+2*l.P < ext || shape[2]+2*l.P < ext {
				return fail(i, "the kernel spans %d pixels, more than the padded input", ext)
			}
			shape = []int{c, h, w}
		case kindGAP:
			if len(shape) != 3 {
				return fail(i, "needs [C, H, W] images")
			}
			shape = []int{shape[0], 1, 1}
		case kindFlatten:
			if len(shape) != 3 {
				return fail(i, "flattens [C, H, W] images, but its input is already flat")
			}
			shape = []int{shape[0] * shape[1] * shape[2]}
		case kindFC:
			if len(shape) != 1 {
				return fail(i, "needs vectors: put a flatten before it")
			}
			if l.N == 0 {
				l.N = in.Classes
			}
			if int64(shape[0]) > 1<<40 {
				return fail(i, "%d input features are too many", shape[0])
			}
			shape = []int{l.N}
		case kindBN, kindReLU, kindSigmoid, kindTanh, kindDropout:
		default:
			return fail(i, "unknown layer kind %q", l.Kind)
		}
		if n := shape[0]; len(shape) == 3 && int64(n)*int64(shape[1])*int64(shape[2]) > 1<<28 {
			return fail(i, "its output %s is too large", shapeText(shape))
		}
		shapes = append(shapes, shape)
	}
	if len(shape) != 1 || shape[0] != in.Classes {
		return nil, nil, fmt.Errorf("the last layer gives %s, but the data has %d classes: end with fc (or fc%d)", shapeText(shape), in.Classes, in.Classes)
	}
	return out, shapes, nil
}

// shapeText formats a shape as 32x14x14 or 128.
func shapeText(s []int) string {
	p := make([]string, len(s))
	for i, n := range s {
		p[i] = strconv.Itoa(n)
	}
	return strings.Join(p, "x")
}
