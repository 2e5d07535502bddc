package data

import (
	"fmt"
	"math/rand/v2"
)

// augmentKey is mixed into the seed of every augmentation draw, so that an
// Augment and a Batches given the same seed draw from different PCG
// streams.
const augmentKey = 0x9e3779b97f4a7c15

// MaxAugmentPad bounds the padding of a random crop.
const MaxAugmentPad = 1 << 10

// Augment is seeded augmentation of training batches, as torchvision's
// RandomCrop(size, padding=Pad) followed by RandomHorizontalFlip(): each
// image of a batch is zero-padded by Pad pixels on every side, cropped back
// to its size at a random offset, and, if flipping is on, mirrored left to
// right with probability 1/2. The draws depend only on the seed, the epoch
// and the batch number, so a resumed run augments exactly as an
// uninterrupted one.
//
// Flipping changes what a digit means; leave it off for MNIST.
type Augment struct {
	pad  int
	flip bool
	seed uint64
}

// Crop is the augmentation drawn for one image: the image's top-left pixel
// lands at (Pad-DY, Pad-DX) of the output before the flip, that is the crop
// starts at row DY and column DX of the padded image, 0 <= DY, DX <= 2*Pad;
// Flip mirrors the crop left to right.
type Crop struct {
	DY, DX int
	Flip   bool
}

// NewAugment returns an augmentation with random crops of padding pad (0
// turns crops off) and, if flip is set, random horizontal flips, drawn from
// seed.
func NewAugment(pad int, flip bool, seed uint64) (*Augment, error) {
	if pad < 0 || pad > MaxAugmentPad {
		return nil, fmt.Errorf("data: NewAugment: padding %d is not in [0, %d]", pad, MaxAugmentPad)
	}
	return &Augment{pad: pad, flip: flip, seed: seed}, nil
}

// Pad is the padding of the random crop.
func (a *Augment) Pad() int { return a.pad }

// Flips reports whether images are flipped at random.
func (a *Augment) Flips() bool { return a.flip }

// source seeds the PCG of (epoch, batch) in place.
func (a *Augment) source(src *rand.PCG, epoch, batch int) {
	if epoch < 0 || batch < 0 || uint64(epoch) >= 1<<32 || uint64(batch) >= 1<<32 {
		panic(fmt.Sprintf("data: Augment: epoch %d and batch %d must be in [0, 2^32)", epoch, batch))
	}
	src.Seed(a.seed^augmentKey, uint64(epoch)<<32|uint64(batch))
}

// next draws the augmentation of the next image.
func (a *Augment) next(src *rand.PCG) Crop {
	var c Crop
	if a.pad > 0 {
		span := uint64(2*a.pad + 1)
		c.DY = int(uint64n(src, span))
		c.DX = int(uint64n(src, span))
	}
	if a.flip {
		c.Flip = src.Uint64()>>63 == 1
	}
	return c
}

// Draw writes the augmentations of the first len(out) images of batch batch
// of epoch epoch to out: the ones Apply uses. It allocates nothing.
func (a *Augment) Draw(epoch, batch int, out []Crop) {
	var src rand.PCG
	a.source(&src, epoch, batch)
	for i := range out {
		out[i] = a.next(&src)
	}
}

// Apply augments a batch of shape [N, C, H, W] from src into dst, both of
// N*C*H*W values, as batch batch of epoch epoch: every channel of an image
// gets the same crop and flip. It allocates nothing. It panics if the
// lengths do not match the shape or dst and src are the same slice.
func (a *Augment) Apply(dst, src []float32, shape [4]int, epoch, batch int) {
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	if n < 0 || c < 1 || h < 1 || w < 1 || len(src) != n*c*h*w || len(dst) != len(src) {
		panic(fmt.Sprintf("data: Augment.Apply: shape %v needs %d values in src and dst, have %d and %d",
			shape, max(0, n*c*h*w), len(src), len(dst)))
	}
	if len(dst) > 0 && &dst[0] == &src[0] {
		panic("data: Augment.Apply: dst and src are the same slice")
	}
	var rng rand.PCG
	a.source(&rng, epoch, batch)
	p := a.pad
	for i := range n {
		cr := a.next(&rng)
		// Output pixel (y, x) before the flip is input pixel
		// (y+DY-p, x+DX-p), zero outside the image.
		oy, ox := cr.DY-p, cr.DX-p
		x0, x1 := max(0, -ox), min(w, w-ox) // the output columns inside the image
		for ch := range c {
			plane := (i*c + ch) * h * w
			for y := range h {
				out := dst[plane+y*w : plane+(y+1)*w]
				sy := y + oy
				if sy < 0 || sy >= h || x0 >= x1 {
					clear(out)
					continue
				}
				row := src[plane+sy*w : plane+(sy+1)*w]
				clear(out[:x0])
				copy(out[x0:x1], row[x0+ox:x1+ox])
				clear(out[x1:])
				if cr.Flip {
					for l, r := 0, w-1; l < r; l, r = l+1, r-1 {
						out[l], out[r] = out[r], out[l]
					}
				}
			}
		}
	}
}
