package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// contexts returns a Context for every microkernel this machine supports,
// with one and with two threads.
func contexts() []*Context {
	var ctxs []*Context
	for _, k := range kernels() {
		ctxs = append(ctxs, newContext(1, k), newContext(2, k))
	}
	return ctxs
}

// gemmCase is one call of Sgemm: shape, transposes, scalars and the padding
// added to each leading dimension.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	pad            int
}

func (tc gemmCase) String() string {
	op := func(t bool) string {
		if t {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s_m%d_n%d_k%d_alpha%g_beta%g_pad%d",
		op(tc.transA), op(tc.transB), tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.pad)
}

// sentinel marks the padding between rows of C, which Sgemm must not touch.
const sentinel = -12345

// check runs tc on every Context with the same random operands and compares C
// with a float64 reference. When beta is zero, C starts out as NaN.
func (tc gemmCase) check(t *testing.T, ctxs []*Context, rng *rand.Rand) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = ac, ar
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = bc, br
	}
	lda, ldb, ldc := max(1, ac+tc.pad), max(1, bc+tc.pad), max(1, tc.n+tc.pad)
	a := randMatrix(rng, ar, lda)
	b := randMatrix(rng, br, ldb)
	c0 := randMatrix(rng, tc.m, ldc)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc; j++ {
			switch {
			case j >= tc.n:
				c0[i*ldc+j] = sentinel
			case tc.beta == 0:
				c0[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	want, tol := tc.reference(a, lda, b, ldb, c0, ldc)

	c := make([]float32, len(c0))
	for _, ctx := range ctxs {
		copy(c, c0)
		ctx.Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		bad := 0
		for i := 0; i < tc.m; i++ {
			for j := 0; j < ldc; j++ {
				got := c[i*ldc+j]
				if j >= tc.n {
					if got != sentinel {
						t.Fatalf("%s/threads=%d %v: C[%d][%d] (padding) = %g, want it untouched",
							ctx.Kernel(), ctx.Threads(), tc, i, j, got)
					}
					continue
				}
				w := want[i*tc.n+j]
				if d := math.Abs(float64(got) - w); !(d <= tol[i*tc.n+j]) {
					t.Errorf("%s/threads=%d %v: C[%d][%d] = %g, want %g",
						ctx.Kernel(), ctx.Threads(), tc, i, j, got, w)
					if bad++; bad == 5 {
						t.FailNow()
					}
				}
			}
		}
	}
}

// reference returns alpha·op(A)·op(B) + beta·C computed in float64, and a
// tolerance for each element proportional to the sum of the magnitudes of
// the terms.
func (tc gemmCase) reference(a []float32, lda int, b []float32, ldb int, c []float32, ldc int) (want, tol []float64) {
	m, n, k := tc.m, tc.n, tc.k
	opA := make([]float64, m*k)
	for i := 0; i < m; i++ {
		for l := 0; l < k; l++ {
			if tc.transA {
				opA[i*k+l] = float64(a[l*lda+i])
			} else {
				opA[i*k+l] = float64(a[i*lda+l])
			}
		}
	}
	opB := make([]float64, k*n)
	for l := 0; l < k; l++ {
		for j := 0; j < n; j++ {
			if tc.transB {
				opB[l*n+j] = float64(b[j*ldb+l])
			} else {
				opB[l*n+j] = float64(b[l*ldb+j])
			}
		}
	}
	want, tol = make([]float64, m*n), make([]float64, m*n)
	alpha, beta := float64(tc.alpha), float64(tc.beta)
	for i := 0; i < m; i++ {
		w, e := want[i*n:(i+1)*n], tol[i*n:(i+1)*n]
		for l := 0; l < k; l++ {
			x := alpha * opA[i*k+l]
			for j, y := range opB[l*n : (l+1)*n] {
				w[j] += x * y
				e[j] += math.Abs(x * y)
			}
		}
		for j := range w {
			if beta != 0 {
				cij := beta * float64(c[i*ldc+j])
				w[j] += cij
				e[j] += math.Abs(cij)
			}
			e[j] = 1e-6 + 2e-6*e[j]
		}
	}
	return want, tol
}

func randMatrix(rng *rand.Rand, rows, ld int) []float32 {
	s := make([]float32, rows*ld)
	for i := range s {
		s[i] = 2*rng.Float32() - 1
	}
	return s
}

// scalars are the (alpha, beta) pairs every shape is tried with.
var scalars = [][2]float32{{1, 0}, {1, 1}, {-0.75, 0.5}}

func TestSgemmShapes(t *testing.T) {
	shapes := [][3]int{ // m, n, k
		{1, 1, 1}, {2, 2, 2}, {7, 7, 7}, {17, 17, 17}, {31, 31, 31}, {33, 33, 33},
		{65, 65, 65}, {129, 129, 129}, {257, 257, 257},
		{1, 33, 17}, {33, 1, 17}, {13, 40, 1}, {300, 7, 1000}, {300, 1000, 7},
		// An MLP 784-512-256-10 on batches of 128: forward, and both gradients.
		{128, 512, 784}, {128, 256, 512}, {128, 10, 256},
		{784, 512, 128}, {512, 256, 128}, {256, 10, 128},
		{128, 784, 512}, {128, 512, 256}, {128, 256, 10},
		// Its forward pass on 31 and 60 rows, the weights stored transposed.
		{31, 512, 784}, {31, 256, 512}, {60, 512, 784}, {61, 512, 784},
		// One row, wide enough for the row kernels and with columns left
		// over for the tiles.
		{1, 512, 784}, {1, 300, 600}, {1, 129, 5}, {1, 200, 1},
	}
	ctxs := contexts()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for i, ab := range scalars {
				tc := gemmCase{tr[0], tr[1], s[0], s[1], s[2], ab[0], ab[1], i * 3}
				tc.check(t, ctxs, rng)
			}
		}
	}
}

// TestSgemmRowAlone checks that a row of op(A)·op(B) comes out the same,
// bit for bit, whether it is the product's only row (the row kernel) or one
// of a batch (the tiles), as a forward pass of one input and of many do.
// alpha is 1, as in a forward pass: a batch with so few columns that it is
// computed transposed scales op(B) by alpha instead of op(A), which rounds
// differently.
func TestSgemmRowAlone(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, ctx := range contexts() {
		for _, s := range [][3]int{{30, 512, 784}, {13, 300, 600}, {7, 1000, 257}, {25, 129, 3}} {
			m, n, k := s[0], s[1], s[2]
			for _, transA := range []bool{false, true} {
				lda := k
				if transA {
					lda = m
				}
				a, b := randMatrix(rng, m*k/lda, lda), randMatrix(rng, k, n)
				batch := make([]float32, m*n)
				ctx.Sgemm(transA, false, m, n, k, 1, a, lda, b, n, 0, batch, n)
				for i := range m {
					row := make([]float32, n)
					if transA {
						ctx.Sgemm(true, false, 1, n, k, 1, a[i:], lda, b, n, 0, row, n)
					} else {
						ctx.Sgemm(false, false, 1, n, k, 1, a[i*lda:], lda, b, n, 0, row, n)
					}
					for j, v := range row {
						if w := batch[i*n+j]; math.Float32bits(v) != math.Float32bits(w) {
							t.Fatalf("%s/threads=%d m=%d n=%d k=%d transA=%v: row %d alone has C[%d] = %g, in the batch %g",
								ctx.Kernel(), ctx.Threads(), m, n, k, transA, i, j, v, w)
						}
					}
				}
			}
		}
	}
}

func TestSgemmRandomShapes(t *testing.T) {
	ctxs := contexts()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		tc := gemmCase{
			transA: rng.IntN(2) == 1, transB: rng.IntN(2) == 1,
			m: 1 + rng.IntN(150), n: 1 + rng.IntN(150), k: 1 + rng.IntN(150),
			pad: rng.IntN(5),
		}
		ab := scalars[rng.IntN(len(scalars))]
		tc.alpha, tc.beta = ab[0], ab[1]
		tc.check(t, ctxs, rng)
	}
}

// TestSgemmLarge covers products larger than one packed block in every
// direction, so that the k loop accumulates and the threads split the work.
func TestSgemmLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large products")
	}
	ctxs := contexts()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tr := range [][2]bool{{false, false}, {true, true}} {
		for _, s := range [][3]int{ // m, n, k
			{500, 2100, 600}, // several k blocks and column panels
			{2100, 70, 300},  // several row blocks, split in rows
			{1000, 30, 200},  // a single column of tiles
		} {
			tc := gemmCase{tr[0], tr[1], s[0], s[1], s[2], 0.5, 0.5, 1}
			tc.check(t, ctxs, rng)
		}
	}
}

func TestSgemmDegenerate(t *testing.T) {
	ctxs := contexts()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []gemmCase{
		{m: 5, n: 6, k: 0, alpha: 1, beta: 0},
		{m: 5, n: 6, k: 0, alpha: 1, beta: 0.5},
		{m: 5, n: 6, k: 4, alpha: 0, beta: 0},
		{m: 5, n: 6, k: 4, alpha: 0, beta: 2, pad: 2},
		{m: 0, n: 6, k: 4, alpha: 1, beta: 0},
		{m: 5, n: 0, k: 4, alpha: 1, beta: 0},
		{m: 20, n: 40, k: 30, alpha: 1, beta: float32(math.Copysign(0, -1))}, // -0 counts as zero
	} {
		tc.check(t, ctxs, rng)
	}
}

func TestSgemmConcurrent(t *testing.T) {
	ctx := New(2)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for i := range 5 {
				tc := gemmCase{m: 100 + 10*i, n: 120 + g, k: 90 + i, alpha: 1, beta: 0.5, transB: g%2 == 1}
				tc.check(t, []*Context{ctx}, rng)
			}
		})
	}
	wg.Wait()
}

func TestSgemmPanics(t *testing.T) {
	ctx := New(1)
	s := make([]float32, 12)
	for _, tt := range []struct {
		name string
		call func()
	}{
		{"negative m", func() { ctx.Sgemm(false, false, -1, 2, 2, 1, s, 2, s, 2, 0, s, 2) }},
		{"short lda", func() { ctx.Sgemm(false, false, 2, 2, 3, 1, s, 2, s, 2, 0, s, 2) }},
		{"short ldc", func() { ctx.Sgemm(false, false, 2, 3, 2, 1, s, 2, s, 3, 0, s, 2) }},
		{"short A", func() { ctx.Sgemm(true, false, 4, 2, 4, 1, s, 4, s, 2, 0, s, 2) }},
		{"short C", func() { ctx.Sgemm(false, false, 4, 4, 2, 1, s, 2, s, 4, 0, s, 4) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.call()
		})
	}
}

func TestNewPicksFastestKernel(t *testing.T) {
	if got, want := New(1).Kernel(), kernels()[0].name; got != want {
		t.Errorf("New(1).Kernel() = %q, want %q", got, want)
	}
	if New(0).Threads() < 1 {
		t.Error("New(0) has no threads")
	}
}

func TestContextClose(t *testing.T) {
	ctx := New(3)
	rng := rand.New(rand.NewPCG(10, 11))
	tc := gemmCase{m: 200, n: 300, k: 100, alpha: 1, beta: 0}
	tc.check(t, []*Context{ctx}, rng)
	ctx.Close()
	tc.check(t, []*Context{ctx}, rng) // restarts the helpers
	ctx.Close()
	ctx.Close()
}
