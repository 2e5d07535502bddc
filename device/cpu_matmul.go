package device

// MatMul computes dst[m,n] = op(a)[m,k] · op(b)[k,n] (+ dst if accumulate).
// a is stored [k,m] when transA and b is stored [n,k] when transB. dst must
// not be a or b.
func (c *CPU) MatMul(dst, a, b Buffer, m, k, n int, transA, transB, accumulate bool) error {
	if err := CheckMatMul(dst, a, b, m, k, n); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: "matmul"}
	mn, mk, kn := m*n, m*k, k*n
	d, err := cpuData(name, "dst", dst, mn)
	if err != nil {
		return err
	}
	as, err := cpuData(name, "a", a, mk)
	if err != nil {
		return err
	}
	bs, err := cpuData(name, "b", b, kn)
	if err != nil {
		return err
	}
	if mn == 0 {
		return nil
	}
	if k == 0 {
		if !accumulate {
			clear(d)
		}
		return nil
	}
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	var beta float32
	if accumulate {
		beta = 1
	}
	c.gemm(transA, transB, m, n, k, as, lda, bs, ldb, beta, d, n)
	return nil
}

// gemm computes d = op(a)·op(b) + beta*d for row-major operands with leading
// dimensions lda, ldb and ldd; every argument has been validated. It is the
// one place the CPU backend multiplies matrices.
func (c *CPU) gemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, d []float32, ldd int) {
	c.sgemm.Sgemm(transA, transB, m, n, k, 1, a, lda, b, ldb, beta, d, ldd)
}
