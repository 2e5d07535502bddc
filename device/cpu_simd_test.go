package device

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSIMDMatchesGo checks the vector kernels against the Go loops they
// replace, at lengths around the vector width, including special values.
// ReLU and its gradient must agree bit for bit; the fused SGD update may
// differ by the rounding that FMA saves.
func TestSIMDMatchesGo(t *testing.T) {
	if !cpuSIMD() {
		t.Skip("no vector kernels in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(1, 2))
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), 1e-45, -1e-45}
	values := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			if r.IntN(4) == 0 {
				s[i] = special[r.IntN(len(special))]
			} else {
				s[i] = float32(r.NormFloat64())
			}
		}
		return s
	}
	same := func(name string, got, want []float32, tol float64) {
		t.Helper()
		for i := range want {
			g, w := float64(got[i]), float64(want[i])
			if math.Float32bits(got[i]) == math.Float32bits(want[i]) || (g != g && w != w) {
				continue
			}
			if tol == 0 || !(math.Abs(g-w) <= tol*(1+math.Abs(w))) {
				t.Errorf("%s: [%d] = %v, want %v", name, i, got[i], want[i])
				return
			}
		}
	}
	for _, n := range []int{1, 7, 8, 9, 31, 32, 33, 63, 200} {
		x, b, g := values(n), values(n), values(n)
		for _, act := range []Activation{Identity, ActRelu} {
			want, got := make([]float32, n), make([]float32, n)
			cpuBiasActRows(want, x, b, n, act, false, 0, 1)
			cpuBiasActRows(got, x, b, n, act, true, 0, 1)
			same(fmt.Sprintf("bias act %d n=%d", act, n), got, want, 0)
		}
		want, got := make([]float32, n), make([]float32, n)
		for i, v := range x {
			want[i] = cpuRelu(v)
		}
		cpuUnary(Relu, got, x, 0, 0)
		same(fmt.Sprintf("relu n=%d", n), got, want, 0)
		for i := range want {
			want[i] = cpuReluGrad(x[i], g[i])
		}
		cpuBinaryRow(ReluGrad, got, x, 1, g, 1, 0, 0)
		same(fmt.Sprintf("relu grad n=%d", n), got, want, 0)
		y := make([]float32, n)
		cpuBiasActRows(y, x, b, n, ActRelu, false, 0, 1)
		for _, withBias := range []bool{false, true} {
			var dbWant, dbGot []float32
			if withBias {
				dbWant, dbGot = values(n), make([]float32, n)
				copy(dbGot, dbWant)
			}
			want, got := make([]float32, n), make([]float32, n)
			cpuBiasActGradCols(want, dbWant, y, g, 1, n, ActRelu, false, 0, n)
			cpuBiasActGradCols(got, dbGot, y, g, 1, n, ActRelu, true, 0, n)
			name := fmt.Sprintf("relu grad bias=%v n=%d", withBias, n)
			same(name, got, want, 0)
			same(name+" dbias", dbGot, dbWant, 0)
		}
		for _, hp := range []SGDParams{{LR: 0.1, Momentum: 0.9}, {LR: 0.05, Momentum: 0.5, Dampening: 0.2, WeightDecay: 0.01}} {
			p, grad, buf := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range p {
				p[i], grad[i], buf[i] = float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
			}
			pw, bw := append([]float32(nil), p...), append([]float32(nil), buf...)
			cpuSGD(pw, grad, bw, hp, false)
			cpuSGD(p, grad, buf, hp, true)
			name := fmt.Sprintf("sgd %+v n=%d", hp, n)
			same(name+" p", p, pw, 1e-6)
			same(name+" buf", buf, bw, 1e-6)
		}
	}
}
