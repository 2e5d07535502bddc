package data

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// digit draws a 3-pixel-wide vertical bar, a crude "1", in an 28x28 image:
// ink where the bar is, bg elsewhere.
func digit(ink, bg color.Color) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 28, 28))
	for y := range 28 {
		for x := range 28 {
			c := bg
			if x >= 12 && x < 15 && y >= 4 && y < 24 {
				c = ink
			}
			img.Set(x, y, c)
		}
	}
	return img
}

func TestDecodeImageFormats(t *testing.T) {
	src := digit(color.White, color.Black)
	var jbuf bytes.Buffer
	if err := jpeg.Encode(&jbuf, src, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"png": encodePNG(t, src), "jpeg": jbuf.Bytes()} {
		img, err := DecodeImage(bytes.NewReader(in), 28*28)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != 28 || b.Dy() != 28 {
			t.Fatalf("%s: bounds %v", name, b)
		}
		px, inv, err := DigitInput(img, 28)
		if err != nil || inv {
			t.Fatalf("%s: DigitInput: inverted %v, %v", name, inv, err)
		}
		if px[10*28+13] < 0.9 || px[10*28+2] > 0.1 {
			t.Errorf("%s: ink %v, background %v", name, px[10*28+13], px[10*28+2])
		}
		// One pixel fewer than the image has is refused.
		if _, err := DecodeImage(bytes.NewReader(in), 28*28-1); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: limit 28*28-1 gave %v, want ErrTooLarge", name, err)
		}
	}
}

func TestDecodeImageErrors(t *testing.T) {
	good := encodePNG(t, digit(color.White, color.Black))
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not a PNG or JPEG image"},
		{"text", []byte("not an image"), "not a PNG or JPEG image"},
		{"png signature only", []byte(pngSignature), "corrupt PNG header"},
		{"truncated png", good[:len(good)/2], "corrupt PNG image"},
		{"jpeg signature only", []byte(jpegSignature), "corrupt JPEG header"},
	} {
		img, err := DecodeImage(bytes.NewReader(tc.in), 1<<20)
		if err == nil || img != nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "data: image") {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// pngChunk appends a PNG chunk with its length and CRC.
func pngChunk(dst []byte, typ string, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	start := len(dst)
	dst = append(dst, typ...)
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

// TestDecodeImageBomb builds a valid 20000x20000 grayscale PNG of zeros
// (about 400 KB that inflate to 400 MB) and checks that DecodeImage refuses
// it from its header: it wraps ErrTooLarge, reads only the first few
// kilobytes and allocates almost nothing.
func TestDecodeImageBomb(t *testing.T) {
	const side = 20000
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	row := make([]byte, 1+side) // filter byte and a row of black
	for range side {
		zw.Write(row)
	}
	zw.Close()
	ihdr := binary.BigEndian.AppendUint32(nil, side)
	ihdr = binary.BigEndian.AppendUint32(ihdr, side)
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // 8-bit grayscale
	file := pngChunk([]byte(pngSignature), "IHDR", ihdr)
	file = pngChunk(file, "IDAT", z.Bytes())
	file = pngChunk(file, "IEND", nil)
	if len(file) > 1<<20 {
		t.Fatalf("the bomb is %d bytes, want it small", len(file))
	}
	// The file is a real image: its header decodes.
	if cfg, err := png.DecodeConfig(bytes.NewReader(file)); err != nil || cfg.Width != side || cfg.Height != side {
		t.Fatalf("the bomb does not decode: %v %v", cfg, err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cr := &countingReader{r: bytes.NewReader(file)}
	img, err := DecodeImage(cr, 1<<24)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) || img != nil {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "20000x20000") {
		t.Errorf("the error should give the size: %v", err)
	}
	if cr.n > 64<<10 {
		t.Errorf("read %d bytes before refusing, want only the header", cr.n)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", d)
	}
}

// TestDigitInputWide is a 100000x1 PNG, a few hundred bytes: it decodes
// (100000 pixels), but padding it to a square would need 10^10 pixels, so
// DigitInput refuses it.
func TestDigitInputWide(t *testing.T) {
	in := encodePNG(t, image.NewGray(image.Rect(0, 0, 100000, 1)))
	if len(in) > 4096 {
		t.Fatalf("the PNG is %d bytes", len(in))
	}
	img, err := DecodeImage(bytes.NewReader(in), 1<<24)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	px, _, err := DigitInput(img, 28)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) || px != nil {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "100000x1") {
		t.Errorf("the error should give the size: %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", d)
	}
	// Tall and thin the same.
	if _, _, err := DigitInput(image.NewGray(image.Rect(0, 0, 1, 100000)), 28); !errors.Is(err, ErrTooLarge) {
		t.Errorf("1x100000: got %v, want ErrTooLarge", err)
	}
	// A long strip within the bound works, and area resampling keeps its
	// ink: the output sums to the input's sum scaled by (28/2000)^2.
	strip := image.NewGray(image.Rect(0, 0, 2000, 10))
	for x := range 2000 {
		for y := 3; y < 8; y++ {
			strip.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	px, inv, err := DigitInput(strip, 28)
	if err != nil || inv {
		t.Fatalf("2000x10: %v (inverted %v)", err, inv)
	}
	sum := 0.0
	for _, v := range px {
		sum += float64(v)
	}
	if want := 2000 * 5 * (28.0 / 2000) * (28.0 / 2000); math.Abs(sum-want) > 1e-4 || px[0] != 0 {
		t.Errorf("2000x10: sum %v, want %v; corner %v", sum, want, px[0])
	}
	if _, _, err := DigitInput(strip, 0); err == nil {
		t.Error("side 0 accepted")
	}
}

// TestDigitInputAlpha checks the compositing rule: dark ink on a transparent
// background reads as the same digit as dark ink on white (inverted), light
// ink on a transparent background as light ink on black.
func TestDigitInputAlpha(t *testing.T) {
	clear := color.NRGBA{}
	for _, tc := range []struct {
		name      string
		img, want image.Image
		inverted  bool
	}{
		{"dark on transparent", digit(color.Black, clear), digit(color.Black, color.White), true},
		{"light on transparent", digit(color.White, clear), digit(color.White, color.Black), false},
		{"grey on transparent", digit(color.Gray{Y: 40}, clear), digit(color.Gray{Y: 40}, color.White), true},
		{"dark on transparent white", digit(color.Black, color.NRGBA{255, 255, 255, 0}), digit(color.Black, color.White), true},
		{"half-transparent dark", digit(color.NRGBA{0, 0, 0, 128}, clear), digit(color.Gray{Y: 127}, color.White), true},
	} {
		got, inv, err := DigitInput(tc.img, 28)
		if err != nil {
			t.Fatal(err)
		}
		want, winv, err := DigitInput(tc.want, 28)
		if err != nil {
			t.Fatal(err)
		}
		if inv != tc.inverted || winv != tc.inverted {
			t.Errorf("%s: inverted %v, want %v", tc.name, inv, tc.inverted)
		}
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1.0/128 {
				t.Fatalf("%s: pixel %d = %v, want %v", tc.name, i, got[i], want[i])
			}
		}
		if got[10*28+13] < 0.4 || got[10*28+2] != 0 {
			t.Errorf("%s: the digit reads blank: ink %v, background %v", tc.name, got[10*28+13], got[10*28+2])
		}
	}
	// Fully transparent is blank, not an error.
	px, _, err := DigitInput(image.NewNRGBA(image.Rect(0, 0, 5, 7)), 28)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range px {
		if v != 0 {
			t.Fatalf("a transparent image gives %v", v)
		}
	}
}

// TestDigitInputInvertPad checks inversion of a light image and that the
// padding of a non-square image is dark after it.
func TestDigitInputInvertPad(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 28, 14))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	img.SetGray(14, 7, color.Gray{})
	px, inv, err := DigitInput(img, 28)
	if err != nil || !inv {
		t.Fatalf("inverted %v, %v", inv, err)
	}
	if px[0] != 0 || px[27*28+27] != 0 || px[7*28] != 0 || px[14*28+14] != 1 {
		t.Errorf("padding %v %v, body %v, dot %v", px[0], px[27*28+27], px[7*28], px[14*28+14])
	}
}

// TestResample compares area resampling with a direct reference on random
// images of odd sizes.
func TestResample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ n, m int }{{28, 28}, {56, 28}, {57, 28}, {100, 28}, {13, 28}, {5, 3}, {3, 7}} {
		g := make([]float64, tc.n*tc.n)
		for i := range g {
			g[i] = rng.Float64()
		}
		got := resample(g, tc.n, tc.m)
		// Reference: integrate the piecewise-constant image over each
		// output cell on a fine grid that has every cell edge on it.
		for oy := range tc.m {
			for ox := range tc.m {
				sum := 0.0
				for fy := oy * tc.n; fy < (oy+1)*tc.n; fy++ {
					for fx := ox * tc.n; fx < (ox+1)*tc.n; fx++ {
						sum += g[(fy/tc.m)*tc.n+fx/tc.m]
					}
				}
				want := sum / float64(tc.n*tc.n)
				if d := math.Abs(got[oy*tc.m+ox] - want); d > 1e-12 {
					t.Fatalf("%d->%d: pixel (%d,%d) = %v, want %v", tc.n, tc.m, ox, oy, got[oy*tc.m+ox], want)
				}
			}
		}
	}
}

func TestPadSquare(t *testing.T) {
	g := []float64{1, 2, 3, 4, 5, 6} // 3 wide, 2 high
	got, n := padSquare(g, 3, 2)
	want := []float64{1, 2, 3, 4, 5, 6, 0, 0, 0}
	if n != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("padSquare = %v (%d), want %v", got, n, want)
	}
	got, n = padSquare(g, 2, 3) // 2 wide, 3 high
	want = []float64{1, 2, 0, 3, 4, 0, 5, 6, 0}
	if n != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("padSquare = %v (%d), want %v", got, n, want)
	}
}

// FuzzDecodeImage feeds arbitrary bytes to DecodeImage and what it accepts
// to DigitInput. Neither may panic or exceed its pixel limit; errors carry
// the package prefix; accepted images give side*side values in [0, 1]. The
// seed corpus is in testdata/fuzz/FuzzDecodeImage.
func FuzzDecodeImage(f *testing.F) {
	const maxPixels = 1 << 16
	f.Fuzz(func(t *testing.T, in []byte) {
		img, err := DecodeImage(bytes.NewReader(in), maxPixels)
		if err != nil {
			if img != nil {
				t.Fatalf("error %v with an image", err)
			}
			if !strings.HasPrefix(err.Error(), "data: image") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		b := img.Bounds()
		if b.Dx() <= 0 || b.Dy() <= 0 || b.Dx()*b.Dy() > maxPixels {
			t.Fatalf("accepted a %dx%d image", b.Dx(), b.Dy())
		}
		px, _, err := DigitInput(img, 28)
		if err != nil {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("DigitInput of a decoded image: %v", err)
			}
			return
		}
		if len(px) != 28*28 {
			t.Fatalf("%d values", len(px))
		}
		for _, v := range px {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("value %v outside [0, 1]", v)
			}
		}
	})
}
