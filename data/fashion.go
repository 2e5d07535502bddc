package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Fashion-MNIST as Debian packages it: FashionMNISTPackage installs the four
// IDX files, gzipped, in FashionMNISTDir.
const (
	FashionMNISTPackage = "dataset-fashion-mnist"
	FashionMNISTDir     = "/usr/share/datasets/fashion-mnist"
)

// fashionHint tells a user how to get Fashion-MNIST.
const fashionHint = "install Debian's package: apt-get install " + FashionMNISTPackage +
	"; or set FASHION_MNIST_DIR, or pass -data DIR"

// FashionMNISTClasses names the ten classes of Fashion-MNIST, label 0 first,
// as torchvision's FashionMNIST.classes does.
var FashionMNISTClasses = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// LoadFashionMNIST reads Fashion-MNIST from dir, which holds the same four
// files as an MNIST directory (see LoadMNIST), raw or gzipped. The Sets have
// one channel of 28×28 pixels in [0, 1] and FashionMNISTClasses as their
// class names. A missing directory gives an error that says which Debian
// package to install.
func LoadFashionMNIST(dir string) (train, test *Set, err error) {
	return loadIDXDir(dir, "Fashion-MNIST", fashionHint, FashionMNISTClasses)
}

// DefaultFashionMNISTDir finds Fashion-MNIST: $FASHION_MNIST_DIR if set,
// otherwise FashionMNISTDir, where Debian's FashionMNISTPackage puts it. The
// error says which package to install when neither exists.
func DefaultFashionMNISTDir() (string, error) {
	dir, source := os.Getenv("FASHION_MNIST_DIR"), "FASHION_MNIST_DIR="
	if dir == "" {
		dir, source = FashionMNISTDir, ""
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("data: Fashion-MNIST not found: %s%s does not exist (%s)", source, dir, fashionHint)
	case err != nil:
		return "", fmt.Errorf("data: Fashion-MNIST: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("data: Fashion-MNIST: %s%s is not a directory", source, dir)
	}
	return dir, nil
}
