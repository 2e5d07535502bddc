package sgemm

import (
	"fmt"
	"runtime"
	"sync"
)

// minParallelFlops is the size, in multiply-adds, below which a product runs on
// the calling goroutine alone: about two microseconds of work, as much as
// handing half of it to a helper costs.
const minParallelFlops = 1 << 17

// directStride is the most values between the rows of an untransposed op(B)
// that a product of a few rows of tiles reads in place (see kernel.direct):
// with rows 4096 apart (16 KiB, so that they share cache sets) reading in
// place took twice as long as packing.
const directStride = 1536

// kernel is a microkernel with the blocking sizes it is tuned for.
type kernel struct {
	name   string
	mr, nr int // tile computed by one call of tile
	kc     int // depth of a packed panel
	mc     int // rows of a packed block of op(A), a multiple of mr
	nc     int // columns of a packed panel of op(B), a multiple of nr
	// direct is the most rows of tiles of a product whose untransposed op(B)
	// is read in place, when its rows are at most directStride apart; with
	// one row of tiles each sliver of op(B) is read once, with a few more
	// reading it again costs less than packing it.
	direct int

	// tile computes the mr×nr tile c = a·b + beta·c from k packed columns of a
	// (mr values each) and k rows of b (nr values each, ldb apart; packed when
	// ldb == nr). It does not read c when beta is zero.
	tile func(k int, a, b []float32, ldb int, c []float32, ldc int, beta float32)
	// row, if not nil, computes the 1×rowWidth row c = a·b + beta·c of a
	// product with one row, from the first of the mr values of each of a's k
	// packed columns and k rows of b read in place, ldb apart. Each element
	// is summed as tile sums it, so that with alpha 1 and beta 0 or 1 (a
	// forward pass) a row comes out the same alone as in a batch. It does
	// not read c when beta is zero.
	row      func(k int, a, b []float32, ldb int, c []float32, beta float32)
	rowWidth int

	// transpose, if not nil, sets dst[c*ldd+r] = alpha·src[r*lds+c] +
	// beta·dst[c*ldd+r] for r < 4·n4 and c < 8·n8, not reading dst when beta
	// is zero.
	transpose func(n4, n8 int, src []float32, lds int, dst []float32, ldd int, alpha, beta float32)
	// copyA and copyB, if not nil, set dst[l*w+c] = alpha·src[l*lds+c] for
	// l < k and c < cols, and zero for cols <= c < w, where w is mr for copyA
	// and nr for copyB.
	copyA, copyB func(k int, src []float32, lds int, dst []float32, cols int, alpha float32)
}

// workspace holds one thread's packing buffers.
type workspace struct {
	a, b, edge []float32
}

// Context runs matrix products on a fixed number of threads with one
// microkernel, and keeps packing buffers between calls. Its methods are safe
// for concurrent use.
//
// A Context with more than one thread starts threads-1 helper goroutines at
// its first large product. After each task a helper polls for the next one,
// for at most a millisecond and in all no longer than it has spent working,
// then sleeps; Close stops the helpers, and so does the garbage collector once
// the Context is unreachable.
type Context struct {
	threads int
	kern    kernel

	mu    sync.Mutex
	free  []*workspace
	team  *team     // nil until a product is split across threads
	calls sync.Pool // *call: the bookkeeping of split products, reused
}

// call is the bookkeeping of one product split across threads.
type call struct {
	done    pending
	tasks   []task
	helpers []*helper
}

// New returns a Context that splits large products across threads goroutines
// (threads < 1 means runtime.GOMAXPROCS(0)), using the fastest microkernel the
// CPU supports.
func New(threads int) *Context {
	return newContext(threads, kernels()[0])
}

func newContext(threads int, k kernel) *Context {
	if threads < 1 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &Context{threads: threads, kern: k}
}

// Close stops the helper goroutines. The Context remains usable: a later
// large product starts them again.
func (ctx *Context) Close() {
	ctx.mu.Lock()
	defer ctx.mu.Unlock()
	if ctx.team != nil {
		ctx.team.stop()
		ctx.team = nil
	}
}

// helpers returns the Context's team, starting it if needed.
func (ctx *Context) helpers() *team {
	ctx.mu.Lock()
	defer ctx.mu.Unlock()
	if ctx.team == nil {
		ctx.team = newTeam(ctx.threads - 1)
		runtime.AddCleanup(ctx, (*team).stop, ctx.team)
	}
	return ctx.team
}

// Kernel names the microkernel the Context uses: "avx512", "avx2" or "generic".
func (ctx *Context) Kernel() string { return ctx.kern.name }

// Threads returns the number of goroutines a large product is split across.
func (ctx *Context) Threads() int { return ctx.threads }

// problem is one call's operands; a sub-problem of a split call has the same
// shape with shifted slices.
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int

	// transC computes C transposed: the problem was swapped to Cᵀ = op(B)ᵀ·op(A)ᵀ,
	// and element (i, j) of the computed matrix is stored at c[j*ldc+i].
	transC bool

	// panel, if not nil, packs B in place of b (SgemmB), and column 0 of the
	// problem is column j0 of the panel's B; panelA packs A in place of a
	// (SgemmA), and row 0 of the problem is row i0 of the panel's A.
	panel  PanelB
	j0     int
	panelA PanelA
	i0     int
}

// at returns the index in c of element (i, j) of the computed matrix.
func (p *problem) at(i, j int) int {
	if p.transC {
		return j*p.ldc + i
	}
	return i*p.ldc + j
}

// swap returns the problem computing Cᵀ = op(B)ᵀ·op(A)ᵀ, stored transposed.
func (p *problem) swap() problem {
	return problem{
		transA: !p.transB, transB: !p.transA,
		m: p.n, n: p.m, k: p.k,
		alpha: p.alpha, a: p.b, lda: p.ldb, b: p.a, ldb: p.lda,
		beta: p.beta, c: p.c, ldc: p.ldc, transC: !p.transC,
	}
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(A) is m×k (A is stored k×m when transA), op(B) is k×n (B is stored n×k
// when transB) and C is m×n. lda, ldb and ldc are the distances between rows
// as stored. When beta is zero C is only written, so it may hold NaNs or
// garbage. It panics if a dimension is negative or a slice is too short.
func (ctx *Context) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	p := problem{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false, nil, 0, nil, 0}
	if !p.start() {
		return
	}
	if ctx.swapped(m, n) {
		p = p.swap()
	}
	ctx.gemm(&p)
}

// start checks p and does the whole of a product with nothing to sum: it
// returns false when C is empty, or is only scaled by beta (k or alpha
// zero), and true when the product remains to be computed.
func (p *problem) start() bool {
	p.check()
	if p.m == 0 || p.n == 0 {
		return false
	}
	if p.k == 0 || p.alpha == 0 {
		scale(p.c, p.m, p.n, p.ldc, p.beta)
		return false
	}
	return true
}

// gemm computes p, split across the Context's threads when it is large.
func (ctx *Context) gemm(pp *problem) {
	p := *pp
	m, n, k := p.m, p.n, p.k
	parts, splitN := ctx.split(m, n, k)
	if parts == 1 {
		ctx.run(&p)
		return
	}
	part := func(t int) problem {
		if splitN {
			return p.cols(partRange(n, ctx.kern.nr, parts, t))
		}
		return p.rows(partRange(m, ctx.kern.mr, parts, t))
	}
	// Hand parts 1.. to idle helpers and compute part 0 here. Then take back
	// and compute here the parts no helper has started, because it was asleep
	// or busy with another call.
	team := ctx.helpers()
	cl, _ := ctx.calls.Get().(*call)
	if cl == nil || cap(cl.tasks) < parts {
		cl = &call{tasks: make([]task, parts), helpers: make([]*helper, parts)}
	}
	done, tasks, helpers := &cl.done, cl.tasks[:parts], cl.helpers[:parts]
	defer func() {
		// Every task is done: no helper refers to the call any more.
		clear(tasks)
		clear(helpers)
		ctx.calls.Put(cl)
	}()
	for t := 1; t < parts; t++ {
		tasks[t] = task{ctx: ctx, p: part(t), done: done}
		if h := team.claim(); h != nil {
			helpers[t] = h
			done.left.Add(1)
			done.wg.Add(1)
			h.hand(&tasks[t])
		}
	}
	tasks[0].p = part(0)
	ctx.run(&tasks[0].p)
	for t := 1; t < parts; t++ {
		switch h := helpers[t]; {
		case h == nil:
			ctx.run(&tasks[t].p)
		case h.reclaim(&tasks[t]):
			ctx.run(&tasks[t].p)
			done.finish()
		}
	}
	done.wait()
}

// swapped reports whether an m×n product wastes so much of the microkernel's
// tiles that computing its transpose is faster, as for a thin C with n much
// smaller than nr.
func (ctx *Context) swapped(m, n int) bool {
	mr, nr := ctx.kern.mr, ctx.kern.nr
	padded := roundUp(m, mr) * roundUp(n, nr)
	paddedT := roundUp(n, mr) * roundUp(m, nr)
	return 4*paddedT < 3*padded
}

// check panics with a description of the first invalid argument. An
// operand packed by a PanelA or PanelB has no slice to check.
func (p *problem) check() {
	if p.m < 0 || p.n < 0 || p.k < 0 {
		panic(fmt.Sprintf("sgemm: negative dimension m=%d n=%d k=%d", p.m, p.n, p.k))
	}
	ar, ac := p.m, p.k
	if p.transA {
		ar, ac = ac, ar
	}
	br, bc := p.k, p.n
	if p.transB {
		br, bc = bc, br
	}
	if p.panelA == nil {
		checkMatrix("A", p.a, ar, ac, p.lda)
	}
	if p.panel == nil {
		checkMatrix("B", p.b, br, bc, p.ldb)
	}
	checkMatrix("C", p.c, p.m, p.n, p.ldc)
}

func checkMatrix(name string, s []float32, rows, cols, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("sgemm: leading dimension of %s is %d, want at least %d", name, ld, max(1, cols)))
	}
	if rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("sgemm: %s has %d elements, want at least %d for %dx%d with stride %d",
			name, len(s), (rows-1)*ld+cols, rows, cols, ld))
	}
}

// rows returns the sub-problem computing rows [i0, i1) of C.
func (p *problem) rows(i0, i1 int) problem {
	q := *p
	q.m = i1 - i0
	if p.panelA != nil {
		q.i0 = p.i0 + i0
	} else if p.transA {
		q.a = p.a[i0:]
	} else {
		q.a = p.a[i0*p.lda:]
	}
	q.c = p.c[p.at(i0, 0):]
	return q
}

// cols returns the sub-problem computing columns [j0, j1) of C.
func (p *problem) cols(j0, j1 int) problem {
	q := *p
	q.n = j1 - j0
	if p.panel != nil {
		q.j0 = p.j0 + j0
	} else if p.transB {
		q.b = p.b[j0*p.ldb:]
	} else {
		q.b = p.b[j0:]
	}
	q.c = p.c[p.at(0, j0):]
	return q
}

// split decides how many threads share a product of the given shape, and
// whether they split the columns (true) or the rows of C. Each thread packs
// all of the operand that is not split, so the split goes along the dimension
// that leaves the smaller operand to be packed twice.
func (ctx *Context) split(m, n, k int) (parts int, splitN bool) {
	if ctx.threads == 1 || m*n*k < minParallelFlops {
		return 1, false
	}
	tilesM := (m + ctx.kern.mr - 1) / ctx.kern.mr
	tilesN := (n + ctx.kern.nr - 1) / ctx.kern.nr
	splitN = n >= m
	if splitN && tilesN < ctx.threads && tilesM > tilesN {
		splitN = false
	} else if !splitN && tilesM < ctx.threads && tilesN > tilesM {
		splitN = true
	}
	tiles := tilesM
	if splitN {
		tiles = tilesN
	}
	return min(ctx.threads, tiles), splitN
}

// partRange returns part t of [0, n) split into parts ranges of whole tiles.
func partRange(n, tile, parts, t int) (int, int) {
	tiles := (n + tile - 1) / tile
	lo := tiles * t / parts * tile
	hi := min(n, tiles*(t+1)/parts*tile)
	return lo, hi
}

// getWorkspace returns a free workspace, or a new one.
func (ctx *Context) getWorkspace() *workspace {
	ctx.mu.Lock()
	defer ctx.mu.Unlock()
	if n := len(ctx.free); n > 0 {
		ws := ctx.free[n-1]
		ctx.free = ctx.free[:n-1]
		return ws
	}
	return &workspace{edge: make([]float32, ctx.kern.mr*ctx.kern.nr)}
}

func (ctx *Context) putWorkspace(ws *workspace) {
	ctx.mu.Lock()
	ctx.free = append(ctx.free, ws)
	ctx.mu.Unlock()
}

// grow returns s resized to n elements, reallocating only when it is too small.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// run computes p on the calling goroutine: the Goto loop nest around the
// macrokernel.
func (ctx *Context) run(p *problem) {
	ws := ctx.getWorkspace()
	defer ctx.putWorkspace(ws)
	kr := &ctx.kern
	// Blocks of equal size, so that no thin last block pays the loop overheads
	// for little work.
	kc := blockSize(p.k, kr.kc, 4)
	mc := blockSize(p.m, kr.mc, kr.mr)
	nc := blockSize(p.n, kr.nc, kr.nr)
	ws.a = grow(ws.a, roundUp(mc, kr.mr)*kc)
	ws.b = grow(ws.b, roundUp(nc, kr.nr)*kc)
	// When op(B) is not transposed and C has a single row of tiles, each
	// sliver of op(B) is read once: the microkernel reads it in place. So it
	// does for a few rows of tiles when the rows of B are close together.
	direct := p.panel == nil && !p.transB &&
		(p.m <= kr.mr || p.m <= kr.direct*kr.mr && p.ldb <= directStride)
	for jc := 0; jc < p.n; jc += nc {
		nb := min(nc, p.n-jc)
		for pc := 0; pc < p.k; pc += kc {
			kb := min(kc, p.k-pc)
			switch {
			case p.panel != nil:
				p.panel.PackB(ws.b[:roundUp(nb, kr.nr)*kb], pc, kb, p.j0+jc, nb, kr.nr)
			case !direct:
				kr.packB(ws.b, p, pc, kb, jc, nb)
			}
			beta := p.beta
			if pc > 0 {
				beta = 1
			}
			for ic := 0; ic < p.m; ic += mc {
				mb := min(mc, p.m-ic)
				if p.panelA != nil {
					p.panelA.PackA(ws.a[:roundUp(mb, kr.mr)*kb], p.i0+ic, mb, pc, kb, kr.mr)
				} else {
					kr.packA(ws.a, p, ic, mb, pc, kb)
				}
				ctx.macro(ws, p, ic, jc, pc, mb, nb, kb, beta, direct)
			}
		}
	}
}

// blockSize returns the size of the blocks n is cut into: as few as blocks of
// at most limit allow, of equal size rounded up to a multiple of align (limit
// is a multiple of align).
func blockSize(n, limit, align int) int {
	blocks := (n + limit - 1) / limit
	return roundUp((n+blocks-1)/blocks, align)
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// macro multiplies the packed mb×kb block of op(A) at (ic, pc) by the kb×nb
// panel of op(B) at (pc, jc) into C, one microkernel tile at a time. The
// panel is packed, or read in place when direct is set.
func (ctx *Context) macro(ws *workspace, p *problem, ic, jc, pc, mb, nb, kb int, beta float32, direct bool) {
	kr := &ctx.kern
	mr, nr, ldc := kr.mr, kr.nr, p.ldc
	c := p.c[p.at(ic, jc):]
	jr := 0
	if direct && mb == 1 && !p.transC && kr.row != nil {
		// One row: a tile would compute mr rows for it. The row kernel
		// covers as much of it as it can, and tiles the rest.
		for ; jr+kr.rowWidth <= nb; jr += kr.rowWidth {
			kr.row(kb, ws.a, p.b[pc*p.ldb+jc+jr:], p.ldb, c[jr:], beta)
		}
	}
	for ; jr < nb; jr += nr {
		cols := min(nr, nb-jr)
		bp, ldb := ws.b[jr*kb:(jr+nr)*kb], nr
		if direct {
			if cols == nr {
				bp, ldb = p.b[pc*p.ldb+jc+jr:], p.ldb
			} else {
				kr.packB(ws.b, p, pc, kb, jc+jr, cols)
				bp = ws.b[:nr*kb]
			}
		}
		for ir := 0; ir < mb; ir += mr {
			rows := min(mr, mb-ir)
			ap := ws.a[ir*kb : (ir+mr)*kb]
			switch {
			case p.transC:
				kr.tile(kb, ap, bp, ldb, ws.edge, nr, 0)
				kr.transposeInto(c[jr*ldc+ir:], ldc, ws.edge, nr, rows, cols, 1, beta)
			case rows == mr && cols == nr:
				kr.tile(kb, ap, bp, ldb, c[ir*ldc+jr:], ldc, beta)
			default:
				kr.tile(kb, ap, bp, ldb, ws.edge, nr, 0)
				merge(c[ir*ldc+jr:], ldc, ws.edge, nr, rows, cols, beta)
			}
		}
	}
}

// merge writes the top-left rows×cols of the tile t into C: C = t + beta·C.
func merge(c []float32, ldc int, t []float32, ldt, rows, cols int, beta float32) {
	for i := 0; i < rows; i++ {
		ci := c[i*ldc : i*ldc+cols]
		ti := t[i*ldt : i*ldt+cols]
		if beta == 0 {
			copy(ci, ti)
			continue
		}
		for j, v := range ti {
			ci[j] = v + beta*ci[j]
		}
	}
}

// scale computes C = beta·C, writing zeros when beta is zero.
func scale(c []float32, m, n, ldc int, beta float32) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
			continue
		}
		for j := range ci {
			ci[j] *= beta
		}
	}
}

// packA packs rows [ic, ic+mb) and columns [pc, pc+kb) of alpha·op(A) into
// slivers of mr rows: sliver s holds, for each l, the mr values of column pc+l,
// starting at dst[s·mr·kb]. Rows past mb are zero.
func (kr *kernel) packA(dst []float32, p *problem, ic, mb, pc, kb int) {
	mr := kr.mr
	for ir := 0; ir < mb; ir += mr {
		rows := min(mr, mb-ir)
		sliver := dst[ir*kb : (ir+mr)*kb]
		if !p.transA {
			// op(A)[i][l] = a[i*lda+l]: rows are contiguous and become columns.
			kr.transposeInto(sliver, mr, p.a[(ic+ir)*p.lda+pc:], p.lda, rows, kb, p.alpha, 0)
			zeroRows(sliver, mr, rows, kb)
			continue
		}
		// op(A)[i][l] = a[l*lda+i]: each column of op(A) is contiguous.
		src := p.a[pc*p.lda+ic+ir:]
		if kr.copyA != nil {
			kr.copyA(kb, src, p.lda, sliver, rows, p.alpha)
			continue
		}
		clear(sliver)
		for l := 0; l < kb; l++ {
			d := sliver[l*mr : l*mr+rows]
			for r, v := range src[l*p.lda : l*p.lda+rows] {
				d[r] = p.alpha * v
			}
		}
	}
}

// packB packs rows [pc, pc+kb) and columns [jc, jc+nb) of op(B) into slivers of
// nr columns: sliver s holds, for each l, the nr values of row pc+l, starting
// at dst[s·nr·kb]. Columns past nb are zero.
func (kr *kernel) packB(dst []float32, p *problem, pc, kb, jc, nb int) {
	nr := kr.nr
	for jr := 0; jr < nb; jr += nr {
		cols := min(nr, nb-jr)
		sliver := dst[jr*kb : (jr+nr)*kb]
		if p.transB {
			// op(B)[l][j] = b[j*ldb+l]: columns are contiguous and become rows.
			kr.transposeInto(sliver, nr, p.b[(jc+jr)*p.ldb+pc:], p.ldb, cols, kb, 1, 0)
			zeroRows(sliver, nr, cols, kb)
			continue
		}
		// op(B)[l][j] = b[l*ldb+j]: each row is contiguous.
		src := p.b[pc*p.ldb+jc+jr:]
		if kr.copyB != nil {
			kr.copyB(kb, src, p.ldb, sliver, cols, 1)
			continue
		}
		for l := 0; l < kb; l++ {
			d := sliver[l*nr : l*nr+nr]
			copy(d, src[l*p.ldb:l*p.ldb+cols])
			clear(d[cols:])
		}
	}
}

// transposeInto sets dst[c*ldd+r] = alpha·src[r*lds+c] + beta·dst[c*ldd+r]
// for r < rows and c < cols, not reading dst when beta is zero.
func (kr *kernel) transposeInto(dst []float32, ldd int, src []float32, lds, rows, cols int, alpha, beta float32) {
	r0, c0 := 0, 0
	if n4, n8 := rows/4, cols/8; kr.transpose != nil && n4 > 0 && n8 > 0 {
		kr.transpose(n4, n8, src, lds, dst, ldd, alpha, beta)
		r0, c0 = 4*n4, 8*n8
		if beta == 0 {
			// Writing alpha·src again gives the same values, so the edges are
			// covered by blocks that overlap the ones already written.
			r, c := rows-4, cols-8
			if r0 < rows {
				kr.transpose(1, n8, src[r*lds:], lds, dst[r:], ldd, alpha, 0)
			}
			if c0 < cols {
				kr.transpose(n4, 1, src[c:], lds, dst[c*ldd:], ldd, alpha, 0)
			}
			if r0 < rows && c0 < cols {
				kr.transpose(1, 1, src[r*lds+c:], lds, dst[c*ldd+r:], ldd, alpha, 0)
			}
			return
		}
	}
	for r := 0; r < rows; r++ {
		c := c0 // the columns left by the assembly in its rows, all columns below them
		if r >= r0 {
			c = 0
		}
		for ; c < cols; c++ {
			v := alpha * src[r*lds+c]
			if beta != 0 {
				v += beta * dst[c*ldd+r]
			}
			dst[c*ldd+r] = v
		}
	}
}

// zeroRows zeroes entries [rows, ld) of each of the k groups of ld values in
// dst: the padding of a sliver.
func zeroRows(dst []float32, ld, rows, k int) {
	if rows == ld {
		return
	}
	for l := 0; l < k; l++ {
		clear(dst[l*ld+rows : l*ld+ld])
	}
}
