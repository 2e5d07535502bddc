package data

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzImageValues feeds arbitrary bytes through what LoadImageFolder does
// with a file: decode under a pixel limit, convert to gray or RGB, resize to
// h×w by area. It must never panic; an error carries the package prefix;
// an accepted image gives c*h*w values in [0, 1], and the same values when
// read again with a resizer that has read other images. The seed corpus is
// in testdata/fuzz/FuzzImageValues.
func FuzzImageValues(f *testing.F) {
	var warm imageResizer
	f.Fuzz(func(t *testing.T, in []byte, h, w uint8, gray bool) {
		opts := FolderOptions{Height: int(h%64) + 1, Width: int(w%64) + 1, Channels: 3, MaxPixels: 1 << 16}
		if gray {
			opts.Channels = 1
		}
		n := opts.Channels * opts.Height * opts.Width
		var fresh imageResizer
		dst := make([]float32, n)
		err := fresh.decode(dst, bytes.NewReader(in), opts)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "data: image") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			if strings.Contains(err.Error(), "too large") && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %q does not wrap ErrTooLarge", err)
			}
			return
		}
		for i, v := range dst {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("value %d = %v, outside [0, 1]", i, v)
			}
		}
		again := make([]float32, n)
		if err := warm.decode(again, bytes.NewReader(in), opts); err != nil {
			t.Fatalf("second read: %v", err)
		}
		for i := range dst {
			if dst[i] != again[i] {
				t.Fatalf("value %d is %v on a fresh resizer, %v on a used one", i, dst[i], again[i])
			}
		}
	})
}

// FuzzAreaWeights checks the resampling weights between any two lengths:
// every output cell's weights lie in (0, 1], sum to 1, and come from input
// cells in range; every input cell contributes to some output.
func FuzzAreaWeights(f *testing.F) {
	for _, nm := range [][2]uint16{{1, 1}, {7, 3}, {3, 7}, {28, 32}, {1000, 1}, {1, 1000}, {65535, 17}} {
		f.Add(nm[0], nm[1])
	}
	f.Fuzz(func(t *testing.T, n16, m16 uint16) {
		n, m := int(n16)%5000+1, int(m16)%5000+1
		var r imageResizer
		r.weighAcross(n, m)
		used := make([]bool, n)
		for o := range m {
			wts := r.across[r.start[o]:r.start[o+1]]
			if len(wts) == 0 || r.lo[o] < 0 || r.lo[o]+len(wts) > n {
				t.Fatalf("%d to %d: output %d takes inputs [%d, %d)", n, m, o, r.lo[o], r.lo[o]+len(wts))
			}
			sum := 0.0
			for k, wt := range wts {
				if !(wt > 0 && wt <= 1) {
					t.Fatalf("%d to %d: output %d has weight %v", n, m, o, wt)
				}
				sum += float64(wt)
				used[r.lo[o]+k] = true
			}
			if sum < 1-1e-5 || sum > 1+1e-5 {
				t.Fatalf("%d to %d: the weights of output %d sum to %v", n, m, o, sum)
			}
		}
		for i, u := range used {
			if !u {
				t.Fatalf("%d to %d: input %d is used by no output", n, m, i)
			}
		}
		// The rows: every output row gets weight 1 in all from the input
		// rows that overlap it.
		sums := make([]float64, m)
		for i := range n {
			lo, hi := areaSpan(i, n, m)
			for o := lo; o < min(hi, m); o++ {
				sums[o] += float64(areaWeight(o, m, i, n))
			}
		}
		for o, s := range sums {
			if s < 1-1e-5 || s > 1+1e-5 {
				t.Fatalf("%d rows to %d: output row %d gets weight %v", n, m, o, s)
			}
		}
	})
}
