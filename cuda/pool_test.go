package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fakeDriver hands out addresses from a counter and fails once more than
// capacity bytes are held.
type fakeDriver struct {
	capacity, held int64
	next           uintptr
	blocks         map[uintptr]int64
	allocs, frees  int
}

func newFakeDriver(capacity int64) *fakeDriver {
	return &fakeDriver{capacity: capacity, next: 1 << 20, blocks: make(map[uintptr]int64)}
}

func (d *fakeDriver) Alloc(bytes int64) (uintptr, error) {
	d.allocs++
	if d.held+bytes > d.capacity {
		return 0, fmt.Errorf("fake: %w", ErrOutOfMemory)
	}
	p := d.next
	d.next += uintptr(bytes)
	d.held += bytes
	d.blocks[p] = bytes
	return p, nil
}

func (d *fakeDriver) Free(p uintptr) error {
	b, ok := d.blocks[p]
	if !ok {
		return fmt.Errorf("fake: free of unknown 0x%x", p)
	}
	d.frees++
	d.held -= b
	delete(d.blocks, p)
	return nil
}

func TestSizeClass(t *testing.T) {
	cases := []struct{ in, want int64 }{
		{0, 0}, {1, 512}, {4, 512}, {512, 512}, {513, 1024}, {40000, 40448},
		{1<<20 - 1, 1 << 20}, {1 << 20, 2 << 20}, {2 << 20, 2 << 20}, {2<<20 + 1, 4 << 20},
		{1 << 32, 1 << 32}, {1<<32 + 5, 1<<32 + 2<<20},
	}
	for _, c := range cases {
		if got := SizeClass(c.in); got != c.want {
			t.Errorf("SizeClass(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// A training-step-like pattern: the same sizes allocated and freed in the
// same order every step stop reaching the driver after the first step.
func TestPoolReuseIsFlat(t *testing.T) {
	drv := newFakeDriver(1 << 40)
	p := NewPool(drv, 0)
	sizes := []int64{128 * 784 * 4, 512 * 4, 128 * 512 * 4, 256 * 4, 128 * 256 * 4, 10 * 4, 128 * 10 * 4, 4, 4}
	var afterWarmup Stats
	for step := 0; step < 1000; step++ {
		var ptrs []uintptr
		for _, s := range sizes {
			ptr, err := p.Get(s)
			if err != nil {
				t.Fatal(err)
			}
			ptrs = append(ptrs, ptr)
		}
		for _, ptr := range ptrs {
			if err := p.Put(ptr); err != nil {
				t.Fatal(err)
			}
		}
		if step == 0 {
			afterWarmup = p.Stats()
		}
	}
	st := p.Stats()
	if st.DriverAllocs != afterWarmup.DriverAllocs || st.Reserved != afterWarmup.Reserved || st.Peak != afterWarmup.Peak {
		t.Errorf("stats grew after the first step: %+v, then %+v", afterWarmup, st)
	}
	if st.Allocated != 0 || st.DriverAllocs != int64(len(sizes)) || st.DriverFrees != 0 {
		t.Errorf("stats %+v: want nothing allocated and %d driver allocations", st, len(sizes))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Reserved != 0 || drv.held != 0 || st.DriverFrees != int64(len(sizes)) {
		t.Errorf("after Close: %+v, driver holds %d", st, drv.held)
	}
}

func TestPoolReleasesCacheOnOutOfMemory(t *testing.T) {
	drv := newFakeDriver(10 << 20)
	p := NewPool(drv, 0)
	a, err := p.Get(6 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(a); err != nil { // cached: 6 MiB held by the pool
		t.Fatal(err)
	}
	b, err := p.Get(8 << 20) // needs the cached block released first
	if err != nil {
		t.Fatalf("Get after release: %v", err)
	}
	if st := p.Stats(); st.DriverFrees != 1 || st.Reserved != 8<<20 || st.Allocated != 8<<20 {
		t.Errorf("stats %+v, want one driver free and 8 MiB reserved", st)
	}
	_, err = p.Get(4 << 20)
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("Get beyond capacity: %v, want ErrOutOfMemory", err)
	}
	var oom *OutOfMemoryError
	if !errors.As(err, &oom) || oom.InUse != 8<<20 || oom.Requested != 4<<20 {
		t.Errorf("error %#v", err)
	}
	want := "cuda: out of memory allocating 4.0 MiB (in use 8.0 MiB, cached 0 B)"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
	if err := p.Put(b); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(4 << 20); err != nil { // works again after the release
		t.Errorf("Get after freeing: %v", err)
	}
}

func TestPoolLimit(t *testing.T) {
	drv := newFakeDriver(1 << 40)
	p := NewPool(drv, 80<<30)
	_, err := p.Get(4 << 40)
	if !errors.Is(err, ErrOutOfMemory) || drv.allocs != 0 {
		t.Fatalf("request above the limit: %v after %d driver calls", err, drv.allocs)
	}
	if !strings.Contains(err.Error(), "4.0 TiB") || !strings.Contains(err.Error(), "80.0 GiB") {
		t.Errorf("message %q does not name the request and the device's memory", err)
	}
}

func TestPoolPutErrors(t *testing.T) {
	p := NewPool(newFakeDriver(1<<30), 0)
	ptr, err := p.Get(100)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ptr); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ptr); err == nil {
		t.Error("double Put succeeded")
	}
	if err := p.Put(12345); err == nil {
		t.Error("Put of a foreign pointer succeeded")
	}
	if _, err := p.Get(0); err == nil {
		t.Error("Get(0) succeeded")
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 512: "512 B", 1536: "1.5 KiB", 4 << 30: "4.0 GiB", 1 << 42: "4.0 TiB"} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}
