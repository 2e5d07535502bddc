package main

import (
	"bufio"
	"cmp"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/gograd/gograd/tensor"
)

const predictExamples = `  gograd predict -model runs/mnist/model.safetensors digit.png
  gograd predict -model runs/mnist/model.safetensors scans/*.png

Images of any size are converted to grayscale, padded to a square and
resampled to 28x28. MNIST digits are light on a dark background: an image
that is mostly light is inverted first, and the output says so.
`

func predictCommand(args []string, e *env) (err error) {
	fs := newCommand("predict", "predict -model FILE [flags] IMAGE.png...", predictExamples, e)
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
		return fs.usagef("no images given (want one or more PNG files after the flags)")
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

// pngSignature starts every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// readDigit decodes the PNG at path into side*side pixels in [0, 1], light
// on dark like MNIST; inverted reports that the image was mostly light and
// has been inverted.
func readDigit(path string, side int) (pixels []float32, inverted bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	if sig, _ := r.Peek(len(pngSignature)); string(sig) != pngSignature {
		return nil, false, fmt.Errorf("%s: not a PNG image", path)
	}
	img, err := png.Decode(r)
	if err != nil {
		return nil, false, fmt.Errorf("%s: corrupt PNG image: %v", path, err)
	}
	g := grayscale(img)
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if w == 0 || h == 0 {
		return nil, false, fmt.Errorf("%s: the image is empty", path)
	}
	mean := 0.0
	for _, v := range g {
		mean += v
	}
	if mean/float64(len(g)) > 0.5 {
		inverted = true
		for i, v := range g {
			g[i] = 1 - v
		}
	}
	sq, n := padSquare(g, w, h)
	out := resample(sq, n, side)
	pixels = make([]float32, len(out))
	for i, v := range out {
		pixels[i] = float32(v)
	}
	return pixels, inverted, nil
}

// grayscale returns img's luminance in [0, 1], row-major. Transparent
// pixels count as black.
func grayscale(img image.Image) []float64 {
	b := img.Bounds()
	g := make([]float64, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := color.Gray16Model.Convert(img.At(x, y)).(color.Gray16).Y
			g = append(g, float64(v)/0xffff)
		}
	}
	return g
}

// padSquare centres the w x h image g in an n x n square of zeros, n =
// max(w, h).
func padSquare(g []float64, w, h int) ([]float64, int) {
	n := max(w, h)
	if w == h {
		return g, n
	}
	out := make([]float64, n*n)
	x0, y0 := (n-w)/2, (n-h)/2
	for y := range h {
		copy(out[(y0+y)*n+x0:], g[y*w:(y+1)*w])
	}
	return out, n
}

// resample scales the n x n image g to m x m by area averaging: each output
// pixel is the mean of the input area it covers. It is exact for both
// shrinking and enlarging.
func resample(g []float64, n, m int) []float64 {
	if n == m {
		return g
	}
	rows := make([]float64, n*m) // n rows of m
	for y := range n {
		resample1(rows[y*m:(y+1)*m], g[y*n:(y+1)*n])
	}
	out := make([]float64, m*m)
	col := make([]float64, n)
	res := make([]float64, m)
	for x := range m {
		for y := range n {
			col[y] = rows[y*m+x]
		}
		resample1(res, col)
		for y := range m {
			out[y*m+x] = res[y]
		}
	}
	return out
}

// resample1 area-averages src onto len(dst) cells.
func resample1(dst, src []float64) {
	scale := float64(len(src)) / float64(len(dst))
	for i := range dst {
		lo, hi := float64(i)*scale, float64(i+1)*scale
		sum := 0.0
		for k := int(lo); k < len(src) && float64(k) < hi; k++ {
			sum += (min(hi, float64(k+1)) - max(lo, float64(k))) * src[k]
		}
		dst[i] = sum / scale
	}
}
