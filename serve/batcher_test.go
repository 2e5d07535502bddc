package serve

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// newBatcher returns a Batcher of model with cfg, closed at the test's end.
func newBatcher(t testing.TB, cfg BatcherConfig) *Batcher {
	t.Helper()
	if cfg.Inputs == 0 {
		cfg.Inputs, cfg.Classes = inputs, classes
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	b, err := NewBatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func closeTo(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol {
			return false
		}
	}
	return true
}

// TestBatcherBatches checks that concurrent requests share passes of at
// most MaxBatch rows, that a request of more rows than MaxBatch is split
// over several passes, and that every answer is the model's own.
func TestBatcherBatches(t *testing.T) {
	model, dev := trained(t)
	var mu sync.Mutex
	var sizes []int
	m := &hookModel{Module: model, before: func(rows int) {
		mu.Lock()
		sizes = append(sizes, rows)
		mu.Unlock()
	}}
	b := newBatcher(t, BatcherConfig{Model: m, Device: dev, MaxBatch: 8, MaxDelay: 20 * time.Millisecond})
	rng := rand.New(rand.NewPCG(13, 14))
	const requests = 32
	xs := make([][]float32, requests)
	for i := range xs {
		n := 1
		if i == 0 {
			n = 19 // three passes: 8 + 8 + 3 at most
		}
		for range n {
			xs[i] = append(xs[i], sample(rng, rng.IntN(classes))...)
		}
	}
	var wg sync.WaitGroup
	for i, x := range xs {
		wg.Go(func() {
			probs := make([]float32, len(x)/inputs*classes)
			if err := b.Predict(context.Background(), x, probs); err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if want := reference(t, model, dev, x); !closeTo(probs, want, 1e-5) {
				t.Errorf("request %d: probabilities %v, want %v", i, probs, want)
			}
		})
	}
	wg.Wait()
	total, most := 0, 0
	for _, n := range sizes {
		if n > 8 {
			t.Errorf("a pass of %d rows, above MaxBatch 8", n)
		}
		total += n
		most = max(most, n)
	}
	if total != requests-1+19 {
		t.Errorf("passes ran %d rows, want %d", total, requests-1+19)
	}
	if most < 2 {
		t.Errorf("no pass took more than one row (passes %v)", sizes)
	}
}

// blocked returns a model whose passes wait for a value on gate, after
// sending their row count on entered.
func blocked(t *testing.T) (*hookModel, chan struct{}, chan int) {
	model, _ := trained(t)
	gate, entered := make(chan struct{}), make(chan int, 100)
	return &hookModel{Module: model, before: func(rows int) {
		entered <- rows
		select { // a failed test's cleanup must not wait for the gate
		case <-gate:
		case <-t.Context().Done():
		}
	}}, gate, entered
}

// TestBatcherDropsCancelled checks that requests whose context ends while
// they wait are answered at once with the context's error and never run,
// and are counted as dropped.
func TestBatcherDropsCancelled(t *testing.T) {
	m, gate, entered := blocked(t)
	_, dev := trained(t)
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg, 4)
	if err != nil {
		t.Fatal(err)
	}
	b := newBatcher(t, BatcherConfig{Model: m, Device: dev, MaxBatch: 4, Metrics: metrics})
	x := make([]float32, inputs)
	first := make(chan error, 1)
	go func() { first <- b.Predict(context.Background(), x, make([]float32, classes)) }()
	<-entered // the worker is busy with the first request

	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() { cancelled <- b.Predict(ctx, make([]float32, 3*inputs), make([]float32, 3*classes)) }()
	expired := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		expired <- b.Predict(ctx, x, make([]float32, classes))
	}()
	time.Sleep(5 * time.Millisecond)
	cancel()
	for name, ch := range map[string]chan error{"cancelled": cancelled, "expired": expired} {
		select {
		case err := <-ch:
			want := context.Canceled
			if name == "expired" {
				want = context.DeadlineExceeded
			}
			if !errors.Is(err, want) {
				t.Errorf("%s request: %v, want %v", name, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the %s request was not answered while the worker was busy", name)
		}
	}
	// A request queued behind them still runs, alone: the dropped rows
	// never reach the model.
	last := make(chan error, 1)
	go func() { last <- b.Predict(context.Background(), x, make([]float32, classes)) }()
	waitFor(t, func() bool { return len(b.queue) == 3 })
	gate <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if rows := <-entered; rows != 1 {
		t.Errorf("the pass after the drops has %d rows, want 1", rows)
	}
	gate <- struct{}{}
	if err := <-last; err != nil {
		t.Fatal(err)
	}
	for reason, want := range map[string]float64{"cancelled": 1, "deadline": 1} {
		var v float64
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "gograd_serve_dropped_total" {
				for _, s := range mf.GetMetric() {
					if s.GetLabel()[0].GetValue() == reason {
						v = s.GetCounter().GetValue()
					}
				}
			}
		}
		if v != want {
			t.Errorf("dropped_total{reason=%s} = %v, want %v", reason, v, want)
		}
	}
}

// TestBatcherQueueAndClose checks ErrQueueFull, that Close finishes the
// queued requests, and ErrClosed after it.
func TestBatcherQueueAndClose(t *testing.T) {
	m, gate, entered := blocked(t)
	_, dev := trained(t)
	b := newBatcher(t, BatcherConfig{Model: m, Device: dev, MaxBatch: 2, MaxQueue: 2})
	x := make([]float32, inputs)
	errs := make(chan error, 3)
	for i := range 3 {
		go func() { errs <- b.Predict(context.Background(), x, make([]float32, classes)) }()
		if i == 0 {
			<-entered // the worker holds the first; the others queue
		}
	}
	waitFor(t, func() bool { return len(b.queue) == 2 })
	if err := b.Predict(context.Background(), x, make([]float32, classes)); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Predict with a full queue: %v, want ErrQueueFull", err)
	}
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	go func() {
		for {
			select {
			case gate <- struct{}{}:
			case <-closed:
				return
			}
		}
	}()
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("a request queued before Close: %v", err)
		}
	}
	<-closed
	if err := b.Predict(context.Background(), x, make([]float32, classes)); !errors.Is(err, ErrClosed) {
		t.Errorf("Predict after Close: %v, want ErrClosed", err)
	}
	if err := b.Predict(context.Background(), x[:3], make([]float32, classes)); !errors.Is(err, ErrInput) {
		t.Errorf("Predict of 3 values: %v, want ErrInput", err)
	}
}

// TestBatcherModelErrors checks that a model returning the wrong shape, or
// panicking, fails its requests with an error and leaves the Batcher
// working.
func TestBatcherModelErrors(t *testing.T) {
	model, dev := trained(t)
	fail := true
	m := &hookModel{Module: model, before: func(int) {
		if fail {
			panic("broken layer")
		}
	}}
	b := newBatcher(t, BatcherConfig{Model: m, Device: dev, Inputs: inputs, Classes: classes + 1})
	x := make([]float32, inputs)
	if err := b.Predict(context.Background(), x, make([]float32, classes+1)); err == nil {
		t.Error("a panicking model: no error")
	}
	fail = false
	if err := b.Predict(context.Background(), x, make([]float32, classes+1)); err == nil {
		t.Error("a model of 4 classes served as 5: no error")
	}
	if err := b.Warmup(context.Background()); err == nil {
		t.Error("Warmup of a model of the wrong shape: no error")
	}
}

// TestBatcherWaitsOnlyUnderLoad checks the MaxDelay policy with a delay of
// an hour: a lone request runs at once, while after a pass of two
// requests the next pass waits until it is full.
func TestBatcherWaitsOnlyUnderLoad(t *testing.T) {
	_, dev := trained(t)
	m, gate, entered := blocked(t)
	b := newBatcher(t, BatcherConfig{Model: m, Device: dev, MaxBatch: 2, MaxDelay: time.Hour})
	x := make([]float32, inputs)
	predict := func() chan error {
		ch := make(chan error, 1)
		go func() { ch <- b.Predict(context.Background(), x, make([]float32, classes)) }()
		return ch
	}
	// A lone request: its pass starts without waiting for a second.
	first := predict()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("a lone request waited for company")
	}
	// Two more queue behind it and share the next pass.
	second, third := predict(), predict()
	waitFor(t, func() bool { return len(b.queue) == 2 })
	gate <- struct{}{}
	if rows := <-entered; rows != 2 {
		t.Fatalf("the pass after the lone one has %d rows, want 2", rows)
	}
	gate <- struct{}{}
	for _, ch := range []chan error{first, second, third} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	// Under load now: a fourth request waits for a fifth.
	fourth := predict()
	select {
	case rows := <-entered:
		t.Fatalf("a pass of %d rows ran without waiting after a full pass", rows)
	case <-time.After(50 * time.Millisecond):
	}
	fifth := predict()
	if rows := <-entered; rows != 2 {
		t.Errorf("the waiting pass ran %d rows, want 2", rows)
	}
	gate <- struct{}{}
	for _, ch := range []chan error{fourth, fifth} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}
