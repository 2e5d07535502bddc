package device_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// bnBenchShapes are the batch norms of the cnn model: a batch of 128 with 32
// channels of 28x28 and 64 channels of 14x14.
var bnBenchShapes = []struct{ outer, c, inner int }{{128, 32, 28 * 28}, {128, 64, 14 * 14}}

// BenchmarkBatchNorm times one forward (statistics, output and running
// estimates) and one backward pass (dx, dweight and dbias) of a batch norm
// in training at the cnn model's shapes.
func BenchmarkBatchNorm(b *testing.B) {
	for _, d := range []*device.CPU{device.NewCPU(0)} {
		f := device.BatchNorm(d)
		for _, s := range bnBenchShapes {
			n := s.outer * s.c * s.inner
			bufs := benchBufs(b, d, n, n, n, n, s.c, s.c, s.c, s.c, s.c, s.c, s.c, s.c)
			x, y, g, dx := bufs[0], bufs[1], bufs[2], bufs[3]
			mean, invstd, rm, rv, w, bias, dw, db := bufs[4], bufs[5], bufs[6], bufs[7], bufs[8], bufs[9], bufs[10], bufs[11]
			if err := d.Fill(rv, s.c, 1); err != nil {
				b.Fatal(err)
			}
			for _, act := range []device.Activation{device.Identity, device.ActRelu} {
				b.Run(fmt.Sprintf("%s/%dx%dx%d/%v", d.Name(), s.outer, s.c, s.inner, act), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(4 * n))
					for b.Loop() {
						if err := f.BatchNormForward(y, mean, invstd, rm, rv, x, w, bias, s.outer, s.c, s.inner, 1e-5, 0.1, act); err != nil {
							b.Fatal(err)
						}
						if err := f.BatchNormBackward(dx, dw, db, x, y, mean, invstd, w, g, s.outer, s.c, s.inner, act, false); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// TestBatchNormChecks checks the shared argument checks of the batch norm
// kernels.
func TestBatchNormChecks(t *testing.T) {
	d := device.NewCPU(1)
	r := rand.New(rand.NewPCG(1, 2))
	up := func(n int) device.Buffer { return testutil.Upload(t, d, testutil.RandSlice(r, n, -1, 1)) }
	x, y, y2, c3, c3b, c3c, c3d := up(12), up(12), up(12), up(3), up(3), up(3), up(3)
	for _, c := range []struct {
		err  error
		want string
	}{
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, c3c, c3d, 1, 3, 1, 1e-5, 0.1, device.Identity), "expected more than 1 value per channel"},
		{d.BatchNormForward(y, c3, c3b, c3c, nil, x, c3c, c3d, 4, 3, 1, 1e-5, 0.1, device.Identity), "both be given or both be nil"},
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, c3c, c3d, 2, 3, 4, 1e-5, 0.1, device.Identity), "y has 12 values, need 24"},
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, c3c, c3d, 4, 3, 1, 1e-5, 2, device.Identity), "momentum 2"},
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, up(2), c3d, 4, 3, 1, 1e-5, 0.1, device.Identity), "weight has 2 values, need 3"},
		{d.BatchNormBackward(y, c3, c3, x, nil, c3b, c3c, c3d, y, 4, 3, 1, device.Identity, false), "dweight and dbias must differ"},
		{d.BatchNormBackward(y, x, nil, x, nil, c3b, c3c, c3d, y, 4, 3, 1, device.Identity, false), "dweight must not be another operand"},
		{d.BatchNormBackward(y, nil, nil, x, nil, c3b, c3c, c3d, y, -1, 3, 1, device.Identity, false), "negative size"},
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, c3c, c3d, 4, 3, 1, 1e-5, 0.1, device.ActTanh), "activation tanh is not fused"},
		{d.BatchNormBackward(y, nil, nil, x, nil, c3b, c3c, c3d, y, 4, 3, 1, device.ActRelu, false), "y is nil"},
		{d.BatchNormBackward(y, y2, nil, x, y2, c3b, c3c, c3d, y, 4, 3, 1, device.ActRelu, false), "dweight must not be another operand"},
		{d.BatchNormBackward(y, nil, nil, x, nil, c3b, c3c, c3d, y, 4, 3, 1, device.ActSigmoid, false), "activation sigmoid is not fused"},
	} {
		if c.err == nil || !strings.HasPrefix(c.err.Error(), "device: cpu batch_norm") || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("error %v, want one naming batch_norm and %q", c.err, c.want)
		}
	}
}

// TestCPUBatchNorm compares the CPU kernels, split between threads and in
// their vector loops, with float64 references at sizes whose channels
// split into uneven chunks and whose segments end in partial vectors.
func TestCPUBatchNorm(t *testing.T) {
	for _, threads := range []int{1, 3} {
		d := device.NewCPU(threads)
		for _, s := range []struct{ outer, c, inner int }{{3, 35, 203}, {2, 17, 9}, {64, 20, 1}, {1, 3, 1001}} {
			r := rand.New(rand.NewPCG(uint64(s.c), 7))
			n, m := s.outer*s.c*s.inner, float64(s.outer*s.inner)
			x, w, b, g := testutil.RandSlice(r, n, 1, 3), testutil.RandSlice(r, s.c, 0.5, 1.5), testutil.RandSlice(r, s.c, -1, 1), testutil.RandSlice(r, n, -1, 1)
			rm0, rv0, dw0 := testutil.RandSlice(r, s.c, -1, 1), testutil.RandSlice(r, s.c, 0.5, 2), testutil.RandSlice(r, s.c, -1, 1)
			wy, wdx := make([]float32, n), make([]float32, n)
			wm, wis, wrm, wrv, wdw, wdb := make([]float32, s.c), make([]float32, s.c), make([]float32, s.c), make([]float32, s.c), make([]float32, s.c), make([]float32, s.c)
			at := func(o, ch, i int) int { return (o*s.c+ch)*s.inner + i }
			for ch := range s.c {
				var sum, ss, sg, sgx float64
				for o := range s.outer {
					for i := range s.inner {
						sum += float64(x[at(o, ch, i)])
					}
				}
				mu := sum / m
				for o := range s.outer {
					for i := range s.inner {
						d := float64(x[at(o, ch, i)]) - mu
						ss += d * d
					}
				}
				v := ss / m
				is := 1 / math.Sqrt(v+1e-5)
				for o := range s.outer {
					for i := range s.inner {
						k := at(o, ch, i)
						xh := (float64(x[k]) - mu) * is
						wy[k] = float32(xh*float64(w[ch]) + float64(b[ch]))
						sg += float64(g[k])
						sgx += float64(g[k]) * xh
					}
				}
				for o := range s.outer {
					for i := range s.inner {
						k := at(o, ch, i)
						xh := (float64(x[k]) - mu) * is
						wdx[k] = float32(float64(w[ch]) * is * (float64(g[k]) - sg/m - xh*sgx/m))
					}
				}
				wm[ch], wis[ch] = float32(mu), float32(is)
				wrm[ch] = float32(0.9*float64(rm0[ch]) + 0.1*mu)
				wrv[ch] = float32(0.9*float64(rv0[ch]) + 0.1*v*m/(m-1))
				wdw[ch], wdb[ch] = float32(float64(dw0[ch])+sgx), float32(sg)
			}
			up := func(v []float32) device.Buffer { return testutil.Upload(t, d, v) }
			X, W, B, G, RM, RV := up(x), up(w), up(b), up(g), up(rm0), up(rv0)
			Y, M, IS, DX, DW, DB := up(make([]float32, n)), up(wm), up(wm), up(make([]float32, n)), up(dw0), up(testutil.RandSlice(r, s.c, 5, 6))
			if err := d.BatchNormForward(Y, M, IS, RM, RV, X, W, B, s.outer, s.c, s.inner, 1e-5, 0.1, device.Identity); err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%d threads [%d,%d,%d]", threads, s.outer, s.c, s.inner)
			testutil.AllClose(t, name+" y", testutil.Download(t, d, Y, n), wy, 1e-5, 1e-5)
			testutil.AllClose(t, name+" mean", testutil.Download(t, d, M, s.c), wm, 1e-6, 1e-6)
			testutil.AllClose(t, name+" invstd", testutil.Download(t, d, IS, s.c), wis, 1e-6, 1e-5)
			testutil.AllClose(t, name+" running_mean", testutil.Download(t, d, RM, s.c), wrm, 1e-6, 1e-6)
			testutil.AllClose(t, name+" running_var", testutil.Download(t, d, RV, s.c), wrv, 1e-6, 1e-5)
			// dweight accumulates onto dw0; dbias, stored over, must not keep its old values.
			if err := d.BatchNormBackward(DX, DW, nil, X, nil, M, IS, W, G, s.outer, s.c, s.inner, device.Identity, true); err != nil {
				t.Fatal(err)
			}
			if err := d.BatchNormBackward(G, nil, DB, X, nil, M, IS, W, G, s.outer, s.c, s.inner, device.Identity, false); err != nil { // in place over g
				t.Fatal(err)
			}
			testutil.AllClose(t, name+" dx", testutil.Download(t, d, DX, n), wdx, 1e-5, 1e-4)
			testutil.AllClose(t, name+" dx in place", testutil.Download(t, d, G, n), wdx, 1e-5, 1e-4)
			testutil.AllClose(t, name+" dweight", testutil.Download(t, d, DW, s.c), wdw, 1e-4, 1e-4)
			testutil.AllClose(t, name+" dbias", testutil.Download(t, d, DB, s.c), wdb, 1e-4, 1e-4)
		}
	}
}

// TestCPUBatchNormRelu compares the CPU kernels with a fused ReLU, split
// between threads and in their vector loops, with the unfused batch norm
// followed by the ReLU and its gradient mask (cpuRelu and cpuReluGrad's
// rules: a NaN stays NaN, -0 becomes +0, the gradient passes where y > 0):
// the outputs, statistics, running estimates and gradients must agree bit
// for bit. The inputs hold exact zeros in x and g, a channel whose weight
// and bias are 0 (so that its output is exactly zero), a channel with a
// NaN in x, NaNs in g where the ReLU masks them, and one where it does
// not.
func TestCPUBatchNormRelu(t *testing.T) {
	for _, threads := range []int{1, 3} {
		d := device.NewCPU(threads)
		for _, s := range []struct{ outer, c, inner int }{{3, 35, 203}, {2, 17, 9}, {64, 20, 1}, {1, 3, 1001}, {5, 4, 37}} {
			r := rand.New(rand.NewPCG(uint64(s.c), 11))
			n := s.outer * s.c * s.inner
			at := func(o, ch, i int) int { return (o*s.c+ch)*s.inner + i }
			x, w, b, g := testutil.RandSlice(r, n, -1, 3), testutil.RandSlice(r, s.c, 0.5, 1.5), testutil.RandSlice(r, s.c, -1, 1), testutil.RandSlice(r, n, -1, 1)
			for k := 0; k < n; k += 7 {
				x[k], g[(k+3)%n] = 0, 0
			}
			w[0], b[0] = 0, 0 // channel 0 normalises to exact zeros
			x[at(s.outer-1, s.c-1, s.inner/2)] = float32(math.NaN())
			rm0, rv0 := testutil.RandSlice(r, s.c, -1, 1), testutil.RandSlice(r, s.c, 0.5, 2)
			up := func(v []float32) device.Buffer { return testutil.Upload(t, d, v) }
			down := func(b device.Buffer, n int) []float32 { return testutil.Download(t, d, b, n) }
			X, W, B := up(x), up(w), up(b)
			name := fmt.Sprintf("%d threads [%d,%d,%d]", threads, s.outer, s.c, s.inner)

			// Unfused: the batch norm, then the ReLU and its mask on the host.
			Y, M, IS, RM, RV := up(make([]float32, n)), up(make([]float32, s.c)), up(make([]float32, s.c)), up(rm0), up(rv0)
			if err := d.BatchNormForward(Y, M, IS, RM, RV, X, W, B, s.outer, s.c, s.inner, 1e-5, 0.1, device.Identity); err != nil {
				t.Fatal(err)
			}
			wy := down(Y, n)
			for k, v := range wy {
				wy[k] = max(v, 0)
			}
			// NaNs in g: one where the ReLU drops it, one where it passes (in
			// a channel that is NaN already through x's NaN).
			for k, v := range wy {
				if v == 0 && k%5 == 0 {
					g[k] = float32(math.NaN())
				}
			}
			g[at(0, s.c-1, 0)] = float32(math.NaN())
			gm := make([]float32, n)
			for k := range g {
				if wy[k] > 0 {
					gm[k] = g[k]
				}
			}
			DX, DW, DB := up(make([]float32, n)), up(make([]float32, s.c)), up(make([]float32, s.c))
			if err := d.BatchNormBackward(DX, DW, DB, X, nil, M, IS, W, up(gm), s.outer, s.c, s.inner, device.Identity, false); err != nil {
				t.Fatal(err)
			}

			// Fused.
			FY, FM, FIS, FRM, FRV := up(make([]float32, n)), up(make([]float32, s.c)), up(make([]float32, s.c)), up(rm0), up(rv0)
			if err := d.BatchNormForward(FY, FM, FIS, FRM, FRV, X, W, B, s.outer, s.c, s.inner, 1e-5, 0.1, device.ActRelu); err != nil {
				t.Fatal(err)
			}
			G := up(g)
			FDX, FDW, FDB := up(make([]float32, n)), up(make([]float32, s.c)), up(make([]float32, s.c))
			if err := d.BatchNormBackward(FDX, FDW, FDB, X, FY, FM, FIS, W, G, s.outer, s.c, s.inner, device.ActRelu, false); err != nil {
				t.Fatal(err)
			}
			if err := d.BatchNormBackward(G, nil, nil, X, FY, FM, FIS, W, G, s.outer, s.c, s.inner, device.ActRelu, false); err != nil { // in place over g
				t.Fatal(err)
			}
			fy := down(FY, n)
			for k, v := range fy {
				if math.IsNaN(float64(x[k])) && !math.IsNaN(float64(v)) {
					t.Fatalf("%s: y[%d] = %g for a NaN input, want NaN", name, k, v)
				}
				if v == 0 && math.Signbit(float64(v)) {
					t.Fatalf("%s: y[%d] is -0, want +0", name, k)
				}
			}
			same(t, name+" y", fy, wy)
			same(t, name+" mean", down(FM, s.c), down(M, s.c))
			same(t, name+" invstd", down(FIS, s.c), down(IS, s.c))
			same(t, name+" running_mean", down(FRM, s.c), down(RM, s.c))
			same(t, name+" running_var", down(FRV, s.c), down(RV, s.c))
			wdx := down(DX, n)
			same(t, name+" dx", down(FDX, n), wdx)
			same(t, name+" dx in place", down(G, n), wdx)
			same(t, name+" dweight", down(FDW, s.c), down(DW, s.c))
			same(t, name+" dbias", down(FDB, s.c), down(DB, s.c))
			if v := down(FDB, s.c)[0]; v != 0 {
				t.Errorf("%s: dbias of the channel that is all zeros %g, want 0", name, v)
			}
		}
	}
}

// same reports the first values of got that differ from want in their
// bits, any NaN matching any NaN.
func same(t *testing.T, name string, got, want []float32) {
	t.Helper()
	bad := 0
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) == math.Float32bits(w) || (g != g && w != w) {
			continue
		}
		if bad++; bad <= 3 {
			t.Errorf("%s[%d] = %g (%#08x), want %g (%#08x)", name, i, g, math.Float32bits(g), w, math.Float32bits(w))
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d values differ", name, bad)
	}
}
