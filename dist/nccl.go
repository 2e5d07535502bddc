//go:build cuda && mpi

package dist

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// NCCL's API, declared here so that the build needs neither nccl.h nor
// libnccl: the library is loaded at run time.
typedef struct { char internal[128]; } gg_nccl_id;
typedef void* gg_nccl_comm;
enum { gg_nccl_float32 = 7, gg_nccl_sum = 0, gg_nccl_avg = 4 };

typedef struct {
	void* lib;
	int (*getVersion)(int*);
	int (*getUniqueId)(gg_nccl_id*);
	int (*commInitRank)(gg_nccl_comm*, int, gg_nccl_id, int);
	int (*commDestroy)(gg_nccl_comm);
	int (*commAbort)(gg_nccl_comm);
	int (*commGetAsyncError)(gg_nccl_comm, int*);
	const char* (*getErrorString)(int);
	int (*allReduce)(const void*, void*, size_t, int, int, gg_nccl_comm, void*);
	int (*broadcast)(const void*, void*, size_t, int, int, gg_nccl_comm, void*);
	int (*groupStart)(void);
	int (*groupEnd)(void);
} gg_nccl;

// gg_nccl_load fills n from libnccl.so.2 and returns NULL, or the error.
static const char* gg_nccl_load(gg_nccl* n) {
	n->lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
	if (!n->lib) return dlerror();
#define SYM(field, name) if (!(*(void**)&n->field = dlsym(n->lib, name))) return dlerror();
	SYM(getVersion, "ncclGetVersion")
	SYM(getUniqueId, "ncclGetUniqueId")
	SYM(commInitRank, "ncclCommInitRank")
	SYM(commDestroy, "ncclCommDestroy")
	SYM(commAbort, "ncclCommAbort")
	SYM(commGetAsyncError, "ncclCommGetAsyncError")
	SYM(getErrorString, "ncclGetErrorString")
	SYM(allReduce, "ncclAllReduce")
	SYM(broadcast, "ncclBroadcast")
	SYM(groupStart, "ncclGroupStart")
	SYM(groupEnd, "ncclGroupEnd")
#undef SYM
	return NULL;
}

static int gg_nccl_version(gg_nccl* n, int* v) { return n->getVersion(v); }
static int gg_nccl_unique_id(gg_nccl* n, gg_nccl_id* id) { return n->getUniqueId(id); }
static int gg_nccl_init(gg_nccl* n, gg_nccl_comm* c, int size, gg_nccl_id* id, int rank) {
	return n->commInitRank(c, size, *id, rank);
}
static int gg_nccl_destroy(gg_nccl* n, gg_nccl_comm c) { return n->commDestroy(c); }
static int gg_nccl_abort(gg_nccl* n, gg_nccl_comm c) { return n->commAbort(c); }
static int gg_nccl_async_error(gg_nccl* n, gg_nccl_comm c, int* e) { return n->commGetAsyncError(c, e); }
static const char* gg_nccl_error(gg_nccl* n, int e) { return n->getErrorString(e); }
static int gg_nccl_group_start(gg_nccl* n) { return n->groupStart(); }
static int gg_nccl_group_end(gg_nccl* n) { return n->groupEnd(); }
// On the legacy default stream (NULL), where the CUDA backend queues its
// kernels: the collective runs after the kernels that wrote the gradients
// and before those of the optimizer step.
static int gg_nccl_allreduce(gg_nccl* n, gg_nccl_comm c, size_t p, size_t count, int avg) {
	return n->allReduce((void*)p, (void*)p, count, gg_nccl_float32, avg ? gg_nccl_avg : gg_nccl_sum, c, NULL);
}
static int gg_nccl_broadcast(gg_nccl* n, gg_nccl_comm c, size_t p, size_t count, int root) {
	return n->broadcast((void*)p, (void*)p, count, gg_nccl_float32, root, c, NULL);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// ncclComm is the NCCL backend: collectives on CUDA buffers, one process
// per GPU (the GPU of the rank's local rank). MPI bootstraps it (the unique
// id is broadcast over MPI) and serves its barrier. The collectives are
// queued on the stream of the CUDA backend's kernels, so that they need no
// synchronisation for correctness; Wait synchronises the device, within the
// timeout. They do not overlap with Backward's kernels on that one stream.
type ncclComm struct {
	boot    *mpiComm
	lib     *C.gg_nccl // C memory
	comm    C.gg_nccl_comm
	ctx     cu.CUContext
	gpu     cu.Device
	avg     bool // NCCL has ncclAvg (2.10 and later)
	seq     int
	broken  *Error
	timeout time.Duration
}

// openNCCL loads libnccl.so.2, initialises MPI, and creates the NCCL
// communicator of MPI_COMM_WORLD on the GPU of this rank's local rank.
func openNCCL(cfg Config) (Communicator, error) {
	lib := (*C.gg_nccl)(C.calloc(1, C.size_t(unsafe.Sizeof(C.gg_nccl{}))))
	if msg := C.gg_nccl_load(lib); msg != nil {
		C.free(unsafe.Pointer(lib))
		return nil, fmt.Errorf("dist: nccl: cannot load libnccl.so.2 (%s): install NCCL 2 (Debian's libnccl2, or put the lib directory of the nvidia-nccl-cu12 wheel on LD_LIBRARY_PATH)", C.GoString(msg))
	}
	var version C.int
	C.gg_nccl_version(lib, &version)
	b, err := openMPI(cfg)
	if err != nil {
		return nil, err
	}
	boot := b.(*mpiComm)
	c := &ncclComm{boot: boot, lib: lib, avg: version >= 21000, timeout: cfg.Timeout}
	fail := func(err error) (Communicator, error) {
		boot.Close()
		return nil, &Error{Backend: "nccl", Rank: boot.rank, Op: "init", Err: err}
	}
	n, err := cu.NumDevices()
	if err != nil {
		return fail(fmt.Errorf("CUDA: %v", err))
	}
	if boot.local >= n {
		return fail(fmt.Errorf("local rank %d, but this host has %d GPUs: run one process per GPU", boot.local, n))
	}
	c.gpu = cu.Device(boot.local)
	if c.ctx, err = c.gpu.RetainPrimaryCtx(); err != nil {
		return fail(fmt.Errorf("CUDA primary context of GPU %d: %v", boot.local, err))
	}
	id := make([]byte, unsafe.Sizeof(C.gg_nccl_id{}))
	cid := (*C.gg_nccl_id)(C.malloc(C.size_t(len(id))))
	defer C.free(unsafe.Pointer(cid))
	if boot.rank == 0 {
		if rc := C.gg_nccl_unique_id(lib, cid); rc != 0 {
			return fail(c.errorOf(rc))
		}
		copy(id, unsafe.Slice((*byte)(unsafe.Pointer(cid)), len(id)))
	}
	if err := boot.broadcastBytes(0, id); err != nil {
		return fail(err)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(cid)), len(id)), id)
	if err := c.enter(); err != nil {
		return fail(err)
	}
	rc := C.gg_nccl_init(lib, &c.comm, C.int(boot.size), cid, C.int(boot.rank))
	runtime.UnlockOSThread()
	if rc != 0 {
		return fail(c.errorOf(rc))
	}
	return c, nil
}

func (c *ncclComm) Backend() string { return "nccl" }
func (c *ncclComm) Rank() int       { return c.boot.rank }
func (c *ncclComm) Size() int       { return c.boot.size }
func (c *ncclComm) LocalRank() int  { return c.boot.local }

// enter locks the goroutine to its thread and makes the GPU's primary
// context current there, as NCCL's calls need; the caller unlocks.
func (c *ncclComm) enter() error {
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(c.ctx); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("CUDA: making GPU %d's context current: %v", c.boot.local, err)
	}
	return nil
}

func (c *ncclComm) errorOf(rc C.int) error {
	return fmt.Errorf("NCCL error %d: %s", int(rc), C.GoString(C.gg_nccl_error(c.lib, rc)))
}

// pointers returns the device addresses of ts, which must be CUDA buffers.
func (c *ncclComm) pointers(what string, op Op, ts []*tensor.Tensor) ([]uintptr, error) {
	if c.broken != nil {
		return nil, c.broken
	}
	if _, err := checkTensors("nccl", c.Rank(), what, op, ts); err != nil {
		return nil, err
	}
	ps := make([]uintptr, len(ts))
	for i, t := range ts {
		b, ok := t.Buffer().(interface{ DevicePointer() uintptr })
		if !ok {
			return nil, &Error{Backend: "nccl", Rank: c.Rank(), Op: what,
				Err: fmt.Errorf("tensor %d is on %s: the nccl backend reduces CUDA buffers; use mpi for the cpu", i, t.Device().Name())}
		}
		ps[i] = b.DevicePointer()
	}
	return ps, nil
}

// group queues one collective per tensor as one NCCL group.
func (c *ncclComm) group(what string, ts []*tensor.Tensor, ps []uintptr, call func(p uintptr, n int) C.int) (*ncclRequest, error) {
	c.seq++
	what = fmt.Sprintf("%s #%d", what, c.seq)
	if err := c.enter(); err != nil {
		return nil, &Error{Backend: "nccl", Rank: c.Rank(), Op: what, Err: err}
	}
	defer runtime.UnlockOSThread()
	rc := C.gg_nccl_group_start(c.lib)
	for i, p := range ps {
		if rc != 0 {
			break
		}
		if n := ts[i].Len(); n > 0 {
			rc = call(p, n)
		}
	}
	if end := C.gg_nccl_group_end(c.lib); rc == 0 {
		rc = end
	}
	if rc != 0 {
		return nil, c.breakWith(what, c.errorOf(rc))
	}
	return &ncclRequest{c: c, what: what, dev: ts[0].Device()}, nil
}

func (c *ncclComm) breakWith(what string, err error) *Error {
	if c.broken == nil {
		c.broken = &Error{Backend: "nccl", Rank: c.Rank(), Op: what, Err: err}
		C.gg_nccl_abort(c.lib, c.comm)
	}
	return c.broken
}

func (c *ncclComm) StartAllReduce(op Op, ts ...*tensor.Tensor) (Request, error) {
	ps, err := c.pointers("all-reduce", op, ts)
	if err != nil || len(ts) == 0 {
		return done{}, err
	}
	mean := op == Mean && c.Size() > 1
	r, err := c.group("all-reduce", ts, ps, func(p uintptr, n int) C.int {
		return C.gg_nccl_allreduce(c.lib, c.comm, C.size_t(p), C.size_t(n), C.int(btoi(mean && c.avg)))
	})
	if err != nil {
		return nil, err
	}
	if mean && !c.avg { // NCCL before 2.10: the sum, then a scaling kernel
		for _, t := range ts {
			if err := t.Device().Unary(device.MulScalar, t.Buffer(), t.Buffer(), t.Len(), 1/float32(c.Size()), 0); err != nil {
				return nil, c.breakWith(r.what, err)
			}
		}
	}
	return r, nil
}

func (c *ncclComm) AllReduce(op Op, ts ...*tensor.Tensor) error {
	r, err := c.StartAllReduce(op, ts...)
	if err != nil {
		return err
	}
	return r.Wait()
}

func (c *ncclComm) Broadcast(root int, ts ...*tensor.Tensor) error {
	if root < 0 || root >= c.Size() {
		return &Error{Backend: "nccl", Rank: c.Rank(), Op: "broadcast", Err: fmt.Errorf("root %d out of range for %d ranks", root, c.Size())}
	}
	ps, err := c.pointers("broadcast", Sum, ts)
	if err != nil || len(ts) == 0 {
		return err
	}
	r, err := c.group("broadcast", ts, ps, func(p uintptr, n int) C.int {
		return C.gg_nccl_broadcast(c.lib, c.comm, C.size_t(p), C.size_t(n), C.int(root))
	})
	if err != nil {
		return err
	}
	return r.Wait()
}

func (c *ncclComm) Barrier() error {
	if c.broken != nil {
		return c.broken
	}
	return c.boot.Barrier()
}

// Close destroys the NCCL communicator and finalizes MPI; after a failure
// it aborts the job.
func (c *ncclComm) Close() error {
	if c.lib == nil {
		return nil
	}
	var err error
	if c.broken == nil {
		if rc := C.gg_nccl_destroy(c.lib, c.comm); rc != 0 {
			err = c.errorOf(rc)
		}
	} else {
		c.boot.broken.CompareAndSwap(nil, c.broken) // MPI_Abort
	}
	c.gpu.ReleasePrimaryCtx()
	C.free(unsafe.Pointer(c.lib))
	c.lib = nil
	if e := c.boot.Close(); err == nil {
		err = e
	}
	return err
}

// ncclRequest is a queued NCCL group.
type ncclRequest struct {
	c        *ncclComm
	what     string
	dev      device.Device
	finished bool
	err      error
}

// Wait synchronises the device within the timeout, checking NCCL's
// asynchronous error meanwhile. NCCL cannot say which rank is missing when
// it times out: the others' errors tell.
func (r *ncclRequest) Wait() error {
	if r.finished {
		return r.err
	}
	r.finished = true
	synced := make(chan error, 1)
	go func() { synced <- r.dev.Sync() }()
	deadline := time.NewTimer(r.c.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-synced:
			if err != nil {
				r.err = r.c.breakWith(r.what, err)
			}
			return r.err
		case <-tick.C:
			var e C.int
			if C.gg_nccl_async_error(r.c.lib, r.c.comm, &e); e != 0 {
				r.err = r.c.breakWith(r.what, r.c.errorOf(e))
				return r.err
			}
		case <-deadline.C:
			r.err = r.c.breakWith(r.what, fmt.Errorf("%w after %v: a rank did not take part (NCCL cannot tell which; see the other ranks' errors)", ErrTimeout, r.c.timeout))
			return r.err
		}
	}
}
