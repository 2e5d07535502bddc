package device_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// convGeoms are window geometries at odd sizes: strides, padding,
// dilations, non-square images and kernels, batch 1, and a batch of
// several blocks of images.
var convGeoms = []device.ConvGeom{
	{N: 2, C: 3, H: 7, W: 5, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1},
	{N: 1, C: 2, H: 6, W: 7, KH: 3, KW: 2, SH: 1, SW: 3, PH: 2, PW: 0, DH: 2, DW: 1},
	{N: 3, C: 1, H: 5, W: 4, KH: 2, KW: 2, SH: 2, SW: 2, DH: 1, DW: 1},
	{N: 1, C: 4, H: 9, W: 8, KH: 5, KW: 5, SH: 2, SW: 1, PH: 2, PW: 2, DH: 1, DW: 2},
	{N: 37, C: 3, H: 11, W: 13, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1},
}

// im2colRef is the column matrix of x by its definition, and the col2im
// of col.
func im2colRef(g device.ConvGeom, x, col []float32, fill float32) (cols, back []float32) {
	oh, ow := g.OutH(), g.OutW()
	cols = make([]float32, g.ColRows()*g.ColCols())
	back = make([]float32, len(x))
	e := 0
	for c := range g.C {
		for i := range g.KH {
			for j := range g.KW {
				for n := range g.N {
					for y := range oh {
						for z := range ow {
							h, w := y*g.SH+i*g.DH-g.PH, z*g.SW+j*g.DW-g.PW
							cols[e] = fill
							if h >= 0 && h < g.H && w >= 0 && w < g.W {
								p := ((n*g.C+c)*g.H+h)*g.W + w
								cols[e] = x[p]
								back[p] += col[e]
							}
							e++
						}
					}
				}
			}
		}
	}
	return cols, back
}

// TestIm2col checks every device's Im2col and Col2im (stored and
// accumulated) against their definitions.
func TestIm2col(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		ic, ok := d.(device.Im2col)
		if !ok {
			t.Fatalf("%s has no Im2col", d.Name())
		}
		for k, g := range convGeoms {
			r := rand.New(rand.NewPCG(uint64(k), 9))
			nx, nc := g.N*g.C*g.H*g.W, g.ColRows()*g.ColCols()
			x, colv, x0 := randNZ(r, nx), randNZ(r, nc), randNZ(r, nx)
			want, back := im2colRef(g, x, colv, -1.5)
			bufs := newBufs(t, d, x, colv, x0)
			col := scratch(t, d, nc)
			must(t, ic.Im2col(col, bufs[0], g, -1.5))
			testutil.AllClose(t, "im2col", testutil.Download(t, d, col, nc), want, 0, 0)
			dst := scratch(t, d, nx)
			must(t, ic.Col2im(dst, bufs[1], g, false))
			testutil.AllClose(t, "col2im", testutil.Download(t, d, dst, nx), back, 1e-6, 1e-6)
			must(t, ic.Col2im(bufs[2], bufs[1], g, true))
			for i := range back {
				back[i] += x0[i]
			}
			testutil.AllClose(t, "col2im accumulate", testutil.Download(t, d, bufs[2], nx), back, 1e-6, 1e-6)
		}
		// Bad geometries and short buffers are errors naming the sizes.
		g := convGeoms[0]
		small := scratch(t, d, 3)
		var ae *device.ArgError
		if err := ic.Im2col(small, small, g, 0); !errors.As(err, &ae) {
			t.Errorf("im2col into a short buffer: %v, want an *ArgError", err)
		}
		g.KH = 9
		if err := ic.Im2col(small, small, g, 0); !errors.As(err, &ae) {
			t.Errorf("im2col with a kernel larger than the image: %v, want an *ArgError", err)
		}
	})
}
