package data

import (
	"errors"
	"fmt"
	"image"
)

// ImageInput resizes img to c×h×w values in [0, 1] (c: 1 for luma, 3 for
// RGB), exactly as LoadImageFolder resizes the files of a folder, so that
// a model trained on a folder sees a new image as it saw its training
// images.
func ImageInput(img image.Image, c, h, w int) ([]float32, error) {
	if img == nil {
		return nil, errors.New("data: image: no image")
	}
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("data: image: %d channels: want 1 or 3", c)
	}
	if h < 1 || w < 1 || h > MaxImageSide || w > MaxImageSide {
		return nil, fmt.Errorf("data: image: output size %dx%d: want sides from 1 to %d", h, w, MaxImageSide)
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("data: image: the image is empty (%dx%d)", b.Dx(), b.Dy())
	}
	dst := make([]float32, c*h*w)
	var r imageResizer
	r.resize(dst, img, c, h, w)
	return dst, nil
}
