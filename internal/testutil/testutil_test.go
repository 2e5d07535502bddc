package testutil

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
)

// recorder is a testing.TB that keeps its errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestAllClose(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name      string
		got, want []float32
		atol      float64
		rtol      float64
		ok        bool
		mention   string
	}{
		{"equal", []float32{1, 2, 3}, []float32{1, 2, 3}, 0, 0, true, ""},
		{"within atol", []float32{1.05}, []float32{1}, 0.1, 0, true, ""},
		{"within rtol", []float32{105}, []float32{100}, 0, 0.06, true, ""},
		{"outside", []float32{1, 2, 3.5}, []float32{1, 2, 3}, 0.1, 0.1, false, "[2] got 3.5, want 3"},
		{"length", []float32{1}, []float32{1, 2}, 1, 1, false, "got 1 values, want 2"},
		{"nan got", []float32{nan}, []float32{1}, 1, 1, false, "[0] got NaN"},
		{"nan want", []float32{1}, []float32{nan}, 1, 1, false, "want NaN"},
		{"nan both", []float32{nan}, []float32{nan}, 0, 0, true, ""},
		{"inf", []float32{inf}, []float32{inf}, 0, 0, true, ""},
		{"inf sign", []float32{-inf}, []float32{inf}, 1, 1, false, "[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{TB: t}
			ok := AllClose(r, "x", c.got, c.want, c.atol, c.rtol)
			if ok != c.ok || (len(r.errs) == 0) != c.ok {
				t.Fatalf("AllClose = %v with errors %q, want %v", ok, r.errs, c.ok)
			}
			if c.mention != "" && !strings.Contains(r.errs[0], c.mention) {
				t.Errorf("error %q does not mention %q", r.errs[0], c.mention)
			}
		})
	}
}

func TestAllCloseReportsFirstMismatches(t *testing.T) {
	got := make([]float32, 100)
	want := make([]float32, 100)
	for i := range want {
		want[i] = 1
	}
	r := &recorder{TB: t}
	AllClose(r, "many", got, want, 0, 0)
	if len(r.errs) != 1 {
		t.Fatalf("got %d errors, want 1", len(r.errs))
	}
	msg := r.errs[0]
	if !strings.Contains(msg, "100 of 100") || !strings.Contains(msg, "[4]") || strings.Contains(msg, "[5]") {
		t.Errorf("message does not list exactly the first %d mismatches: %s", maxReported, msg)
	}
}

func TestRandSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	s := RandSlice(r, 1000, -3, 5)
	lo, hi := s[0], s[0]
	for _, v := range s {
		lo, hi = min(lo, v), max(hi, v)
	}
	if len(s) != 1000 || lo < -3 || hi >= 5 || lo > -2.9 || hi < 4.9 {
		t.Errorf("RandSlice(1000, -3, 5): len %d, range [%v, %v]", len(s), lo, hi)
	}
}

func TestForEachDevice(t *testing.T) {
	var names []string
	ForEachDevice(t, func(t *testing.T, d device.Device) {
		names = append(names, d.Name())
		b := Upload(t, d, []float32{1, 2, 3})
		defer d.Free(b)
		AllClose(t, "round trip", Download(t, d, b, 3), []float32{1, 2, 3}, 0, 0)
	})
	want := 1
	if device.CUDABuilt {
		want = 2
	}
	if len(names) != want || names[0] != "cpu" {
		t.Errorf("ran on %v", names)
	}
}
