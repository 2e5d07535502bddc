package dist

import (
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// Bucket sizes, as PyTorch's DistributedDataParallel sets them.
const (
	DefaultBucketBytes      = 25 << 20 // bucket_cap_mb=25
	DefaultFirstBucketBytes = 1 << 20  // the first bucket starts reducing early
)

// ErrModelMismatch is wrapped by NewDataParallel's error when the ranks'
// parameters differ in number or shape.
var ErrModelMismatch = errors.New("models differ between ranks")

// DataParallelConfig configures DataParallel. The zero value is PyTorch's
// default.
type DataParallelConfig struct {
	// BucketBytes caps a bucket of gradients reduced as one collective;
	// 0 means DefaultBucketBytes.
	BucketBytes int
	// FirstBucketBytes caps the first bucket (the last layers' gradients,
	// ready first); 0 means DefaultFirstBucketBytes.
	FirstBucketBytes int
}

// DataParallel averages the gradients of a model's parameters over the
// ranks of a communicator, overlapping the all-reduces with Backward.
//
// NewDataParallel broadcasts the parameters from rank 0. Each Backward then
// runs the gradient hooks it installs: once every gradient of a bucket is
// complete, the bucket's asynchronous all-reduce starts (buckets start in
// order, so that every rank issues the same collectives in the same order).
// Wait, called after Backward and before the optimizer step, starts what
// the pass did not reach (their gradients count as zeros), waits for every
// bucket and leaves each gradient averaged over the ranks. Gradients of
// one Backward per Wait: accumulating several Backward calls before a Wait
// is an error.
//
// Buckets follow the reverse order of the parameters at first (the order
// Backward roughly produces them in), the first one capped at
// FirstBucketBytes and the others at BucketBytes; a gradient that would
// take a non-empty bucket past its cap starts the next one. After the first
// pass the buckets are rebuilt in the order the gradients actually became
// ready on rank 0, broadcast to all, as DDP does.
//
// Nothing but the gradients is synchronised: per-rank state such as
// dropout counters or normalisation statistics stays local, as in DDP.
type DataParallel struct {
	comm   Communicator
	params []*autograd.Var
	cfg    DataParallelConfig
	dev    device.Device

	buckets  []bucket
	bucketOf []int  // parameter -> bucket
	ready    []bool // parameter's gradient is complete in this pass
	next     int    // the next bucket to start
	order    []int  // the order the gradients became ready in the first pass
	rebuilt  bool
	err      error // the first error of the pass; sticky once a collective failed
	stats    Stats
}

type bucket struct {
	params  []int
	pending int // gradients not yet ready in this pass
	values  int
	grads   []*tensor.Tensor
	req     Request
}

// Stats counts DataParallel's work.
type Stats struct {
	Passes   int           // Wait calls
	Buckets  int           // buckets per pass
	Values   int           // gradient values reduced per pass
	WaitTime time.Duration // total time spent in Wait: the reduction not hidden behind Backward
}

// NewDataParallel checks that every rank of comm has parameters of the same
// number and shapes (else an error wrapping ErrModelMismatch, on every
// rank), copies rank 0's values to the others, and installs the gradient
// hooks on params (replacing any other). It is a collective: every rank
// calls it.
func NewDataParallel(comm Communicator, params []*autograd.Var, cfg DataParallelConfig) (*DataParallel, error) {
	if cfg.BucketBytes < 0 || cfg.FirstBucketBytes < 0 {
		return nil, fmt.Errorf("dist: data parallel: negative bucket size")
	}
	if cfg.BucketBytes == 0 {
		cfg.BucketBytes = DefaultBucketBytes
	}
	if cfg.FirstBucketBytes == 0 {
		cfg.FirstBucketBytes = DefaultFirstBucketBytes
	}
	if len(params) == 0 {
		return nil, fmt.Errorf("dist: data parallel: no parameters")
	}
	seen := make(map[*autograd.Var]bool, len(params))
	for i, p := range params {
		switch {
		case p == nil || p.Value == nil:
			return nil, fmt.Errorf("dist: data parallel: parameter %d is nil", i)
		case !p.RequiresGrad():
			return nil, fmt.Errorf("dist: data parallel: parameter %d (%v) does not require a gradient", i, p.Shape())
		case seen[p]:
			return nil, fmt.Errorf("dist: data parallel: parameter %d appears twice", i)
		case p.Value.Device() != params[0].Value.Device():
			return nil, fmt.Errorf("dist: data parallel: parameter %d is on %s, parameter 0 on %s", i, p.Value.Device().Name(), params[0].Value.Device().Name())
		}
		seen[p] = true
	}
	dp := &DataParallel{comm: comm, params: params, cfg: cfg, dev: params[0].Value.Device(),
		bucketOf: make([]int, len(params)), ready: make([]bool, len(params))}
	if err := dp.checkModels(); err != nil {
		return nil, err
	}
	values := make([]*tensor.Tensor, len(params))
	for i, p := range params {
		values[i] = p.Value
	}
	if err := comm.Broadcast(0, values...); err != nil {
		return nil, fmt.Errorf("dist: data parallel: broadcasting the parameters: %w", err)
	}
	order := make([]int, len(params))
	for i := range order {
		order[i] = len(params) - 1 - i
	}
	dp.setBuckets(order)
	for i, p := range params {
		p.SetGradHook(func(*autograd.Var) { dp.gradReady(i) })
	}
	return dp, nil
}

// signatureLen is the length of a rank's row in checkModels: the number of
// parameters, the number of values in two parts, and a 64-bit hash of the
// shapes in four, each below 2^24 so that float32 holds it exactly.
const signatureLen = 7

// checkModels gathers every rank's model signature, with an all-reduce of
// a table where each rank fills its row, and compares them with rank 0's.
func (dp *DataParallel) checkModels() error {
	size, rank := dp.comm.Size(), dp.comm.Rank()
	h := fnv.New64a()
	total := 0
	for _, p := range dp.params {
		shape := p.Shape()
		fmt.Fprint(h, shape, ";")
		total += p.Value.Len()
	}
	sum := h.Sum64()
	row := [signatureLen]float32{float32(len(dp.params)), float32(total >> 20), float32(total & (1<<20 - 1)),
		float32(sum >> 48), float32(sum >> 32 & 0xffff), float32(sum >> 16 & 0xffff), float32(sum & 0xffff)}
	table := make([]float32, size*signatureLen)
	copy(table[rank*signatureLen:], row[:])
	t := tensor.FromSlice(dp.dev, table)
	defer t.Free()
	if err := dp.comm.AllReduce(Sum, t); err != nil {
		return fmt.Errorf("dist: data parallel: comparing the models: %w", err)
	}
	all := t.Data()
	values := func(r []float32) int { return int(r[1])<<20 + int(r[2]) }
	r0 := all[:signatureLen]
	for r := 1; r < size; r++ {
		ri := all[r*signatureLen : (r+1)*signatureLen]
		switch {
		case ri[0] != r0[0] || values(ri) != values(r0):
			return fmt.Errorf("dist: data parallel: %w: rank 0 has %d parameters (%d values), rank %d has %d (%d values)",
				ErrModelMismatch, int(r0[0]), values(r0), r, int(ri[0]), values(ri))
		case [4]float32(ri[3:]) != [4]float32(r0[3:]):
			return fmt.Errorf("dist: data parallel: %w: the shapes of rank %d's %d parameters differ from rank 0's",
				ErrModelMismatch, r, int(ri[0]))
		}
	}
	return nil
}

// setBuckets groups the parameters, taken in order, into buckets.
func (dp *DataParallel) setBuckets(order []int) {
	dp.buckets = dp.buckets[:0]
	capacity := dp.cfg.FirstBucketBytes
	var cur bucket
	for _, i := range order {
		n := dp.params[i].Value.Len()
		if len(cur.params) > 0 && (cur.values+n)*4 > capacity {
			dp.buckets = append(dp.buckets, cur)
			cur, capacity = bucket{}, dp.cfg.BucketBytes
		}
		cur.params = append(cur.params, i)
		cur.values += n
	}
	dp.buckets = append(dp.buckets, cur)
	for k := range dp.buckets {
		b := &dp.buckets[k]
		b.pending = len(b.params)
		b.grads = make([]*tensor.Tensor, 0, len(b.params))
		for _, i := range b.params {
			dp.bucketOf[i] = k
		}
	}
	dp.next = 0
}

// Buckets returns the parameter indices of each bucket, in the order the
// buckets are reduced.
func (dp *DataParallel) Buckets() [][]int {
	out := make([][]int, len(dp.buckets))
	for k, b := range dp.buckets {
		out[k] = append([]int(nil), b.params...)
	}
	return out
}

// Stats returns the counters so far.
func (dp *DataParallel) Stats() Stats {
	s := dp.stats
	s.Buckets = len(dp.buckets)
	for _, b := range dp.buckets {
		s.Values += b.values
	}
	return s
}

// fail records the first error of the pass.
func (dp *DataParallel) fail(err error) {
	if dp.err == nil {
		dp.err = err
	}
}

// gradReady is parameter i's gradient hook.
func (dp *DataParallel) gradReady(i int) {
	if dp.ready[i] {
		dp.fail(fmt.Errorf("dist: data parallel: parameter %d's gradient became ready twice before Wait (one Backward per Wait)", i))
		return
	}
	dp.ready[i] = true
	if !dp.rebuilt {
		dp.order = append(dp.order, i)
	}
	b := &dp.buckets[dp.bucketOf[i]]
	b.pending--
	for dp.next < len(dp.buckets) && dp.buckets[dp.next].pending == 0 {
		dp.start(dp.next)
		dp.next++
	}
}

// start starts bucket k's all-reduce. A gradient the pass did not produce
// is reduced as zeros.
func (dp *DataParallel) start(k int) {
	b := &dp.buckets[k]
	b.grads = b.grads[:0]
	for _, i := range b.params {
		p := dp.params[i]
		if p.Grad == nil {
			p.Grad = tensor.Zeros(dp.dev, p.Shape()...)
		}
		b.grads = append(b.grads, p.Grad)
	}
	if dp.err != nil && errors.As(dp.err, new(*Error)) {
		return // the communicator failed: start nothing more
	}
	req, err := dp.comm.StartAllReduce(Mean, b.grads...)
	if err != nil {
		dp.fail(fmt.Errorf("dist: data parallel: bucket %d of %d (%s): %w", k+1, len(dp.buckets), sizeString(b.values), err))
		return
	}
	b.req = req
}

// Wait finishes the pass: it starts the buckets the pass did not complete,
// waits for every bucket's all-reduce, and leaves each parameter's
// gradient averaged over the ranks. Call it after Backward and before the
// optimizer step, on every rank. After a failed collective every Wait
// returns that error.
func (dp *DataParallel) Wait() error {
	begin := time.Now()
	for ; dp.next < len(dp.buckets); dp.next++ {
		dp.start(dp.next)
	}
	for k := range dp.buckets {
		b := &dp.buckets[k]
		if b.req != nil {
			if err := b.req.Wait(); err != nil {
				dp.fail(fmt.Errorf("dist: data parallel: bucket %d of %d (%s): %w", k+1, len(dp.buckets), sizeString(b.values), err))
			}
			b.req = nil
		}
		b.pending = len(b.params)
		clear(b.grads)
	}
	clear(dp.ready)
	dp.next = 0
	dp.stats.Passes++
	dp.stats.WaitTime += time.Since(begin)
	err := dp.err
	if err != nil {
		if !errors.As(err, new(*Error)) {
			dp.err = nil // a usage error of this pass; the communicator is fine
		}
		return err
	}
	if !dp.rebuilt {
		return dp.rebuild()
	}
	return nil
}

// rebuild regroups the buckets in the order rank 0's gradients became ready
// in the first pass (the parameters it did not reach last, in reverse
// order), broadcast so that every rank has the same buckets.
func (dp *DataParallel) rebuild() error {
	dp.rebuilt = true
	n := len(dp.params)
	order := make([]float32, 0, n)
	in := make([]bool, n)
	for _, i := range dp.order {
		order = append(order, float32(i))
		in[i] = true
	}
	for i := n - 1; i >= 0; i-- {
		if !in[i] {
			order = append(order, float32(i))
		}
	}
	dp.order = nil
	t := tensor.FromSlice(dp.dev, order)
	defer t.Free()
	if err := dp.comm.Broadcast(0, t); err != nil {
		dp.err = fmt.Errorf("dist: data parallel: broadcasting the bucket order: %w", err)
		return dp.err
	}
	got := t.Data()
	perm := make([]int, n)
	clear(in)
	for k, v := range got {
		i := int(v)
		if float32(i) != v || i < 0 || i >= n || in[i] {
			dp.err = fmt.Errorf("dist: data parallel: rank 0's bucket order is not a permutation of the %d parameters", n)
			return dp.err
		}
		in[i], perm[k] = true, i
	}
	dp.setBuckets(perm)
	return nil
}

// Close removes the gradient hooks. The communicator stays open.
func (dp *DataParallel) Close() {
	for _, p := range dp.params {
		p.SetGradHook(nil)
	}
}
