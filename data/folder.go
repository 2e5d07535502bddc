package data

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Limits of LoadImageFolder; FolderOptions may lower or raise the first
// three.
const (
	// DefaultMaxPixels is the largest image, in pixels, read from a folder
	// unless FolderOptions.MaxPixels says otherwise: Pillow's
	// MAX_IMAGE_PIXELS.
	DefaultMaxPixels = 89_478_485
	// DefaultMaxBytes bounds the memory of the decoded Sets of a folder
	// unless FolderOptions.MaxBytes says otherwise: 8 GiB.
	DefaultMaxBytes = 8 << 30
	// DefaultTestFraction is the share of each class held out for testing
	// from a folder without train/ and test/ unless FolderOptions says
	// otherwise.
	DefaultTestFraction = 0.2
	// MaxImageSide bounds the height and width images are resized to.
	MaxImageSide = 1 << 14
	// MaxClasses is the most classes a folder may have: labels are uint8.
	MaxClasses = 256
)

// ImageExtensions are the file name endings LoadImageFolder reads, compared
// without regard to case. Files with the other endings torchvision reads
// (.bmp, .pgm, .ppm, .tif, .tiff, .webp) are listed as skipped, since they
// cannot be read here; all other files are ignored, as torchvision ignores
// them.
var ImageExtensions = []string{".png", ".jpg", ".jpeg"}

// unsupportedExtensions are torchvision's IMG_EXTENSIONS that DecodeImage
// does not read.
var unsupportedExtensions = []string{".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}

// FolderOptions says how LoadImageFolder reads an image folder.
type FolderOptions struct {
	// Height and Width are the size every image is resized to, by area
	// averaging (aspect ratios are not kept). Both are required.
	Height, Width int
	// Channels is 1 (grayscale, the luma of ITU-R 601: 0.299 R + 0.587 G +
	// 0.114 B, as Pillow's convert("L")) or 3 (RGB). Alpha is dropped, as
	// Pillow's convert does.
	Channels int
	// TestFraction is, for a folder without train/ and test/, the share
	// of each class that goes to the test set, in (0, 1); 0 means
	// DefaultTestFraction.
	TestFraction float64
	// Seed drives that split.
	Seed uint64
	// Workers is the number of files decoded at once; 0 means
	// runtime.GOMAXPROCS(0). Besides the Sets, decoding holds up to
	// Workers decoded images at once, about 4 bytes a pixel each (8 for
	// 16-bit PNGs).
	Workers int
	// MaxPixels is the largest image read, in pixels, checked from its
	// header before its pixels are decoded; larger files are skipped. 0
	// means DefaultMaxPixels.
	MaxPixels int
	// MaxBytes bounds the memory of the decoded Sets, N*C*H*W*4 bytes,
	// checked before anything is decoded. 0 means DefaultMaxBytes.
	MaxBytes int64
}

// FileError is a file of an image folder that could not be read; the
// folder's other files are read all the same.
type FileError struct {
	Path string
	Err  error
}

// Error names the file and what was wrong with it.
func (e *FileError) Error() string {
	return "data: " + e.Path + ": " + strings.TrimPrefix(e.Err.Error(), "data: ")
}

// Unwrap returns the reason the file could not be read.
func (e *FileError) Unwrap() error { return e.Err }

// Dataset is a training set and a test set of images of the same shape and
// classes, and the files that were skipped because they could not be read.
type Dataset struct {
	// Name is what was loaded: "mnist", "fashion-mnist", "idx" (a directory
	// of MNIST-layout IDX files) or "folder" (an image folder).
	Name string
	// Dir is the directory it was read from.
	Dir         string
	Train, Test *Set
	// Skipped lists the unreadable files of an image folder, each naming
	// its file, in the folder's order; the caller reports them.
	Skipped []*FileError
}

// LoadImageFolder reads a folder of images sorted into one subfolder per
// class, as torchvision's ImageFolder does, in one of two layouts:
//
//	DIR/train/<class>/... and DIR/test/<class>/...
//	DIR/<class>/...   split into train and test by opts.TestFraction
//
// The classes are the subfolders' names sorted as strings (torchvision's
// order, so that a label means the same class in both), hidden ones
// (starting with ".") excepted; in the first layout they are those of
// train/, and a test/ class must be one of them. A class folder's images
// are the files under it, at any depth, whose names end in one of
// ImageExtensions (see there for the rest), in sorted order. The split of
// the second layout holds out round(TestFraction*n) of the n images of
// every class, drawn with opts.Seed; both sets keep the folder's order.
//
// Every image is resized to opts.Height×opts.Width, gray or RGB, into a Set
// of [N, C, H, W] values in [0, 1]. Files are decoded in parallel. The
// memory of the result is checked against opts.MaxBytes before anything is
// decoded. A file that cannot be read (corrupt, not an image, more than
// opts.MaxPixels pixels) is skipped and listed in Dataset.Skipped; a set in
// which no file can be read is an error.
func LoadImageFolder(dir string, opts FolderOptions) (*Dataset, error) {
	opts, err := opts.check()
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("data: image folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("data: image folder %s is not a directory", dir)
	}
	trainDir, testDir := filepath.Join(dir, "train"), filepath.Join(dir, "test")
	hasTrain, hasTest := isDir(trainDir), isDir(testDir)
	var classes []string
	var trainFiles, testFiles []labelled
	switch {
	case hasTrain && hasTest:
		if classes, trainFiles, err = scanClasses(trainDir, nil); err != nil {
			return nil, err
		}
		if _, testFiles, err = scanClasses(testDir, classes); err != nil {
			return nil, err
		}
		if len(testFiles) == 0 {
			return nil, fmt.Errorf("data: image folder %s holds no test images: want %s/<class>/<image>.png", dir, testDir)
		}
	case hasTrain || hasTest:
		have, lack := "train", "test"
		if hasTest {
			have, lack = lack, have
		}
		return nil, fmt.Errorf("data: image folder %s has %s/ but no %s/: add %s, or pass %s to split it into train and test",
			dir, have, lack, filepath.Join(dir, lack), filepath.Join(dir, have))
	default:
		var all []labelled
		if classes, all, err = scanClasses(dir, nil); err != nil {
			return nil, err
		}
		trainFiles, testFiles = splitFiles(all, len(classes), opts.TestFraction, opts.Seed)
		if len(testFiles) == 0 {
			return nil, fmt.Errorf("data: image folder %s: a test fraction of %v of %d images leaves no test images",
				dir, opts.TestFraction, len(all))
		}
	}

	c, h, w := opts.Channels, opts.Height, opts.Width
	n := len(trainFiles) + len(testFiles)
	if bytes := float64(n) * float64(c*h*w) * 4; bytes > float64(opts.MaxBytes) {
		return nil, fmt.Errorf("data: image folder %s: %d images of %dx%dx%d need %.3g GiB, above the limit of %.3g GiB (FolderOptions.MaxBytes)",
			dir, n, c, h, w, bytes/(1<<30), float64(opts.MaxBytes)/(1<<30))
	}
	train := &Set{Images: make([]float32, len(trainFiles)*c*h*w), Labels: labelsOf(trainFiles),
		N: len(trainFiles), Rows: h, Cols: w, Channels: c, Classes: classes}
	test := &Set{Images: make([]float32, len(testFiles)*c*h*w), Labels: labelsOf(testFiles),
		N: len(testFiles), Rows: h, Cols: w, Channels: c, Classes: classes}
	errs := decodeAll(opts, []*Set{train, test}, [][]labelled{trainFiles, testFiles})

	ds := &Dataset{Name: "folder", Dir: dir, Train: train, Test: test}
	for k, s := range []*Set{train, test} {
		files := [][]labelled{trainFiles, testFiles}[k]
		for i, err := range errs[k] {
			if err != nil {
				ds.Skipped = append(ds.Skipped, &FileError{Path: files[i].path, Err: err})
			}
		}
		compact(s, errs[k])
		if len(files) == 0 {
			return nil, fmt.Errorf("data: image folder %s has no %s images", dir, [...]string{"training", "test"}[k])
		}
		if s.N == 0 {
			last := ds.Skipped[len(ds.Skipped)-1]
			return nil, fmt.Errorf("data: image folder %s: none of the %d %s images can be read; the last: %w",
				dir, len(files), [...]string{"training", "test"}[k], last)
		}
	}
	return ds, nil
}

// check validates opts and fills in the defaults.
func (o FolderOptions) check() (FolderOptions, error) {
	if o.Height < 1 || o.Width < 1 || o.Height > MaxImageSide || o.Width > MaxImageSide {
		return o, fmt.Errorf("data: image folder: size %dx%d: height and width must be in [1, %d]", o.Height, o.Width, MaxImageSide)
	}
	if o.Channels != 1 && o.Channels != 3 {
		return o, fmt.Errorf("data: image folder: %d channels: want 1 (gray) or 3 (RGB)", o.Channels)
	}
	if o.TestFraction == 0 {
		o.TestFraction = DefaultTestFraction
	}
	if !(o.TestFraction > 0 && o.TestFraction < 1) {
		return o, fmt.Errorf("data: image folder: test fraction %v is not in (0, 1)", o.TestFraction)
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxPixels == 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Workers < 0 || o.MaxPixels < 0 || o.MaxBytes < 0 {
		return o, fmt.Errorf("data: image folder: negative Workers (%d), MaxPixels (%d) or MaxBytes (%d)", o.Workers, o.MaxPixels, o.MaxBytes)
	}
	return o, nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// labelled is an image file and its class.
type labelled struct {
	path  string
	label uint8
}

func labelsOf(files []labelled) []uint8 {
	l := make([]uint8, len(files))
	for i, f := range files {
		l[i] = f.label
	}
	return l
}

// scanClasses lists the class folders of dir and their image files. With
// known == nil the classes are dir's subfolders and every one must hold an
// image; otherwise they are known, and a subfolder of dir must be one of
// them.
func scanClasses(dir string, known []string) (classes []string, files []labelled, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("data: image folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !isDir(filepath.Join(dir, e.Name())) {
			continue
		}
		names = append(names, e.Name())
	}
	slices.Sort(names)
	if known == nil {
		if len(names) == 0 {
			return nil, nil, fmt.Errorf("data: image folder %s has no class folders: want %s/<class>/<image>.png", dir, dir)
		}
		if len(names) > MaxClasses {
			return nil, nil, fmt.Errorf("data: image folder %s has %d classes, more than the %d supported", dir, len(names), MaxClasses)
		}
		classes = names
	} else {
		classes = known
	}
	for _, name := range names {
		label, ok := slices.BinarySearch(classes, name)
		if !ok {
			return nil, nil, fmt.Errorf("data: image folder: class %s of %s is not among the training classes %q", name, dir, classes)
		}
		paths, err := imageFiles(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		if len(paths) == 0 && known == nil {
			return nil, nil, fmt.Errorf("data: image folder: class folder %s holds no file ending in %s",
				filepath.Join(dir, name), strings.Join(ImageExtensions, ", "))
		}
		for _, p := range paths {
			files = append(files, labelled{path: p, label: uint8(label)})
		}
	}
	return classes, files, nil
}

// imageFiles lists the image files under dir, folder by folder in sorted
// order of the folders' paths and, within one, of the names, as
// torchvision's sorted os.walk does. dir itself may be a symbolic link;
// links to folders below it are not followed.
func imageFiles(dir string) ([]string, error) {
	byDir := map[string][]string{}
	// The trailing separator makes the walk start at what a link points to.
	err := filepath.WalkDir(dir+string(filepath.Separator), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isImageFile(d.Name()) {
			return nil
		}
		parent := filepath.Dir(path)
		byDir[parent] = append(byDir[parent], path)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("data: image folder: %w", err)
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	var out []string
	for _, d := range dirs {
		files := byDir[d]
		slices.Sort(files)
		out = append(out, files...)
	}
	return out, nil
}

// isImageFile reports whether name has one of torchvision's image
// extensions, readable here or not.
func isImageFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return slices.Contains(ImageExtensions, ext) || slices.Contains(unsupportedExtensions, ext)
}

// splitStreamFolder is the PCG stream of the split of class k: the streams
// count down from one below Split's, far from the epochs' 0, 1, 2, ...
func splitStreamFolder(k int) uint64 { return splitStream - 1 - uint64(k) }

// splitFiles holds out round(frac*n) of the n files of every class, drawn
// with seed; both parts keep the order of files.
func splitFiles(files []labelled, classes int, frac float64, seed uint64) (train, test []labelled) {
	byClass := make([][]int, classes)
	for i, f := range files {
		byClass[f.label] = append(byClass[f.label], i)
	}
	isTest := make([]bool, len(files))
	for k, idx := range byClass {
		nTest := int(math.Round(frac * float64(len(idx))))
		shuffle(idx, seed, splitStreamFolder(k))
		for _, i := range idx[:nTest] {
			isTest[i] = true
		}
	}
	for i, f := range files {
		if isTest[i] {
			test = append(test, f)
		} else {
			train = append(train, f)
		}
	}
	return train, test
}

// decodeAll decodes files[k][i] into image i of sets[k] with opts.Workers
// workers, and returns the error of every file, nil for those read.
func decodeAll(opts FolderOptions, sets []*Set, files [][]labelled) [][]error {
	type job struct{ k, i int }
	jobs := make(chan job)
	errs := make([][]error, len(sets))
	for k := range sets {
		errs[k] = make([]error, len(files[k]))
	}
	var wg sync.WaitGroup
	for range max(1, opts.Workers) {
		wg.Go(func() {
			var r imageResizer
			for j := range jobs {
				errs[j.k][j.i] = r.loadFile(sets[j.k].Image(j.i), files[j.k][j.i].path, opts)
			}
		})
	}
	for k := range sets {
		for i := range files[k] {
			jobs <- job{k, i}
		}
	}
	close(jobs)
	wg.Wait()
	return errs
}

// loadFile decodes the image at path into dst, C×H×W values.
func (r *imageResizer) loadFile(dst []float32, path string, opts FolderOptions) error {
	if ext := strings.ToLower(filepath.Ext(path)); !slices.Contains(ImageExtensions, ext) {
		return fmt.Errorf("data: image: %s files are not supported, only PNG and JPEG", ext)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return r.decode(dst, f, opts)
}

// decode reads an image from rd into dst, C×H×W values, refusing one of
// more than opts.MaxPixels pixels before decoding it.
func (r *imageResizer) decode(dst []float32, rd io.Reader, opts FolderOptions) error {
	img, err := DecodeImage(rd, opts.MaxPixels)
	if err != nil {
		return err
	}
	r.resize(dst, img, opts.Channels, opts.Height, opts.Width)
	return nil
}

// compact removes the images whose error is not nil from s, keeping the
// order of the rest.
func compact(s *Set, errs []error) {
	d, n := s.Dim(), 0
	for i, err := range errs {
		if err != nil {
			continue
		}
		if n != i {
			copy(s.Images[n*d:(n+1)*d], s.Images[i*d:(i+1)*d])
			s.Labels[n] = s.Labels[i]
		}
		n++
	}
	s.Images, s.Labels, s.N = s.Images[:n*d:n*d], s.Labels[:n:n], n
}

// isFashionDir reports whether dir is where DefaultFashionMNISTDir looks.
func isFashionDir(dir string) bool {
	dir = filepath.Clean(dir)
	env := os.Getenv("FASHION_MNIST_DIR")
	return dir == FashionMNISTDir || (env != "" && dir == filepath.Clean(env))
}

// Resolve loads the data a -data flag names:
//
//	"" or "mnist"      MNIST, from DefaultMNISTDir
//	"fashion-mnist"    Fashion-MNIST, from DefaultFashionMNISTDir
//	a directory        of the four MNIST-layout IDX files (LoadMNIST, or
//	                   LoadFashionMNIST in the directory that
//	                   DefaultFashionMNISTDir finds), or else an image
//	                   folder (LoadImageFolder with opts)
//
// The names come first: a directory called mnist is ./mnist. opts applies
// to image folders only. A missing data set gives an error that says how
// to get it.
func Resolve(spec string, opts FolderOptions) (*Dataset, error) {
	var (
		name, dir   string
		train, test *Set
		err         error
	)
	switch spec {
	case "", "mnist":
		name = "mnist"
		if dir, err = DefaultMNISTDir(); err != nil {
			return nil, err
		}
		train, test, err = LoadMNIST(dir)
	case "fashion-mnist":
		name = "fashion-mnist"
		if dir, err = DefaultFashionMNISTDir(); err != nil {
			return nil, err
		}
		train, test, err = LoadFashionMNIST(dir)
	default:
		dir = spec
		fi, statErr := os.Stat(dir)
		if statErr != nil {
			if errors.Is(statErr, fs.ErrNotExist) {
				return nil, fmt.Errorf("data: %s does not exist: want mnist, fashion-mnist, a directory of MNIST IDX files or an image folder", dir)
			}
			return nil, fmt.Errorf("data: %w", statErr)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("data: %s is not a directory: want mnist, fashion-mnist, a directory of MNIST IDX files or an image folder", dir)
		}
		if _, err := findFile(dir, "train-images-idx3-ubyte", "MNIST"); errors.Is(err, fs.ErrNotExist) {
			return LoadImageFolder(dir, opts)
		} else if err != nil {
			return nil, err
		}
		if isFashionDir(dir) {
			name = "fashion-mnist"
			train, test, err = LoadFashionMNIST(dir)
		} else {
			name = "idx"
			train, test, err = LoadMNIST(dir)
		}
	}
	if err != nil {
		return nil, err
	}
	return &Dataset{Name: name, Dir: dir, Train: train, Test: test}, nil
}
