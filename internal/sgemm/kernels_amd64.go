//go:build amd64 && !purego

package sgemm

import "golang.org/x/sys/cpu"

// kernels returns the microkernels this CPU can run, fastest first.
func kernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, kernel{
			name: "avx512", mr: 12, nr: 32, kc: 256, mc: 240, nc: 2048,
			tile: tileAVX512, transpose4: transpose4AVX, copyA: copyA12,
		})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernel{
			name: "avx2", mr: 6, nr: 16, kc: 256, mc: 144, nc: 2048,
			tile: tileAVX2, transpose4: transpose4AVX, copyA: copyA6,
		})
	}
	return append(ks, genericKernel())
}

// The wrappers below check that the assembly stays inside the slices.

func tileAVX512(k int, a, b, c []float32, ldc int, beta float32) {
	_, _, _ = a[12*k-1], b[32*k-1], c[11*ldc+31]
	kernelAVX512(k, &a[0], &b[0], &c[0], ldc, beta)
}

func tileAVX2(k int, a, b, c []float32, ldc int, beta float32) {
	_, _, _ = a[6*k-1], b[16*k-1], c[5*ldc+15]
	kernelAVX2(k, &a[0], &b[0], &c[0], ldc, beta)
}

func transpose4AVX(n8 int, src []float32, lds int, dst []float32, ldd int, alpha float32) {
	_, _ = src[3*lds+8*n8-1], dst[(8*n8-1)*ldd+3]
	transpose4(n8, &src[0], lds, &dst[0], ldd, alpha)
}

func copyA12(k int, src []float32, lds int, dst []float32, alpha float32) {
	_, _ = src[(k-1)*lds+11], dst[12*k-1]
	copyScaled12(k, &src[0], lds, &dst[0], alpha)
}

func copyA6(k int, src []float32, lds int, dst []float32, alpha float32) {
	_, _ = src[(k-1)*lds+5], dst[6*k-1]
	copyScaled6(k, &src[0], lds, &dst[0], alpha)
}
