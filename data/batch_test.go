package data

import (
	"math"
	"slices"
	"testing"
)

// seqSet is a set whose pixel k of example i holds i*Dim()+k, so every value
// tells where it came from.
func seqSet(n, rows, cols int) *Set {
	d := rows * cols
	s := &Set{Images: make([]float32, n*d), Labels: make([]uint8, n), N: n, Rows: rows, Cols: cols}
	for i := range s.Images {
		s.Images[i] = float32(i)
	}
	for i := range s.Labels {
		s.Labels[i] = uint8(i % 10)
	}
	return s
}

// origin is the index in seqSet of the example whose pixels img holds.
func origin(img []float32) int { return int(img[0]) / len(img) }

func TestBatchesCover(t *testing.T) {
	for _, tc := range []struct {
		n, batch  int
		dropLast  bool
		wantLen   int
		wantLast  int // size of the last batch
		wantTotal int
	}{
		{103, 10, false, 11, 3, 103},
		{103, 10, true, 10, 10, 100},
		{100, 10, false, 10, 10, 100},
		{100, 10, true, 10, 10, 100},
		{7, 64, false, 1, 7, 7},
		{7, 64, true, 0, 0, 0},
		{1, 1, false, 1, 1, 1},
		{0, 5, false, 0, 0, 0},
		{257, 1, true, 257, 1, 257},
	} {
		for _, shuffle := range []bool{false, true} {
			b, err := NewBatches(tc.n, tc.batch, shuffle, 99, tc.dropLast)
			if err != nil {
				t.Fatal(err)
			}
			for e := range 3 {
				batches := b.Epoch(e)
				if len(batches) != tc.wantLen || b.Len() != tc.wantLen {
					t.Fatalf("%+v shuffle %v: %d batches, Len %d; want %d", tc, shuffle, len(batches), b.Len(), tc.wantLen)
				}
				if tc.wantLen > 0 && len(batches[len(batches)-1]) != tc.wantLast {
					t.Errorf("%+v: last batch has %d, want %d", tc, len(batches[len(batches)-1]), tc.wantLast)
				}
				seen := make([]int, tc.n)
				total := 0
				for i, idx := range batches {
					if i < len(batches)-1 && len(idx) != tc.batch {
						t.Errorf("%+v: batch %d has %d indices", tc, i, len(idx))
					}
					for _, j := range idx {
						seen[j]++
						total++
					}
				}
				if total != tc.wantTotal {
					t.Errorf("%+v: %d indices in an epoch, want %d", tc, total, tc.wantTotal)
				}
				for j, c := range seen {
					if c > 1 {
						t.Fatalf("%+v: index %d appears %d times", tc, j, c)
					}
				}
				if !shuffle && total > 0 && !slices.Equal(slices.Concat(batches...), identity(total)) {
					t.Errorf("%+v: unshuffled order is not 0..%d", tc, total-1)
				}
			}
		}
	}
}

func TestBatchesOrder(t *testing.T) {
	const n = 1001
	a, _ := NewBatches(n, 32, true, 5, false)
	b, _ := NewBatches(n, 32, true, 5, false)
	c, _ := NewBatches(n, 32, true, 6, false)
	flat := func(b *Batches, e int) []int { return slices.Concat(b.Epoch(e)...) }
	// Epoch 3 asked for first, as a resumed run would, matches epoch 3 of a
	// run that went through 0, 1 and 2.
	resumed := flat(b, 3)
	for e := range 4 {
		got := flat(a, e)
		if !slices.Equal(got, flat(a, e)) {
			t.Errorf("epoch %d differs between two calls", e)
		}
		if e == 3 && !slices.Equal(got, resumed) {
			t.Errorf("epoch 3 of a fresh Batches differs")
		}
		if slices.Equal(got, flat(a, e+1)) {
			t.Errorf("epochs %d and %d have the same order", e, e+1)
		}
		if slices.Equal(got, flat(c, e)) {
			t.Errorf("seeds 5 and 6 give the same order in epoch %d", e)
		}
		if slices.Equal(got, identity(n)) {
			t.Errorf("epoch %d is not shuffled", e)
		}
	}
	// A resumed run depends on this order, so it must not change. It follows
	// from PCG-DXSM (seed 42, stream 0), Lemire's bounded draw and a
	// Fisher–Yates shuffle from the last element down.
	g, _ := NewBatches(10, 4, true, 42, false)
	want := [][]int{{6, 2, 5, 3}, {4, 7, 0, 1}, {9, 8}}
	if got := g.Epoch(0); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("seed 42 epoch 0 = %v, want %v", got, want)
	}
}

// TestShuffleUniform counts the orders of 3 elements over many seeds: each of
// the 6 must come up about a sixth of the time.
func TestShuffleUniform(t *testing.T) {
	const trials = 60000
	counts := map[[3]int]int{}
	p := make([]int, 3)
	for s := range uint64(trials) {
		copy(p, []int{0, 1, 2})
		shuffle(p, s, 0)
		counts[[3]int(p)]++
	}
	if len(counts) != 6 {
		t.Fatalf("%d distinct orders, want 6: %v", len(counts), counts)
	}
	// The standard deviation of each count is about 91.
	for perm, c := range counts {
		if math.Abs(float64(c)-trials/6) > 500 {
			t.Errorf("order %v came up %d times, want about %d", perm, c, trials/6)
		}
	}
}

func TestNewBatchesErrors(t *testing.T) {
	for _, tc := range [][2]int{{-1, 5}, {10, 0}, {10, -3}} {
		if _, err := NewBatches(tc[0], tc[1], true, 1, false); err == nil {
			t.Errorf("NewBatches(%d, %d) gave no error", tc[0], tc[1])
		}
	}
}

func TestSplit(t *testing.T) {
	s := seqSet(1003, 2, 3)
	for _, tc := range []struct {
		frac    float64
		wantVal int
	}{{0.1, 100}, {0.5, 502}, {0.999, 1002}, {0.0004, 0}, {0.0005, 1}} {
		train, val := Split(s, tc.frac, 11)
		gotVal := 0
		if val != nil {
			gotVal = val.N
		}
		if gotVal != tc.wantVal || train.N != s.N-tc.wantVal {
			t.Fatalf("Split(%v): %d train, %d val; want %d, %d", tc.frac, train.N, gotVal, s.N-tc.wantVal, tc.wantVal)
		}
		seen := make([]int, s.N)
		for _, part := range []*Set{train, val} {
			if part == nil {
				continue
			}
			if len(part.Images) != part.N*6 || len(part.Labels) != part.N || part.Rows != 2 || part.Cols != 3 {
				t.Fatalf("Split(%v): inconsistent set", tc.frac)
			}
			prev := -1
			for i := range part.N {
				j := origin(part.Image(i))
				if j <= prev {
					t.Errorf("Split(%v): example %d after %d: original order lost", tc.frac, j, prev)
				}
				if !slices.Equal(part.Image(i), s.Image(j)) || part.Labels[i] != s.Labels[j] {
					t.Errorf("Split(%v): example %d copied wrongly", tc.frac, j)
				}
				prev = j
				seen[j]++
			}
		}
		for j, c := range seen {
			if c != 1 {
				t.Fatalf("Split(%v): example %d is in %d parts", tc.frac, j, c)
			}
		}
	}

	train, val := Split(s, 0, 11)
	if train != s || val != nil {
		t.Errorf("Split(0) = %p, %v; want s, nil", train, val)
	}
	_, v1 := Split(s, 0.2, 3)
	_, v2 := Split(s, 0.2, 3)
	_, v3 := Split(s, 0.2, 4)
	if !slices.Equal(v1.Labels, v2.Labels) || !slices.Equal(v1.Images, v2.Images) {
		t.Error("Split is not deterministic")
	}
	if slices.Equal(v1.Images, v3.Images) {
		t.Error("seeds 3 and 4 give the same split")
	}
	for _, bad := range []float64{-0.1, 1, 2, math.NaN()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Split(%v) did not panic", bad)
				}
			}()
			Split(s, bad, 1)
		}()
	}
}

func TestGather(t *testing.T) {
	s := seqSet(50, 3, 5)
	idx := []int{49, 0, 17, 17, 3}
	x := make([]float32, len(idx)*15)
	y := make([]float32, len(idx))
	Gather(s, idx, x, y)
	for i, j := range idx {
		if !slices.Equal(x[i*15:(i+1)*15], s.Image(j)) || y[i] != float32(s.Labels[j]) {
			t.Errorf("row %d: got example %d, label %v; want %d, %d", i, origin(x[i*15:(i+1)*15]), y[i], j, s.Labels[j])
		}
	}
	if a := testing.AllocsPerRun(10, func() { Gather(s, idx, x, y) }); a != 0 {
		t.Errorf("Gather allocates %v times", a)
	}
	for _, tc := range [][2]int{{len(x) - 1, len(y)}, {len(x) + 15, len(y)}, {len(x), len(y) + 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Gather with len(x) %d, len(y) %d did not panic", tc[0], tc[1])
				}
			}()
			Gather(s, idx, make([]float32, tc[0]), make([]float32, tc[1]))
		}()
	}
}

func BenchmarkGather(b *testing.B) {
	s := seqSet(60000, 28, 28)
	bt, _ := NewBatches(s.N, 128, true, 1, true)
	idx := bt.Epoch(0)[0]
	x := make([]float32, len(idx)*s.Dim())
	y := make([]float32, len(idx))
	b.ReportAllocs()
	for b.Loop() {
		Gather(s, idx, x, y)
	}
}

func BenchmarkEpoch(b *testing.B) {
	bt, _ := NewBatches(60000, 128, true, 1, false)
	b.ReportAllocs()
	e := 0
	for b.Loop() {
		bt.Epoch(e)
		e++
	}
}

// TestSample checks that Sample draws n distinct examples by its seed, in
// their order in the set, from every class of a set in class order, and
// returns the whole set when n is not smaller.
func TestSample(t *testing.T) {
	const n, classes = 300, 6
	s := &Set{Images: make([]float32, n), Labels: make([]uint8, n), N: n, Rows: 1, Cols: 1}
	for i := range n {
		s.Images[i] = float32(i)
		s.Labels[i] = uint8(i * classes / n) // class order, as an image folder
	}
	a := Sample(s, 60, 7)
	if a.N != 60 || len(a.Labels) != 60 || len(a.Images) != 60 {
		t.Fatalf("Sample(60): N %d, %d labels, %d values", a.N, len(a.Labels), len(a.Images))
	}
	seen := map[uint8]int{}
	for i := range a.N {
		if i > 0 && a.Images[i] <= a.Images[i-1] {
			t.Fatalf("example %d (%v) not after %v: want distinct examples in the set's order", i, a.Images[i], a.Images[i-1])
		}
		if j := int(a.Images[i]); a.Labels[i] != s.Labels[j] {
			t.Fatalf("example %d: label %d, the set has %d", i, a.Labels[i], s.Labels[j])
		}
		seen[a.Labels[i]]++
	}
	if len(seen) != classes {
		t.Errorf("drew classes %v: want all %d", seen, classes)
	}
	if b := Sample(s, 60, 7); !slices.Equal(a.Images, b.Images) {
		t.Error("the same seed drew different examples")
	}
	if c := Sample(s, 60, 8); slices.Equal(a.Images, c.Images) {
		t.Error("seeds 7 and 8 drew the same examples")
	}
	if all := Sample(s, n, 7); all != s {
		t.Error("Sample(N) is not the set itself")
	}
}
