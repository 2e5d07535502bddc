package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/tensor"
)

const predictExamples = `  gograd predict -model runs/mnist/model.safetensors digit.png
  gograd predict -model runs/mnist/model.safetensors scans/*.png

For a model of 28x28 gray images (MNIST's), PNG and JPEG images of up to
4096x4096 pixels are converted to grayscale,
padded to a square and resampled to 28x28. Transparent pixels are filled
with the background the ink implies: white behind dark ink, black behind
light ink. MNIST digits are light on a dark background: an image that is
mostly light is inverted first, and the output says so. For a model of
other images (trained on an image folder), each image is resized to the
model's input, gray or RGB, as the folder's images were, and the classes
are named as the folder's subfolders.
`

func predictCommand(args []string, e *env) (err error) {
	fs := newCommand("predict", "predict -model FILE [flags] IMAGE...", predictExamples, e)
	modelPath := fs.String("model", "", "model `file` written by train or a PyTorch state_dict of Linear layers in safetensors (required), e.g. runs/mnist/model.safetensors")
	dev := newChoice("cpu", "cpu", "cuda", "auto")
	fs.Var(dev, "device", "where to run: `cpu|cuda|auto`")
	act := newChoice("", activations...)
	fs.Var(act, "activation", "hidden activation `relu|sigmoid|tanh` of a model file that does not name it, such as a PyTorch state_dict")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *modelPath == "" {
		return fs.usagef("-model FILE is required")
	}
	if fs.NArg() == 0 {
		return fs.usagef("no images given (want one or more PNG or JPEG files after the flags)")
	}
	d, err := openDevice(dev.value)
	if err != nil {
		return err
	}
	defer closeDevice(d, &err)
	model, a, _, err := loadModel(*modelPath, d, act.value)
	if err != nil {
		return err
	}
	if a.legacy && a.In.H == 1 {
		return fmt.Errorf("model %s takes %d inputs, which is not a square image", *modelPath, a.Dim())
	}

	// Read every image; report the ones that fail and classify the rest.
	var pixels []float32
	var names []string
	var inverted []bool
	failed := 0
	for _, path := range fs.Args() {
		img, inv, err := readInput(path, a)
		if err != nil {
			fmt.Fprintf(e.stderr, "gograd: %v\n", err)
			failed++
			continue
		}
		pixels = append(pixels, img...)
		names = append(names, path)
		inverted = append(inverted, inv)
	}
	if len(names) > 0 {
		var probs [][]float32
		err := tensor.Catch(func() {
			x := tensor.FromSlice(d, pixels, len(names), a.Dim())
			defer x.Free()
			forEachBatch(model, x, func(lo int, out *tensor.Tensor) {
				sm := tensor.Softmax(out, 1)
				defer sm.Free()
				v := sm.Data()
				for i := range out.Dim(0) {
					probs = append(probs, v[i*a.In.Classes:(i+1)*a.In.Classes])
				}
			})
		})
		if err != nil {
			return err
		}
		for i, name := range names {
			fmt.Fprintf(e.stdout, "%s: %s", name, topK(probs[i], 3, a.className))
			if inverted[i] {
				fmt.Fprint(e.stdout, "  (inverted: dark digit on a light background)")
			}
			fmt.Fprintln(e.stdout)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be read", failed, fs.NArg())
	}
	return nil
}

// topK formats the k most probable classes with their probabilities.
func topK(p []float32, k int, name func(int) string) string {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(p[b], p[a]) })
	var parts []string
	for _, c := range idx[:min(k, len(idx))] {
		parts = append(parts, fmt.Sprintf("%s (%.4g%%)", name(c), 100*p[c]))
	}
	return strings.Join(parts, "  ")
}

// maxImagePixels is the most pixels predict decodes from one image file:
// 4096x4096. The header is checked before any pixel is decoded.
const maxImagePixels = 1 << 24

// readInput reads the image at path as the input of the model d: as a
// digit (see readDigit) for a model of 28x28 gray images or an MLP file
// without layer metadata, else resized to d's input as an image folder's files are.
func readInput(path string, d *modelDesc) (pixels []float32, inverted bool, err error) {
	if d.legacy || d.digits() {
		return readDigit(path, d.In.H)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	img, err := data.DecodeImage(f, maxImagePixels)
	if err == nil {
		pixels, err = data.ImageInput(img, d.In.C, d.In.H, d.In.W)
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "data: image: ")
		return nil, false, fmt.Errorf("%s: %s", path, strings.TrimPrefix(msg, "data: "))
	}
	return pixels, false, nil
}

// readDigit decodes the PNG or JPEG at path into side*side pixels in [0, 1],
// light on dark like MNIST; inverted reports that the image was mostly light
// and has been inverted.
func readDigit(path string, side int) (pixels []float32, inverted bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	img, err := data.DecodeImage(f, maxImagePixels)
	if err == nil {
		pixels, inverted, err = data.DigitInput(img, side)
	}
	if err != nil {
		// The package prefix says nothing to a user; the path does.
		msg := strings.TrimPrefix(err.Error(), "data: image: ")
		return nil, false, fmt.Errorf("%s: %s", path, strings.TrimPrefix(msg, "data: "))
	}
	return pixels, inverted, nil
}
