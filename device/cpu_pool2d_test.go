package device

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPoolInsideMatchesGeneric checks the pooling of windows that lie
// inside the image against the generic loop, bit for bit: maxima with
// ties, NaNs and infinities, their indices, sums, and both gradients with
// and without accumulation.
func TestPoolInsideMatchesGeneric(t *testing.T) {
	geoms := []ConvGeom{
		{N: 3, C: 2, H: 28, W: 28, KH: 2, KW: 2, SH: 2, SW: 2, DH: 1, DW: 1},
		{N: 1, C: 3, H: 7, W: 9, KH: 2, KW: 2, SH: 2, SW: 2, DH: 1, DW: 1},
		{N: 2, C: 1, H: 9, W: 7, KH: 3, KW: 2, SH: 2, SW: 1, DH: 1, DW: 1},
		{N: 2, C: 2, H: 8, W: 11, KH: 3, KW: 3, SH: 3, SW: 2, DH: 1, DW: 1},
		{N: 1, C: 1, H: 5, W: 5, KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, g := range geoms {
		in := g.N * g.C * g.H * g.W
		out := g.N * g.C * g.OutH() * g.OutW()
		x := make([]float32, in)
		for i := range x {
			switch k := r.IntN(40); {
			case k == 0:
				x[i] = float32(math.NaN())
			case k == 1:
				x[i] = float32(math.Inf(-1 + 2*r.IntN(2)))
			case k < 10:
				x[i] = 0.5 // ties
			default:
				x[i] = r.Float32()*2 - 1
			}
		}
		gy := make([]float32, out)
		for i := range gy {
			gy[i] = r.Float32()*2 - 1
		}
		for _, max := range []bool{true, false} {
			run := func(inside bool, back, acc bool, x, y, idx []float32) {
				t := &cpuPool{g: g, x: x, y: y, idx: idx, max: max, back: back, accumulate: acc}
				for p := range g.N * g.C {
					if inside {
						t.planeInside(p)
					} else {
						t.planeGeneric(p)
					}
				}
			}
			y1, y2 := make([]float32, out), make([]float32, out)
			i1, i2 := make([]float32, out), make([]float32, out)
			run(true, false, false, x, y1, i1)
			run(false, false, false, x, y2, i2)
			if i := firstDiff(y1, y2); i >= 0 {
				t.Fatalf("%+v max %v: y[%d] = %v, generic %v", g, max, i, y1[i], y2[i])
			}
			if i := firstDiff(i1, i2); i >= 0 {
				t.Fatalf("%+v max %v: idx[%d] = %v, generic %v", g, max, i, i1[i], i2[i])
			}
			for _, acc := range []bool{false, true} {
				d1, d2 := make([]float32, in), make([]float32, in)
				for i := range d1 {
					d1[i] = float32(i % 7)
				}
				copy(d2, d1)
				run(true, true, acc, d1, gy, i1)
				run(false, true, acc, d2, gy, i2)
				if i := firstDiff(d1, d2); i >= 0 {
					t.Fatalf("%+v max %v accumulate %v: dx[%d] = %v, generic %v", g, max, acc, i, d1[i], d2[i])
				}
			}
		}
	}
}

// firstDiff returns the first index where a and b differ in their bits, or -1.
func firstDiff(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}
