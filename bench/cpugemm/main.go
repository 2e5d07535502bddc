// Command cpugemm times gograd's CPU matrix multiply (internal/sgemm, as the
// CPU device calls it) at the products of an MLP 784-512-256-10 training
// step on a batch of 128 and at square sizes, and prints one line per
// product:
//
//	gemm gograd <name> <gflops>
//
// bench/cpu_sgemm.py prints the same lines for NumPy and PyTorch, so that
// bench/cpu_compare.sh can compare them. Each figure is the median of -reps
// timed batches of about -batch seconds, after a warm-up batch; operands are
// uniform in [-1, 1), stored as the training step stores them.
//
// With -peak it prints instead the rate of a loop of independent FMAs with
// no memory traffic, the machine's FMA peak against which the products'
// rates can be read, on 1 thread and on -threads at once:
//
//	peak <avx512|avx2> threads <t> <gflops>
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/gograd/gograd/internal/sgemm"
)

// product is C[m,n] = op(A)·op(B), with A stored [k,m] when transA and B
// stored [n,k] when transB.
type product struct {
	name           string
	m, k, n        int
	transA, transB bool
}

// products are the eight products of a training step (the first layer's
// input gradient is not needed), then the square sizes.
var products = []product{
	{"fc1_fwd_128x784x512_NT", 128, 784, 512, false, true},
	{"fc1_dW_512x128x784_TN", 512, 128, 784, true, false},
	{"fc2_fwd_128x512x256_NT", 128, 512, 256, false, true},
	{"fc2_dW_256x128x512_TN", 256, 128, 512, true, false},
	{"fc2_dx_128x256x512_NN", 128, 256, 512, false, false},
	{"fc3_fwd_128x256x10_NT", 128, 256, 10, false, true},
	{"fc3_dW_10x128x256_TN", 10, 128, 256, true, false},
	{"fc3_dx_128x10x256_NN", 128, 10, 256, false, false},
	{"square_512", 512, 512, 512, false, false},
	{"square_1024", 1024, 1024, 1024, false, false},
	{"square_2048", 2048, 2048, 2048, false, false},
}

// stepProducts is how many of products make up a training step.
const stepProducts = 8

func main() {
	reps := flag.Int("reps", 5, "timed batches per product; the median is printed")
	batch := flag.Duration("batch", 200*time.Millisecond, "length of one timed batch")
	threads := flag.Int("threads", 0, "threads (0: GOMAXPROCS)")
	peakOnly := flag.Bool("peak", false, "print the FMA units' peak instead: GFLOP/s of an FMA loop with no memory traffic, on 1 and -threads threads")
	flag.Parse()
	if *reps < 1 || *batch <= 0 {
		fmt.Fprintln(os.Stderr, "cpugemm: -reps and -batch must be positive")
		os.Exit(2)
	}
	if *peakOnly {
		t := *threads
		if t <= 0 {
			t = runtime.GOMAXPROCS(0)
		}
		if err := peak(t, *reps, *batch); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx := sgemm.New(*threads)
	fmt.Printf("# gograd sgemm: kernel %s, %d threads\n", ctx.Kernel(), ctx.Threads())
	r := rand.New(rand.NewPCG(1, 1))
	type operands struct {
		a, b, c []float32
		lda     int
		ldb     int
	}
	ops := make([]operands, len(products))
	for i, p := range products {
		o := operands{a: random(r, p.m*p.k), b: random(r, p.k*p.n), c: make([]float32, p.m*p.n), lda: p.k, ldb: p.n}
		if p.transA {
			o.lda = p.m
		}
		if p.transB {
			o.ldb = p.k
		}
		ops[i] = o
	}
	run := func(i int) {
		p, o := products[i], ops[i]
		ctx.Sgemm(p.transA, p.transB, p.m, p.n, p.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, p.n)
	}
	flops := func(p product) float64 { return 2 * float64(p.m) * float64(p.k) * float64(p.n) }
	for i, p := range products {
		gf := measure(*reps, *batch, func() { run(i) }) * flops(p) / 1e9
		fmt.Printf("gemm gograd %s %.1f\n", p.name, gf)
	}
	// The step's products back to back, as a training step runs them.
	var stepFlops float64
	for _, p := range products[:stepProducts] {
		stepFlops += flops(p)
	}
	gf := measure(*reps, *batch, func() {
		for i := range stepProducts {
			run(i)
		}
	}) * stepFlops / 1e9
	fmt.Printf("gemm gograd step_all_8 %.1f\n", gf)
}

// measure returns the median rate, in calls per second, of reps batches of
// calls to fn lasting about batch each, after one warm-up batch.
func measure(reps int, batch time.Duration, fn func()) float64 {
	// Calibrate: calls per batch from a warm-up of at least 10 calls.
	n, start := 0, time.Now()
	for n < 10 || time.Since(start) < batch/2 {
		fn()
		n++
	}
	per := time.Since(start) / time.Duration(n)
	calls := max(1, int(batch/max(per, 1)))
	rates := make([]float64, reps)
	for i := range rates {
		t := time.Now()
		for range calls {
			fn()
		}
		rates[i] = float64(calls) / time.Since(t).Seconds()
	}
	slices.Sort(rates)
	return rates[reps/2]
}

func random(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*r.Float32() - 1
	}
	return s
}
