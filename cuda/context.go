//go:build cuda

package cuda

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"gorgonia.org/cu"
)

// kernelsPTX is kernels.cu compiled by `make ptx`: compute_80 PTX, which the
// driver compiles for the GPU when the module loads (and caches on disk).
//
//go:embed kernels.ptx
var kernelsPTX string

// Ptr is a device address.
type Ptr = cu.DevicePtr

// maxArgs is the most parameters a kernel of kernels.cu takes.
const maxArgs = 40

// Context is one CUDA device: its primary context, the loaded kernel module,
// and a caching allocator. Its methods are safe for concurrent use; they are
// serialised.
type Context struct {
	mu     sync.Mutex
	dev    cu.Device
	ctx    cu.CUContext
	mod    cu.Module
	fns    [numKernels]cu.Function
	pool   *Pool
	name   string
	sms    int
	total  int64
	closed bool

	// Launch parameters: params[i] points at args[i] for the whole life of
	// the Context, so a launch allocates nothing.
	args   [maxArgs]uint64
	params [maxArgs]unsafe.Pointer

	// Multi-tensor optimizer tables on the device, by their tensor part
	// as bytes (see launchMulti), and scratch space to build them.
	tables   map[string]multiUpload
	ents     []multiEntry
	tabWords []uint64
	tabKey   []byte

	timeMu      sync.Mutex // one Time at a time: they share the events
	start, stop cu.Event   // for Time, made on first use
	fault       fault      // bad indices seen by kernels
}

// NewContext opens CUDA device ordinal: it retains the device's primary
// context and loads the kernel module into it.
func NewContext(ordinal int) (c *Context, err error) {
	// gorgonia.org/cu panics in a few places instead of returning errors.
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("cuda: opening device %d: %v", ordinal, r)
		}
	}()
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: counting devices: %w", describe(err))
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: no device %d (found %d)", ordinal, n)
	}
	c = &Context{}
	for i := range c.params {
		c.params[i] = unsafe.Pointer(&c.args[i])
	}
	if c.dev, err = cu.GetDevice(ordinal); err != nil {
		return nil, fmt.Errorf("cuda: device %d: %w", ordinal, describe(err))
	}
	if c.name, err = c.dev.Name(); err != nil {
		return nil, fmt.Errorf("cuda: device %d name: %w", ordinal, describe(err))
	}
	if c.sms, err = c.dev.Attribute(cu.MultiprocessorCount); err != nil {
		return nil, fmt.Errorf("cuda: %s: multiprocessor count: %w", c.name, describe(err))
	}
	if c.total, err = c.dev.TotalMem(); err != nil {
		return nil, fmt.Errorf("cuda: %s: memory size: %w", c.name, describe(err))
	}
	// The primary context is the one the runtime API (and so PyTorch) uses;
	// retaining it never creates a second context on the device.
	if c.ctx, err = c.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("cuda: %s: retaining the primary context: %w", c.name, describe(err))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(c.ctx); err != nil {
		c.dev.ReleasePrimaryCtx()
		return nil, fmt.Errorf("cuda: %s: making the context current: %w", c.name, describe(err))
	}
	if c.mod, err = loadModule(kernelsPTX); err != nil {
		c.dev.ReleasePrimaryCtx()
		return nil, fmt.Errorf("cuda: %s: %w", c.name, err)
	}
	for k := range c.fns {
		if c.fns[k], err = c.mod.Function(kernelNames[k]); err != nil {
			c.mod.Unload()
			c.dev.ReleasePrimaryCtx()
			return nil, fmt.Errorf("cuda: kernel %s is not in the module: %w", kernelNames[k], describe(err))
		}
	}
	if c.fault, err = newFault(); err != nil {
		c.mod.Unload()
		c.dev.ReleasePrimaryCtx()
		return nil, fmt.Errorf("cuda: %s: %w", c.name, err)
	}
	c.pool = NewPool(driver{}, c.total)
	return c, nil
}

// loadModule loads a PTX image into the current context. When the driver
// rejects it, it loads it again asking for the JIT compiler's log.
func loadModule(ptx string) (cu.Module, error) {
	mod, err := cu.LoadData(ptx)
	if err == nil {
		return mod, nil
	}
	msg := describe(err).Error()
	buf := make([]byte, 8192)
	if _, err2 := cu.LoadDataEx(ptx, &cu.JITErrorLogBuffer{Buffer: buf}); err2 != nil {
		if log := strings.TrimRight(string(buf), "\x00 \n"); log != "" {
			msg += ": " + log
		}
	}
	return mod, fmt.Errorf("loading kernels.ptx (compute_80 PTX from nvcc 11.8): %s", msg)
}

// Name is the device's name, as the driver reports it.
func (c *Context) Name() string { return c.name }

// Multiprocessors is the device's number of streaming multiprocessors.
func (c *Context) Multiprocessors() int { return c.sms }

// TotalMemory is the device's memory in bytes.
func (c *Context) TotalMemory() int64 { return c.total }

// enter serialises the caller, locks it to its OS thread and makes the
// context current there. Every successful enter is paired with leave.
func (c *Context) enter() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("cuda: context is closed")
	}
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(c.ctx); err != nil {
		runtime.UnlockOSThread()
		c.mu.Unlock()
		return fmt.Errorf("cuda: making the context current: %w", describe(err))
	}
	return nil
}

func (c *Context) leave() {
	runtime.UnlockOSThread()
	c.mu.Unlock()
}

// Alloc returns a device block of at least bytes bytes from the pool.
func (c *Context) Alloc(bytes int64) (Ptr, error) {
	if err := c.enter(); err != nil {
		return 0, err
	}
	defer c.leave()
	p, err := c.pool.Get(bytes)
	return Ptr(p), err
}

// Free returns a block from Alloc to the pool. It never calls the driver,
// so it needs no context; after Close it reports the block as unknown.
func (c *Context) Free(p Ptr) error {
	return c.pool.Put(uintptr(p))
}

// ReleaseCached frees the pool's cached blocks to the driver, and the
// multi-tensor optimizer tables, after waiting for queued work.
func (c *Context) ReleaseCached() error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	if err := cu.Synchronize(); err != nil {
		return fmt.Errorf("cuda: sync before release: %w", describe(err))
	}
	c.dropTables()
	return c.pool.Release()
}

// Stats returns the allocator's statistics.
func (c *Context) Stats() Stats { return c.pool.Stats() }

// driver allocates with cuMemAlloc in the current context.
type driver struct{}

func (driver) Alloc(bytes int64) (uintptr, error) {
	p, err := cu.MemAlloc(bytes)
	if err != nil {
		if errors.Is(err, cu.OutOfMemory) {
			return 0, fmt.Errorf("cuMemAlloc: %v: %w", err, ErrOutOfMemory)
		}
		return 0, fmt.Errorf("cuMemAlloc: %w", describe(err))
	}
	return uintptr(p), nil
}

func (driver) Free(p uintptr) error {
	if err := cu.MemFree(Ptr(p)); err != nil {
		return fmt.Errorf("cuMemFree: %w", describe(err))
	}
	return nil
}

// CopyIn copies src to dst. It returns once src may be reused; the copy
// itself is queued after earlier work.
func (c *Context) CopyIn(dst Ptr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	if err := cu.MemcpyHtoDAsync(dst, unsafe.Pointer(&src[0]), int64(len(src))*4, cu.Stream{}); err != nil {
		return fmt.Errorf("cuda: copy of %d values to the device: %w", len(src), describe(err))
	}
	return nil
}

// CopyOut waits for queued work, then copies len(dst) values from src.
// Its error may come from a kernel that failed earlier, or report a bad
// index that an earlier kernel saw.
func (c *Context) CopyOut(dst []float32, src Ptr) error {
	if len(dst) == 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	if err := cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), src, int64(len(dst))*4); err != nil {
		return fmt.Errorf("cuda: copy of %d values to the host (or an earlier kernel): %w", len(dst), describe(err))
	}
	return c.fault.check()
}

// CopyDevice queues a copy of n values from src to dst.
func (c *Context) CopyDevice(dst, src Ptr, n int) error {
	if n == 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	if err := cu.MemcpyDtoDAsync(dst, src, int64(n)*4, cu.Stream{}); err != nil {
		return fmt.Errorf("cuda: device copy of %d values: %w", n, describe(err))
	}
	return nil
}

// Sync waits for all queued work and returns the error of any that failed,
// or reports a bad index that an earlier kernel saw (once).
func (c *Context) Sync() error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	if err := cu.Synchronize(); err != nil {
		return fmt.Errorf("cuda: sync (an earlier kernel failed): %w", describe(err))
	}
	return c.fault.check()
}

// Time runs fn, which queues work, and returns the GPU time between the
// start of the work fn queued and its end, measured with CUDA events.
func (c *Context) Time(fn func() error) (time.Duration, error) {
	c.timeMu.Lock()
	defer c.timeMu.Unlock()
	if err := c.record(&c.start); err != nil {
		return 0, err
	}
	if err := fn(); err != nil {
		return 0, err
	}
	if err := c.record(&c.stop); err != nil {
		return 0, err
	}
	if err := c.enter(); err != nil {
		return 0, err
	}
	defer c.leave()
	if err := c.stop.Synchronize(); err != nil {
		return 0, fmt.Errorf("cuda: waiting for the timed work: %w", describe(err))
	}
	ms, err := c.start.Elapsed(c.stop)
	if err != nil {
		return 0, fmt.Errorf("cuda: event time: %w", describe(err))
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// record records *ev on the stream, making it first.
func (c *Context) record(ev *cu.Event) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	var zero cu.Event
	if *ev == zero {
		e, err := cu.MakeEvent(cu.DefaultEvent)
		if err != nil {
			return fmt.Errorf("cuda: making an event: %w", describe(err))
		}
		*ev = e
	}
	if err := ev.Record(cu.Stream{}); err != nil {
		return fmt.Errorf("cuda: recording an event: %w", describe(err))
	}
	return nil
}

// Close waits for queued work, frees every block (in use or cached), unloads
// the module and releases the primary context. The Context is unusable after;
// closing it again does nothing.
func (c *Context) Close() error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	errs := []error{}
	if err := cu.Synchronize(); err != nil {
		errs = append(errs, fmt.Errorf("cuda: sync before close: %w", describe(err)))
	}
	c.tables = nil // their blocks go with the pool's
	if err := c.pool.Close(); err != nil {
		errs = append(errs, err)
	}
	var zero cu.Event
	for _, ev := range []*cu.Event{&c.start, &c.stop} {
		if *ev != zero {
			cu.DestroyEvent(ev)
		}
	}
	c.fault.free()
	if err := c.mod.Unload(); err != nil {
		errs = append(errs, fmt.Errorf("cuda: unloading the module: %w", describe(err)))
	}
	if err := c.dev.ReleasePrimaryCtx(); err != nil {
		errs = append(errs, fmt.Errorf("cuda: releasing the context: %w", describe(err)))
	}
	c.closed = true
	return errors.Join(errs...)
}

// Launch runs the kernel called name with a grid and block of the given
// sizes and the arguments (each a device pointer, or a number in the low
// bits). The launchers of launch.go call it; it is exported for tests that
// check how launch errors surface.
func (c *Context) Launch(name string, grid, block [3]int, args ...uint64) error {
	for k, n := range kernelNames {
		if n == name {
			if err := c.enter(); err != nil {
				return err
			}
			defer c.leave()
			return c.launch(kernel(k), grid, block, args...)
		}
	}
	return fmt.Errorf("cuda: no kernel named %q", name)
}

// launch runs kernel k on the default stream; the caller has entered.
func (c *Context) launch(k kernel, grid, block [3]int, args ...uint64) error {
	if len(args) > maxArgs {
		return fmt.Errorf("cuda: %s: %d arguments, at most %d", kernelNames[k], len(args), maxArgs)
	}
	n := copy(c.args[:], args)
	err := c.fns[k].Launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, cu.Stream{}, c.params[:n])
	if err != nil {
		return fmt.Errorf("cuda: launching %s (grid %v, block %v): %w", kernelNames[k], grid, block, describe(err))
	}
	return nil
}

// Argument encoders: every kernel parameter travels as 8 bytes.

func ptrArg(p Ptr) uint64       { return uint64(p) }
func intArg(v int) uint64       { return uint64(int64(v)) }
func floatArg(v float32) uint64 { return uint64(math.Float32bits(v)) }
func boolArg(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// describe adds the names of driver errors that gorgonia.org/cu (whose
// table predates CUDA 11) prints only as numbers.
func describe(err error) error {
	s := err.Error()
	code, ok := strings.CutPrefix(s, "UnknownErrorCode:")
	if !ok {
		return err
	}
	n, _ := strconv.Atoi(code)
	names := map[int]string{ // codes of cuda.h 11.8 that cu does not name
		34:  "CUDA_ERROR_STUB_LIBRARY: the link-time stub libcuda.so was loaded instead of the driver's",
		46:  "CUDA_ERROR_DEVICE_UNAVAILABLE",
		102: "CUDA_ERROR_DEVICE_NOT_LICENSED",
		222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION: the driver is older than the PTX",
		223: "CUDA_ERROR_JIT_COMPILATION_DISABLED",
		224: "CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY",
		805: "CUDA_ERROR_MPS_CONNECTION_FAILED",
		911: "CUDA_ERROR_EXTERNAL_DEVICE",
		912: "CUDA_ERROR_INVALID_CLUSTER_SIZE",
	}
	if name, ok := names[n]; ok {
		return fmt.Errorf("%w (%s)", err, name)
	}
	return err
}
