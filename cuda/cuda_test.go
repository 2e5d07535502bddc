//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

var shared = sync.OnceValues(func() (*Context, error) { return NewContext(0) })

func context(t *testing.T) *Context {
	t.Helper()
	c, err := shared()
	if err != nil {
		t.Fatalf("opening the GPU: %v", err)
	}
	return c
}

// upload allocates len(v) floats on c and copies v in; freed at cleanup.
func upload(t *testing.T, c *Context, v []float32) Ptr {
	t.Helper()
	p, err := c.Alloc(int64(len(v)) * 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Free(p) })
	if err := c.CopyIn(p, v); err != nil {
		t.Fatal(err)
	}
	return p
}

func download(t *testing.T, c *Context, p Ptr, n int) []float32 {
	t.Helper()
	v := make([]float32, n)
	if err := c.CopyOut(v, p); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestContextInfo(t *testing.T) {
	c := context(t)
	if c.Name() == "" || c.Multiprocessors() < 1 || c.TotalMemory() < 1<<30 {
		t.Errorf("name %q, %d multiprocessors, %d bytes", c.Name(), c.Multiprocessors(), c.TotalMemory())
	}
	t.Logf("%s: %d multiprocessors, %s", c.Name(), c.Multiprocessors(), FormatBytes(c.TotalMemory()))
	if _, err := NewContext(999); err == nil || !strings.Contains(err.Error(), "no device 999") {
		t.Errorf("NewContext(999): %v", err)
	}
}

// A launch the driver refuses (a block of 2048 threads) returns an error
// naming the kernel, and leaves the context working.
func TestLaunchErrorNamesKernel(t *testing.T) {
	c := context(t)
	p := upload(t, c, make([]float32, 8))
	err := c.Launch("fill_f32", [3]int{1, 1, 1}, [3]int{2048, 1, 1}, ptrArg(p), intArg(8), floatArg(1))
	if err == nil || !strings.Contains(err.Error(), "fill_f32") || !strings.Contains(err.Error(), "block [2048 1 1]") {
		t.Errorf("oversized block: %v", err)
	}
	t.Logf("oversized block: %v", err)
	if err := c.Launch("no_such_f32", [3]int{1, 1, 1}, [3]int{32, 1, 1}); err == nil || !strings.Contains(err.Error(), "no_such_f32") {
		t.Errorf("unknown kernel: %v", err)
	}
	if err := c.Fill(p, 8, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(); err != nil {
		t.Fatalf("sync after a refused launch: %v", err)
	}
	for i, v := range download(t, c, p, 8) {
		if v != 2 {
			t.Fatalf("[%d] = %v after a refused launch, want 2", i, v)
		}
	}
}

// The 64-bit index path of the walk kernels (taken for walks of 2^31 values
// or more) computes what the 32-bit path does, on a walk small enough to
// test: the kernels are launched directly with each setting.
func TestWalkIndexWidths(t *testing.T) {
	c := context(t)
	r := rand.New(rand.NewPCG(1, 1))
	shape := [MaxDims]int{1, 1, 3, 7, 5, 9}
	sa := [MaxDims]int{0, 0, 1, 3, 21, 105} // a permuted layout
	sb := [MaxDims]int{0, 0, 45, 0, 9, 1}   // broadcast on axis 3
	n := 3 * 7 * 5 * 9
	a := make([]float32, 945)
	b := make([]float32, 135)
	for i := range a {
		a[i] = r.Float32()
	}
	for i := range b {
		b[i] = r.Float32()
	}
	ap, bp := upload(t, c, a), upload(t, c, b)
	want := make([]float32, 0, n)
	wantCopy := make([]float32, 0, n)
	for i0 := range shape[2] {
		for i1 := range shape[3] {
			for i2 := range shape[4] {
				for i3 := range shape[5] {
					x := a[i0*sa[2]+i1*sa[3]+i2*sa[4]+i3*sa[5]]
					y := b[i0*sb[2]+i1*sb[3]+i2*sb[4]+i3*sb[5]]
					want = append(want, x-y)
					wantCopy = append(wantCopy, x)
				}
			}
		}
	}
	for _, wide := range []bool{false, true} {
		out := upload(t, c, make([]float32, n))
		w := Walk{Shape: shape, Strides: [3][MaxDims]int{sa, sb}}
		args, _ := binaryWalkArgs(1, out, ap, bp, &w, 0, 0)
		args[len(args)-1] = boolArg(wide)
		err := c.Launch("binary_walk_f32", [3]int{2, 1, 1}, [3]int{64, 1, 1}, args...)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range download(t, c, out, n) {
			if v != want[i] {
				t.Fatalf("binary_walk_f32 wide=%v: [%d] = %v, want %v", wide, i, v, want[i])
			}
		}
		args, _ = copyWalkArgs(out, ap, &w)
		args[len(args)-1] = boolArg(wide)
		err = c.Launch("copy_walk_f32", [3]int{3, 1, 1}, [3]int{32, 1, 1}, args...)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range download(t, c, out, n) {
			if v != wantCopy[i] {
				t.Fatalf("copy_walk_f32 wide=%v: [%d] = %v, want %v", wide, i, v, wantCopy[i])
			}
		}
	}
}

// Each SGEMM kernel, launched directly, on a product with edges in every
// dimension, against a float64 reference.
func TestSgemmKernels(t *testing.T) {
	c := context(t)
	r := rand.New(rand.NewPCG(2, 2))
	const m, k, n = 131, 67, 259
	a := make([]float32, m*k)
	b := make([]float32, k*n)
	for i := range a {
		a[i] = r.Float32()*2 - 1
	}
	for i := range b {
		b[i] = r.Float32()*2 - 1
	}
	ap, bp := upload(t, c, a), upload(t, c, b)
	for _, kern := range []kernel{kSgemm128, kSgemm64, kSgemm32} {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			// Element (i, l) of op(A) and (l, j) of op(B).
			at := func(i, l int) float32 {
				if tr[0] {
					return a[l*m+i]
				}
				return a[i*k+l]
			}
			bt := func(l, j int) float32 {
				if tr[1] {
					return b[j*k+l]
				}
				return b[l*n+j]
			}
			out := upload(t, c, make([]float32, m*n))
			tile := map[kernel]int{kSgemm128: 128, kSgemm64: 64, kSgemm32: 32}[kern]
			tiles := ((m + tile - 1) / tile) * ((n + tile - 1) / tile)
			err := c.Launch(kernelNames[kern], [3]int{tiles, 1, 1}, block1, ptrArg(out), ptrArg(ap), ptrArg(bp),
				intArg(m), intArg(n), intArg(k), boolArg(tr[0]), boolArg(tr[1]), boolArg(false), intArg(k))
			if err != nil {
				t.Fatal(err)
			}
			check(t, fmt.Sprintf("%s trans %v", kernelNames[kern], tr), download(t, c, out, m*n), m, n, k, at, bt, nil)
			// Split-K: three slices of k (32, 32 and 3) into a workspace,
			// summed onto a C that already holds values.
			ws := upload(t, c, make([]float32, 3*m*n))
			err = c.Launch(kernelNames[kern], [3]int{tiles, 3, 1}, block1, ptrArg(ws), ptrArg(ap), ptrArg(bp),
				intArg(m), intArg(n), intArg(k), boolArg(tr[0]), boolArg(tr[1]), boolArg(false), intArg(32))
			if err != nil {
				t.Fatal(err)
			}
			prev := make([]float32, m*n)
			for i := range prev {
				prev[i] = float32(i%7) - 3
			}
			out = upload(t, c, prev)
			if err := c.Launch("sgemm_splitk_sum_f32", [3]int{4, 1, 1}, block1, ptrArg(out), ptrArg(ws), intArg(m*n), intArg(3), boolArg(true)); err != nil {
				t.Fatal(err)
			}
			check(t, fmt.Sprintf("%s split-K trans %v", kernelNames[kern], tr), download(t, c, out, m*n), m, n, k, at, bt, prev)
		}
	}
}

// check compares got with the float64 product of the m x k and k x n
// matrices whose elements at and bt return, plus prev when not nil.
func check(t *testing.T, name string, got []float32, m, n, k int, at, bt func(i, j int) float32, prev []float32) {
	t.Helper()
	bad := 0
	for i := range m {
		for j := range n {
			var s float64
			if prev != nil {
				s = float64(prev[i*n+j])
			}
			for l := range k {
				s += float64(at(i, l)) * float64(bt(l, j))
			}
			if d := math.Abs(float64(got[i*n+j]) - s); d > 1e-4 {
				if bad < 5 {
					t.Errorf("%s: C[%d,%d] = %v, want %v", name, i, j, got[i*n+j], s)
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", name, bad, m*n)
	}
}

func TestTime(t *testing.T) {
	c := context(t)
	p := upload(t, c, make([]float32, 1<<20))
	d, err := c.Time(func() error { return c.Fill(p, 1<<20, 1) })
	if err != nil || d <= 0 {
		t.Errorf("Time of a fill: %v, %v", d, err)
	}
}

func TestCloseReleasesEverything(t *testing.T) {
	c, err := NewContext(0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Alloc(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.Alloc(1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Free(q); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Reserved != 0 || st.Allocated != 0 || st.DriverFrees != 2 {
		t.Errorf("after Close: %+v", st)
	}
	if err := c.Fill(p, 1, 0); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Fill after Close: %v", err)
	}
}
