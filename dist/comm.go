package dist

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gograd/gograd/tensor"
)

// Op is the reduction of an all-reduce.
type Op int

// Reductions.
const (
	Sum  Op = iota // the sum over the ranks
	Mean           // the sum divided by the number of ranks
)

// String returns "sum" or "mean".
func (op Op) String() string {
	switch op {
	case Sum:
		return "sum"
	case Mean:
		return "mean"
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// Communicator runs collective operations among the ranks of a job. Every
// rank must call the same collectives in the same order, on tensors of the
// same sizes. A Communicator is not safe for concurrent use: one goroutine
// (the training loop, and the gradient hooks it runs) calls it.
type Communicator interface {
	// Backend is "mpi", "nccl" or "none".
	Backend() string
	// Rank is this process's rank, in [0, Size).
	Rank() int
	// Size is the number of ranks.
	Size() int
	// LocalRank is the rank among the processes on this host: the GPU a
	// rank of a multi-GPU job uses.
	LocalRank() int
	// AllReduce replaces each tensor, in place, by its sum or mean over the
	// ranks. The tensors form one collective: the backend may fuse them
	// into one message. They must be on one device, and distinct.
	AllReduce(op Op, ts ...*tensor.Tensor) error
	// StartAllReduce starts AllReduce and returns at once. The tensors must
	// not be read or written until the request's Wait has returned.
	StartAllReduce(op Op, ts ...*tensor.Tensor) (Request, error)
	// Broadcast copies each tensor of rank root into the same tensor of the
	// other ranks.
	Broadcast(root int, ts ...*tensor.Tensor) error
	// Barrier returns once every rank has entered it.
	Barrier() error
	// Close releases the communicator: the last call of a job, on every
	// rank. After a failed collective it aborts the whole job instead.
	Close() error
}

// Request is an asynchronous collective in progress.
type Request interface {
	// Wait blocks until the collective has completed, and reports its error.
	// Waiting again returns the same error.
	Wait() error
}

// Error is the failure of a collective operation, as seen by one rank.
type Error struct {
	Backend string // "mpi" or "nccl"
	Rank    int    // the rank reporting the error
	Op      string // the operation, with its sequence number: "all-reduce #12 (2.1 MB)"
	Failed  []int  // the ranks that did not take part in time, when known
	Err     error  // what happened
}

// Error describes the failure, naming the ranks held responsible.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dist: %s: rank %d", e.Backend, e.Rank)
	if e.Op != "" {
		fmt.Fprintf(&b, ": %s", e.Op)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrTimeout is wrapped by the errors of collectives that did not complete
// within the communicator's timeout.
var ErrTimeout = errors.New("timed out")

// ErrNoMPI is returned by Open("mpi") in a build without the mpi tag.
var ErrNoMPI = errors.New("dist: gograd was built without MPI; rebuild with -tags mpi (cgo and Open MPI's libopenmpi-dev) and run under mpirun")

// ErrNoNCCL is returned by Open("nccl") in a build without the cuda and mpi
// tags.
var ErrNoNCCL = errors.New("dist: gograd was built without NCCL; rebuild with -tags 'cuda mpi' and run under mpirun, one process per GPU")

// DefaultTimeout is how long a collective may wait for the other ranks
// before it fails, unless Config says otherwise. It must cover whatever a
// rank does alone between two collectives (rank 0 evaluating and writing a
// checkpoint while the others wait in the next all-reduce).
const DefaultTimeout = 5 * time.Minute

// Config selects and configures a communicator.
type Config struct {
	// Backend is "mpi", "nccl" or "none".
	Backend string
	// Timeout bounds how long a collective waits for the other ranks;
	// 0 means DefaultTimeout.
	Timeout time.Duration
}

// Open returns the communicator of the named backend with the default
// timeout: "mpi" (CPU tensors; the process must run under mpirun), "nccl"
// (CUDA tensors, one GPU per process: open the device LocalRank) or "none"
// (a single process). The mpi and nccl backends raise GOMAXPROCS to 2
// where it is 1 (a rank bound to one core), for their communication
// thread: give the CPU device an explicit number of threads.
func Open(name string) (Communicator, error) { return OpenConfig(Config{Backend: name}) }

// OpenConfig is Open with a configuration.
func OpenConfig(cfg Config) (Communicator, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("dist: negative timeout %v", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch cfg.Backend {
	case "none":
		return Single(), nil
	case "mpi":
		return openMPI(cfg)
	case "nccl":
		return openNCCL(cfg)
	}
	return nil, fmt.Errorf("dist: unknown backend %q (want mpi, nccl or none)", cfg.Backend)
}

// Single returns the communicator of a job of one process: every collective
// is the identity.
func Single() Communicator { return single{} }

type single struct{}

func (single) Backend() string { return "none" }
func (single) Rank() int       { return 0 }
func (single) Size() int       { return 1 }
func (single) LocalRank() int  { return 0 }
func (single) AllReduce(op Op, ts ...*tensor.Tensor) error {
	_, err := checkTensors("none", 0, "all-reduce", op, ts)
	return err
}
func (s single) StartAllReduce(op Op, ts ...*tensor.Tensor) (Request, error) {
	if err := s.AllReduce(op, ts...); err != nil {
		return nil, err
	}
	return done{}, nil
}
func (single) Broadcast(root int, ts ...*tensor.Tensor) error {
	if root != 0 {
		return &Error{Backend: "none", Op: "broadcast", Err: fmt.Errorf("root %d out of range for 1 rank", root)}
	}
	_, err := checkTensors("none", 0, "broadcast", Sum, ts)
	return err
}
func (single) Barrier() error { return nil }
func (single) Close() error   { return nil }

// done is a completed request.
type done struct{}

func (done) Wait() error { return nil }

// checkTensors checks the arguments of a collective and returns the total
// number of values.
func checkTensors(backend string, rank int, what string, op Op, ts []*tensor.Tensor) (n int, err error) {
	fail := func(format string, args ...any) (int, error) {
		return 0, &Error{Backend: backend, Rank: rank, Op: what, Err: fmt.Errorf(format, args...)}
	}
	if op != Sum && op != Mean {
		return fail("unknown reduction %v", op)
	}
	seen := make(map[any]bool, len(ts))
	for i, t := range ts {
		if t == nil {
			return fail("tensor %d is nil", i)
		}
		var buf any
		if err := tensor.Catch(func() { buf = t.Buffer() }); err != nil {
			return fail("tensor %d: %v", i, err)
		}
		if t.Device() != ts[0].Device() {
			return fail("tensor %d is on %s, tensor 0 on %s", i, t.Device().Name(), ts[0].Device().Name())
		}
		if seen[buf] {
			return fail("tensor %d shares its buffer with an earlier one", i)
		}
		seen[buf] = true
		n += t.Len()
	}
	return n, nil
}

// sizeString formats a number of float32 values as bytes.
func sizeString(n int) string {
	b := float64(n) * 4
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", b/1e6)
	case b >= 1<<10:
		return fmt.Sprintf("%.1f kB", b/1e3)
	}
	return fmt.Sprintf("%d B", int(b))
}
