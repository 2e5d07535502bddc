package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// referenceAugment is Augment.Apply written as torchvision describes it:
// build the zero-padded image, cut the crop out, mirror it.
func referenceAugment(src []float32, shape [4]int, pad int, crops []Crop) []float32 {
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	ph, pw := h+2*pad, w+2*pad
	out := make([]float32, len(src))
	padded := make([]float32, ph*pw)
	for i := range n {
		for ch := range c {
			plane := (i*c + ch) * h * w
			clear(padded)
			for y := range h {
				for x := range w {
					padded[(y+pad)*pw+x+pad] = src[plane+y*w+x]
				}
			}
			for y := range h {
				for x := range w {
					sx := x
					if crops[i].Flip {
						sx = w - 1 - x
					}
					out[plane+y*w+x] = padded[(y+crops[i].DY)*pw+sx+crops[i].DX]
				}
			}
		}
	}
	return out
}

func randomBatch(seed uint64, shape [4]int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, shape[0]*shape[1]*shape[2]*shape[3])
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

func TestAugmentMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		shape [4]int
		pad   int
		flip  bool
	}{
		{[4]int{7, 1, 28, 28}, 4, false},
		{[4]int{5, 3, 32, 32}, 4, true},
		{[4]int{3, 3, 5, 9}, 2, true},    // non-square
		{[4]int{4, 2, 3, 2}, 5, true},    // padding larger than the image
		{[4]int{2, 1, 1, 1}, 1, true},    // one pixel
		{[4]int{6, 3, 4, 7}, 0, true},    // flips only
		{[4]int{6, 3, 4, 7}, 3, false},   // crops only
		{[4]int{1, 3, 11, 13}, 0, false}, // nothing: a copy
	} {
		t.Run(fmt.Sprintf("%v pad %d flip %v", tc.shape, tc.pad, tc.flip), func(t *testing.T) {
			a, err := NewAugment(tc.pad, tc.flip, 11)
			if err != nil {
				t.Fatal(err)
			}
			src := randomBatch(3, tc.shape)
			dst := make([]float32, len(src))
			for i := range dst {
				dst[i] = float32(math.NaN()) // every value must be written
			}
			crops := make([]Crop, tc.shape[0])
			for _, eb := range [][2]int{{0, 0}, {0, 1}, {3, 2}} {
				a.Draw(eb[0], eb[1], crops)
				a.Apply(dst, src, tc.shape, eb[0], eb[1])
				want := referenceAugment(src, tc.shape, tc.pad, crops)
				for i := range want {
					if dst[i] != want[i] {
						t.Fatalf("epoch %d batch %d: value %d = %v, want %v (crops %v)", eb[0], eb[1], i, dst[i], want[i], crops)
					}
				}
				if tc.pad == 0 && !tc.flip && !slices.Equal(dst, src) {
					t.Fatal("no crop and no flip is not a copy")
				}
			}
		})
	}
}

func TestAugmentDeterministic(t *testing.T) {
	shape := [4]int{16, 3, 8, 8}
	src := randomBatch(5, shape)
	run := func(seed uint64, epoch, batch int) []float32 {
		a, err := NewAugment(4, true, seed)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, len(src))
		a.Apply(dst, src, shape, epoch, batch)
		return dst
	}
	base := run(1, 2, 3)
	if !slices.Equal(base, run(1, 2, 3)) {
		t.Fatal("the same seed, epoch and batch give different batches")
	}
	for _, other := range [][3]int{{2, 2, 3}, {1, 3, 3}, {1, 2, 4}, {1, 3, 2}} {
		if slices.Equal(base, run(uint64(other[0]), other[1], other[2])) {
			t.Errorf("seed %d epoch %d batch %d gives the batch of seed 1 epoch 2 batch 3", other[0], other[1], other[2])
		}
	}
	// The draws of the first k images do not depend on the batch size.
	a, _ := NewAugment(4, true, 9)
	long, short := make([]Crop, 40), make([]Crop, 7)
	a.Draw(1, 1, long)
	a.Draw(1, 1, short)
	if !slices.Equal(long[:7], short) {
		t.Error("the draws depend on the batch size")
	}
}

func TestAugmentFlipTwiceIsIdentity(t *testing.T) {
	shape := [4]int{32, 3, 5, 6}
	src := randomBatch(8, shape)
	a, err := NewAugment(0, true, 4)
	if err != nil {
		t.Fatal(err)
	}
	once, twice := make([]float32, len(src)), make([]float32, len(src))
	a.Apply(once, src, shape, 1, 7)
	a.Apply(twice, once, shape, 1, 7)
	if !slices.Equal(twice, src) {
		t.Fatal("flipping a batch twice with the same draws does not give it back")
	}
	if slices.Equal(once, src) {
		t.Fatal("no image of 32 was flipped")
	}
}

// TestAugmentOffsets recovers each image's crop from the output alone: the
// input pixels are numbered 1, 2, ... so any nonzero output pixel says where
// it came from.
func TestAugmentOffsets(t *testing.T) {
	const n, h, w, pad = 200, 9, 12, 4
	shape := [4]int{n, 1, h, w}
	src := make([]float32, n*h*w)
	for i := range src {
		src[i] = float32(i%(h*w) + 1)
	}
	a, err := NewAugment(pad, true, 21)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, len(src))
	crops := make([]Crop, n)
	a.Apply(dst, src, shape, 0, 5)
	a.Draw(0, 5, crops)
	for i := range n {
		img := dst[i*h*w : (i+1)*h*w]
		c := crops[i]
		if c.DY < 0 || c.DY > 2*pad || c.DX < 0 || c.DX > 2*pad {
			t.Fatalf("image %d: crop offsets (%d, %d) outside [0, %d]", i, c.DY, c.DX, 2*pad)
		}
		found := false
		for y := range h {
			for x := range w {
				v := int(img[y*w+x])
				if v == 0 {
					continue
				}
				sy, sx := (v-1)/w, (v-1)%w
				// Unflipped, output (y, x) is input (y+DY-pad, x+DX-pad).
				fx := x
				if c.Flip {
					fx = w - 1 - x
				}
				if sy-y != c.DY-pad || sx-fx != c.DX-pad {
					t.Fatalf("image %d: output (%d, %d) holds input (%d, %d); crop %+v", i, y, x, sy, sx, c)
				}
				found = true
			}
		}
		if !found {
			t.Fatalf("image %d: no input pixel survived a crop of padding %d", i, pad)
		}
	}
}

// TestAugmentDistribution checks that the offsets are uniform on
// [0, 2*pad] and flips fair, with a chi-squared test at a threshold no
// fair draw of this fixed seed comes near (p < 1e-6).
func TestAugmentDistribution(t *testing.T) {
	const pad, batches, batch = 3, 200, 64
	a, err := NewAugment(pad, true, 77)
	if err != nil {
		t.Fatal(err)
	}
	var dy, dx [2*pad + 1]int
	flips := 0
	joint := map[[2]int]int{}
	crops := make([]Crop, batch)
	for b := range batches {
		a.Draw(b%5, b, crops)
		for _, c := range crops {
			dy[c.DY]++
			dx[c.DX]++
			joint[[2]int{c.DY, c.DX}]++
			if c.Flip {
				flips++
			}
		}
	}
	total := batches * batch
	chi2 := func(counts []int) float64 {
		e := float64(total) / float64(len(counts))
		s := 0.0
		for _, c := range counts {
			s += (float64(c) - e) * (float64(c) - e) / e
		}
		return s
	}
	// 6 degrees of freedom: p = 1e-6 at 35.9.
	if s := chi2(dy[:]); s > 35.9 {
		t.Errorf("DY counts %v: chi-squared %.1f", dy, s)
	}
	if s := chi2(dx[:]); s > 35.9 {
		t.Errorf("DX counts %v: chi-squared %.1f", dx, s)
	}
	// 48 degrees of freedom: p = 1e-6 at 105.
	cells := make([]int, 0, len(joint))
	for _, c := range joint {
		cells = append(cells, c)
	}
	if len(cells) != (2*pad+1)*(2*pad+1) {
		t.Fatalf("only %d of %d offset pairs drawn", len(cells), (2*pad+1)*(2*pad+1))
	}
	if s := chi2(cells); s > 105 {
		t.Errorf("joint offsets: chi-squared %.1f", s)
	}
	// Fair flips: 5 standard deviations.
	if d := math.Abs(float64(flips) - float64(total)/2); d > 5*math.Sqrt(float64(total)/4) {
		t.Errorf("%d flips of %d", flips, total)
	}
}

func TestAugmentErrors(t *testing.T) {
	for _, pad := range []int{-1, MaxAugmentPad + 1} {
		if _, err := NewAugment(pad, false, 0); err == nil {
			t.Errorf("NewAugment(%d) accepted", pad)
		}
	}
	a, _ := NewAugment(2, true, 0)
	shape := [4]int{2, 3, 4, 4}
	good := make([]float32, 96)
	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	panics("short src", func() { a.Apply(good, good[:95], shape, 0, 0) })
	panics("short dst", func() { a.Apply(good[:95], make([]float32, 96), shape, 0, 0) })
	panics("same slice", func() { a.Apply(good, good, shape, 0, 0) })
	panics("zero channels", func() { a.Apply(nil, nil, [4]int{0, 0, 4, 4}, 0, 0) })
	panics("negative epoch", func() { a.Apply(make([]float32, 96), good, shape, -1, 0) })
	panics("negative batch", func() { a.Draw(0, -1, nil) })
	// An empty batch is fine.
	a.Apply(nil, nil, [4]int{0, 3, 4, 4}, 0, 0)
}

func TestAugmentAllocatesNothing(t *testing.T) {
	shape := [4]int{64, 3, 32, 32}
	src := randomBatch(1, shape)
	dst := make([]float32, len(src))
	crops := make([]Crop, 64)
	a, _ := NewAugment(4, true, 3)
	b := 0
	if n := testing.AllocsPerRun(20, func() {
		a.Apply(dst, src, shape, 1, b)
		a.Draw(1, b, crops)
		b++
	}); n != 0 {
		t.Errorf("Apply and Draw allocate %v objects per batch", n)
	}
}

func BenchmarkAugment(b *testing.B) {
	for _, shape := range [][4]int{{128, 1, 28, 28}, {128, 3, 32, 32}} {
		b.Run(fmt.Sprintf("%dx%dx%dx%d", shape[0], shape[1], shape[2], shape[3]), func(b *testing.B) {
			src := randomBatch(1, shape)
			dst := make([]float32, len(src))
			a, _ := NewAugment(4, shape[1] == 3, 3)
			b.ReportAllocs()
			b.SetBytes(int64(4 * len(src)))
			batch := 0
			for b.Loop() {
				a.Apply(dst, src, shape, 0, batch%1000)
				batch++
			}
		})
	}
}
