package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gograd/gograd/data"
)

// imageSize is the -image-size flag: HxW, or one number for a square.
type imageSize struct{ H, W int }

func (s *imageSize) String() string {
	if s == nil || s.H == 0 {
		return ""
	}
	return fmt.Sprintf("%dx%d", s.H, s.W)
}

func (s *imageSize) Set(v string) error {
	hs, ws, ok := strings.Cut(v, "x")
	if !ok {
		ws = hs
	}
	h, err1 := strconv.Atoi(hs)
	w, err2 := strconv.Atoi(ws)
	if err1 != nil || err2 != nil || h < 1 || w < 1 || h > data.MaxImageSide || w > data.MaxImageSide {
		return fmt.Errorf("%q: want HxW, as 32x32, with sides from 1 to %d", v, data.MaxImageSide)
	}
	s.H, s.W = h, w
	return nil
}

// folderOptions are the options of an image folder: images resized to
// size (28x28 when it is zero) with channels channels (1 when 0).
func folderOptions(size imageSize, channels int, seed uint64) data.FolderOptions {
	if size.H == 0 {
		size = imageSize{28, 28}
	}
	return data.FolderOptions{Height: size.H, Width: size.W, Channels: max(channels, 1), Seed: seed}
}

// resolveData loads the data of a -data flag, reporting every file of an
// image folder that could not be read on stderr, by name.
func resolveData(spec string, opts data.FolderOptions, stderr io.Writer) (*data.Dataset, error) {
	ds, err := data.Resolve(spec, opts)
	if err != nil {
		return nil, err
	}
	for _, f := range ds.Skipped {
		fmt.Fprintf(stderr, "gograd: skipped %s: %s\n", f.Path, strings.TrimPrefix(f.Err.Error(), "data: "))
	}
	if len(ds.Skipped) > 0 {
		fmt.Fprintf(stderr, "gograd: %s could not be read and %s left out\n", plural(len(ds.Skipped), "file"),
			map[bool]string{true: "is", false: "are"}[len(ds.Skipped) == 1])
	}
	return ds, nil
}

// evalData loads the test set of spec for the model d: the data the model
// was trained on when spec is empty, else MNIST; an image folder is resized
// to the model's input. It checks that the images and classes fit d.
func evalData(spec string, d *modelDesc, stderr io.Writer, md map[string]string) (*data.Set, string, error) {
	if spec == "" {
		spec = md[mdData]
	}
	var (
		test *data.Set
		dir  string
		err  error
	)
	switch spec {
	case "", "mnist", "fashion-mnist":
		find := data.DefaultMNISTDir
		if spec == "fashion-mnist" {
			find = data.DefaultFashionMNISTDir
		}
		if dir, err = find(); err != nil {
			return nil, "", err
		}
		if test, err = data.LoadMNISTTest(dir); err != nil {
			return nil, "", err
		}
	default:
		if isTestIDXDir(spec) {
			if test, err = data.LoadMNISTTest(spec); err != nil {
				return nil, "", err
			}
			dir = spec
			break
		}
		opts := data.FolderOptions{Height: d.In.H, Width: d.In.W, Channels: d.In.C}
		if d.legacy && d.Dim() == 784 {
			opts.Height, opts.Width, opts.Channels = 28, 28, 1
		}
		ds, err := resolveData(spec, opts, stderr)
		if err != nil {
			return nil, "", err
		}
		test, dir = ds.Test, ds.Dir
	}
	if n := test.NumClasses(); n != d.In.Classes {
		return nil, "", fmt.Errorf("the model has %d outputs, but %s has %d classes", d.In.Classes, dir, n)
	}
	if d.legacy {
		if test.Dim() != d.Dim() {
			return nil, "", fmt.Errorf("the model takes %d inputs, but the images in %s have %d pixels", d.Dim(), dir, test.Dim())
		}
	} else if test.C() != d.In.C || test.Rows != d.In.H || test.Cols != d.In.W {
		return nil, "", fmt.Errorf("the model takes %dx%dx%d images, but those in %s are %dx%dx%d", d.In.C, d.In.H, d.In.W, dir, test.C(), test.Rows, test.Cols)
	}
	return test, dir, nil
}

// isTestIDXDir reports whether dir holds MNIST's test images, raw or
// compressed.
func isTestIDXDir(dir string) bool {
	for _, name := range []string{"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && !fi.IsDir() {
			return true
		}
	}
	return false
}

// augmentation parses -augment: none, or a comma-separated list of cropN
// (random crops of N pixels of zero padding) and flip (random horizontal
// flips).
func augmentation(spec string, seed uint64) (*data.Augment, error) {
	if spec == "" || spec == "none" {
		return nil, nil
	}
	pad, flip := 0, false
	for tok := range strings.SplitSeq(spec, ",") {
		switch {
		case tok == "flip":
			flip = true
		case strings.HasPrefix(tok, "crop"):
			n, err := strconv.Atoi(tok[4:])
			if err != nil || n < 1 || n > data.MaxAugmentPad {
				return nil, fmt.Errorf("-augment %s: %q: want cropN with a padding N of 1 to %d", spec, tok, data.MaxAugmentPad)
			}
			pad = n
		default:
			return nil, fmt.Errorf("-augment %s: %q: want none, or cropN and flip separated by commas, as crop4,flip", spec, tok)
		}
	}
	return data.NewAugment(pad, flip, seed)
}

// imageShape describes the images of s, as 28x28 or 3x32x32.
func imageShape(s *data.Set) string {
	if s.C() == 1 {
		return fmt.Sprintf("%dx%d", s.Rows, s.Cols)
	}
	return fmt.Sprintf("%dx%dx%d", s.C(), s.Rows, s.Cols)
}

// describeAugment describes a for the log.
func describeAugment(a *data.Augment) string {
	var s []string
	if a.Pad() > 0 {
		s = append(s, fmt.Sprintf("random crops with %s of padding", plural(a.Pad(), "pixel")))
	}
	if a.Flips() {
		s = append(s, "random horizontal flips")
	}
	return strings.Join(s, ", ")
}

// augment replaces the gathered batch t.xb by its augmentation, drawn for
// the step's epoch and batch, so that a resumed run augments as an
// uninterrupted one.
func (t *trainer) augment() {
	n := t.xb.Dim(0)
	if t.hostX == nil {
		t.hostX = make([]float32, t.xb.Len())
		t.augX = make([]float32, t.xb.Len())
	}
	t.xb.CopyTo(t.hostX)
	t.aug.Apply(t.augX, t.hostX, [4]int{n, t.train.C(), t.train.Rows, t.train.Cols}, t.at[0], t.at[1])
	t.xb.CopyFrom(t.augX)
}

// batchCosine is the learning rate of -schedule cosine-batch at step of
// total: base annealed to 0 along half a cosine, as
// bench/torch_mnist_cnn.py --cosine sets it before every step.
func batchCosine(base float64, step, total int) float32 {
	return float32(base * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(total))))
}
