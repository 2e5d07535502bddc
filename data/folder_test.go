package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeImage writes img to path as a PNG, or a JPEG if path ends in .jpg,
// creating the folders on the way.
func writeImage(t testing.TB, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".jpg") {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100})
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, buf.Bytes())
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// uniform is a w×h image of one colour.
func uniform(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

// pattern is a w×h RGB image of random colours.
func pattern(w, h int, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 2))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 0xff
		}
	}
	return img
}

// grayPattern is a w×h gray image of random levels.
func grayPattern(w, h int, seed uint64) *image.Gray {
	rng := rand.New(rand.NewPCG(seed, 3))
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	return img
}

// planes is img at its own size as C×H×W values in [0, 1], the reference
// for images read at their own size.
func planes(img image.Image, c int) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]float32, c*h*w)
	for y := range h {
		for x := range w {
			n := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			r, g, bl := float32(n.R)/255, float32(n.G)/255, float32(n.B)/255
			if c == 1 {
				out[y*w+x] = 0.299*r + 0.587*g + 0.114*bl
			} else {
				out[y*w+x], out[h*w+y*w+x], out[2*h*w+y*w+x] = r, g, bl
			}
		}
	}
	return out
}

func closeTo(got, want []float32, tol float64) (int, bool) {
	if len(got) != len(want) {
		return -1, false
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol {
			return i, false
		}
	}
	return 0, true
}

// A train/test folder with every kind of file.
func TestLoadImageFolderTrainTest(t *testing.T) {
	root := t.TempDir()
	cat := pattern(6, 5, 1)
	catGray := grayPattern(6, 5, 2)
	zebra := pattern(6, 5, 3)
	dog := pattern(6, 5, 4)
	jpg := uniform(6, 5, color.NRGBA{200, 40, 90, 255})
	writeImage(t, filepath.Join(root, "train", "cat", "a.png"), cat)
	writeImage(t, filepath.Join(root, "train", "cat", "b.png"), catGray)
	writeImage(t, filepath.Join(root, "train", "cat", "sub", "c.jpg"), jpg) // nested, as torchvision walks
	writeImage(t, filepath.Join(root, "train", "Zebra", "z.png"), zebra)    // upper case sorts first
	writeFile(t, filepath.Join(root, "train", "Zebra", "broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"))
	writeImage(t, filepath.Join(root, "train", "dog", "d.PNG"), dog) // the extension in any case
	writeFile(t, filepath.Join(root, "train", "dog", "notes.txt"), []byte("ignored"))
	writeFile(t, filepath.Join(root, "train", "dog", "e.bmp"), []byte("BM")) // torchvision's, not ours
	writeImage(t, filepath.Join(root, "train", ".cache", "x.png"), dog)      // not a class
	writeImage(t, filepath.Join(root, "test", "cat", "t.png"), zebra)
	other := t.TempDir() // a class folder elsewhere, linked in
	writeImage(t, filepath.Join(other, "e.png"), dog)
	if err := os.Symlink(other, filepath.Join(root, "test", "dog")); err != nil {
		t.Fatal(err)
	}

	for _, c := range []int{3, 1} {
		t.Run(fmt.Sprintf("%d channels", c), func(t *testing.T) {
			ds, err := LoadImageFolder(root, FolderOptions{Height: 5, Width: 6, Channels: c, Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			if ds.Name != "folder" || ds.Dir != root {
				t.Errorf("name %q, dir %q", ds.Name, ds.Dir)
			}
			wantClasses := []string{"Zebra", "cat", "dog"}
			if !slices.Equal(ds.Train.Classes, wantClasses) || !slices.Equal(ds.Test.Classes, wantClasses) {
				t.Fatalf("classes %q and %q, want %q", ds.Train.Classes, ds.Test.Classes, wantClasses)
			}
			if ds.Train.Shape() != [4]int{5, c, 5, 6} || ds.Test.Shape() != [4]int{2, c, 5, 6} {
				t.Fatalf("shapes %v and %v", ds.Train.Shape(), ds.Test.Shape())
			}
			if want := []uint8{0, 1, 1, 1, 2}; !slices.Equal(ds.Train.Labels, want) {
				t.Errorf("training labels %v, want %v", ds.Train.Labels, want)
			}
			if want := []uint8{1, 2}; !slices.Equal(ds.Test.Labels, want) {
				t.Errorf("test labels %v, want %v", ds.Test.Labels, want)
			}
			// At their own size the images are their pixels; the JPEG, a
			// flat colour at quality 100, within a few levels.
			for i, want := range []image.Image{zebra, cat, catGray, jpg, dog} {
				tol := 1e-6
				if i == 3 {
					tol = 4.0 / 255
				}
				if k, ok := closeTo(ds.Train.Image(i), planes(want, c), tol); !ok {
					t.Errorf("training image %d: value %d = %v, want %v", i, k, ds.Train.Image(i)[k], planes(want, c)[k])
				}
			}
			for i, want := range []image.Image{zebra, dog} {
				if k, ok := closeTo(ds.Test.Image(i), planes(want, c), 1e-6); !ok {
					t.Errorf("test image %d: value %d differs", i, k)
				}
			}
			if len(ds.Skipped) != 2 {
				t.Fatalf("skipped %v, want broken.png and e.bmp", ds.Skipped)
			}
			bmp := filepath.Join(root, "train", "dog", "e.bmp")
			if err := ds.Skipped[1]; err.Path != bmp || err.Error() != "data: "+bmp+": image: .bmp files are not supported, only PNG and JPEG" {
				t.Errorf("skipped %v, want %s as not supported", err, bmp)
			}
			bad := filepath.Join(root, "train", "Zebra", "broken.png")
			var fe *FileError
			if err := ds.Skipped[0]; !errors.As(err, &fe) || fe.Path != bad ||
				!strings.HasPrefix(err.Error(), "data: "+bad+": image: ") {
				t.Errorf("skipped %v, want an error naming %s", err, bad)
			}
		})
	}
}

// TestLoadImageFolderResize checks area resampling against a float64
// reference that integrates every output pixel's area, shrinking and
// enlarging, at sizes that do not divide.
func TestLoadImageFolderResize(t *testing.T) {
	for _, sz := range [][4]int{{8, 6, 4, 3}, {7, 5, 3, 2}, {5, 3, 9, 7}, {13, 1, 4, 4}, {3, 11, 11, 3}, {1, 1, 4, 5}} {
		sw, sh, w, h := sz[0], sz[1], sz[2], sz[3]
		img := pattern(sw, sh, uint64(sw*100+sh))
		for _, c := range []int{1, 3} {
			src := planes(img, c)
			want := make([]float32, c*h*w)
			for ch := range c {
				for oy := range h {
					for ox := range w {
						// Output (oy, ox) covers [oy*sh/h, (oy+1)*sh/h) × ... of the source.
						y0, y1 := float64(oy)*float64(sh)/float64(h), float64(oy+1)*float64(sh)/float64(h)
						x0, x1 := float64(ox)*float64(sw)/float64(w), float64(ox+1)*float64(sw)/float64(w)
						s := 0.0
						for sy := range sh {
							for sx := range sw {
								oyl := max(0, min(y1, float64(sy+1))-max(y0, float64(sy)))
								oxl := max(0, min(x1, float64(sx+1))-max(x0, float64(sx)))
								s += oyl * oxl * float64(src[(ch*sh+sy)*sw+sx])
							}
						}
						want[(ch*h+oy)*w+ox] = float32(s / ((y1 - y0) * (x1 - x0)))
					}
				}
			}
			var r imageResizer
			got := make([]float32, c*h*w)
			r.resize(got, img, c, h, w)
			if k, ok := closeTo(got, want, 1e-5); !ok {
				t.Errorf("%dx%d to %dx%d, %d channels: value %d = %v, want %v", sw, sh, w, h, c, k, got[k], want[k])
			}
		}
	}
}

// TestResizeImageTypes reads the same colours from every image type the
// decoders return and from the generic path.
func TestResizeImageTypes(t *testing.T) {
	const w, h = 5, 4
	rgb := pattern(w, h, 9)
	gray := grayPattern(w, h, 10)
	rgba := image.NewRGBA(rgb.Bounds())
	nrgba64 := image.NewNRGBA64(rgb.Bounds())
	gray16 := image.NewGray16(gray.Bounds())
	pal := image.NewPaletted(rgb.Bounds(), nil)
	ycc := image.NewYCbCr(rgb.Bounds(), image.YCbCrSubsampleRatio444)
	seen := map[color.Color]uint8{}
	for y := range h {
		for x := range w {
			c := rgb.NRGBAAt(x, y)
			rgba.Set(x, y, c)
			nrgba64.Set(x, y, c)
			gray16.Set(x, y, gray.GrayAt(x, y))
			if _, ok := seen[c]; !ok {
				seen[c] = uint8(len(pal.Palette))
				pal.Palette = append(pal.Palette, c)
			}
			pal.SetColorIndex(x, y, seen[c])
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			ycc.Y[ycc.YOffset(x, y)], ycc.Cb[ycc.COffset(x, y)], ycc.Cr[ycc.COffset(x, y)] = yy, cb, cr
		}
	}
	// An image whose bounds do not start at the origin.
	shifted := rgb.SubImage(image.Rect(1, 1, w, h)).(*image.NRGBA)
	for _, c := range []int{1, 3} {
		for _, tc := range []struct {
			name string
			img  image.Image
			want []float32
			tol  float64
		}{
			{"NRGBA", rgb, planes(rgb, c), 1e-6},
			{"RGBA", rgba, planes(rgb, c), 1e-6},
			{"NRGBA64 (generic)", nrgba64, planes(rgb, c), 1e-6},
			{"Paletted", pal, planes(rgb, c), 1e-6},
			{"YCbCr", ycc, planes(rgb, c), 3.0 / 255},
			{"Gray", gray, planes(gray, c), 1e-6},
			{"Gray16", gray16, planes(gray, c), 1e-6},
			{"sub-image", shifted, planes(shifted, c), 1e-6},
		} {
			b := tc.img.Bounds()
			var r imageResizer
			got := make([]float32, c*b.Dx()*b.Dy())
			r.resize(got, tc.img, c, b.Dy(), b.Dx())
			if k, ok := closeTo(got, tc.want, tc.tol); !ok {
				t.Errorf("%s, %d channels: value %d = %v, want %v", tc.name, c, k, got[k], tc.want[k])
			}
		}
	}
	// Premultiplied colour with alpha is un-premultiplied, as an NRGBA
	// image stores it, and the alpha dropped.
	half := image.NewRGBA(image.Rect(0, 0, 1, 1))
	half.Pix[0], half.Pix[1], half.Pix[2], half.Pix[3] = 100, 50, 0, 128
	var r imageResizer
	got := make([]float32, 3)
	r.resize(got, half, 3, 1, 1)
	if want := []float32{100.0 / 128, 50.0 / 128, 0}; !slices.Equal(got, want) {
		t.Errorf("premultiplied (100, 50, 0, 128): %v, want %v", got, want)
	}
}

func TestLoadImageFolderSplit(t *testing.T) {
	root := t.TempDir()
	// Three classes of 10 images; image k of class c is the flat gray
	// level 10*c+k+1, so its value says which file it came from.
	for c, name := range []string{"a", "b", "c"} {
		for k := range 10 {
			v := uint8(10*c + k + 1)
			writeImage(t, filepath.Join(root, name, fmt.Sprintf("%02d.png", k)), uniform(3, 3, color.NRGBA{v, v, v, 255}))
		}
	}
	load := func(seed uint64, frac float64) *Dataset {
		t.Helper()
		ds, err := LoadImageFolder(root, FolderOptions{Height: 2, Width: 2, Channels: 1, TestFraction: frac, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds.Skipped) != 0 {
			t.Fatalf("skipped %v", ds.Skipped)
		}
		return ds
	}
	ids := func(s *Set) []int {
		out := make([]int, s.N)
		for i := range out {
			out[i] = int(math.Round(float64(s.Image(i)[0]) * 255))
			if c := (out[i] - 1) / 10; int(s.Labels[i]) != c {
				t.Fatalf("image %d (file %d) has label %d, want %d", i, out[i], s.Labels[i], c)
			}
		}
		return out
	}
	ds := load(5, 0.3)
	train, test := ids(ds.Train), ids(ds.Test)
	if len(train) != 21 || len(test) != 9 {
		t.Fatalf("%d training and %d test images, want 21 and 9", len(train), len(test))
	}
	perClass := [3]int{}
	for _, id := range test {
		perClass[(id-1)/10]++
	}
	if perClass != [3]int{3, 3, 3} {
		t.Errorf("test images per class %v, want 3 of each", perClass)
	}
	all := append(slices.Clone(train), test...)
	slices.Sort(all)
	for i, id := range all {
		if id != i+1 {
			t.Fatalf("train and test together hold files %v, want each of 1..30 once", all)
		}
	}
	if !slices.IsSorted(train) || !slices.IsSorted(test) {
		t.Errorf("the split does not keep the folder's order: %v, %v", train, test)
	}
	if again := load(5, 0.3); !slices.Equal(ids(again.Test), test) {
		t.Error("the same seed gives another split")
	}
	if other := load(6, 0.3); slices.Equal(ids(other.Test), test) {
		t.Error("another seed gives the same split")
	}
	if d := load(5, 0); d.Test.N != 6 {
		t.Errorf("the default fraction holds out %d of 30, want 6", d.Test.N)
	}
}

func TestLoadImageFolderWorkers(t *testing.T) {
	root := t.TempDir()
	for i := range 12 {
		writeImage(t, filepath.Join(root, []string{"x", "y"}[i%2], fmt.Sprintf("%d.png", i)), pattern(9+i, 7, uint64(i)))
	}
	var first *Dataset
	for _, workers := range []int{1, 2, 5, 30} {
		ds, err := LoadImageFolder(root, FolderOptions{Height: 4, Width: 5, Channels: 3, Workers: workers, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = ds
			continue
		}
		if !slices.Equal(ds.Train.Images, first.Train.Images) || !slices.Equal(ds.Test.Images, first.Test.Images) ||
			!slices.Equal(ds.Train.Labels, first.Train.Labels) {
			t.Errorf("%d workers read the folder differently from 1", workers)
		}
	}
}

func TestLoadImageFolderErrors(t *testing.T) {
	opts := FolderOptions{Height: 4, Width: 4, Channels: 3}
	mk := func(t *testing.T, files map[string]string) string {
		root := t.TempDir()
		for p, content := range files {
			path := filepath.Join(root, filepath.FromSlash(p))
			if content == "png" {
				writeImage(t, path, pattern(4, 4, 1))
			} else if strings.HasSuffix(p, "/") {
				if err := os.MkdirAll(path, 0o755); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, path, []byte(content))
			}
		}
		return root
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		opts  func(*FolderOptions)
		want  string
	}{
		{"no classes", map[string]string{"a.png": "png"}, nil, "has no class folders"},
		{"empty class", map[string]string{"a/x.png": "png", "b/readme.txt": "hi"}, nil, "holds no file ending in .png, .jpg, .jpeg"},
		{"train without test", map[string]string{"train/a/x.png": "png"}, nil, "has train/ but no test/"},
		{"test without train", map[string]string{"test/a/x.png": "png"}, nil, "has test/ but no train/"},
		{"no test images", map[string]string{"train/a/x.png": "png", "test/": ""}, nil, "holds no test images"},
		{"empty test class", map[string]string{"train/a/x.png": "png", "test/a/": ""}, nil, "holds no test images"},
		{"unknown test class", map[string]string{"train/a/x.png": "png", "test/b/x.png": "png"}, nil, `class b of`},
		{"nothing readable", map[string]string{"train/a/x.png": "junk", "train/b/y.jpg": "junk", "test/a/z.png": "png"}, nil,
			"none of the 2 training images can be read"},
		{"no test readable", map[string]string{"train/a/x.png": "png", "test/a/z.png": "junk"}, nil,
			"none of the 1 test images can be read"},
		{"too few to split", map[string]string{"a/x.png": "png", "b/y.png": "png"}, nil, "leaves no test images"},
		{"memory", map[string]string{"a/x.png": "png", "a/y.png": "png"}, func(o *FolderOptions) { o.Height, o.Width, o.TestFraction = 10000, 10000, 0.5 },
			"2 images of 3x10000x10000 need 2.24 GiB, above the limit of 1 GiB"},
		{"size", map[string]string{"a/x.png": "png"}, func(o *FolderOptions) { o.Width = 0 }, "size 4x0"},
		{"huge size", map[string]string{"a/x.png": "png"}, func(o *FolderOptions) { o.Width = MaxImageSide + 1 }, "must be in [1, 16384]"},
		{"channels", map[string]string{"a/x.png": "png"}, func(o *FolderOptions) { o.Channels = 2 }, "2 channels"},
		{"fraction", map[string]string{"a/x.png": "png"}, func(o *FolderOptions) { o.TestFraction = 1 }, "test fraction 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := mk(t, tc.files)
			o := opts
			o.MaxBytes = 1 << 30
			if tc.opts != nil {
				tc.opts(&o)
			}
			ds, err := LoadImageFolder(root, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "data: ") {
				t.Errorf("got %v, %v; want an error containing %q", ds, err, tc.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := LoadImageFolder(filepath.Join(t.TempDir(), "absent"), opts)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v, want one wrapping fs.ErrNotExist", err)
		}
	})
	t.Run("too many classes", func(t *testing.T) {
		files := map[string]string{}
		for i := range MaxClasses + 1 {
			files[fmt.Sprintf("c%03d/", i)] = ""
		}
		_, err := LoadImageFolder(mk(t, files), opts)
		if err == nil || !strings.Contains(err.Error(), "257 classes") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("pixel limit", func(t *testing.T) {
		root := t.TempDir()
		writeImage(t, filepath.Join(root, "train", "a", "small.png"), pattern(4, 4, 1))
		writeImage(t, filepath.Join(root, "train", "a", "big.png"), pattern(40, 40, 1))
		writeImage(t, filepath.Join(root, "test", "a", "small.png"), pattern(4, 4, 1))
		o := opts
		o.MaxPixels = 1000
		ds, err := LoadImageFolder(root, o)
		if err != nil {
			t.Fatal(err)
		}
		big := filepath.Join(root, "train", "a", "big.png")
		if ds.Train.N != 1 || len(ds.Skipped) != 1 || ds.Skipped[0].Path != big || !errors.Is(ds.Skipped[0], ErrTooLarge) {
			t.Errorf("train N %d, skipped %v; want big.png skipped as too large", ds.Train.N, ds.Skipped)
		}
	})
}

func TestResolve(t *testing.T) {
	idx := t.TempDir()
	mnistFiles{nTrain: 6, nTest: 4, rows: 5, cols: 3, badLabel: -1}.write(t, idx)
	folder := t.TempDir()
	for i := range 6 {
		writeImage(t, filepath.Join(folder, []string{"p", "q"}[i%2], fmt.Sprintf("%d.png", i)), pattern(7, 7, uint64(i)))
	}
	opts := FolderOptions{Height: 4, Width: 4, Channels: 3, TestFraction: 0.5}
	t.Setenv("MNIST_DIR", idx)
	fashion := t.TempDir()
	mnistFiles{nTrain: 6, nTest: 4, rows: 5, cols: 3, badLabel: -1}.write(t, fashion)
	t.Setenv("FASHION_MNIST_DIR", fashion)
	for _, tc := range []struct {
		spec, name string
		classes    []string
		shape      [4]int
	}{
		{"", "mnist", DigitClasses, [4]int{6, 1, 5, 3}},
		{"mnist", "mnist", DigitClasses, [4]int{6, 1, 5, 3}},
		{"fashion-mnist", "fashion-mnist", FashionMNISTClasses, [4]int{6, 1, 5, 3}},
		{idx, "idx", DigitClasses, [4]int{6, 1, 5, 3}},
		{fashion + "/", "fashion-mnist", FashionMNISTClasses, [4]int{6, 1, 5, 3}},
		{folder, "folder", []string{"p", "q"}, [4]int{2, 3, 4, 4}}, // round(1.5) of each 3 are held out
	} {
		ds, err := Resolve(tc.spec, opts)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.spec, err)
			continue
		}
		if ds.Name != tc.name || !slices.Equal(ds.Train.Classes, tc.classes) || ds.Train.Shape() != tc.shape || ds.Test.N == 0 {
			t.Errorf("Resolve(%q): name %q, classes %q, shape %v, %d test images", tc.spec, ds.Name, ds.Train.Classes, ds.Train.Shape(), ds.Test.N)
		}
	}
	missing := filepath.Join(t.TempDir(), "absent")
	t.Setenv("FASHION_MNIST_DIR", missing)
	if _, err := Resolve("fashion-mnist", opts); err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
		t.Errorf("Resolve(fashion-mnist) without the data: %v, want the package to install", err)
	}
	if _, err := Resolve(missing, opts); err == nil || !strings.Contains(err.Error(), missing+" does not exist: want mnist, fashion-mnist") {
		t.Errorf("Resolve(%s): %v", missing, err)
	}
	file := filepath.Join(folder, "p", "0.png")
	if _, err := Resolve(file, opts); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("Resolve(%s): %v", file, err)
	}
}

// TestImageFolderTraining reads a folder and runs the batches of a
// training epoch through Gather and Augment, as a training loop does.
func TestImageFolderTraining(t *testing.T) {
	root := t.TempDir()
	for i := range 20 {
		writeImage(t, filepath.Join(root, []string{"cat", "dog"}[i%2], fmt.Sprintf("%d.png", i)), pattern(12, 10, uint64(i)))
	}
	writeFile(t, filepath.Join(root, "dog", "bad.png"), []byte("GIF89a"))
	ds, err := LoadImageFolder(root, FolderOptions{Height: 8, Width: 8, Channels: 3, TestFraction: 0.25, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Skipped) != 1 || filepath.Base(ds.Skipped[0].Path) != "bad.png" {
		t.Fatalf("skipped %v, want bad.png", ds.Skipped)
	}
	if ds.Train.N+ds.Test.N != 20 {
		t.Fatalf("%d + %d images, want 20", ds.Train.N, ds.Test.N)
	}
	const batch = 4
	b, err := NewBatches(ds.Train.N, batch, true, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	aug, err := NewAugment(2, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	x, xa, y := make([]float32, batch*ds.Train.Dim()), make([]float32, batch*ds.Train.Dim()), make([]float32, batch)
	for k, idx := range b.Epoch(0) {
		Gather(ds.Train, idx, x, y)
		aug.Apply(xa, x, [4]int{batch, 3, 8, 8}, 0, k)
		for i, v := range xa {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("batch %d: value %d = %v", k, i, v)
			}
		}
	}
}

func BenchmarkLoadImageFolder(b *testing.B) {
	root := b.TempDir()
	const n = 64
	for i := range n {
		writeImage(b, filepath.Join(root, fmt.Sprintf("c%d", i%4), fmt.Sprintf("%d.png", i)), pattern(64, 64, uint64(i)))
	}
	for _, c := range []int{1, 3} {
		b.Run(fmt.Sprintf("%d png 64x64 to %dx32x32", n, c), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := LoadImageFolder(root, FolderOptions{Height: 32, Width: 32, Channels: c, Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/image")
		})
	}
}

// BenchmarkResize converts and resizes one decoded image, as every file of a
// folder is after decoding.
func BenchmarkResize(b *testing.B) {
	rgb := pattern(256, 256, 1)
	ycc := image.NewYCbCr(rgb.Bounds(), image.YCbCrSubsampleRatio420)
	for _, tc := range []struct {
		name string
		img  image.Image
		c    int
	}{{"NRGBA 256x256 to 3x32x32", rgb, 3}, {"NRGBA 256x256 to 1x32x32", rgb, 1}, {"YCbCr 256x256 to 3x32x32", ycc, 3}} {
		b.Run(tc.name, func(b *testing.B) {
			var r imageResizer
			dst := make([]float32, tc.c*32*32)
			b.ReportAllocs()
			for b.Loop() {
				r.resize(dst, tc.img, tc.c, 32, 32)
			}
		})
	}
}
