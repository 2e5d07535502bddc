package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/safetensors"
)

// The generic builder makes, for an MLP's spec, the very model nn.NewMLP
// makes: the same modules, names and initial weights.
func TestBuildMLPSpecMatchesNewMLP(t *testing.T) {
	dev := device.NewCPU(1)
	in := netShape{C: 1, H: 28, W: 28, Classes: 10}
	for _, c := range []struct {
		hidden  []int
		act     string
		dropout float64
	}{{[]int{32, 16}, "relu", 0}, {[]int{8}, "tanh", 0.3}, {[]int{5, 6, 7}, "sigmoid", 0.1}} {
		want, err := newModelDesc("mlp", in, c.hidden, c.act, c.dropout)
		if err != nil {
			t.Fatal(err)
		}
		generic := *want
		generic.MLP = nil
		a, err := want.build(dev, 7)
		if err != nil {
			t.Fatal(err)
		}
		b, err := generic.build(dev, 7)
		if err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Errorf("%s: the models differ:\n%v\n%v", want.Spec(), a, b)
		}
		sa, sb := nn.StateDict(a), nn.StateDict(b)
		if len(sa) != len(sb) {
			t.Fatalf("%s: %d and %d tensors", want.Spec(), len(sa), len(sb))
		}
		for i := range sa {
			if sa[i].Name != sb[i].Name || !slices.Equal(sa[i].Data, sb[i].Data) {
				t.Errorf("%s: tensor %s differs from %s", want.Spec(), sa[i].Name, sb[i].Name)
			}
		}
	}
}

// A model's description survives its metadata, and the state_dict names
// of the named models are PyTorch's.
func TestModelDescMetadata(t *testing.T) {
	dev := device.NewCPU(1)
	for _, name := range []string{"cnn", "lenet5", "conv4k3s2p1,bn,relu,avgpool2,gap,flatten,fc6,bn,tanh,dropout0.5,fc"} {
		d, err := newModelDesc(name, netShape{C: 3, H: 28, W: 20, Classes: 4}, nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		d.ClassNames = []string{"a", "b", "c", "d,e"}
		back, err := descFromMetadata(d.metadata())
		if err != nil {
			t.Fatal(err)
		}
		if back.Spec() != d.Spec() || back.In != d.In || !slices.Equal(back.ClassNames, d.ClassNames) || back.Name != name {
			t.Errorf("%s: metadata gives %+v, want %+v", name, back, d)
		}
		m, err := d.build(dev, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n := float64(nn.NumParams(m)); n != d.params() {
			t.Errorf("%s: %v parameters, params() says %v", name, n, d.params())
		}
	}
	d, _ := newModelDesc("cnn", netShape{C: 1, H: 28, W: 28, Classes: 10}, nil, "", 0)
	m, _ := d.build(dev, 1)
	var names []string
	for _, ts := range nn.StateDict(m) {
		names = append(names, ts.Name)
	}
	want := "0.weight 0.bias 3.weight 3.bias 7.weight 7.bias 10.weight 10.bias 15.weight 15.bias 17.weight 17.bias"
	got := strings.Join(names, " ")
	for _, w := range strings.Fields(want) {
		if !strings.Contains(" "+got+" ", " "+w+" ") {
			t.Errorf("cnn state_dict lacks %s: %s", w, got)
		}
	}
	for _, w := range []string{"1.running_mean", "1.running_var", "1.num_batches_tracked", "11.weight"} {
		if !slices.Contains(names, w) {
			t.Errorf("cnn state_dict lacks %s: %s", w, got)
		}
	}
	if nn.NumParams(m) != 468202 {
		t.Errorf("cnn has %d parameters, PyTorch's 468202", nn.NumParams(m))
	}
	for _, bad := range []map[string]string{
		{"layers": "conv8,fc", "input": "1,28,28", "classes": "10"},
		{"layers": "conv8,flatten,fc10", "input": "1,28", "classes": "10"},
		{"layers": "conv8,flatten,fc10", "input": "1,28,28", "classes": "0"},
		{"layers": "conv8,flatten,fc3", "input": "1,28,28", "classes": "3", "class_names": `["a"]`},
	} {
		if _, err := descFromMetadata(bad); err == nil {
			t.Errorf("metadata %v accepted", bad)
		}
	}
}

// writePNGs writes n images of each class into dir/<class>/: class k is a
// bright square at a place of its own on a noisy dark background, in
// colour, so that a small network learns it in a few steps.
func writePNGs(t *testing.T, dir string, classes []string, n, size int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 5))
	for k, class := range classes {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			img := image.NewNRGBA(image.Rect(0, 0, size+rng.IntN(5), size+rng.IntN(5)))
			w, h := img.Bounds().Dx(), img.Bounds().Dy()
			x0, y0 := (k%2)*w/2, (k/2)*h/2
			for y := range h {
				for x := range w {
					c := color.NRGBA{uint8(rng.IntN(40)), uint8(rng.IntN(40)), uint8(rng.IntN(40)), 255}
					if x >= x0 && x < x0+w/2 && y >= y0 && y < y0+h/2 {
						c = color.NRGBA{uint8(200 + rng.IntN(55)), uint8(60 * k), 255 - uint8(60*k), 255}
					}
					img.Set(x, y, c)
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, class, "img"+string(rune('a'+i%26))+string(rune('a'+i/26))+".png"), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// An image folder of generated PNGs, one of them broken, trains a small
// conv net end to end: the broken file is reported by name and the run
// goes on; eval and predict rebuild the model from its file alone and
// agree with the training's test accuracy.
func TestImageFolderEndToEnd(t *testing.T) {
	root := t.TempDir()
	classes := []string{"ant", "bee", "cat", "dog"}
	writePNGs(t, filepath.Join(root, "train"), classes, 40, 16, 1)
	writePNGs(t, filepath.Join(root, "test"), classes, 10, 16, 2)
	bad := filepath.Join(root, "train", "cat", "broken.png")
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	r := gograd("train", "-data", root, "-image-size", "12x12", "-channels", "3", "-model", "conv8k3p1,bn,relu,pool2,conv8k3p1,relu,pool2,flatten,fc",
		"-batch", "16", "-epochs", "6", "-lr", "0.05", "-val", "0", "-augment", "crop1,flip", "-out", run)
	if r.code != 0 {
		t.Fatalf("train: %v", r)
	}
	if !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "1 file could not be read") {
		t.Errorf("train does not name the broken file %s: %s", bad, r.stderr)
	}
	for _, w := range []string{"160 training, 0 validation, 40 test images of 3x12x12", "augmentation: random crops with 1 pixel of padding, random horizontal flips"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("train output lacks %q:\n%s", w, r.stdout)
		}
	}
	acc := parsePct(t, doneLine, r.stdout)
	if acc < 0.7 {
		t.Errorf("test accuracy %v after 6 epochs, want at least 70%% on four separable classes", acc)
	}
	model := filepath.Join(run, modelFile)
	f, err := safetensors.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"format": netFormat, "input": "3,12,12", "classes": "4", "class_names": `["ant","bee","cat","dog"]`,
		"layers": "conv8k3p1,bn,relu,pool2,conv8k3p1,relu,pool2,flatten,fc4"} {
		if f.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, f.Metadata[k], v)
		}
	}
	r = gograd("eval", "-model", model)
	if r.code != 0 {
		t.Fatalf("eval: %v", r)
	}
	if got := parsePct(t, testAccLine, r.stdout); got != acc {
		t.Errorf("eval gives %v, train %v", got, acc)
	}
	r = gograd("predict", "-model", model, filepath.Join(root, "test", "dog", "imgaa.png"), bad)
	if r.code != 1 || !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "1 of 2 images could not be read") {
		t.Errorf("predict with a broken file: %v", r)
	}
	if !regexp.MustCompile(`imgaa.png: (ant|bee|cat|dog) \(`).MatchString(r.stdout) {
		t.Errorf("predict does not name a class: %v", r)
	}
}

func TestBatchCosine(t *testing.T) {
	for _, c := range []struct {
		step, total int
		want        float32
	}{{0, 10, 0.05}, {5, 10, 0.025}, {10, 10, 0}} {
		if got := batchCosine(0.05, c.step, c.total); got < c.want-1e-7 || got > c.want+1e-7 {
			t.Errorf("batchCosine(0.05, %d, %d) = %v, want %v", c.step, c.total, got, c.want)
		}
	}
}

// A model file written before layer specs (MLP metadata only) still loads,
// as an MLP of 28x28 images.
func TestLoadOldMLPFile(t *testing.T) {
	dev := device.NewCPU(1)
	m, err := nn.NewMLP(dev, nn.MLPConfig{In: 784, Hidden: []int{16}, Out: 10, Activation: "tanh", Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.safetensors")
	md := map[string]string{"format": modelFormat, "in": "784", "hidden": "16", "out": "10", "activation": "tanh", "dropout": "0"}
	if err := nn.Save(path, m, md); err != nil {
		t.Fatal(err)
	}
	got, d, _, err := loadModel(path, dev, "")
	if err != nil {
		t.Fatal(err)
	}
	if !d.legacy || d.In != (netShape{C: 1, H: 28, W: 28, Classes: 10}) || d.String() != "784-16-10 tanh" {
		t.Errorf("old MLP file described as %+v (%s)", d, d)
	}
	want, have := nn.StateDict(m), nn.StateDict(got)
	for i := range want {
		if want[i].Name != have[i].Name || !slices.Equal(want[i].Data, have[i].Data) {
			t.Errorf("tensor %s differs", want[i].Name)
		}
	}
}

// A bn followed by a relu builds one nn.BatchNorm that fuses the ReLU, as
// an fc fuses its activation; a bn followed by another activation, or a
// relu after anything else, stays a module of its own. Either way the
// state_dict numbers each layer of the spec as torch.nn.Sequential does
// (layer k's tensors are "k.*", and only layers with parameters have
// any), and the model prints a line per layer.
func TestBuildFusesBatchNormRelu(t *testing.T) {
	dev := device.NewCPU(1)
	in := netShape{C: 1, H: 8, W: 8, Classes: 3}
	for _, c := range []struct {
		spec      string
		fusedBNs  int
		unfusedBN int
	}{
		{"cnn", 4, 0},
		{"conv4k3p1,bn,relu,bn,sigmoid,conv4k3p1,relu,bn,tanh,flatten,fc8,bn,relu,fc", 2, 2},
	} {
		d, err := newModelDesc(c.spec, in, nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		model, err := d.build(dev, 1)
		if err != nil {
			t.Fatal(err)
		}
		fused, unfused := 0, 0
		for i, m := range model.Modules {
			bn, ok := m.(*nn.BatchNorm)
			if !ok {
				continue
			}
			switch bn.Act {
			case device.ActRelu:
				fused++
			case device.Identity:
				unfused++
				if i+1 < len(model.Modules) {
					if _, relu := model.Modules[i+1].(nn.ReLU); relu {
						t.Errorf("%s: module %d, a BatchNorm, is followed by an unfused ReLU", c.spec, i)
					}
				}
			}
		}
		if fused != c.fusedBNs || unfused != c.unfusedBN {
			t.Errorf("%s: %d batch norms fuse a ReLU and %d do not, want %d and %d", c.spec, fused, unfused, c.fusedBNs, c.unfusedBN)
		}
		withParams := map[int]bool{}
		for _, s := range nn.StateDict(model) {
			var k int
			if _, err := fmt.Sscanf(s.Name, "%d.", &k); err != nil || k >= len(d.Layers) {
				t.Fatalf("%s: tensor %s names no layer", c.spec, s.Name)
			}
			withParams[k] = true
			kind := d.Layers[k].Kind
			if kind != kindConv && kind != kindBN && kind != kindFC {
				t.Errorf("%s: tensor %s belongs to layer %d, a %s", c.spec, s.Name, k, kind)
			}
		}
		for k, l := range d.Layers {
			if has := l.Kind == kindConv || l.Kind == kindBN || l.Kind == kindFC; has != withParams[k] {
				t.Errorf("%s: layer %d, a %s, has tensors %v", c.spec, k, l.Kind, withParams[k])
			}
		}
		if lines := strings.Count(model.String(), "\n  ("); lines != len(d.Layers) {
			t.Errorf("%s: the model prints %d modules for %d layers:\n%v", c.spec, lines, len(d.Layers), model)
		}
		if strings.Count(model.String(), "BatchNorm") != c.fusedBNs+c.unfusedBN || !strings.Contains(model.String(), "track_running_stats=True)\n  (") {
			t.Errorf("%s: the model prints\n%v", c.spec, model)
		}
	}
}
