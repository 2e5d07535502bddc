//go:build mpi

package dist

/*
#cgo pkg-config: ompi-c
#cgo CFLAGS: -O3
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, ...) are macros over
// global symbols, which Go cannot name: these wrappers do.

static int gg_init(int* provided) {
	int init = 0, fin = 0;
	MPI_Initialized(&init);
	MPI_Finalized(&fin);
	if (fin) return -2;
	if (init) return -1;
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided);
}

static int gg_setup(MPI_Comm* work, MPI_Comm* ctl, int* rank, int* size, int* local) {
	int e;
	if ((e = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN))) return e;
	if ((e = MPI_Comm_rank(MPI_COMM_WORLD, rank))) return e;
	if ((e = MPI_Comm_size(MPI_COMM_WORLD, size))) return e;
	if ((e = MPI_Comm_dup(MPI_COMM_WORLD, work))) return e;
	if ((e = MPI_Comm_dup(MPI_COMM_WORLD, ctl))) return e;
	MPI_Comm node;
	if ((e = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &node))) return e;
	if ((e = MPI_Comm_rank(node, local))) return e;
	return MPI_Comm_free(&node);
}

// gg_mean2 is the reduction of a mean over 2 ranks: inout = (in + inout) / 2.
// On 2 ranks every algorithm combines each value exactly once (a ring
// reduces each half on one rank, a tree on the root, recursive doubling
// on both, alike, since a + b == b + a), so this gives the mean in the
// pass that adds, with no pass of its own to divide.
static void gg_mean2(void* in, void* inout, int* len, MPI_Datatype* dt) {
	const float* restrict a = in;
	float* restrict b = inout;
	int n = *len;
	for (int i = 0; i < n; i++) b[i] = (a[i] + b[i]) * 0.5f;
}
static MPI_Op gg_mean2_op = MPI_OP_NULL;
static int gg_make_ops(void) { return MPI_Op_create(gg_mean2, 1, &gg_mean2_op); }
static void gg_free_ops(void) { if (gg_mean2_op != MPI_OP_NULL) MPI_Op_free(&gg_mean2_op); }

static int gg_iallreduce(void* p, int n, int mean2, MPI_Comm c, MPI_Request* r) {
	return MPI_Iallreduce(MPI_IN_PLACE, p, n, MPI_FLOAT, mean2 ? gg_mean2_op : MPI_SUM, c, r);
}
static int gg_ibcast(void* p, int n, int bytes, int root, MPI_Comm c, MPI_Request* r) {
	return MPI_Ibcast(p, n, bytes ? MPI_BYTE : MPI_FLOAT, root, c, r);
}
static int gg_ibarrier(MPI_Comm c, MPI_Request* r) { return MPI_Ibarrier(c, r); }
static int gg_isend_seq(long long* v, int dest, MPI_Comm c, MPI_Request* r) {
	return MPI_Isend(v, 1, MPI_LONG_LONG, dest, 1, c, r);
}
static int gg_irecv_seq(long long* v, int src, MPI_Comm c, MPI_Request* r) {
	return MPI_Irecv(v, 1, MPI_LONG_LONG, src, 1, c, r);
}
static MPI_Request gg_null(void) { return MPI_REQUEST_NULL; }
static int gg_cancel(MPI_Request* r, int recv) {
	if (*r == MPI_REQUEST_NULL) return 0;
	if (recv) MPI_Cancel(r);
	return MPI_Wait(r, MPI_STATUS_IGNORE);
}
static double gg_wtime(void) { return MPI_Wtime(); }

// The MPI thread's idle wait: it blocks on gg_cond until an operation is
// queued, the caller starts waiting for one, or a deadline passes.
static pthread_mutex_t gg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gg_cond = PTHREAD_COND_INITIALIZER;

// gg_signal wakes the MPI thread: *flag (wake or waiting) changed.
static void gg_signal(void) {
	pthread_mutex_lock(&gg_mu);
	pthread_cond_signal(&gg_cond);
	pthread_mutex_unlock(&gg_mu);
}

static void gg_block(int* wake, int* waiting, double until) {
	double now = MPI_Wtime();
	if (until - now > 1) until = now + 1;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double d = until - now;
	long sec = (long)d, ns = (long)((d - (double)sec) * 1e9);
	ts.tv_sec += sec;
	ts.tv_nsec += ns;
	if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
	pthread_mutex_lock(&gg_mu);
	if (!__atomic_load_n(wake, __ATOMIC_ACQUIRE) && !__atomic_load_n(waiting, __ATOMIC_ACQUIRE))
		pthread_cond_timedwait(&gg_cond, &gg_mu, &ts);
	pthread_mutex_unlock(&gg_mu);
}

// gg_poll tests the n requests until one completes, *wake is set (new work
// arrived) or MPI_Wtime reaches until. MPI moves data only inside its
// calls, and that is CPU work. While the caller waits for a collective
// (*waiting > 0) it tests in a loop for the first 2 ms, then sleeps between
// tests, 20 µs at first, doubling up to 1 ms: a rank waiting long for
// another (evaluating, writing a checkpoint) leaves the CPU to it. While
// nobody waits, with background set (the process has CPUs to spare) it
// yields between tests for 2 ms, then sleeps likewise; without (the rank
// is bound to one core, which the MPI thread shares with the computation,
// so every test takes time from it) it blocks until an operation is queued
// or the caller waits: starting a collective progresses those in flight,
// and the rest happens in Wait. Completed requests become
// MPI_REQUEST_NULL; their indices go to idx.
static int gg_poll(int n, MPI_Request* reqs, int* idx, int* out, int* wake, int* waiting, double until, int background) {
	double spin = 0;
	long nap = 20000;
	int waited = 0;
	for (;;) {
		int e = MPI_Testsome(n, reqs, out, idx, MPI_STATUSES_IGNORE);
		if (e != MPI_SUCCESS) return e;
		if (*out == MPI_UNDEFINED) { *out = 0; return 0; }
		if (*out > 0) return 0;
		if (__atomic_exchange_n(wake, 0, __ATOMIC_ACQ_REL)) return 0;
		double now = MPI_Wtime();
		if (now >= until) return 0;
		int w = __atomic_load_n(waiting, __ATOMIC_ACQUIRE) > 0;
		if (!w && !background) {
			gg_block(wake, waiting, until);
			spin = 0, nap = 20000;
			continue;
		}
		if (w != waited || spin == 0) spin = now + 2e-3, nap = 20000, waited = w;
		if (now < spin) {
			if (!w) sched_yield();
			continue;
		}
		struct timespec ts = {0, nap};
		nanosleep(&ts, NULL);
		if (nap < 1000000) nap *= 2;
	}
}

static void gg_scale(float* restrict p, long n, float s) {
	for (long i = 0; i < n; i++) p[i] *= s;
}

static void gg_errstr(int code, char* buf) {
	int len = 0;
	if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) len = 0;
	buf[len] = 0;
}
static int gg_comm_free(MPI_Comm* c) { return MPI_Comm_free(c); }
static void gg_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static int gg_finalize(void) { return MPI_Finalize(); }
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gograd/gograd/tensor"
)

// MPIBuilt reports whether this binary has the MPI backend.
const MPIBuilt = true

// fuseMin is the size, in values, from which a tensor of a group is reduced
// in place by its own collective; smaller ones are copied into one buffer
// and reduced together.
const fuseMin = 1 << 14

// libnbcAllreduce is the Open MPI parameter that selects the algorithm of
// MPI_Iallreduce. Its default for fewer than 4 ranks, or in place, is a
// binomial tree (a reduce to rank 0, then a broadcast back), which on 2
// ranks over shared memory takes 2.5 times as long as the ring (1): the
// ring reduces half the values on each rank, then exchanges the halves.
// openMPI selects the ring unless the environment (mpirun --mca) sets it.
const libnbcAllreduce = "OMPI_MCA_coll_libnbc_iallreduce_algorithm"

// maxCount is the most values one MPI call takes (its count is an int).
const maxCount = 1 << 30

// mpiComm is the MPI backend. One locked OS thread owns MPI: it calls
// MPI_Init, starts every collective as a non-blocking one, tests them until
// they complete (MPI progresses only inside its calls), enforces the
// timeout, and finalizes. The caller's goroutine queues operations to it.
// When the process has a single CPU (mpirun binds each rank to a core),
// the thread tests only when a collective is queued and while the caller
// waits in Wait, and sleeps in between, since every test would take the
// core from the computation; with CPUs to spare it also tests while the
// caller computes (see gg_poll).
//
// To name a rank that never starts a collective, each rank sends the
// sequence number of every collective it starts to the others, on a second
// communicator; when a collective times out, the ranks whose last number
// is lower are the ones that never came.
type mpiComm struct {
	rank, size, local int
	timeout           time.Duration
	ops               chan *mpiOp
	wake              *C.int // set when an operation is queued
	waiting           *C.int // the number of callers blocked in Wait
	background        C.int  // progress collectives while nobody waits (gg_poll)
	broken            atomic.Pointer[Error]
	closed            bool
	exited            chan struct{}
}

type opKind int

const (
	opAllReduce opKind = iota
	opBroadcast
	opBroadcastBytes
	opBarrier
	opClose
)

var opNames = [...]string{"all-reduce", "broadcast", "broadcast", "barrier", "close"}

// mpiOp is one collective, queued by the caller and run by the MPI thread.
type mpiOp struct {
	c     *mpiComm
	kind  opKind
	mean  bool
	root  int
	spans [][]float32
	bytes []byte
	n     int // values (or bytes)

	done     chan error
	finished bool
	err      error

	// Owned by the MPI thread.
	seq      int64
	what     string
	pending  int
	pin      runtime.Pinner
	staging  unsafe.Pointer // the fused small tensors, C memory
	small    [][]float32
	deadline time.Time
}

// openMPI initialises MPI on a new thread and returns the communicator of
// MPI_COMM_WORLD.
//
// The MPI thread needs a P of the Go scheduler of its own, or it would
// start and finish collectives only when the training goroutine blocks:
// under mpirun's default binding of a rank to one core, GOMAXPROCS is 1,
// so openMPI raises it to 2 (the thread spends its time in C, blocked,
// sleeping or testing).
func openMPI(cfg Config) (Communicator, error) {
	if _, ok := os.LookupEnv(libnbcAllreduce); !ok {
		if err := os.Setenv(libnbcAllreduce, "1"); err != nil {
			return nil, fmt.Errorf("dist: mpi: selecting the ring all-reduce: %w", err)
		}
	}
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	c := &mpiComm{timeout: cfg.Timeout, ops: make(chan *mpiOp, 64), exited: make(chan struct{}),
		wake: (*C.int)(C.calloc(2, C.size_t(unsafe.Sizeof(C.int(0)))))}
	c.waiting = (*C.int)(unsafe.Add(unsafe.Pointer(c.wake), unsafe.Sizeof(C.int(0))))
	c.background = C.int(btoi(runtime.NumCPU() > 1))
	ready := make(chan error, 1)
	go c.run(ready)
	if err := <-ready; err != nil {
		C.free(unsafe.Pointer(c.wake))
		return nil, err
	}
	return c, nil
}

// signal sets flag and wakes the MPI thread.
func (c *mpiComm) signal(flag *C.int) {
	atomic.StoreInt32((*int32)(unsafe.Pointer(flag)), 1)
	C.gg_signal()
}

func (c *mpiComm) Backend() string { return "mpi" }
func (c *mpiComm) Rank() int       { return c.rank }
func (c *mpiComm) Size() int       { return c.size }
func (c *mpiComm) LocalRank() int  { return c.local }

func (c *mpiComm) fail(what string, err error) *Error {
	return &Error{Backend: "mpi", Rank: c.rank, Op: what, Err: err}
}

// spansOf returns the host slices of ts, which must be host memory.
func (c *mpiComm) spansOf(what string, op Op, ts []*tensor.Tensor) ([][]float32, int, error) {
	n, err := checkTensors("mpi", c.rank, what, op, ts)
	if err != nil {
		return nil, 0, err
	}
	spans := make([][]float32, 0, len(ts))
	for i, t := range ts {
		h, ok := t.Buffer().(interface{ Data() []float32 })
		if !ok {
			return nil, 0, c.fail(what, fmt.Errorf("tensor %d is on %s: the mpi backend reduces host memory (the cpu device); use nccl for cuda", i, t.Device().Name()))
		}
		if t.Len() > 0 {
			spans = append(spans, h.Data()[:t.Len()])
		}
	}
	return spans, n, nil
}

// submit queues op for the MPI thread.
func (c *mpiComm) submit(op *mpiOp) (*mpiOp, error) {
	if c.closed {
		return nil, c.fail(opNames[op.kind], fmt.Errorf("the communicator is closed"))
	}
	if e := c.broken.Load(); e != nil {
		return nil, e
	}
	op.c, op.done = c, make(chan error, 1)
	c.ops <- op
	c.signal(c.wake)
	return op, nil
}

func (c *mpiComm) StartAllReduce(op Op, ts ...*tensor.Tensor) (Request, error) {
	spans, n, err := c.spansOf("all-reduce", op, ts)
	if err != nil {
		return nil, err
	}
	r, err := c.submit(&mpiOp{kind: opAllReduce, mean: op == Mean, spans: spans, n: n})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (c *mpiComm) AllReduce(op Op, ts ...*tensor.Tensor) error {
	r, err := c.StartAllReduce(op, ts...)
	if err != nil {
		return err
	}
	return r.Wait()
}

func (c *mpiComm) Broadcast(root int, ts ...*tensor.Tensor) error {
	if root < 0 || root >= c.size {
		return c.fail("broadcast", fmt.Errorf("root %d out of range for %d ranks", root, c.size))
	}
	spans, n, err := c.spansOf("broadcast", Sum, ts)
	if err != nil {
		return err
	}
	r, err := c.submit(&mpiOp{kind: opBroadcast, root: root, spans: spans, n: n})
	if err != nil {
		return err
	}
	return r.Wait()
}

// broadcastBytes broadcasts b from root: the NCCL backend's unique id.
func (c *mpiComm) broadcastBytes(root int, b []byte) error {
	r, err := c.submit(&mpiOp{kind: opBroadcastBytes, root: root, bytes: b, n: len(b)})
	if err != nil {
		return err
	}
	return r.Wait()
}

func (c *mpiComm) Barrier() error {
	r, err := c.submit(&mpiOp{kind: opBarrier})
	if err != nil {
		return err
	}
	return r.Wait()
}

// Close finalizes MPI. After a failed collective it calls MPI_Abort, which
// ends every rank of the job, this one included.
func (c *mpiComm) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	op := &mpiOp{kind: opClose, c: c, done: make(chan error, 1)}
	c.ops <- op
	c.signal(c.wake)
	err := <-op.done
	<-c.exited
	C.free(unsafe.Pointer(c.wake))
	return err
}

// Wait waits for the collective. The MPI thread enforces the timeout; the
// grace beyond it only guards against the thread itself being stuck.
func (op *mpiOp) Wait() error {
	if op.finished {
		return op.err
	}
	select {
	case op.err = <-op.done:
		op.finished = true
		return op.err
	default:
	}
	w := (*int32)(unsafe.Pointer(op.c.waiting))
	atomic.AddInt32(w, 1)
	C.gg_signal()
	defer atomic.AddInt32(w, -1)
	t := time.NewTimer(op.c.timeout + 30*time.Second)
	select {
	case op.err = <-op.done:
	case <-t.C:
		op.err = op.c.fail(opNames[op.kind], fmt.Errorf("%w: the MPI thread did not answer within %v", ErrTimeout, op.c.timeout+30*time.Second))
	}
	t.Stop()
	op.finished = true
	return op.err
}

// ---- the MPI thread -------------------------------------------------------

// slot is a live MPI request and what it belongs to.
type slot struct {
	req  C.MPI_Request
	op   *mpiOp // a collective's request, or nil
	peer int    // for a sequence-number receive: its source; else -1
	send unsafe.Pointer
}

// mpiThread is the state of the MPI thread.
type mpiThread struct {
	c         *mpiComm
	work, ctl C.MPI_Comm
	seq       int64
	active    []*mpiOp
	slots     []slot
	recvBuf   *C.longlong // one per peer
	lastSeen  []int64     // the last sequence number each rank started
	reqs      *C.MPI_Request
	idx       *C.int
	capacity  int
	free      map[int][]unsafe.Pointer // staging buffers by size
}

func (c *mpiComm) mpiError(what string, code C.int) *Error {
	buf := (*C.char)(C.malloc(C.MPI_MAX_ERROR_STRING + 1))
	defer C.free(unsafe.Pointer(buf))
	C.gg_errstr(code, buf)
	return c.fail(what, fmt.Errorf("MPI error %d: %s", int(code), C.GoString(buf)))
}

func (c *mpiComm) run(ready chan<- error) {
	runtime.LockOSThread() // MPI_THREAD_FUNNELED: every call from the thread that initialised it
	defer close(c.exited)
	var provided C.int
	switch rc := C.gg_init(&provided); {
	case rc == -2:
		ready <- fmt.Errorf("dist: mpi: MPI was finalized in this process and cannot be initialised again")
		return
	case rc == -1:
		ready <- fmt.Errorf("dist: mpi: MPI is already initialised in this process (open one mpi communicator per process)")
		return
	case rc != 0:
		ready <- c.mpiError("init", rc)
		return
	case provided < C.MPI_THREAD_FUNNELED:
		ready <- fmt.Errorf("dist: mpi: this MPI library does not support MPI_THREAD_FUNNELED")
		return
	}
	th := &mpiThread{c: c, free: map[int][]unsafe.Pointer{}}
	var rank, size, local C.int
	rc := C.gg_setup(&th.work, &th.ctl, &rank, &size, &local)
	if rc == 0 {
		rc = C.gg_make_ops()
	}
	if rc != 0 {
		ready <- c.mpiError("setup", rc)
		C.gg_finalize()
		return
	}
	c.rank, c.size, c.local = int(rank), int(size), int(local)
	th.lastSeen = make([]int64, c.size)
	th.recvBuf = (*C.longlong)(C.calloc(C.size_t(max(c.size, 1)), 8))
	for p := range c.size {
		if p != c.rank {
			if err := th.postRecv(p); err != nil {
				ready <- err
				C.gg_finalize()
				return
			}
		}
	}
	ready <- nil
	th.loop()
}

func (th *mpiThread) recvAt(p int) *C.longlong {
	return (*C.longlong)(unsafe.Add(unsafe.Pointer(th.recvBuf), 8*p))
}

func (th *mpiThread) postRecv(p int) *Error {
	var r C.MPI_Request
	if rc := C.gg_irecv_seq(th.recvAt(p), C.int(p), th.ctl, &r); rc != 0 {
		return th.c.mpiError("posting a receive", rc)
	}
	th.slots = append(th.slots, slot{req: r, peer: p})
	return nil
}

func (th *mpiThread) loop() {
	c := th.c
	for {
		if len(th.active) == 0 {
			op := <-c.ops
			if op.kind == opClose {
				th.close(op)
				return
			}
			th.start(op)
			continue
		}
		for drained := false; !drained; {
			select {
			case op := <-c.ops:
				if op.kind == opClose { // Close while collectives are in flight
					th.close(op)
					return
				}
				th.start(op)
			default:
				drained = true
			}
		}
		if len(th.active) == 0 {
			continue
		}
		until := th.active[0].deadline
		for _, op := range th.active[1:] {
			if op.deadline.Before(until) {
				until = op.deadline
			}
		}
		if err := th.poll(time.Until(until)); err != nil {
			th.breakAll(err)
			continue
		}
		if now := time.Now(); len(th.active) > 0 {
			for _, op := range th.active {
				if !now.Before(op.deadline) {
					if e := th.diagnose(op); e != nil {
						th.breakAll(e)
					}
					break
				}
			}
		}
	}
}

// poll tests every live request for at most d, handling completions.
func (th *mpiThread) poll(d time.Duration) *Error {
	n := len(th.slots)
	if n == 0 {
		return nil
	}
	if n > th.capacity {
		C.free(unsafe.Pointer(th.reqs))
		C.free(unsafe.Pointer(th.idx))
		th.capacity = 2 * n
		th.reqs = (*C.MPI_Request)(C.malloc(C.size_t(th.capacity) * C.size_t(unsafe.Sizeof(C.MPI_Request(nil)))))
		th.idx = (*C.int)(C.malloc(C.size_t(th.capacity) * C.size_t(unsafe.Sizeof(C.int(0)))))
	}
	reqs := unsafe.Slice(th.reqs, th.capacity)
	for i, s := range th.slots {
		reqs[i] = s.req
	}
	var out C.int
	rc := C.gg_poll(C.int(n), th.reqs, th.idx, &out, th.c.wake, th.c.waiting, C.gg_wtime()+C.double(max(d, 0).Seconds()), th.c.background)
	for i := range n {
		th.slots[i].req = reqs[i] // completed ones are MPI_REQUEST_NULL now
	}
	if rc != 0 {
		return th.c.mpiError("testing requests", rc)
	}
	done := unsafe.Slice(th.idx, th.capacity)[:int(out)]
	var repost []int
	for _, i := range done {
		s := &th.slots[int(i)]
		switch {
		case s.op != nil:
			s.op.pending--
			if s.op.pending == 0 {
				th.finish(s.op)
			}
		case s.peer >= 0:
			th.lastSeen[s.peer] = int64(*th.recvAt(s.peer))
			repost = append(repost, s.peer)
		default:
			C.free(s.send)
		}
		s.op, s.peer, s.send = nil, -2, nil
	}
	if len(done) > 0 {
		th.slots = slices.DeleteFunc(th.slots, func(s slot) bool { return s.peer == -2 })
	}
	for _, p := range repost {
		if err := th.postRecv(p); err != nil {
			return err
		}
	}
	return nil
}

// start begins op's collectives.
func (th *mpiThread) start(op *mpiOp) {
	c := th.c
	th.seq++
	op.seq = th.seq
	op.what = fmt.Sprintf("%s #%d", opNames[op.kind], op.seq)
	switch op.kind {
	case opAllReduce, opBroadcast:
		op.what += " (" + sizeString(op.n) + ")"
	case opBroadcastBytes:
		op.what += fmt.Sprintf(" (%d B)", op.n)
	}
	if e := c.broken.Load(); e != nil {
		op.done <- e
		return
	}
	op.deadline = time.Now().Add(c.timeout)
	// Tell the others this rank has started op.seq.
	for p := range c.size {
		if p == c.rank {
			continue
		}
		v := (*C.longlong)(C.malloc(8))
		*v = C.longlong(op.seq)
		var r C.MPI_Request
		if rc := C.gg_isend_seq(v, C.int(p), th.ctl, &r); rc != 0 {
			C.free(unsafe.Pointer(v))
			th.breakAll(c.mpiError(op.what, rc))
			op.done <- c.broken.Load()
			return
		}
		th.slots = append(th.slots, slot{req: r, peer: -1, send: unsafe.Pointer(v)})
	}
	add := func(rc C.int, r C.MPI_Request) bool {
		if rc != 0 {
			th.breakAll(c.mpiError(op.what, rc))
			return false
		}
		th.slots = append(th.slots, slot{req: r, op: op, peer: -1})
		op.pending++
		return true
	}
	th.active = append(th.active, op)
	switch op.kind {
	case opAllReduce:
		// On 2 ranks a mean divides in the reduction itself (gg_mean2).
		mean2 := C.int(btoi(op.mean && c.size == 2))
		var small []float32
		total := 0
		for _, s := range op.spans {
			if len(s) < fuseMin && len(op.spans) > 1 {
				op.small = append(op.small, s)
				total += len(s)
			}
		}
		if total > 0 {
			op.staging = th.alloc(total)
			small = unsafe.Slice((*float32)(op.staging), total)
			off := 0
			for _, s := range op.small {
				off += copy(small[off:], s)
			}
		}
		for _, s := range op.spans {
			if len(s) < fuseMin && len(op.spans) > 1 {
				continue
			}
			op.pin.Pin(&s[0])
			for lo := 0; lo < len(s); lo += maxCount {
				hi := min(lo+maxCount, len(s))
				var r C.MPI_Request
				if !add(C.gg_iallreduce(unsafe.Pointer(&s[lo]), C.int(hi-lo), mean2, th.work, &r), r) {
					return
				}
			}
		}
		for lo := 0; lo < len(small); lo += maxCount {
			hi := min(lo+maxCount, len(small))
			var r C.MPI_Request
			if !add(C.gg_iallreduce(unsafe.Pointer(&small[lo]), C.int(hi-lo), mean2, th.work, &r), r) {
				return
			}
		}
	case opBroadcast:
		for _, s := range op.spans {
			op.pin.Pin(&s[0])
			for lo := 0; lo < len(s); lo += maxCount {
				hi := min(lo+maxCount, len(s))
				var r C.MPI_Request
				if !add(C.gg_ibcast(unsafe.Pointer(&s[lo]), C.int(hi-lo), 0, C.int(op.root), th.work, &r), r) {
					return
				}
			}
		}
	case opBroadcastBytes:
		if len(op.bytes) > 0 {
			op.pin.Pin(&op.bytes[0])
			var r C.MPI_Request
			if !add(C.gg_ibcast(unsafe.Pointer(&op.bytes[0]), C.int(len(op.bytes)), 1, C.int(op.root), th.work, &r), r) {
				return
			}
		}
	case opBarrier:
		var r C.MPI_Request
		if !add(C.gg_ibarrier(th.work, &r), r) {
			return
		}
	}
	if op.pending == 0 {
		th.finish(op)
	}
}

// finish completes op: it copies the fused values back, divides by the
// number of ranks for a mean over more than 2 (gg_mean2 has divided on 2),
// and hands the result to the caller.
func (th *mpiThread) finish(op *mpiOp) {
	scale := C.float(1 / float32(th.c.size))
	divide := op.mean && th.c.size > 2
	if op.kind == opAllReduce {
		for _, s := range op.spans {
			if len(s) >= fuseMin || len(op.spans) == 1 {
				if divide {
					C.gg_scale((*C.float)(unsafe.Pointer(&s[0])), C.long(len(s)), scale)
				}
			}
		}
		if op.staging != nil {
			total := 0
			for _, s := range op.small {
				total += len(s)
			}
			small := unsafe.Slice((*float32)(op.staging), total)
			if divide {
				C.gg_scale((*C.float)(op.staging), C.long(total), scale)
			}
			off := 0
			for _, s := range op.small {
				off += copy(s, small[off:])
			}
			th.release(op.staging, total)
			op.staging, op.small = nil, nil
		}
	}
	op.pin.Unpin()
	th.active = slices.DeleteFunc(th.active, func(o *mpiOp) bool { return o == op })
	op.done <- nil
}

func (th *mpiThread) alloc(n int) unsafe.Pointer {
	if l := th.free[n]; len(l) > 0 {
		p := l[len(l)-1]
		th.free[n] = l[:len(l)-1]
		return p
	}
	return C.malloc(C.size_t(n) * 4)
}

func (th *mpiThread) release(p unsafe.Pointer, n int) { th.free[n] = append(th.free[n], p) }

// diagnose explains why op timed out: after draining the sequence numbers
// that have arrived, the ranks whose last one is below op's never started it.
// It returns nil if op completed meanwhile.
func (th *mpiThread) diagnose(op *mpiOp) *Error {
	end := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(end) {
		if err := th.poll(time.Until(end)); err != nil {
			break
		}
	}
	if !slices.Contains(th.active, op) {
		return nil
	}
	var late []int
	var desc []string
	for p, s := range th.lastSeen {
		if p != th.c.rank && s < op.seq {
			late = append(late, p)
			desc = append(desc, fmt.Sprintf("rank %d (its last was #%d)", p, s))
		}
	}
	err := fmt.Errorf("%w after %v: every rank started it, but it did not complete", ErrTimeout, th.c.timeout)
	if len(late) > 0 {
		err = fmt.Errorf("%w after %v: %s never started it: hung or dead", ErrTimeout, th.c.timeout, strings.Join(desc, ", "))
	}
	return &Error{Backend: "mpi", Rank: th.c.rank, Op: op.what, Failed: late, Err: err}
}

// breakAll fails every collective in flight with err; every later one
// fails with it too. Their buffers stay pinned: MPI may still write them.
func (th *mpiThread) breakAll(err *Error) {
	th.c.broken.CompareAndSwap(nil, err)
	e := th.c.broken.Load()
	for _, op := range th.active {
		op.done <- e
	}
	th.active = th.active[:0]
	for i := range th.slots {
		if th.slots[i].op != nil {
			th.slots[i].req = C.gg_null() // abandoned: never tested again
		}
	}
	th.slots = slices.DeleteFunc(th.slots, func(s slot) bool { return s.op != nil })
}

// close finalizes MPI, or aborts the job after a failure.
func (th *mpiThread) close(op *mpiOp) {
	c := th.c
	if c.broken.Load() != nil || len(th.active) > 0 {
		C.gg_abort(1) // ends every rank; does not return
	}
	var first error
	for i := range th.slots {
		s := &th.slots[i]
		if rc := C.gg_cancel(&s.req, C.int(btoi(s.peer >= 0))); rc != 0 && first == nil {
			first = c.mpiError("close", rc)
		}
		if s.send != nil {
			C.free(s.send)
		}
	}
	th.slots = nil
	C.gg_free_ops()
	C.gg_comm_free(&th.work)
	C.gg_comm_free(&th.ctl)
	if rc := C.gg_finalize(); rc != 0 && first == nil {
		first = c.mpiError("finalize", rc)
	}
	for _, l := range th.free {
		for _, p := range l {
			C.free(p)
		}
	}
	C.free(unsafe.Pointer(th.recvBuf))
	C.free(unsafe.Pointer(th.reqs))
	C.free(unsafe.Pointer(th.idx))
	op.done <- first
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
