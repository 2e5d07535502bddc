package cuda

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrOutOfMemory is wrapped by every allocation that failed for lack of
// device memory, after the pool released its cached blocks and retried.
var ErrOutOfMemory = errors.New("cuda: out of memory")

const (
	smallLimit = 1 << 20 // requests below 1 MiB round up to smallGrain
	smallGrain = 512
	largeGrain = 2 << 20 // larger ones round up to whole 2 MiB pages
)

// SizeClass is the size of the block that serves a request of bytes: a
// multiple of 512 bytes below 1 MiB and of 2 MiB above. Blocks are reused only
// for requests of the same class.
func SizeClass(bytes int64) int64 {
	if bytes <= 0 {
		return 0
	}
	if bytes < smallLimit {
		return (bytes + smallGrain - 1) / smallGrain * smallGrain
	}
	return (bytes + largeGrain - 1) / largeGrain * largeGrain
}

// Stats describes a pool's memory in bytes, and its calls to the driver.
type Stats struct {
	Allocated    int64 // in blocks handed out and not yet returned
	Reserved     int64 // held from the driver: Allocated plus cached blocks
	Peak         int64 // highest Allocated so far
	DriverAllocs int64 // calls to the driver's allocator
	DriverFrees  int64 // calls to the driver's free
}

// Driver is what a Pool needs from the device: allocate and free whole
// blocks. Alloc reports a lack of memory with an error wrapping
// ErrOutOfMemory.
type Driver interface {
	Alloc(bytes int64) (uintptr, error)
	Free(ptr uintptr) error
}

// Pool is a caching allocator: blocks returned by Put go to a free list per
// size class and serve later requests of the same class without a driver
// call, so a training loop stops calling the driver after its first step.
// When the driver runs out of memory, the pool frees every cached block and
// tries once more. A Pool is safe for concurrent use.
type Pool struct {
	drv   Driver
	limit int64 // requests above it fail at once; 0 means no limit

	mu    sync.Mutex
	free  map[int64][]uintptr // cached blocks by class
	live  map[uintptr]int64   // blocks handed out, with their class
	stats Stats
}

// NewPool returns a pool over drv. Requests larger than limit bytes (the
// device's memory; 0 for none) fail without a driver call.
func NewPool(drv Driver, limit int64) *Pool {
	return &Pool{drv: drv, limit: limit, free: make(map[int64][]uintptr), live: make(map[uintptr]int64)}
}

// Get returns a block of at least bytes (> 0) bytes.
func (p *Pool) Get(bytes int64) (uintptr, error) {
	if bytes <= 0 {
		return 0, fmt.Errorf("cuda: allocation of %d bytes", bytes)
	}
	class := SizeClass(bytes)
	p.mu.Lock()
	defer p.mu.Unlock()
	if list := p.free[class]; len(list) > 0 {
		ptr := list[len(list)-1]
		p.free[class] = list[:len(list)-1]
		p.handOut(ptr, class)
		return ptr, nil
	}
	if p.limit > 0 && class > p.limit {
		return 0, p.oom(bytes, fmt.Errorf("device has %s", FormatBytes(p.limit)))
	}
	ptr, err := p.drv.Alloc(class)
	p.stats.DriverAllocs++
	if err != nil && errors.Is(err, ErrOutOfMemory) && p.stats.Reserved > p.stats.Allocated {
		if rerr := p.releaseLocked(); rerr != nil {
			return 0, rerr
		}
		ptr, err = p.drv.Alloc(class)
		p.stats.DriverAllocs++
	}
	if err != nil {
		if errors.Is(err, ErrOutOfMemory) {
			return 0, p.oom(bytes, err)
		}
		return 0, fmt.Errorf("cuda: allocating %s: %w", FormatBytes(bytes), err)
	}
	p.stats.Reserved += class
	p.handOut(ptr, class)
	return ptr, nil
}

// handOut records ptr of class as in use.
func (p *Pool) handOut(ptr uintptr, class int64) {
	p.live[ptr] = class
	p.stats.Allocated += class
	p.stats.Peak = max(p.stats.Peak, p.stats.Allocated)
}

// Put returns a block from Get to the pool. It reports an error for a
// pointer the pool did not hand out, or one already returned.
func (p *Pool) Put(ptr uintptr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	class, ok := p.live[ptr]
	if !ok {
		return fmt.Errorf("cuda: free of 0x%x, which is not an allocated block", ptr)
	}
	delete(p.live, ptr)
	p.stats.Allocated -= class
	p.free[class] = append(p.free[class], ptr)
	return nil
}

// Release frees every cached block to the driver; blocks in use stay.
func (p *Pool) Release() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.releaseLocked()
}

func (p *Pool) releaseLocked() error {
	var first error
	for class, list := range p.free {
		for _, ptr := range list {
			if err := p.drv.Free(ptr); err != nil && first == nil {
				first = fmt.Errorf("cuda: freeing a cached block of %s: %w", FormatBytes(class), err)
			}
			p.stats.DriverFrees++
			p.stats.Reserved -= class
		}
		delete(p.free, class)
	}
	return first
}

// Close frees every block, cached or in use, to the driver.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ptr, class := range p.live {
		delete(p.live, ptr)
		p.stats.Allocated -= class
		p.free[class] = append(p.free[class], ptr)
	}
	return p.releaseLocked()
}

// Stats returns the pool's current statistics.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Cached lists the sizes of the cached blocks, largest first.
func (p *Pool) Cached() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s []int64
	for class, list := range p.free {
		for range list {
			s = append(s, class)
		}
	}
	sort.Slice(s, func(i, j int) bool { return s[i] > s[j] })
	return s
}

// OutOfMemoryError is the error of a request the device could not satisfy.
// It wraps ErrOutOfMemory and the driver's error.
type OutOfMemoryError struct {
	Requested int64 // bytes asked for
	InUse     int64 // bytes handed out at the time
	Cached    int64 // bytes cached at the time (after the release)
	Err       error // the driver's error
}

func (p *Pool) oom(bytes int64, err error) error {
	return &OutOfMemoryError{Requested: bytes, InUse: p.stats.Allocated,
		Cached: p.stats.Reserved - p.stats.Allocated, Err: err}
}

// Error says what was requested and what the pool holds.
func (e *OutOfMemoryError) Error() string {
	return fmt.Sprintf("cuda: out of memory allocating %s (in use %s, cached %s): %v",
		FormatBytes(e.Requested), FormatBytes(e.InUse), FormatBytes(e.Cached), e.Err)
}

// Unwrap returns ErrOutOfMemory and the driver's error.
func (e *OutOfMemoryError) Unwrap() []error { return []error{ErrOutOfMemory, e.Err} }

// FormatBytes writes a byte count with a binary unit: "512 B", "4.0 GiB".
func FormatBytes(b int64) string {
	const unit = 1024
	if b < unit && b > -unit {
		return fmt.Sprintf("%d B", b)
	}
	v, i := float64(b)/unit, 0
	for (v >= unit || v <= -unit) && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
