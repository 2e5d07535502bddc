//go:build amd64 && !purego

package device

import "golang.org/x/sys/cpu"

//go:generate go run -C asm . -out ../cpu_amd64.s -stubs ../cpu_kernels_amd64.go -pkg device

// cpuSIMD reports whether the AVX2 and FMA kernels can run.
func cpuSIMD() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA }

// The wrappers below run a kernel of cpu_amd64.s over the longest prefix of
// whole vectors and return its length; the caller finishes the rest in Go.
// They check that the assembly stays inside the slices.

func biasReluVec(d, x, b []float32) int {
	n := len(d) &^ 7
	if n == 0 {
		return 0
	}
	_, _ = x[n-1], b[n-1]
	biasReluAVX(&d[0], &x[0], &b[0], n)
	return n
}

func reluVec(d, x []float32) int {
	n := len(d) &^ 7
	if n == 0 {
		return 0
	}
	_ = x[n-1]
	reluAVX(&d[0], &x[0], n)
	return n
}

func biasAddVec(d, x, b []float32) int {
	n := len(d) &^ 7
	if n == 0 {
		return 0
	}
	_, _ = x[n-1], b[n-1]
	biasAddAVX(&d[0], &x[0], &b[0], n)
	return n
}

func reluGradVec(dx, db, y, g []float32) int {
	n := len(dx) &^ 7
	if n == 0 {
		return 0
	}
	_, _ = y[n-1], g[n-1]
	if db == nil {
		reluGradAVX(&dx[0], &y[0], &g[0], n)
		return n
	}
	_ = db[n-1]
	reluGradBiasAVX(&dx[0], &db[0], &y[0], &g[0], n)
	return n
}

func sgdMomentumVec(p, g, buf []float32, lr, mom, damp, wd float32) int {
	n := len(p) &^ 7
	if n == 0 {
		return 0
	}
	_, _ = g[n-1], buf[n-1]
	sgdMomentumAVX(&p[0], &g[0], &buf[0], n, lr, mom, damp, wd)
	return n
}

func bnSumsVec(acc *[16]float32, x []float32, shift float32) int {
	n := len(x) &^ 7
	if n == 0 {
		return 0
	}
	bnSumsAVX(&acc[0], &x[0], n, shift)
	return n
}

func bnGradSumsVec(acc *[16]float32, g, x []float32, mean float32) int {
	n := len(g) &^ 7
	if n == 0 {
		return 0
	}
	_ = x[n-1]
	bnGradSumsAVX(&acc[0], &g[0], &x[0], n, mean)
	return n
}

func bnScaleVec(y, x []float32, scale, off float32) int {
	n := len(y) &^ 7
	if n == 0 {
		return 0
	}
	_ = x[n-1]
	bnScaleAVX(&y[0], &x[0], n, scale, off)
	return n
}

func bnGradVec(dx, g, x []float32, a, bx, d float32) int {
	n := len(dx) &^ 7
	if n == 0 {
		return 0
	}
	_, _ = g[n-1], x[n-1]
	bnGradAVX(&dx[0], &g[0], &x[0], n, a, bx, d)
	return n
}

func bnScaleReluVec(y, x []float32, scale, off float32) int {
	n := len(y) &^ 7
	if n == 0 {
		return 0
	}
	_ = x[n-1]
	bnScaleReluAVX(&y[0], &x[0], n, scale, off)
	return n
}

func bnGradSumsReluVec(acc *[16]float32, g, x, y []float32, mean float32) int {
	n := len(g) &^ 7
	if n == 0 {
		return 0
	}
	_, _ = x[n-1], y[n-1]
	bnGradSumsReluAVX(&acc[0], &g[0], &x[0], &y[0], n, mean)
	return n
}

func bnGradReluVec(dx, g, x, y []float32, a, bx, d float32) int {
	n := len(dx) &^ 7
	if n == 0 {
		return 0
	}
	_, _, _ = g[n-1], x[n-1], y[n-1]
	bnGradReluAVX(&dx[0], &g[0], &x[0], &y[0], n, a, bx, d)
	return n
}
