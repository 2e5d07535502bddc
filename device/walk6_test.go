package device_test

import (
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// TestCopyPaddedStrided copies 6-axis walks large enough to run in
// parallel, with padding, an input offset and a strided dst, against
// walkRef and a plain loop.
func TestCopyPaddedStrided(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(6, 6))
		w := device.Walk{Shape: sh(3, 5, 7, 9, 11, 13), Pad: true, Fill: -2.5, OffA: 7}
		lo, hi := []int{1, 0, 2, 1, 3, 0}, []int{3, 5, 6, 9, 10, 12}
		in := make([]int, 6)
		for i := range in {
			in[i] = hi[i] - lo[i]
		}
		stride := 1
		for i := 5; i >= 0; i-- {
			w.A[i], w.Lo[i], w.Hi[i] = stride, lo[i], hi[i]
			stride *= in[i]
		}
		x := randNZ(r, stride+w.OffA)
		want := walkRef(w, x, nil, func(x, _ float64) float64 { return x })
		bufs := newBufs(t, d, x)
		dst := scratch(t, d, w.N())
		must(t, d.Copy(dst, bufs[0], w))
		testutil.AllClose(t, "padded 6-d copy", testutil.Download(t, d, dst, w.N()), want, 0, 0)

		// The same walk without padding, written transposed into a larger
		// dst from an offset: dst[5 + i0 + 3*i1 + ... ] (axis 0 fastest).
		w.Pad, w.Lo, w.Hi = false, [device.MaxDims]int{}, [device.MaxDims]int{}
		w.Shape = sh(in...)
		w.OffD, stride = 5, 1
		for i := range 6 {
			w.D[i] = stride
			stride *= w.Shape[i]
		}
		want = walkRef(w, x, nil, func(x, _ float64) float64 { return x })
		n := w.N()
		dst = scratch(t, d, n+5)
		must(t, d.Copy(dst, bufs[0], w))
		got := testutil.Download(t, d, dst, n+5)
		perm := make([]float32, n)
		for i := range n {
			var idx [device.MaxDims]int
			rest := i
			for k := 5; k >= 0; k-- {
				idx[k] = rest % w.Shape[k]
				rest /= w.Shape[k]
			}
			o := 5
			for k := range 6 {
				o += idx[k] * w.D[k]
			}
			perm[i] = got[o]
		}
		testutil.AllClose(t, "dst-strided 6-d copy", perm, want, 0, 0)
		if got[0] != -12345 || got[4] != -12345 {
			t.Errorf("dst-strided copy wrote before its offset: %v", got[:5])
		}
	})
}

// TestTernaryLarge runs where over a broadcast 6-axis walk large enough to
// run in parallel.
func TestTernaryLarge(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(7, 7))
		w := device.Walk{Shape: sh(2, 3, 5, 7, 11, 13), OffB: 3, OffC: 1}
		n := w.N()
		stride := 1
		for i := 5; i >= 0; i-- {
			w.A[i] = stride
			stride *= w.Shape[i]
		}
		w.B = st(0, 1001, 0, 143, 13, 1) // broadcast on axes 0 and 2
		w.C = st(1, 0, 0, 0, 0, 0)
		cond := randNZ(r, n)
		for i := range cond {
			if i%3 == 0 {
				cond[i] = 0
			}
		}
		b, c := randNZ(r, 3+3*1001), randNZ(r, 3)
		bufs := newBufs(t, d, cond, b, c)
		want := make([]float32, n)
		for i := range n {
			var idx [device.MaxDims]int
			rest := i
			for k := 5; k >= 0; k-- {
				idx[k] = rest % w.Shape[k]
				rest /= w.Shape[k]
			}
			ob, oc := w.OffB, w.OffC
			for k := range 6 {
				ob += idx[k] * w.B[k]
				oc += idx[k] * w.C[k]
			}
			if cond[i] != 0 {
				want[i] = b[ob]
			} else {
				want[i] = c[oc]
			}
		}
		dst := scratch(t, d, n)
		must(t, d.Ternary(device.Where, dst, bufs[0], bufs[1], bufs[2], w))
		testutil.AllClose(t, "where 6-d", testutil.Download(t, d, dst, n), want, 0, 0)
	})
}

// TestIm2colAsCopies builds the im2col matrix of a 3x3 convolution with
// padding 1 and stride 2 from two copies, one padded and one whose
// overlapping strides read the windows, against a plain loop.
func TestIm2colAsCopies(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		const C, H, W, K, P, S = 2, 5, 7, 3, 1, 2
		const HP, WP = H + 2*P, W + 2*P
		const OH, OW = (HP-K)/S + 1, (WP-K)/S + 1
		r := rand.New(rand.NewPCG(8, 8))
		x := randNZ(r, C*H*W)
		bufs := newBufs(t, d, x)
		pad := device.Walk{Shape: sh(C, HP, WP), A: st(H*W, W, 1), Pad: true,
			Lo: st(0, P, P), Hi: sh(C, P+H, P+W)}
		xp := scratch(t, d, C*HP*WP)
		must(t, d.Copy(xp, bufs[0], pad))
		win := device.Walk{Shape: sh(C, K, K, OH, OW), A: st(HP*WP, WP, 1, S*WP, S)}
		n := win.N()
		cols := scratch(t, d, n)
		must(t, d.Copy(cols, xp, win))
		want := make([]float32, 0, n)
		for c := range C {
			for kh := range K {
				for kw := range K {
					for oh := range OH {
						for ow := range OW {
							h, w := oh*S+kh-P, ow*S+kw-P
							v := float32(0)
							if h >= 0 && h < H && w >= 0 && w < W {
								v = x[(c*H+h)*W+w]
							}
							want = append(want, v)
						}
					}
				}
			}
		}
		testutil.AllClose(t, "im2col", testutil.Download(t, d, cols, n), want, 0, 0)
	})
}
