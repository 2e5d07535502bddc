package device_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/device"
)

// convRef is Conv2d and Conv2dGrad by their definitions, in float64: y, and
// dx, dw, db from gy, with a bound on the rounding error of each value (the
// sum of the magnitudes of its terms).
type convRef struct {
	y, dx, dw, db     []float64
	ey, edx, edw, edb []float64
}

func newConvRef(g device.ConvGeom, out int, x, w, b, gy []float32) convRef {
	oh, ow := g.OutH(), g.OutW()
	r := convRef{
		y: make([]float64, g.N*out*oh*ow), ey: make([]float64, g.N*out*oh*ow),
		dx: make([]float64, len(x)), edx: make([]float64, len(x)),
		dw: make([]float64, len(w)), edw: make([]float64, len(w)),
		db: make([]float64, out), edb: make([]float64, out),
	}
	for n := range g.N {
		for o := range out {
			for y := range oh {
				for z := range ow {
					yi := ((n*out+o)*oh+y)*ow + z
					r.y[yi], r.ey[yi] = float64(b[o]), math.Abs(float64(b[o]))
					gv := float64(gy[yi])
					r.db[o] += gv
					r.edb[o] += math.Abs(gv)
					for c := range g.C {
						for i := range g.KH {
							for j := range g.KW {
								h, v := y*g.SH+i*g.DH-g.PH, z*g.SW+j*g.DW-g.PW
								if h < 0 || h >= g.H || v < 0 || v >= g.W {
									continue
								}
								xi := ((n*g.C+c)*g.H+h)*g.W + v
								wi := ((o*g.C+c)*g.KH+i)*g.KW + j
								xv, wv := float64(x[xi]), float64(w[wi])
								r.y[yi] += wv * xv
								r.ey[yi] += math.Abs(wv * xv)
								r.dx[xi] += wv * gv
								r.edx[xi] += math.Abs(wv * gv)
								r.dw[wi] += xv * gv
								r.edw[wi] += math.Abs(xv * gv)
							}
						}
					}
				}
			}
		}
	}
	return r
}

// closeTo fails t unless got matches want (plus base, when acc) within a
// few float32 roundings of each term.
func closeTo(t *testing.T, name string, got []float32, want, bound []float64, base []float32, acc bool) {
	t.Helper()
	for i, g := range got {
		w, e := want[i], bound[i]
		if acc {
			w += float64(base[i])
			e += math.Abs(float64(base[i]))
		}
		if d := math.Abs(float64(g) - w); d > 1e-5*e+1e-6 || math.IsNaN(float64(g)) {
			t.Fatalf("%s[%d] = %g, want %g (error %g, bound %g)", name, i, g, w, d, 1e-5*e)
		}
	}
}

// TestConv2dAgainstDefinition checks the CPU's Conv2d and Conv2dGrad, on
// the implicit-GEMM path (stride 1, dilation 1) and on the generic one, at
// odd sizes and batches that fill part of a block of images, with and
// without the accumulate flags, on one thread and on two.
func TestConv2dAgainstDefinition(t *testing.T) {
	type geom struct{ c, o, h, w, kh, kw, sh, sw, ph, pw, dh, dw int }
	geoms := []geom{
		{9, 11, 7, 9, 3, 3, 1, 1, 0, 0, 1, 1},
		{9, 11, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},
		{9, 11, 7, 9, 3, 3, 1, 1, 2, 2, 1, 1},
		{8, 8, 1, 13, 3, 3, 1, 1, 1, 1, 1, 1},
		{3, 5, 7, 9, 3, 3, 1, 1, 0, 0, 1, 1}, // generic: few channels
		{3, 5, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},
		{3, 5, 7, 9, 3, 3, 1, 1, 2, 2, 1, 1},
		{1, 32, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1},
		{32, 3, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1},
		{33, 13, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1},
		{40, 37, 5, 11, 3, 2, 1, 1, 2, 0, 1, 1},
		{10, 9, 10, 7, 5, 3, 1, 1, 2, 1, 1, 1},
		{12, 9, 7, 9, 1, 1, 1, 1, 0, 0, 1, 1},
		{3, 5, 7, 9, 3, 3, 2, 1, 1, 1, 1, 1}, // generic: stride
		{3, 5, 9, 9, 3, 3, 1, 1, 1, 2, 2, 1}, // generic: dilation
		{3, 5, 7, 9, 2, 2, 1, 1, 2, 0, 1, 1}, // generic: padding as large as the kernel
	}
	for _, threads := range []int{1, 2} {
		d := device.NewCPU(threads)
		for k, gm := range geoms {
			for _, batch := range []int{1, 3, 17, 33} {
				if (gm.c*gm.o > 300 || threads == 1) && batch > 17 {
					continue
				}
				g := device.ConvGeom{N: batch, C: gm.c, H: gm.h, W: gm.w, KH: gm.kh, KW: gm.kw,
					SH: gm.sh, SW: gm.sw, PH: gm.ph, PW: gm.pw, DH: gm.dh, DW: gm.dw}
				name := fmt.Sprintf("threads=%d/%+v/N=%d", threads, gm, batch)
				rng := rand.New(rand.NewPCG(uint64(k), uint64(batch)))
				rs := func(n int) []float32 {
					s := make([]float32, n)
					for i := range s {
						s[i] = 2*rng.Float32() - 1
					}
					return s
				}
				out := gm.o
				ny := batch * out * g.OutH() * g.OutW()
				x, w, b, gy := rs(batch*g.C*g.H*g.W), rs(out*g.C*g.KH*g.KW), rs(out), rs(ny)
				ref := newConvRef(g, out, x, w, b, gy)
				y := rs(ny)
				if err := d.Conv2d(d.Adopt(y), d.Adopt(x), d.Adopt(w), d.Adopt(b), out, g); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				closeTo(t, name+"/y", y, ref.y, ref.ey, nil, false)
				for _, acc := range []bool{false, true} {
					dx, dw, db := rs(len(x)), rs(len(w)), rs(out)
					dx0, dw0, db0 := append([]float32(nil), dx...), append([]float32(nil), dw...), append([]float32(nil), db...)
					if err := d.Conv2dGrad(d.Adopt(dx), d.Adopt(dw), d.Adopt(db), d.Adopt(x), d.Adopt(w), d.Adopt(gy), out, g, acc, acc, acc); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					an := fmt.Sprintf("%s/acc=%v/", name, acc)
					closeTo(t, an+"dx", dx, ref.dx, ref.edx, dx0, acc)
					closeTo(t, an+"dw", dw, ref.dw, ref.edw, dw0, acc)
					closeTo(t, an+"db", db, ref.db, ref.edb, db0, acc)
				}
				// Each gradient alone, the others nil.
				dw := rs(len(w))
				if err := d.Conv2dGrad(nil, d.Adopt(dw), nil, d.Adopt(x), d.Adopt(w), d.Adopt(gy), out, g, false, false, false); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				closeTo(t, name+"/dw alone", dw, ref.dw, ref.edw, nil, false)
				dx := rs(len(x))
				if err := d.Conv2dGrad(d.Adopt(dx), nil, nil, d.Adopt(x), d.Adopt(w), d.Adopt(gy), out, g, false, false, false); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				closeTo(t, name+"/dx alone", dx, ref.dx, ref.edx, nil, false)
			}
		}
	}
}

// TestConv2dDeterministic checks that the CPU's Conv2d and Conv2dGrad give
// the same bits on one thread as on two, for a batch split across threads
// by image and for one too small to split, whose products are split: the
// partial sums do not depend on how the work is divided.
func TestConv2dDeterministic(t *testing.T) {
	for _, n := range []int{5, 53} {
		g := device.ConvGeom{N: n, C: 40, H: 12, W: 10, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1}
		out := 24
		rng := rand.New(rand.NewPCG(5, uint64(n)))
		rs := func(n int) []float32 {
			s := make([]float32, n)
			for i := range s {
				s[i] = 2*rng.Float32() - 1
			}
			return s
		}
		x, w, b, gy := rs(g.N*g.C*g.H*g.W), rs(out*g.C*9), rs(out), rs(g.N*out*g.OutH()*g.OutW())
		var res [2][4][]float32
		for k, threads := range []int{1, 2} {
			d := device.NewCPU(threads)
			y, dx, dw, db := make([]float32, len(gy)), make([]float32, len(x)), make([]float32, len(w)), make([]float32, out)
			if err := d.Conv2d(d.Adopt(y), d.Adopt(x), d.Adopt(w), d.Adopt(b), out, g); err != nil {
				t.Fatal(err)
			}
			if err := d.Conv2dGrad(d.Adopt(dx), d.Adopt(dw), d.Adopt(db), d.Adopt(x), d.Adopt(w), d.Adopt(gy), out, g, false, false, false); err != nil {
				t.Fatal(err)
			}
			res[k] = [4][]float32{y, dx, dw, db}
		}
		for v, name := range []string{"y", "dx", "dw", "db"} {
			for i := range res[0][v] {
				if a, b := res[0][v][i], res[1][v][i]; math.Float32bits(a) != math.Float32bits(b) {
					t.Fatalf("N=%d: %s[%d] = %g on one thread, %g on two", n, name, i, a, b)
				}
			}
		}
	}
}
