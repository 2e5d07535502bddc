//go:build !amd64 || purego

package device

// cpuSIMD reports false: this build has no vector kernels.
func cpuSIMD() bool { return false }

// The vector kernels are never called in this build; each reports that it
// processed nothing.

func biasReluVec(d, x, b []float32) int                                 { return 0 }
func biasAddVec(d, x, b []float32) int                                  { return 0 }
func reluGradVec(dx, db, y, g []float32) int                            { return 0 }
func sgdMomentumVec(p, g, buf []float32, lr, mom, damp, wd float32) int { return 0 }
