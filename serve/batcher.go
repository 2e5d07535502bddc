package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// Errors of Batcher.Predict besides the context's.
var (
	// ErrClosed is returned once Close has been called.
	ErrClosed = errors.New("serve: batcher closed")
	// ErrQueueFull is returned when MaxQueue requests are already waiting.
	ErrQueueFull = errors.New("serve: queue full")
	// ErrInput is wrapped when the input slices do not fit the model.
	ErrInput = errors.New("serve: bad input")
)

// BatcherConfig describes the model a Batcher runs and how it batches.
type BatcherConfig struct {
	// Model is run in evaluation mode, under NoGrad, on [n, Inputs] rows
	// and must return [n, Classes] logits. The Batcher switches it to
	// evaluation mode and owns it from then on: do not change it.
	// NewBatcher keeps a transposed copy of the weight of each Linear
	// layer of a Sequential model for its forward passes.
	Model nn.Module
	// Device holds the model's parameters.
	Device device.Device
	// Inputs is the number of values of one input row; Classes the number
	// of outputs.
	Inputs, Classes int
	// MaxBatch is the most rows in one forward pass (default 32).
	MaxBatch int
	// MaxDelay is how long a pass waits for more rows after its first one
	// arrived; 0 runs as soon as the rows already queued are taken. A pass
	// waits only under load: when the previous pass held more than one
	// request, or (behind a Handler) while other requests are being read
	// and decoded. So a lone client's requests run at once.
	MaxDelay time.Duration
	// Workers is the number of forward passes that may run at once
	// (default 1). Each has its own tape and buffers; use more than one
	// only on a device that is safe for concurrent use, such as the CPU.
	Workers int
	// MaxQueue is the most requests waiting (default 1024); Predict fails
	// with ErrQueueFull beyond it.
	MaxQueue int
	// Metrics, when set, receives batch sizes, queue depth and drops.
	Metrics *Metrics
	// Logger receives errors of forward passes (default: slog.Default()).
	Logger *slog.Logger
}

// Batcher runs the inputs of concurrent Predict calls as shared forward
// passes: a pass takes up to MaxBatch rows, waiting at most MaxDelay after
// its first one. A request whose context ends while it is queued is
// dropped without running. A Batcher is safe for concurrent use.
type Batcher struct {
	cfg   BatcherConfig
	model nn.Module        // cfg.Model prepared for inference
	owned []*tensor.Tensor // the tensors of model that cfg.Model does not hold
	free  sync.Once        // frees owned
	queue chan *request
	pool  sync.Pool // of *request
	wg    sync.WaitGroup

	mu     sync.RWMutex // held for writing by Close, reading by senders
	closed bool

	// arriving counts the requests a Handler is reading and decoding,
	// which a pass may wait for.
	arriving atomic.Int64
}

// request is one Predict call: n rows of x, answered into probs.
type request struct {
	ctx      context.Context
	deadline time.Time // zero for none besides ctx's
	x        []float32 // n*Inputs values, the caller's
	probs    []float32 // n*Classes values, the caller's
	n        int
	next     int // rows handed to passes so far, by the worker that claimed it
	done     int // rows answered
	state    atomic.Int32
	reply    chan error // buffered: the worker never blocks on it
}

// Request states: a worker claims a queued request, or its caller gives up
// on it; whoever wins the swap owns it.
const (
	queued int32 = iota
	claimed
	abandoned
)

// NewBatcher checks cfg and starts the workers.
func NewBatcher(cfg BatcherConfig) (*Batcher, error) {
	switch {
	case cfg.Model == nil || cfg.Device == nil:
		return nil, errors.New("serve: batcher needs a model and its device")
	case cfg.Inputs <= 0 || cfg.Classes <= 0:
		return nil, fmt.Errorf("serve: inputs %d and classes %d must be positive", cfg.Inputs, cfg.Classes)
	case cfg.MaxBatch < 0 || cfg.Workers < 0 || cfg.MaxQueue < 0 || cfg.MaxDelay < 0:
		return nil, errors.New("serve: negative batcher limit")
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 32
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Model.SetTraining(false)
	b := &Batcher{cfg: cfg, queue: make(chan *request, cfg.MaxQueue)}
	if err := tensor.Catch(func() { b.model, b.owned = forInference(cfg.Model) }); err != nil {
		return nil, fmt.Errorf("serve: preparing the model: %w", err)
	}
	b.pool.New = func() any { return &request{reply: make(chan error, 1)} }
	for range cfg.Workers {
		w := &worker{b: b, tape: autograd.NewTape(), host: make([]float32, cfg.MaxBatch*cfg.Inputs),
			probs: make([]float32, cfg.MaxBatch*cfg.Classes), timer: time.NewTimer(time.Hour)}
		w.timer.Stop()
		b.wg.Add(1)
		go w.loop()
	}
	return b, nil
}

// Config returns the configuration in use, defaults filled in.
func (b *Batcher) Config() BatcherConfig { return b.cfg }

// Predict classifies the n = len(x)/Inputs rows of x and writes their
// class probabilities (softmax of the logits), n*Classes values, into
// probs. It returns ctx's error if ctx ends before the rows ran: rows
// still queued are then dropped, and Predict returns at once unless a pass
// already took them. x and probs must not be used until Predict returns.
func (b *Batcher) Predict(ctx context.Context, x, probs []float32) error {
	return b.predict(ctx, time.Time{}, nil, x, probs, false)
}

// arrive announces a request that will call predict with announced set,
// or, with -1, one that will not after all.
func (b *Batcher) arrive(n int64) { b.arriving.Add(n) }

// predict is Predict with a deadline besides ctx's, kept by timer (which
// it resets and stops) when deadline is not zero: the Handler's
// per-request deadline without a context and a timer per request.
// announced says that the request was announced with arrive.
func (b *Batcher) predict(ctx context.Context, deadline time.Time, timer *time.Timer, x, probs []float32, announced bool) error {
	var arrived int64
	if announced {
		arrived = -1
	}
	in, c := b.cfg.Inputs, b.cfg.Classes
	n := len(x) / in
	if n == 0 || len(x) != n*in || len(probs) != n*c {
		b.arriving.Add(arrived)
		return fmt.Errorf("%w: %d input values and %d outputs for rows of %d inputs and %d classes",
			ErrInput, len(x), len(probs), in, c)
	}
	if err := ctx.Err(); err != nil {
		b.arriving.Add(arrived)
		return err
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		timer.Reset(time.Until(deadline))
		defer timer.Stop()
		expired = timer.C
	}
	r := b.pool.Get().(*request)
	r.ctx, r.deadline, r.x, r.probs, r.n, r.next, r.done = ctx, deadline, x, probs, n, 0, 0
	r.state.Store(queued)
	err := b.enqueue(r)
	b.arriving.Add(arrived) // after the send: a worker sees r queued or still arriving
	if err != nil {
		b.recycle(r)
		return err
	}
	select {
	case err := <-r.reply:
		b.recycle(r)
		return err
	case <-ctx.Done():
		err = ctx.Err()
	case <-expired:
		err = context.DeadlineExceeded
	}
	if r.state.CompareAndSwap(queued, abandoned) {
		b.cfg.Metrics.queued(-1)
		b.cfg.Metrics.dropped(err)
		return err // the worker that dequeues r recycles it
	}
	err = <-r.reply // a pass has it: it ends soon
	b.recycle(r)
	return err
}

// expired returns the error of a request whose time is up, or nil.
func (r *request) expired() error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if !r.deadline.IsZero() && !time.Now().Before(r.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (b *Batcher) enqueue(r *request) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	select {
	case b.queue <- r:
		b.cfg.Metrics.queued(1)
		return nil
	default:
		return ErrQueueFull
	}
}

func (b *Batcher) recycle(r *request) {
	r.ctx, r.x, r.probs = nil, nil, nil
	b.pool.Put(r)
}

// Warmup runs a pass of one row and one of MaxBatch rows of zeros through
// the model, which checks that it returns [n, Classes] outputs and fills
// the device's pools, so that the first requests do not pay for them.
func (b *Batcher) Warmup(ctx context.Context) error {
	for _, n := range []int{1, b.cfg.MaxBatch} {
		x := make([]float32, n*b.cfg.Inputs)
		if err := b.Predict(ctx, x, make([]float32, n*b.cfg.Classes)); err != nil {
			return fmt.Errorf("serve: warm-up with %d rows: %w", n, err)
		}
	}
	return nil
}

// Close stops accepting requests, lets the workers finish every request
// already queued, and waits for them. It is safe to call more than once.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.wg.Wait()
	b.free.Do(func() {
		for _, t := range b.owned {
			t.Free()
		}
	})
}

// worker runs forward passes; its buffers live as long as the Batcher.
type worker struct {
	b     *Batcher
	tape  *autograd.Tape
	x     *tensor.Tensor // the last pass's input, reused at the same size
	leaf  *autograd.Var  // x on the tape
	host  []float32      // MaxBatch*Inputs: the rows of a pass
	probs []float32      // MaxBatch*Classes: their outputs
	spans []span
	carry *request // claimed, with rows left for the next pass
	// lastRequests is the number of requests of the previous pass.
	lastRequests int
	timer        *time.Timer
}

// span is the rows [lo, lo+n) of r in the current pass.
type span struct {
	r     *request
	lo, n int
}

func (w *worker) loop() {
	defer w.b.wg.Done()
	defer w.x.Free()
	defer w.tape.Free()
	for w.collect() {
		w.lastRequests = len(w.spans)
		w.run()
	}
}

// collect gathers the rows of the next pass into w.spans. It returns false
// when the queue is closed and drained.
func (w *worker) collect() bool {
	w.spans = w.spans[:0]
	rows := 0
	maxBatch := w.b.cfg.MaxBatch
	// take adds the unscheduled rows of r that fit.
	take := func(r *request) {
		n := min(r.n-r.next, maxBatch-rows)
		w.spans = append(w.spans, span{r, r.next, n})
		r.next += n
		rows += n
		w.carry = nil
		if r.next < r.n {
			w.carry = r
		}
	}
	if r := w.carry; r != nil {
		if err := r.expired(); err != nil {
			w.carry = nil
			w.b.cfg.Metrics.dropped(err)
			r.reply <- err
		} else {
			take(r)
		}
	}
	open := true
	if rows == 0 {
		for rows == 0 {
			r, ok := <-w.b.queue
			if !ok {
				return false
			}
			if r = w.claim(r); r != nil {
				take(r)
			}
		}
	}
	wait := w.b.cfg.MaxDelay > 0
	if wait {
		w.timer.Reset(w.b.cfg.MaxDelay)
		defer w.timer.Stop()
	}
	for open && rows < maxBatch {
		// Take what is queued, then wait for more if worth it.
		select {
		case r, ok := <-w.b.queue:
			if !ok {
				open = false
			} else if r = w.claim(r); r != nil {
				take(r)
			}
			continue
		default:
		}
		if !wait || (w.lastRequests <= 1 && w.b.arriving.Load() <= 0) {
			return true // a lone request does not wait for company
		}
		select {
		case r, ok := <-w.b.queue:
			if !ok {
				open = false
			} else if r = w.claim(r); r != nil {
				take(r)
			}
		case <-w.timer.C:
			return true
		}
	}
	return true
}

// claim takes r from the queue. It returns nil if r's caller gave up on
// it, or if r's context has ended (answering r with its error).
func (w *worker) claim(r *request) *request {
	if !r.state.CompareAndSwap(queued, claimed) {
		w.b.recycle(r) // abandoned: no longer counted as queued
		return nil
	}
	w.b.cfg.Metrics.queued(-1)
	if err := r.expired(); err != nil {
		w.b.cfg.Metrics.dropped(err)
		r.reply <- err
		return nil
	}
	return r
}

// run computes the pass of w.spans and answers the requests it completes.
func (w *worker) run() {
	in, c := w.b.cfg.Inputs, w.b.cfg.Classes
	rows := 0
	for _, s := range w.spans {
		copy(w.host[rows*in:], s.r.x[s.lo*in:(s.lo+s.n)*in])
		rows += s.n
	}
	start := time.Now()
	err := w.forward(rows)
	w.b.cfg.Metrics.batch(rows, time.Since(start))
	if err != nil {
		w.b.cfg.Logger.Error("forward pass failed", "rows", rows, "err", err)
	}
	rows = 0
	for _, s := range w.spans {
		r := s.r
		if err == nil {
			copy(r.probs[s.lo*c:], w.probs[rows*c:(rows+s.n)*c])
		}
		rows += s.n
		if err != nil {
			if w.carry == r {
				w.carry = nil
			}
			if r.done >= 0 {
				r.done = -1
				r.reply <- err
			}
			continue
		}
		if r.done += s.n; r.done == r.n {
			r.reply <- nil
		}
	}
}

// forward runs the model on the first rows of w.host into w.probs. A
// panic of the model (a tensor error or another) becomes the pass's error,
// so that one bad pass does not end the server.
func (w *worker) forward(rows int) (err error) {
	in, c := w.b.cfg.Inputs, w.b.cfg.Classes
	defer w.tape.Free()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serve: forward pass of %d rows: %v", rows, r)
		}
	}()
	if x := tensor.Reuse(w.x, w.b.cfg.Device, rows, in); x != w.x || w.leaf == nil {
		w.x, w.leaf = x, w.tape.Var(x, false)
	}
	w.x.CopyFrom(w.host[:rows*in])
	w.tape.NoGrad(func() {
		out := w.b.model.Forward(w.leaf).Value
		if out.Dims() != 2 || out.Dim(0) != rows || out.Dim(1) != c {
			err = fmt.Errorf("serve: the model returned %v for %d rows of %d classes", out.Shape(), rows, c)
			return
		}
		p := tensor.Softmax(out, 1)
		defer p.Free()
		p.CopyTo(w.probs[:rows*c])
	})
	return err
}
