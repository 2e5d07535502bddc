package sgemm

// PanelB builds blocks of the k×n matrix B of a product computed by SgemmB
// straight into the layout the microkernel reads, so that a caller whose B
// exists only implicitly, such as the column matrix of a convolution, never
// stores it whole and writes each value once.
type PanelB interface {
	// PackB writes rows [pc, pc+kb) and columns [jc, jc+nb) of B into dst in
	// slivers of nr columns: sliver s, at dst[s·nr·kb:], holds for each
	// l < kb the nr values of row pc+l at columns jc+s·nr, ...; the columns
	// of the last sliver past nb must be zero. len(dst) is a multiple of
	// nr·kb covering nb columns.
	PackB(dst []float32, pc, kb, jc, nb, nr int)
}

// SgemmB computes C = alpha·op(A)·B + beta·C like Sgemm, with the k×n
// matrix B packed block by block by b. A large product is split across the
// Context's threads as Sgemm splits it, so b.PackB may be called from
// several goroutines at once, for disjoint blocks. The sums of each value
// of C run in the same order however the product is split. When beta is
// zero C is only written. It panics if a dimension is negative or a slice
// is too short.
func (ctx *Context) SgemmB(transA bool, m, n, k int, alpha float32, a []float32, lda int, b PanelB, beta float32, c []float32, ldc int) {
	p := problem{transA: transA, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, ldb: n, beta: beta, c: c, ldc: ldc, panel: b}
	if p.start() {
		ctx.gemm(&p)
	}
}

// PanelA builds blocks of the m×k matrix A of a product computed by SgemmA
// straight into the layout the microkernel reads, as PanelB does for B.
type PanelA interface {
	// PackA writes rows [ic, ic+mb) and columns [pc, pc+kb) of A into dst
	// in slivers of mr rows: sliver s, at dst[s·mr·kb:], holds for each
	// l < kb the mr values of column pc+l at rows ic+s·mr, ...; the rows of
	// the last sliver past mb must be zero. len(dst) is a multiple of mr·kb
	// covering mb rows.
	PackA(dst []float32, ic, mb, pc, kb, mr int)
}

// SgemmA computes C = A·op(B) + beta·C like Sgemm, with the m×k matrix A
// packed block by block by a. A large product is split across the
// Context's threads as Sgemm splits it, so a.PackA may be called from
// several goroutines at once, for disjoint blocks. The sums of each value
// of C run in the same order however the product is split. When beta is
// zero C is only written. It panics if a dimension is negative or a slice
// is too short.
func (ctx *Context) SgemmA(m, n, k int, a PanelA, transB bool, b []float32, ldb int, beta float32, c []float32, ldc int) {
	p := problem{transB: transB, m: m, n: n, k: k, alpha: 1, lda: k, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, panelA: a}
	if p.start() {
		ctx.gemm(&p)
	}
}

// MR returns the number of rows in a sliver of a packed A, the mr that
// PanelA.PackA is called with.
func (ctx *Context) MR() int { return ctx.kern.mr }

// PackA sets dst[l·MR()+i] = src[l·lds+i] for l < k and i < rows, and zero
// for rows <= i < MR(): k columns of a sliver of A whose columns are
// stored contiguously, for a PanelA. It reads no value of src past rows in
// each of its k runs.
func (ctx *Context) PackA(dst, src []float32, lds, k, rows int) {
	packRuns(ctx.kern.copyA, ctx.kern.mr, dst, src, lds, k, rows)
}

// NR returns the number of columns in a sliver of a packed B, the nr that
// PanelB.PackB is called with.
func (ctx *Context) NR() int { return ctx.kern.nr }

// PackRows sets dst[l·NR()+j] = src[l·lds+j] for l < k and j < cols, and
// zero for cols <= j < NR(): k rows of a sliver of B, for a PanelB. It reads
// no value of src past column cols of each row.
func (ctx *Context) PackRows(dst, src []float32, lds, k, cols int) {
	packRuns(ctx.kern.copyB, ctx.kern.nr, dst, src, lds, k, cols)
}

// packRuns copies k runs of n values, lds apart in src, into runs of width
// w in dst, zero past n, with the kernel's vector copy (scaled by 1) when
// it has one.
func packRuns(vec func(k int, src []float32, lds int, dst []float32, cols int, alpha float32), w int, dst, src []float32, lds, k, n int) {
	if k <= 0 {
		return
	}
	if vec != nil && n > 0 {
		vec(k, src, lds, dst, n, 1)
		return
	}
	for l := range k {
		d := dst[l*w : l*w+w]
		copy(d, src[l*lds:l*lds+n])
		clear(d[n:])
	}
}

// Transpose sets dst[l·ldd+r] = src[r·lds+l] + beta·dst[l·ldd+r] for r <
// rows and l < cols, not reading dst when beta is zero: columns of src
// become rows of dst.
func (ctx *Context) Transpose(dst []float32, ldd int, src []float32, lds, rows, cols int, beta float32) {
	if rows <= 0 || cols <= 0 {
		return
	}
	ctx.kern.transposeInto(dst, ldd, src, lds, rows, cols, 1, beta)
}
