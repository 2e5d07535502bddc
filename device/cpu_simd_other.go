//go:build !amd64 || purego

package device

// cpuSIMD reports false: this build has no vector kernels.
func cpuSIMD() bool { return false }

// The vector kernels are never called in this build; each reports that it
// processed nothing.

func biasReluVec(d, x, b []float32) int                                       { return 0 }
func biasAddVec(d, x, b []float32) int                                        { return 0 }
func reluVec(d, x []float32) int                                              { return 0 }
func reluGradVec(dx, db, y, g []float32) int                                  { return 0 }
func sgdMomentumVec(p, g, buf []float32, lr, mom, damp, wd float32) int       { return 0 }
func bnSumsVec(acc *[16]float32, x []float32, shift float32) int              { return 0 }
func bnGradSumsVec(acc *[16]float32, g, x []float32, mean float32) int        { return 0 }
func bnScaleVec(y, x []float32, scale, off float32) int                       { return 0 }
func bnGradVec(dx, g, x []float32, a, bx, d float32) int                      { return 0 }
func bnScaleReluVec(y, x []float32, scale, off float32) int                   { return 0 }
func bnGradSumsReluVec(acc *[16]float32, g, x, y []float32, mean float32) int { return 0 }
func bnGradReluVec(dx, g, x, y []float32, a, bx, d float32) int               { return 0 }
