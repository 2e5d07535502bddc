package device

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/gograd/gograd/internal/sgemm"
)

// CPU is the reference backend: every operation runs on the host in plain Go,
// split across goroutines when it is large enough to pay for them. Matrix
// products go to the packed, register-blocked SGEMM of internal/sgemm
// (AVX-512 or AVX2 assembly where the CPU has it).
//
// It is the readable definition of each operation's semantics. Beyond what
// the Device interface documents: transcendental functions are evaluated in
// float64 and rounded once; sums accumulate in float64; MaxOf propagates NaN
// and ArgMax returns the index of the first NaN when a row holds one.
//
// Alloc reuses freed buffers of the same length, so a training loop stops
// allocating after its first step. A CPU is safe for concurrent use.
type CPU struct {
	threads int
	sgemm   *sgemm.Context // every matrix product, on threads goroutines
	sgemm1  *sgemm.Context // products inside work already split across threads (convolutions)
	simd    bool           // the AVX2 kernels of cpu_amd64.s can run

	teamOnce    sync.Once
	team        *cpuTeam  // threads-1 helper goroutines, started on first use
	sgdTasks    sync.Pool // of *cpuSGDTask
	gatherTasks sync.Pool // of *cpuGatherTask
	bnTasks     sync.Pool // of *cpuBNTask
	convTasks   sync.Pool // of *cpuConv
	colTasks    sync.Pool // of *cpuConvTask
	convPanels  sync.Pool // of *cpuConvPanel
	poolTasks   sync.Pool // of *cpuPool

	mu     sync.Mutex
	free   map[int][]*CPUBuffer // freed buffers by exact length
	pooled int                  // float32 values held in free
}

// CPUBuffer is a buffer of the CPU backend: a host slice.
type CPUBuffer struct {
	data  []float32
	freed bool
}

// Len is the number of float32 values the buffer holds.
func (b *CPUBuffer) Len() int { return len(b.data) }

// Data returns the backing slice. Writes to it are visible to the device.
func (b *CPUBuffer) Data() []float32 { return b.data }

var (
	_ Device      = (*CPU)(nil)
	_ SoftmaxCE   = (*CPU)(nil)
	_ BiasAct     = (*CPU)(nil)
	_ BiasActGrad = (*CPU)(nil)
	_ HostMemory  = (*CPU)(nil)
	_ Optimizers  = (*CPU)(nil)
	_ Buffer      = (*CPUBuffer)(nil)
)

const (
	// cpuParallelMin is the number of elementary steps below which an op
	// runs on the calling goroutine alone.
	cpuParallelMin = 1 << 15
	// cpuPoolMax is the most float32 values (1 GiB) that freed buffers keep
	// for reuse; buffers freed beyond it are left to the garbage collector.
	cpuPoolMax = 1 << 28
	// cpuAllocMax is the largest buffer Alloc attempts (64 GiB).
	cpuAllocMax = 1 << 34
)

// NewCPU returns a CPU device that splits large operations across up to
// threads goroutines; threads <= 0 means runtime.GOMAXPROCS(0).
func NewCPU(threads int) *CPU {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &CPU{threads: threads, sgemm: sgemm.New(threads), sgemm1: sgemm.New(1), simd: cpuSIMD(), free: make(map[int][]*CPUBuffer),
		sgdTasks:    sync.Pool{New: func() any { return new(cpuSGDTask) }},
		gatherTasks: sync.Pool{New: func() any { return new(cpuGatherTask) }},
		bnTasks:     sync.Pool{New: func() any { return new(cpuBNTask) }}}
}

// Name returns "cpu".
func (c *CPU) Name() string { return "cpu" }

// Threads is the number of goroutines a large operation is split across.
func (c *CPU) Threads() int { return c.threads }

// Alloc returns a buffer of n float32s, reusing a freed one of the same length
// when there is one. Its contents are undefined.
func (c *CPU) Alloc(n int) (Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("device: cpu alloc: negative length %d", n)
	}
	if n > cpuAllocMax {
		return nil, fmt.Errorf("device: cpu alloc of %d values: %w", n, ErrOutOfMemory)
	}
	c.mu.Lock()
	if list := c.free[n]; len(list) > 0 {
		b := list[len(list)-1]
		list[len(list)-1] = nil
		c.free[n] = list[:len(list)-1]
		c.pooled -= n
		b.freed = false
		c.mu.Unlock()
		return b, nil
	}
	c.mu.Unlock()
	return &CPUBuffer{data: make([]float32, n)}, nil
}

// Adopt returns a buffer that holds data itself, without copying it. The
// caller must not use data afterwards except through the buffer.
func (c *CPU) Adopt(data []float32) Buffer { return &CPUBuffer{data: data} }

// Free returns b to the pool of reusable buffers. Buffers of other devices,
// nil and buffers already freed are ignored.
func (c *CPU) Free(b Buffer) {
	cb, ok := b.(*CPUBuffer)
	if !ok || cb == nil {
		return
	}
	n := len(cb.data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cb.freed {
		return
	}
	cb.freed = true
	if c.pooled+n > cpuPoolMax {
		cb.data = nil
		return
	}
	c.free[n] = append(c.free[n], cb)
	c.pooled += n
}

// CopyIn copies src into the start of dst.
func (c *CPU) CopyIn(dst Buffer, src []float32) error {
	if err := CheckHost("copy_in", "dst", dst, len(src)); err != nil {
		return cpuErr(err)
	}
	d, err := cpuData(cpuOp{kind: "copy_in"}, "dst", dst, len(src))
	if err != nil {
		return err
	}
	copy(d, src)
	return nil
}

// CopyOut copies the first len(dst) values of src into dst.
func (c *CPU) CopyOut(dst []float32, src Buffer) error {
	if err := CheckHost("copy_out", "src", src, len(dst)); err != nil {
		return cpuErr(err)
	}
	s, err := cpuData(cpuOp{kind: "copy_out"}, "src", src, len(dst))
	if err != nil {
		return err
	}
	copy(dst, s)
	return nil
}

// Fill sets the first n values of dst to v.
func (c *CPU) Fill(dst Buffer, n int, v float32) error {
	if err := CheckFill(dst, n); err != nil {
		return cpuErr(err)
	}
	d, err := cpuData(cpuOp{kind: "fill"}, "dst", dst, n)
	if err != nil {
		return err
	}
	if v == 0 && math.Float32bits(v) == 0 {
		clear(d)
		return nil
	}
	for i := range d {
		d[i] = v
	}
	return nil
}

// Sync returns nil: CPU operations complete before they return.
func (c *CPU) Sync() error { return nil }

// cpuOp names an operation in errors: a kind ("matmul"), followed by the
// enum value for the enum-selected operations ("binary add"). Building it
// costs nothing; the name is only formatted when an error is returned.
type cpuOp struct {
	kind string
	op   fmt.Stringer
}

func (o cpuOp) String() string {
	if o.op == nil {
		return o.kind
	}
	return o.kind + " " + o.op.String()
}

// errorf returns an error prefixed with "device: cpu" and the op's name.
func (o cpuOp) errorf(format string, args ...any) error {
	return fmt.Errorf("device: cpu %v: %s", o, fmt.Sprintf(format, args...))
}

// cpuData returns the first need values of the CPU buffer b, whose size a
// shared check (check.go) has validated, or an error naming op and the
// argument when b is not a live CPU buffer.
func cpuData(op cpuOp, arg string, b Buffer, need int) ([]float32, error) {
	d, err := cpuBuf(op, arg, b)
	if err != nil {
		return nil, err
	}
	return d[:need], nil
}

// cpuBuf returns the values of the CPU buffer b, whose size a shared check
// has validated, or an error naming op and the argument when b is not a
// live CPU buffer.
func cpuBuf(op cpuOp, arg string, b Buffer) ([]float32, error) {
	cb, ok := b.(*CPUBuffer)
	switch {
	case ok && cb == nil:
		return nil, op.errorf("%s is nil", arg)
	case !ok:
		return nil, op.errorf("%s is a %T, not a cpu buffer", arg, b)
	case cb.freed:
		return nil, op.errorf("%s was freed", arg)
	}
	return cb.data, nil
}

// cpuErr prefixes an error of a shared check with the backend's name.
func cpuErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("device: cpu %w", err)
}
