package device_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// bnShapes are the batch norms of the cnn model: a batch of 128 with 32
// channels of 28x28 and 64 channels of 14x14.
var bnShapes = []struct{ outer, c, inner int }{{128, 32, 28 * 28}, {128, 64, 14 * 14}}

// BenchmarkBatchNorm times one forward (statistics, output and running
// estimates) and one backward pass (dx, dweight and dbias) of a batch norm
// in training at the cnn model's shapes.
func BenchmarkBatchNorm(b *testing.B) {
	for _, d := range []*device.CPU{device.NewCPU(0)} {
		f := device.BatchNorm(d)
		for _, s := range bnShapes {
			n := s.outer * s.c * s.inner
			bufs := benchBufs(b, d, n, n, n, n, s.c, s.c, s.c, s.c, s.c, s.c, s.c, s.c)
			x, y, g, dx := bufs[0], bufs[1], bufs[2], bufs[3]
			mean, invstd, rm, rv, w, bias, dw, db := bufs[4], bufs[5], bufs[6], bufs[7], bufs[8], bufs[9], bufs[10], bufs[11]
			if err := d.Fill(rv, s.c, 1); err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%dx%dx%d", d.Name(), s.outer, s.c, s.inner), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(4 * n))
				for b.Loop() {
					if err := f.BatchNormForward(y, mean, invstd, rm, rv, x, w, bias, s.outer, s.c, s.inner, 1e-5, 0.1); err != nil {
						b.Fatal(err)
					}
					if err := f.BatchNormBackward(dx, dw, db, x, mean, invstd, w, g, s.outer, s.c, s.inner, false); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestBatchNormChecks checks the shared argument checks of the batch norm
// kernels.
func TestBatchNormChecks(t *testing.T) {
	d := device.NewCPU(1)
	r := rand.New(rand.NewPCG(1, 2))
	up := func(n int) device.Buffer { return testutil.Upload(t, d, testutil.RandSlice(r, n, -1, 1)) }
	x, y, c3, c3b, c3c, c3d := up(12), up(12), up(3), up(3), up(3), up(3)
	for _, c := range []struct {
		err  error
		want string
	}{
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, c3c, c3d, 1, 3, 1, 1e-5, 0.1), "expected more than 1 value per channel"},
		{d.BatchNormForward(y, c3, c3b, c3c, nil, x, c3c, c3d, 4, 3, 1, 1e-5, 0.1), "both be given or both be nil"},
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, c3c, c3d, 2, 3, 4, 1e-5, 0.1), "y has 12 values, need 24"},
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, c3c, c3d, 4, 3, 1, 1e-5, 2), "momentum 2"},
		{d.BatchNormForward(y, c3, c3b, nil, nil, x, up(2), c3d, 4, 3, 1, 1e-5, 0.1), "weight has 2 values, need 3"},
		{d.BatchNormBackward(y, c3, c3, x, c3b, c3c, c3d, y, 4, 3, 1, false), "dweight and dbias must differ"},
		{d.BatchNormBackward(y, x, nil, x, c3b, c3c, c3d, y, 4, 3, 1, false), "dweight must not be another operand"},
		{d.BatchNormBackward(y, nil, nil, x, c3b, c3c, c3d, y, -1, 3, 1, false), "negative size"},
	} {
		if c.err == nil || !strings.HasPrefix(c.err.Error(), "device: cpu batch_norm") || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("error %v, want one naming batch_norm and %q", c.err, c.want)
		}
	}
}
