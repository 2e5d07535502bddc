package sgemm

// genericKernel is the portable microkernel: a 4×4 tile in Go.
func genericKernel() kernel {
	return kernel{name: "generic", mr: 4, nr: 4, kc: 256, mc: 128, nc: 1024, tile: tileGeneric}
}

// tileGeneric computes the 4×4 tile c = a·b + beta·c from k packed columns of
// a and k rows of b, ldb apart, keeping the sixteen sums in registers.
func tileGeneric(k int, a, b []float32, ldb int, c []float32, ldc int, beta float32) {
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	a = a[:4*k]
	for l := 0; l < k; l++ {
		al := a[4*l : 4*l+4 : 4*l+4]
		bl := b[l*ldb : l*ldb+4 : l*ldb+4]
		a0, a1, a2, a3 := al[0], al[1], al[2], al[3]
		b0, b1, b2, b3 := bl[0], bl[1], bl[2], bl[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	storeRow(c[0*ldc:0*ldc+4], c00, c01, c02, c03, beta)
	storeRow(c[1*ldc:1*ldc+4], c10, c11, c12, c13, beta)
	storeRow(c[2*ldc:2*ldc+4], c20, c21, c22, c23, beta)
	storeRow(c[3*ldc:3*ldc+4], c30, c31, c32, c33, beta)
}

// storeRow writes c = v + beta·c for one row of a 4×4 tile.
func storeRow(c []float32, v0, v1, v2, v3, beta float32) {
	c = c[:4]
	if beta == 0 {
		c[0], c[1], c[2], c[3] = v0, v1, v2, v3
		return
	}
	c[0] = v0 + beta*c[0]
	c[1] = v1 + beta*c[1]
	c[2] = v2 + beta*c[2]
	c[3] = v3 + beta*c[3]
}
