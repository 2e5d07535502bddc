package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// rowPanel packs a row-major k×n B with PackRows, or, when cm is set, a B
// stored column by column (n×k) with Transpose.
type rowPanel struct {
	ctx   *Context
	b     []float32
	ld    int
	cm    bool
	calls atomic.Int32 // PackB may be called from several goroutines
}

func (p *rowPanel) PackB(dst []float32, pc, kb, jc, nb, nr int) {
	p.calls.Add(1)
	for jr := 0; jr < nb; jr += nr {
		cols := min(nr, nb-jr)
		s := dst[jr*kb : (jr+nr)*kb]
		if !p.cm {
			p.ctx.PackRows(s, p.b[pc*p.ld+jc+jr:], p.ld, kb, cols)
			continue
		}
		clear(s)
		p.ctx.Transpose(s, nr, p.b[(jc+jr)*p.ld+pc:], p.ld, cols, kb, 0)
	}
}

func TestSgemmBMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := [][3]int{{1, 1, 1}, {12, 32, 9}, {32, 840, 288}, {5, 37, 300}, {13, 2049, 7}, {64, 100, 577}, {3, 9, 784}}
	for _, ctx := range contexts() {
		for _, s := range shapes {
			for _, transA := range []bool{false, true} {
				for _, cm := range []bool{false, true} {
					for _, sc := range scalars {
						m, n, k := s[0], s[1], s[2]
						name := fmt.Sprintf("%s/%dx%dx%d/tA=%v/cm=%v/%v", ctx.Kernel(), m, n, k, transA, cm, sc)
						lda := k + 1
						if transA {
							lda = m + 2
						}
						ar := m
						if transA {
							ar = k
						}
						a := randMatrix(rng, ar, lda)
						ldb := n + 3
						br := k
						if cm {
							ldb, br = k+3, n
						}
						b := randMatrix(rng, br, ldb)
						ldc := n + 1
						c := randMatrix(rng, m, ldc)
						want := make([]float64, len(c))
						for i := range m {
							for j := range n {
								var sum float64
								for l := range k {
									var av, bv float32
									if transA {
										av = a[l*lda+i]
									} else {
										av = a[i*lda+l]
									}
									if cm {
										bv = b[j*ldb+l]
									} else {
										bv = b[l*ldb+j]
									}
									sum += float64(av) * float64(bv)
								}
								want[i*ldc+j] = float64(sc[0])*sum + float64(sc[1])*float64(c[i*ldc+j])
							}
						}
						pb := &rowPanel{ctx: ctx, b: b, ld: ldb, cm: cm}
						ctx.SgemmB(transA, m, n, k, sc[0], a, lda, pb, sc[1], c, ldc)
						if pb.calls.Load() == 0 {
							t.Fatalf("%s: PackB never called", name)
						}
						for i := range m {
							for j := range n {
								w := want[i*ldc+j]
								if got := float64(c[i*ldc+j]); math.Abs(got-w) > 1e-5*float64(k)+1e-5 {
									t.Fatalf("%s: c[%d][%d] = %g, want %g", name, i, j, got, w)
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestSgemmBZeroK(t *testing.T) {
	ctx := New(1)
	c := []float32{1, 2, 3, 4}
	ctx.SgemmB(false, 2, 2, 0, 1, nil, 1, &rowPanel{ctx: ctx}, 0.5, c, 2)
	for i, want := range []float32{0.5, 1, 1.5, 2} {
		if c[i] != want {
			t.Fatalf("c = %v, want beta·c", c)
		}
	}
}

// colPanel packs an m×k A stored column by column (k×m) with PackA, or,
// when rm is set, one stored row by row with Transpose.
type colPanel struct {
	ctx   *Context
	a     []float32
	ld    int
	rm    bool
	calls atomic.Int32
}

func (p *colPanel) PackA(dst []float32, ic, mb, pc, kb, mr int) {
	p.calls.Add(1)
	for ir := 0; ir < mb; ir += mr {
		rows := min(mr, mb-ir)
		s := dst[ir*kb : (ir+mr)*kb]
		if !p.rm {
			p.ctx.PackA(s, p.a[pc*p.ld+ic+ir:], p.ld, kb, rows)
			continue
		}
		clear(s)
		p.ctx.Transpose(s, mr, p.a[(ic+ir)*p.ld+pc:], p.ld, rows, kb, 0)
	}
}

func TestSgemmAMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := [][3]int{{1, 1, 1}, {12, 32, 9}, {838, 32, 288}, {37, 5, 300}, {2049, 13, 7}, {100, 64, 577}, {9, 3, 784}}
	for _, ctx := range contexts() {
		for _, s := range shapes {
			for _, transB := range []bool{false, true} {
				for _, rm := range []bool{false, true} {
					for _, beta := range []float32{0, 1, 0.5} {
						m, n, k := s[0], s[1], s[2]
						name := fmt.Sprintf("%s/%dx%dx%d/tB=%v/rm=%v/%v", ctx.Kernel(), m, n, k, transB, rm, beta)
						lda, ar := m+2, k
						if rm {
							lda, ar = k+1, m
						}
						a := randMatrix(rng, ar, lda)
						ldb, br := n+3, k
						if transB {
							ldb, br = k+3, n
						}
						b := randMatrix(rng, br, ldb)
						ldc := n + 1
						c := randMatrix(rng, m, ldc)
						want := make([]float64, len(c))
						for i := range m {
							for j := range n {
								var sum float64
								for l := range k {
									var av, bv float32
									if rm {
										av = a[i*lda+l]
									} else {
										av = a[l*lda+i]
									}
									if transB {
										bv = b[j*ldb+l]
									} else {
										bv = b[l*ldb+j]
									}
									sum += float64(av) * float64(bv)
								}
								want[i*ldc+j] = sum + float64(beta)*float64(c[i*ldc+j])
							}
						}
						pa := &colPanel{ctx: ctx, a: a, ld: lda, rm: rm}
						ctx.SgemmA(m, n, k, pa, transB, b, ldb, beta, c, ldc)
						if pa.calls.Load() == 0 {
							t.Fatalf("%s: PackA never called", name)
						}
						for i := range m {
							for j := range n {
								w := want[i*ldc+j]
								if got := float64(c[i*ldc+j]); math.Abs(got-w) > 1e-5*float64(k)+1e-5 {
									t.Fatalf("%s: c[%d][%d] = %g, want %g", name, i, j, got, w)
								}
							}
						}
					}
				}
			}
		}
	}
}
