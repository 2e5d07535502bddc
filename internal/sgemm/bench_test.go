package sgemm

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// benchShape is a product op(A)[m×k]·op(B)[k×n].
type benchShape struct {
	name           string
	transA, transB bool
	m, k, n        int
}

// benchShapes are the products of an MLP 784-512-256-10 trained on batches of
// 128 (forward, weight gradient, input gradient), those of its forward pass
// on 1 and 31 rows with its weights stored transposed (as gograd serve runs
// it), a few rows by a wide matrix, and square products.
var benchShapes = []benchShape{
	{"fc1_NN_128x784x512", false, false, 128, 784, 512},
	{"fc1_TN_784x128x512", true, false, 784, 128, 512},
	{"fc1_NT_128x512x784", false, true, 128, 512, 784},
	{"fc2_NN_128x512x256", false, false, 128, 512, 256},
	{"fc2_TN_512x128x256", true, false, 512, 128, 256},
	{"fc2_NT_128x256x512", false, true, 128, 256, 512},
	{"fc3_NN_128x256x10", false, false, 128, 256, 10},
	{"fc3_TN_256x128x10", true, false, 256, 128, 10},
	{"fc3_NT_128x10x256", false, true, 128, 10, 256},
	{"serve_fc1_NN_1x784x512", false, false, 1, 784, 512},
	{"serve_fc2_NN_1x512x256", false, false, 1, 512, 256},
	{"serve_fc1_NN_31x784x512", false, false, 31, 784, 512},
	{"serve_fc2_NN_31x512x256", false, false, 31, 512, 256},
	{"NN_24x4096x4096", false, false, 24, 4096, 4096},
	{"NN_512x512x512", false, false, 512, 512, 512},
	{"NN_1024x1024x1024", false, false, 1024, 1024, 1024},
	{"NN_2048x2048x2048", false, false, 2048, 2048, 2048},
}

// operands returns random row-major operands of s with minimal strides.
func (s benchShape) operands() (a []float32, lda int, b []float32, ldb int, c []float32) {
	rng := rand.New(rand.NewPCG(1, 1))
	lda, ldb = s.k, s.n
	if s.transA {
		lda = s.m
	}
	if s.transB {
		ldb = s.k
	}
	return randMatrix(rng, s.m, s.k), lda, randMatrix(rng, s.k, s.n), ldb, make([]float32, s.m*s.n)
}

func (s benchShape) report(b *testing.B) {
	flops := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkSgemm(b *testing.B) {
	for _, k := range kernels() {
		ctx := newContext(2, k)
		for _, s := range benchShapes {
			b.Run(fmt.Sprintf("%s/%s", k.name, s.name), func(b *testing.B) {
				a, lda, bb, ldb, c := s.operands()
				b.ReportAllocs()
				for b.Loop() {
					ctx.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				s.report(b)
			})
		}
	}
}

// BenchmarkSgemmServe compares, in one run, the products of a forward pass
// as each microkernel computes them now against how it did before, the two
// alternating three times: a pass of 31 rows read op(B) in place instead of
// packing it ("packed" before, "direct" now), and a pass of one row uses the
// row kernel instead of a tile ("tile" before, "row" now).
func BenchmarkSgemmServe(b *testing.B) {
	for _, k := range kernels() {
		if k.row == nil {
			continue
		}
		before := k
		before.direct, before.row = 1, nil
		now, old := newContext(2, k), newContext(2, before)
		for _, s := range benchShapes {
			if !strings.HasPrefix(s.name, "serve_") {
				continue
			}
			names := [2]string{"packed", "direct"}
			if s.m == 1 {
				names = [2]string{"tile", "row"}
			}
			a, lda, bb, ldb, c := s.operands()
			for round := range 3 {
				for i, ctx := range []*Context{old, now} {
					b.Run(fmt.Sprintf("%s/%s/%s/%d", k.name, s.name, names[i], round), func(b *testing.B) {
						for b.Loop() {
							ctx.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
						}
						s.report(b)
					})
				}
			}
		}
	}
}

// BenchmarkGonum measures gonum's blas32 at the same shapes, for comparison.
func BenchmarkGonum(b *testing.B) {
	impl := blas32.Implementation()
	op := func(t bool) blas.Transpose {
		if t {
			return blas.Trans
		}
		return blas.NoTrans
	}
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			a, lda, bb, ldb, c := s.operands()
			b.ReportAllocs()
			for b.Loop() {
				impl.Sgemm(op(s.transA), op(s.transB), s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			s.report(b)
		})
	}
}

// BenchmarkTile measures one microkernel call on packed operands that fit in
// the L1 and L2 caches: the ceiling for the whole product.
func BenchmarkTile(b *testing.B) {
	for _, k := range kernels() {
		b.Run(k.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			pa, pb := randMatrix(rng, k.kc, k.mr), randMatrix(rng, k.kc, k.nr)
			c := make([]float32, k.mr*k.nr)
			for b.Loop() {
				k.tile(k.kc, pa, pb, k.nr, c, k.nr, 1)
			}
			flops := 2 * float64(k.mr*k.nr*k.kc) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
