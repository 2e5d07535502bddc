package data

import (
	"image"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ImageInput must give exactly the values LoadImageFolder gives the same
// file.
func TestImageInputMatchesFolder(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	img := image.NewNRGBA(image.Rect(0, 0, 37, 23))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	writeImage(t, filepath.Join(dir, "a", "x.png"), img)
	// One image split 50:50 leaves a set empty: an error, not a panic.
	if _, err := LoadImageFolder(dir, FolderOptions{Height: 9, Width: 14, Channels: 1, TestFraction: 0.5}); err == nil || !strings.Contains(err.Error(), "has no") {
		t.Errorf("a folder of one image split in two: %v, want an error saying a set has no images", err)
	}
	writeImage(t, filepath.Join(dir, "a", "y.png"), img)
	for _, c := range []int{1, 3} {
		ds, err := LoadImageFolder(dir, FolderOptions{Height: 9, Width: 14, Channels: c, TestFraction: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		s := ds.Train
		if s.N == 0 {
			s = ds.Test
		}
		got, err := ImageInput(img, c, 9, 14)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, s.Image(0)) {
			t.Errorf("%d channels: ImageInput differs from the folder's image", c)
		}
	}
	for _, bad := range []struct {
		c, h, w int
		want    string
	}{{2, 4, 4, "2 channels"}, {1, 0, 4, "output size 0x4"}} {
		if _, err := ImageInput(img, bad.c, bad.h, bad.w); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ImageInput(%d, %d, %d) = %v, want %q", bad.c, bad.h, bad.w, err, bad.want)
		}
	}
}
