package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// testImage returns MNIST test image i.
func testImage(t *testing.T, i int) []float32 {
	t.Helper()
	_, test, err := data.LoadMNIST(mnistDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return test.Image(i)
}

// writeDigitPNG writes a 28x28 image as a size x size PNG (each pixel
// repeated size/28 times), inverted if asked, and returns its path.
func writeDigitPNG(t *testing.T, dir, name string, px []float32, invert bool, size int) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, size, size))
	k := size / 28
	for y := range size {
		for x := range size {
			v := px[(y/k)*28+x/k]
			if invert {
				v = 1 - v
			}
			img.SetGray(x, y, color.Gray{Y: uint8(math.Round(float64(v) * 255))})
		}
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPredict checks that predict classifies MNIST test images written as
// PNGs (as they are, enlarged, inverted) exactly as eval's forward pass
// does, and that it reports unreadable files by name while still
// classifying the others.
func TestPredict(t *testing.T) {
	run, _ := fixtureRun(t)
	dir := t.TempDir()
	modelPath := filepath.Join(run, modelFile)
	dev := device.NewCPU(0)
	model, _, _, err := loadModel(modelPath, dev, "")
	if err != nil {
		t.Fatal(err)
	}
	_, test, err := data.LoadMNIST(mnistDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	var want []int
	for i := range 4 {
		px := test.Image(i)
		x := tensor.FromSlice(dev, px, 1, 784)
		want = append(want, predictAll(model, x)[0])
		files = append(files,
			writeDigitPNG(t, dir, fmt.Sprintf("plain%d.png", i), px, false, 28),
			writeDigitPNG(t, dir, fmt.Sprintf("big-inverted%d.png", i), px, true, 84))
	}
	notPNG := filepath.Join(dir, "notes.txt")
	os.WriteFile(notPNG, []byte("not an image"), 0o644)
	args := append([]string{"predict", "-model", modelPath, notPNG}, files...)
	args = append(args, filepath.Join(dir, "missing.png"))
	r := gograd(args...)
	if r.code != exitError {
		t.Errorf("want exit 1 for the unreadable files, got %v", r)
	}
	errLines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(errLines) != 3 || !strings.Contains(errLines[0], "notes.txt: not a PNG or JPEG image") ||
		!strings.Contains(errLines[1], "missing.png") || !strings.Contains(errLines[2], "2 of 10 images could not be read") {
		t.Errorf("stderr should name each unreadable file and count them:\n%s", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != len(files) {
		t.Fatalf("want %d predictions, got:\n%s", len(files), r.stdout)
	}
	for i, line := range lines {
		prefix := fmt.Sprintf("%s: %d (", files[i], want[i/2])
		if !strings.HasPrefix(line, prefix) || strings.Count(line, "%)") != 3 {
			t.Errorf("line %q: want it to start with %q and list 3 classes", line, prefix)
		}
		if inv := strings.Contains(line, "inverted"); inv != strings.Contains(files[i], "inverted") {
			t.Errorf("line %q: wrong inversion note", line)
		}
	}
}
