//go:build amd64 && !purego

package sgemm

import "golang.org/x/sys/cpu"

// kernels returns the microkernels this CPU can run, fastest first.
func kernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F && cpu.X86.HasFMA {
		ks = append(ks, kernel{
			name: "avx512", mr: 12, nr: 32, kc: 256, mc: 240, nc: 2048, direct: 5,
			tile: tileAVX512, transpose: transposeAVX, copyA: copy12AVX, copyB: copy32AVX,
			row: rowAVX512, rowWidth: 128,
		})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernel{
			name: "avx2", mr: 6, nr: 16, kc: 256, mc: 144, nc: 2048, direct: 10,
			tile: tileAVX2, transpose: transposeAVX, copyA: copy6AVX, copyB: copy16AVX,
			row: rowAVX2, rowWidth: 64,
		})
	}
	return append(ks, genericKernel())
}

// The wrappers below check that the assembly stays inside the slices.

func tileAVX512(k int, a, b []float32, ldb int, c []float32, ldc int, beta float32) {
	_, _, _ = a[12*k-1], b[(k-1)*ldb+31], c[11*ldc+31]
	kernelAVX512(k, &a[0], &b[0], ldb, &c[0], ldc, beta)
}

func tileAVX2(k int, a, b []float32, ldb int, c []float32, ldc int, beta float32) {
	_, _, _ = a[6*k-1], b[(k-1)*ldb+15], c[5*ldc+15]
	kernelAVX2(k, &a[0], &b[0], ldb, &c[0], ldc, beta)
}

func rowAVX512(k int, a, b []float32, ldb int, c []float32, beta float32) {
	_, _, _ = a[12*(k-1)], b[(k-1)*ldb+127], c[127]
	kernelRowAVX512(k, &a[0], &b[0], ldb, &c[0], beta)
}

func rowAVX2(k int, a, b []float32, ldb int, c []float32, beta float32) {
	_, _, _ = a[6*(k-1)], b[(k-1)*ldb+63], c[63]
	kernelRowAVX2(k, &a[0], &b[0], ldb, &c[0], beta)
}

func transposeAVX(n4, n8 int, src []float32, lds int, dst []float32, ldd int, alpha, beta float32) {
	_, _ = src[(4*n4-1)*lds+8*n8-1], dst[(8*n8-1)*ldd+4*n4-1]
	transpose(n4, n8, &src[0], lds, &dst[0], ldd, alpha, beta)
}

func copy6AVX(k int, src []float32, lds int, dst []float32, cols int, alpha float32) {
	copyAVX(6, k, src, lds, dst, cols, alpha)
}

func copy12AVX(k int, src []float32, lds int, dst []float32, cols int, alpha float32) {
	copyAVX(12, k, src, lds, dst, cols, alpha)
}

func copy16AVX(k int, src []float32, lds int, dst []float32, cols int, alpha float32) {
	copyAVX(16, k, src, lds, dst, cols, alpha)
}

func copy32AVX(k int, src []float32, lds int, dst []float32, cols int, alpha float32) {
	copyAVX(32, k, src, lds, dst, cols, alpha)
}

// copyAVX copies k rows of cols floats into rows of w with the copy<w>
// routine, which reads no lane past cols.
func copyAVX(w, k int, src []float32, lds int, dst []float32, cols int, alpha float32) {
	_, _ = src[(k-1)*lds+cols-1], dst[w*k-1]
	var mask [32]int32
	for i := range cols {
		mask[i] = -1
	}
	switch w {
	case 6:
		copy6(k, &src[0], lds, &dst[0], &mask[0], alpha)
	case 12:
		copy12(k, &src[0], lds, &dst[0], &mask[0], alpha)
	case 16:
		copy16(k, &src[0], lds, &dst[0], &mask[0], alpha)
	case 32:
		copy32(k, &src[0], lds, &dst[0], &mask[0], alpha)
	default:
		panic("sgemm: no copy routine for this width")
	}
}
