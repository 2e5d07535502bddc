package main

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/tensor"
)

const predictExamples = `  gograd predict -model runs/mnist/model.safetensors digit.png
  gograd predict -model runs/mnist/model.safetensors scans/*.png

PNG and JPEG images of up to 4096x4096 pixels are converted to grayscale,
padded to a square and resampled to 28x28. Transparent pixels are filled
with the background the ink implies: white behind dark ink, black behind
light ink. MNIST digits are light on a dark background: an image that is
mostly light is inverted first, and the output says so.
`

func predictCommand(args []string, e *env) (err error) {
	fs := newCommand("predict", "predict -model FILE [flags] IMAGE...", predictExamples, e)
	modelPath := fs.String("model", "", "model `file` written by train (required), e.g. runs/mnist/model.safetensors")
	dev := newChoice("cpu", "cpu", "cuda", "auto")
	fs.Var(dev, "device", "where to run: `cpu|cuda|auto`")
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
	model, a, err := loadModel(*modelPath, d)
	if err != nil {
		return err
	}
	side := int(math.Round(math.Sqrt(float64(a.In))))
	if side*side != a.In {
		return fmt.Errorf("model %s takes %d inputs, which is not a square image", *modelPath, a.In)
	}

	// Read every image; report the ones that fail and classify the rest.
	var pixels []float32
	var names []string
	var inverted []bool
	failed := 0
	for _, path := range fs.Args() {
		img, inv, err := readDigit(path, side)
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
			x := tensor.FromSlice(d, pixels, len(names), a.In)
			defer x.Free()
			forEachBatch(model, x, func(lo int, out *tensor.Tensor) {
				sm := tensor.Softmax(out, 1)
				defer sm.Free()
				v := sm.Data()
				for i := range out.Dim(0) {
					probs = append(probs, v[i*a.Out:(i+1)*a.Out])
				}
			})
		})
		if err != nil {
			return err
		}
		for i, name := range names {
			fmt.Fprintf(e.stdout, "%s: %s", name, topK(probs[i], 3))
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
func topK(p []float32, k int) string {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(p[b], p[a]) })
	var parts []string
	for _, c := range idx[:min(k, len(idx))] {
		parts = append(parts, fmt.Sprintf("%d (%.4g%%)", c, 100*p[c]))
	}
	return strings.Join(parts, "  ")
}

// maxImagePixels is the most pixels predict decodes from one image file:
// 4096x4096. The header is checked before any pixel is decoded.
const maxImagePixels = 1 << 24

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
