package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSpecCanonical(t *testing.T) {
	for _, c := range []struct{ in, canon string }{
		{"conv32k3p1,bn,relu,pool2,flatten,fc128,relu,fc", "conv32k3p1,bn,relu,pool2,flatten,fc128,relu,fc"},
		{"conv8", "conv8k3"},
		{"conv8k5s2p2d2g4nb", "conv8k5s2p2d2g4nb"},
		{"conv8p1k5", "conv8k5p1"},
		{" maxpool3s2p1 , avgpool2s2, gap", "pool3s2p1,avgpool2,gap"},
		{"fc10,dropout0.25,tanh,sigmoid", "fc10,dropout0.25,tanh,sigmoid"},
	} {
		layers, err := parseSpec(c.in)
		if err != nil {
			t.Errorf("parseSpec(%q): %v", c.in, err)
			continue
		}
		if got := formatSpec(layers); got != c.canon {
			t.Errorf("parseSpec(%q) formats as %q, want %q", c.in, got, c.canon)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "empty layer spec"},
		{"conv,relu", `layer 1 "conv": want convN`},
		{"relu,,fc", "layer 2 \"\": empty layer"},
		{"conv8k", "option k: want a number"},
		{"conv8k3k3", "option k given twice"},
		{"conv8x3", `unexpected "x3"`},
		{"conv6g4", "groups 4: want a divisor of the 6 output channels"},
		{"pool3p2", "padding 2: at most half the kernel 3"},
		{"fc0", "want fcN"},
		{"dropout1", "dropoutP"},
		{"softmax", "unknown layer"},
		{strings.Repeat("relu,", 300) + "fc", "at most 256"},
	} {
		_, err := parseSpec(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseSpec(%.40q) = %v, want an error containing %q", c.in, err, c.want)
		}
	}
}

func TestResolveShapes(t *testing.T) {
	mnist := netShape{C: 1, H: 28, W: 28, Classes: 10}
	layers, _ := parseSpec(namedModels["cnn"])
	got, shapes, err := resolve(layers, mnist)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(formatSpec(got), "flatten,fc128,relu,fc10") {
		t.Errorf("cnn resolves to %s", formatSpec(got))
	}
	// The flatten gives 64x7x7 = 3136 inputs to the first fc, as in
	// bench/torch_mnist_cnn.py.
	if i := slices.IndexFunc(got, func(l layerSpec) bool { return l.Kind == kindFlatten }); !slices.Equal(shapes[i], []int{3136}) {
		t.Errorf("cnn flattens to %v, want [3136]", shapes[i])
	}
	layers, _ = parseSpec(namedModels["lenet5"])
	_, shapes, err = resolve(layers, mnist)
	if err != nil {
		t.Fatal(err)
	}
	if i := 6; !slices.Equal(shapes[i], []int{400}) {
		t.Errorf("lenet5 flattens to %v, want [400]", shapes[i])
	}
	// Strides, dilation and a non-square RGB input.
	layers, _ = parseSpec("conv4k3s2p1d2,pool3s2p1,gap,flatten,fc")
	_, shapes, err = resolve(layers, netShape{C: 3, H: 17, W: 10, Classes: 5})
	if err != nil {
		t.Fatal(err)
	}
	// conv: (17+2-5)/2+1 = 8, (10+2-5)/2+1 = 4; pool: (8+2-3)/2+1 = 4, (4+2-3)/2+1 = 2.
	if !slices.Equal(shapes[0], []int{4, 8, 4}) || !slices.Equal(shapes[1], []int{4, 4, 2}) || !slices.Equal(shapes[2], []int{4, 1, 1}) {
		t.Errorf("shapes %v", shapes)
	}
	for _, c := range []struct {
		spec string
		in   netShape
		want string
	}{
		{"conv8,fc", mnist, "put a flatten before it"},
		{"fc32,conv8", mnist, "needs [C, H, W] images"},
		{"conv8k29", mnist, "more than the padded input"},
		{"conv8,flatten,fc7", mnist, "the data has 10 classes: end with fc"},
		{"conv8g2,flatten,fc", mnist, "groups 2 do not divide the 1 input channels"},
		{"flatten,flatten,fc", mnist, "already flat"},
	} {
		layers, err := parseSpec(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if _, _, err := resolve(layers, c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("resolve(%s) = %v, want an error containing %q", c.spec, err, c.want)
		}
	}
}

func TestMLPSpec(t *testing.T) {
	if got := mlpSpec([]int{512, 256}, "relu", 0); got != "fc512,relu,fc256,relu,fc" {
		t.Errorf("mlpSpec = %q", got)
	}
	if got := mlpSpec([]int{64}, "tanh", 0.2); got != "fc64,tanh,dropout0.2,fc" {
		t.Errorf("mlpSpec = %q", got)
	}
}

// FuzzParseSpec feeds arbitrary specs to parseSpec and resolve. They must
// not panic; an accepted spec formats to a canonical form that parses to
// the same layers; errors are one line.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{namedModels["cnn"], namedModels["lenet5"], "fc512,relu,fc256,relu,fc10",
		"conv8k5s2p2d2g4nb,maxpool3s2p1,avgpool2,gap,flatten,dropout0.5,fc", "conv,,", "pool0", "fc99999999", "conv1k1s1p1d1g1nbx"} {
		f.Add(s, 1, 28, 28, 10)
	}
	f.Fuzz(func(t *testing.T, spec string, c, h, w, classes int) {
		layers, err := parseSpec(spec)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		canon := formatSpec(layers)
		again, err := parseSpec(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, spec, err)
		}
		if !slices.Equal(layers, again) {
			t.Fatalf("%q parses to %v, its canonical form %q to %v", spec, layers, canon, again)
		}
		in := netShape{C: c%4 + 1, H: h % 300, W: w % 300, Classes: classes % 300}
		got, shapes, err := resolve(layers, in)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		if len(got) != len(layers) || len(shapes) != len(layers) {
			t.Fatalf("resolve gave %d layers and %d shapes for %d", len(got), len(shapes), len(layers))
		}
		for i, s := range shapes {
			for _, n := range s {
				if n < 1 {
					t.Fatalf("layer %d of %q gives shape %v", i+1, canon, s)
				}
			}
		}
	})
}

// FuzzDescMetadata feeds arbitrary layer metadata to descFromMetadata,
// which eval and predict use to rebuild a network. It must not panic; an
// accepted description must survive its own metadata; errors are one line.
func FuzzDescMetadata(f *testing.F) {
	f.Add(namedModels["cnn"], "1,28,28", "10", "")
	f.Add("conv8k3s2,bn,relu,gap,flatten,fc3", "3,17,9", "3", `["a","b","c"]`)
	f.Add("fc10", "1,1,784", "10", "[]")
	f.Add("conv8,flatten,fc", "1,x,28", "-1", `{"a":1}`)
	f.Fuzz(func(t *testing.T, layers, input, classes, names string) {
		md := map[string]string{mdLayers: layers, mdInput: input, mdClasses: classes}
		if names != "" {
			md[mdClassNames] = names
		}
		d, err := descFromMetadata(md)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		back, err := descFromMetadata(d.metadata())
		if err != nil {
			t.Fatalf("the metadata of %+v does not load: %v", d, err)
		}
		if back.Spec() != d.Spec() || back.In != d.In || !slices.Equal(back.ClassNames, d.ClassNames) {
			t.Fatalf("%+v comes back as %+v", d, back)
		}
	})
}
