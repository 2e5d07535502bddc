package data_test

import (
	"bytes"
	"fmt"

	"github.com/gograd/gograd/data"
)

func ExampleReadIDX() {
	// A 2×3 IDX file: magic 00 00 08 02, dimensions 2 and 3, six bytes.
	raw := []byte{0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6}
	idx, err := data.ReadIDX(bytes.NewReader(raw))
	fmt.Println(idx.Dims, idx.Data, err)

	_, err = data.ReadIDX(bytes.NewReader(raw[:15]))
	fmt.Println(err)
	// Output:
	// [2 3] [1 2 3 4 5 6] <nil>
	// data: IDX: truncated: header says 6 bytes of data, file has 3
}

func ExampleNewBatches() {
	b, err := data.NewBatches(10, 4, true, 42, false)
	if err != nil {
		panic(err)
	}
	fmt.Println(b.Epoch(0))
	fmt.Println(b.Epoch(1))
	fmt.Println(b.Epoch(0)[1:]) // resuming epoch 0 at its second batch

	d, _ := data.NewBatches(10, 4, false, 0, true)
	fmt.Println(d.Epoch(0))
	// Output:
	// [[6 2 5 3] [4 7 0 1] [9 8]]
	// [[2 3 9 6] [0 8 7 4] [5 1]]
	// [[4 7 0 1] [9 8]]
	// [[0 1 2 3] [4 5 6 7]]
}

func ExampleGather() {
	s := &data.Set{
		Images: []float32{0, 0.1, 1, 1.1, 2, 2.1},
		Labels: []uint8{7, 8, 9},
		N:      3, Rows: 1, Cols: 2,
	}
	x := make([]float32, 2*s.Dim())
	y := make([]float32, 2)
	data.Gather(s, []int{2, 0}, x, y)
	fmt.Println(x, y)
	// Output:
	// [2 2.1 0 0.1] [9 7]
}

func ExampleAugment_Apply() {
	// One 1×3×3 image, padded by 1 and cropped back to 3×3 at a random
	// offset, then perhaps flipped.
	aug, err := data.NewAugment(1, true, 7)
	if err != nil {
		panic(err)
	}
	src := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	dst := make([]float32, len(src))
	crop := make([]data.Crop, 1)
	for batch := range 3 {
		aug.Apply(dst, src, [4]int{1, 1, 3, 3}, 0, batch)
		aug.Draw(0, batch, crop)
		fmt.Printf("%+v %v\n", crop[0], dst)
	}
	// Output:
	// {DY:2 DX:0 Flip:true} [5 4 0 8 7 0 0 0 0]
	// {DY:1 DX:0 Flip:false} [0 1 2 0 4 5 0 7 8]
	// {DY:0 DX:0 Flip:false} [0 0 0 0 1 2 0 4 5]
}

func ExampleLoadImageFolder() {
	// DIR/train/<class>/*.png and DIR/test/<class>/*.png, as 32×32 RGB.
	ds, err := data.LoadImageFolder("DIR", data.FolderOptions{Height: 32, Width: 32, Channels: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, skipped := range ds.Skipped {
		fmt.Println("skipped:", skipped) // data: DIR/train/cat/x.png: image: ...
	}
	fmt.Println(ds.Train.Shape(), ds.Train.Classes)
}
