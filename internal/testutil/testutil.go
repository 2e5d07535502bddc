package testutil

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
)

// maxReported is how many mismatching indices AllClose prints.
const maxReported = 5

// AllClose reports a test error unless got and want have the same length and
// |got[i]-want[i]| <= atol + rtol*|want[i]| for every i. NaN matches only NaN,
// and an infinity only the same infinity. The error names the first
// mismatching indices with their values. It returns whether all matched.
func AllClose(t testing.TB, name string, got, want []float32, atol, rtol float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return false
	}
	var bad int
	var worst float64
	var msg strings.Builder
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if within(g, w, atol, rtol) {
			continue
		}
		if bad < maxReported {
			fmt.Fprintf(&msg, "\n\t[%d] got %v, want %v (diff %.3g)", i, got[i], want[i], math.Abs(g-w))
		}
		if d := math.Abs(g - w); d > worst || math.IsNaN(d) {
			worst = d
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ (atol %g, rtol %g, largest diff %.3g):%s",
			name, bad, len(got), atol, rtol, worst, msg.String())
	}
	return bad == 0
}

// within reports whether g is within atol + rtol*|w| of w.
func within(g, w, atol, rtol float64) bool {
	switch {
	case math.IsNaN(g) || math.IsNaN(w):
		return math.IsNaN(g) && math.IsNaN(w)
	case math.IsInf(g, 0) || math.IsInf(w, 0):
		return g == w
	}
	return math.Abs(g-w) <= atol+rtol*math.Abs(w)
}

// RandSlice returns n values drawn uniformly from [lo, hi).
func RandSlice(r *rand.Rand, n int, lo, hi float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = lo + (hi-lo)*r.Float32()
	}
	return s
}

// ForEachDevice runs fn in a "cpu" subtest on a CPU device and, in a build
// with CUDA, in a "cuda" subtest on CUDA device 0. A device with a Close
// method is closed when its subtest ends.
func ForEachDevice(t *testing.T, fn func(t *testing.T, d device.Device)) {
	t.Helper()
	t.Run("cpu", func(t *testing.T) { fn(t, device.NewCPU(0)) })
	if !device.CUDABuilt {
		return
	}
	t.Run("cuda", func(t *testing.T) {
		d, err := device.NewCUDA(0)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := d.(interface{ Close() error }); ok {
			t.Cleanup(func() {
				if err := c.Close(); err != nil {
					t.Errorf("closing %s: %v", d.Name(), err)
				}
			})
		}
		fn(t, d)
	})
}

// Upload allocates a buffer of len(v) values on d and copies v into it,
// failing the test on error.
func Upload(t testing.TB, d device.Device, v []float32) device.Buffer {
	t.Helper()
	b, err := d.Alloc(len(v))
	if err != nil {
		t.Fatalf("alloc %d on %s: %v", len(v), d.Name(), err)
	}
	if err := d.CopyIn(b, v); err != nil {
		t.Fatalf("copy in on %s: %v", d.Name(), err)
	}
	return b
}

// Download returns the first n values of b, failing the test on error. It
// synchronises d first.
func Download(t testing.TB, d device.Device, b device.Buffer, n int) []float32 {
	t.Helper()
	if err := d.Sync(); err != nil {
		t.Fatalf("sync on %s: %v", d.Name(), err)
	}
	v := make([]float32, n)
	if err := d.CopyOut(v, b); err != nil {
		t.Fatalf("copy out on %s: %v", d.Name(), err)
	}
	return v
}
