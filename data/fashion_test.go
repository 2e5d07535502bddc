package data

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fashionDir is Fashion-MNIST's directory. Without -short the test fails,
// saying which package to install, when the data is missing.
func fashionDir(t *testing.T) string {
	t.Helper()
	dir, err := DefaultFashionMNISTDir()
	if err != nil {
		if testing.Short() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return dir
}

func TestLoadFashionMNIST(t *testing.T) {
	train, test, err := LoadFashionMNIST(fashionDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if train.Shape() != [4]int{60000, 1, 28, 28} || test.Shape() != [4]int{10000, 1, 28, 28} {
		t.Fatalf("shapes %v and %v, want [60000 1 28 28] and [10000 1 28 28]", train.Shape(), test.Shape())
	}
	if !slices.Equal(train.Classes, FashionMNISTClasses) || !slices.Equal(test.Classes, FashionMNISTClasses) {
		t.Fatalf("classes %q and %q", train.Classes, test.Classes)
	}
	// Fashion-MNIST is balanced: 6000 training and 1000 test images a class.
	for _, c := range []struct {
		s    *Set
		want int
	}{{train, 6000}, {test, 1000}} {
		var counts [10]int
		for _, l := range c.s.Labels {
			counts[l]++
		}
		for k, n := range counts {
			if n != c.want {
				t.Errorf("class %d (%s) has %d images, want %d", k, FashionMNISTClasses[k], n, c.want)
			}
		}
	}
	// The first training image is an ankle boot, the first test image too
	// (torchvision's FashionMNIST gives the same).
	if train.Labels[0] != 9 || test.Labels[0] != 9 {
		t.Errorf("first labels %d and %d, want 9 and 9", train.Labels[0], test.Labels[0])
	}
	for _, s := range []*Set{train, test} {
		lo, hi := s.Images[0], s.Images[0]
		for _, p := range s.Images {
			lo, hi = min(lo, p), max(hi, p)
		}
		if lo != 0 || hi != 1 {
			t.Errorf("pixel range [%v, %v], want [0, 1]", lo, hi)
		}
	}
}

func TestDefaultFashionMNISTDir(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("FASHION_MNIST_DIR", dir)
		if got, err := DefaultFashionMNISTDir(); err != nil || got != dir {
			t.Errorf("got %q, %v; want %q", got, err, dir)
		}
		missing := filepath.Join(dir, "absent")
		t.Setenv("FASHION_MNIST_DIR", missing)
		_, err := DefaultFashionMNISTDir()
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "apt-get install "+FashionMNISTPackage) {
			t.Errorf("error %v, want one naming %s and the package", err, missing)
		}
		file := filepath.Join(dir, "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("FASHION_MNIST_DIR", file)
		if _, err := DefaultFashionMNISTDir(); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("error %v, want not a directory", err)
		}
	})
	t.Run("default", func(t *testing.T) {
		t.Setenv("FASHION_MNIST_DIR", "")
		got, err := DefaultFashionMNISTDir()
		if _, statErr := os.Stat(FashionMNISTDir); statErr == nil {
			if err != nil || got != FashionMNISTDir {
				t.Errorf("got %q, %v; want %q", got, err, FashionMNISTDir)
			}
		} else if err == nil || !strings.Contains(err.Error(), FashionMNISTPackage) {
			t.Errorf("error %v, want one naming %s", err, FashionMNISTPackage)
		}
	})
	t.Run("missing dir names the package", func(t *testing.T) {
		_, _, err := LoadFashionMNIST(filepath.Join(t.TempDir(), "absent"))
		if err == nil || !strings.Contains(err.Error(), "apt-get install "+FashionMNISTPackage) {
			t.Errorf("error %v, want one naming the package", err)
		}
	})
}

func TestSetShape(t *testing.T) {
	old := &Set{Images: make([]float32, 2*6), Labels: make([]uint8, 2), N: 2, Rows: 2, Cols: 3}
	if old.C() != 1 || old.Dim() != 6 || old.Shape() != [4]int{2, 1, 2, 3} || old.NumClasses() != 10 {
		t.Errorf("a Set without Channels: C %d, Dim %d, Shape %v, NumClasses %d", old.C(), old.Dim(), old.Shape(), old.NumClasses())
	}
	rgb := &Set{Images: make([]float32, 4*3*2*5), Labels: make([]uint8, 4), N: 4, Rows: 2, Cols: 5, Channels: 3, Classes: []string{"a", "b"}}
	for i := range rgb.Images {
		rgb.Images[i] = float32(i)
	}
	if rgb.Dim() != 30 || rgb.Shape() != [4]int{4, 3, 2, 5} || rgb.NumClasses() != 2 || rgb.Image(2)[0] != 60 {
		t.Errorf("RGB: Dim %d, Shape %v, NumClasses %d, Image(2)[0] %v", rgb.Dim(), rgb.Shape(), rgb.NumClasses(), rgb.Image(2)[0])
	}
	sub := rgb.Subset(3)
	if sub.Shape() != [4]int{3, 3, 2, 5} || len(sub.Images) != 90 || !slices.Equal(sub.Classes, rgb.Classes) {
		t.Errorf("Subset(3): shape %v, %d values, classes %q", sub.Shape(), len(sub.Images), sub.Classes)
	}
	tr, val := Split(rgb, 0.5, 1)
	for _, s := range []*Set{tr, val} {
		if s.C() != 3 || len(s.Images) != s.N*30 || !slices.Equal(s.Classes, rgb.Classes) {
			t.Errorf("Split: C %d, N %d, %d values, classes %q", s.C(), s.N, len(s.Images), s.Classes)
		}
		for i := range s.N {
			if v := s.Image(i)[0]; int(v)%30 != 0 || s.Image(i)[29] != v+29 {
				t.Errorf("Split: image %d is not a whole original image", i)
			}
		}
	}
}
