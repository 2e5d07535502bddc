package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
)

// ErrTooLarge is wrapped when an image has more pixels than allowed.
var ErrTooLarge = errors.New("data: image too large")

// maxSquarePixels bounds the square DigitInput pads an image to: 1<<25
// pixels of float64 are 256 MiB.
const maxSquarePixels = 1 << 25

// Signatures of the formats DecodeImage reads.
const (
	pngSignature  = "\x89PNG\r\n\x1a\n"
	jpegSignature = "\xff\xd8\xff"
)

// DecodeImage decodes a PNG or JPEG from r. It reads the header first
// (image.DecodeConfig) and refuses an image of more than maxPixels pixels
// (an error wrapping ErrTooLarge) before decoding any pixel.
//
// The format is recognised from the first bytes, not from a file name or
// the image package's registry; an image with no pixels is an error.
func DecodeImage(r io.Reader, maxPixels int) (image.Image, error) {
	br := bufio.NewReader(r)
	sig, _ := br.Peek(len(pngSignature))
	var decodeConfig func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	var format string
	switch {
	case bytes.HasPrefix(sig, []byte(pngSignature)):
		decodeConfig, decode, format = png.DecodeConfig, png.Decode, "PNG"
	case bytes.HasPrefix(sig, []byte(jpegSignature)):
		decodeConfig, decode, format = jpeg.DecodeConfig, jpeg.Decode, "JPEG"
	default:
		return nil, errors.New("data: image: not a PNG or JPEG image")
	}
	// The header goes through a copy so that the decoder can read it again.
	var head bytes.Buffer
	cfg, err := decodeConfig(io.TeeReader(br, &head))
	if err != nil {
		return nil, fmt.Errorf("data: image: corrupt %s header: %w", format, err)
	}
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("data: image: the %s image is empty (%dx%d)", format, w, h)
	}
	if maxPixels < 1 || w > maxPixels/h {
		return nil, fmt.Errorf("%w: %dx%d is %d pixels, above the limit of %d",
			ErrTooLarge, w, h, int64(w)*int64(h), maxPixels)
	}
	img, err := decode(io.MultiReader(&head, br))
	if err != nil {
		return nil, fmt.Errorf("data: image: corrupt %s image: %w", format, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		return nil, fmt.Errorf("data: image: the %s header says %dx%d but the image is %dx%d", format, w, h, b.Dx(), b.Dy())
	}
	return img, nil
}

// DigitInput converts img to side×side grayscale values in [0,1] as MNIST
// digits look: alpha composited over the background the image implies,
// padded to a square, area-resampled, inverted when the background is
// light (inverted reports it). It refuses sizes whose padding would
// need more than a fixed memory bound.
//
// The background an image implies: a fully opaque image has its own; in
// an image with transparency the opaque pixels are the ink, and the
// background is the opposite of the ink's mean luminance (white behind
// dark ink, black behind light ink, black when nothing is opaque). After
// compositing, an image whose mean is above one half has a light
// background and is inverted, so that the digit is light on dark. The
// padding is dark.
func DigitInput(img image.Image, side int) (pixels []float32, inverted bool, err error) {
	if side < 1 {
		return nil, false, fmt.Errorf("data: image: output side %d is not positive", side)
	}
	if img == nil {
		return nil, false, errors.New("data: image: no image")
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, false, fmt.Errorf("data: image: the image is empty (%dx%d)", w, h)
	}
	n := max(w, h)
	if n > maxSquarePixels/n {
		return nil, false, fmt.Errorf("%w: %dx%d pads to a %dx%d square, above the bound of %d pixels",
			ErrTooLarge, w, h, n, n, maxSquarePixels)
	}
	if side > maxSquarePixels/side {
		return nil, false, fmt.Errorf("%w: output side %d is above the bound of %d pixels",
			ErrTooLarge, side, maxSquarePixels)
	}
	g := composite(img)
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
		pixels[i] = float32(min(1, max(0, v)))
	}
	return pixels, inverted, nil
}

// composite returns img's luminance in [0, 1], row-major, with alpha
// composited over the background the image implies (see DigitInput).
func composite(img image.Image) []float64 {
	b := img.Bounds()
	// Two passes over the pixels keep memory at one value per pixel: the
	// first finds the background, the second composites over it.
	var sumLum, sumAlpha float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			l, a := lumAlpha(img, x, y)
			sumLum += l
			sumAlpha += a
		}
	}
	bg := 0.0
	if sumAlpha > 0 && sumLum/sumAlpha < 0.5 {
		bg = 1
	}
	g := make([]float64, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			l, a := lumAlpha(img, x, y)
			g = append(g, min(1, l+(1-a)*bg))
		}
	}
	return g
}

// lumAlpha returns the premultiplied luminance (the weights of
// color.Gray16Model) and the alpha of img's pixel (x, y), both in [0, 1].
func lumAlpha(img image.Image, x, y int) (lum, alpha float64) {
	r, g, b, a := img.At(x, y).RGBA()
	return float64((19595*r+38470*g+7471*b+1<<15)>>16) / 0xffff, float64(a) / 0xffff
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
