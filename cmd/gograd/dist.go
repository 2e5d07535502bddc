package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// Data-parallel training: `mpirun -np N gograd train -dist mpi ...` runs N
// processes (ranks), each with a copy of the model, each training on its
// shard of every batch (-batch is per rank); dist.DataParallel averages
// their gradients before every optimizer step. Rank 0 alone owns the run
// directory (lock, -overwrite, checkpoints, model, metrics) and prints;
// the other ranks print only their errors, prefixed with their rank.
// Every decision that must be the same on every rank (stopping on an
// interrupt or a diverged loss, failing after rank 0 could not save) is
// agreed with a collective, so that the ranks stop at the same batch.

// distFlags are the flags of data-parallel training.
type distFlags struct {
	backend *choice
	timeout time.Duration
}

func addDistFlags(fs *command) *distFlags {
	f := &distFlags{backend: newChoice("none", "none", "mpi", "nccl")}
	fs.Var(f.backend, "dist", "`none|mpi|nccl`: data-parallel training in several processes started by mpirun "+
		"(mpi: on CPUs; nccl: one GPU per process, with -device cuda); -batch is then the batch of each process")
	fs.DurationVar(&f.timeout, "dist-timeout", dist.DefaultTimeout,
		"with -dist, how long a collective waits for the other processes before the job fails")
	return f
}

// job is the set of processes a train command runs in: one, or the ranks
// of an mpirun job.
type job struct {
	comm    dist.Communicator
	dev     device.Device // the device a -dist job opened; nil without -dist
	stderr  io.Writer     // the real stderr, for the errors of every rank
	timeout time.Duration
	flags   *tensor.Tensor // anyRank's buffer
	host    []float32
}

// openJob opens the communicator of -dist and, for a -dist job, its
// device: -dist mpi trains on the CPU with an explicit number of threads
// (the CPUs this process may use, shared among the ranks of its host),
// -dist nccl on the GPU of the rank's local rank. Without -dist it opens
// nothing. The returned env is e for rank 0 and one that discards all
// output on the other ranks.
func openJob(f *distFlags, deviceFlag string, fs *command, set map[string]bool, e *env) (*job, *env, error) {
	backend := f.backend.value
	if backend == "none" {
		if set["dist-timeout"] {
			return nil, nil, fs.usagef("-dist-timeout applies only with -dist mpi or -dist nccl")
		}
		return &job{comm: dist.Single(), stderr: e.stderr}, e, nil
	}
	if f.timeout <= 0 {
		return nil, nil, fs.usagef("-dist-timeout %v: want a positive duration", f.timeout)
	}
	if backend == "nccl" && deviceFlag != "cuda" {
		return nil, nil, fs.usagef("-dist nccl trains on GPUs: give -device cuda (or use -dist mpi on CPUs)")
	}
	if backend == "mpi" && deviceFlag == "cuda" {
		return nil, nil, fs.usagef("-dist mpi trains on CPUs: use -dist nccl with -device cuda")
	}
	threads := runtime.NumCPU() // the CPUs of this process's affinity, before MPI raises GOMAXPROCS
	comm, err := dist.OpenConfig(dist.Config{Backend: backend, Timeout: f.timeout})
	switch {
	case errors.Is(err, dist.ErrNoMPI):
		return nil, nil, errors.New("-dist mpi: this gograd binary was built without MPI; rebuild it with -tags mpi (cgo and Open MPI's libopenmpi-dev, see the README) and run it under mpirun")
	case errors.Is(err, dist.ErrNoNCCL):
		return nil, nil, errors.New("-dist nccl: this gograd binary was built without NCCL; rebuild it with -tags 'cuda mpi' (see the README) and run it under mpirun, one process per GPU")
	case err != nil:
		return nil, nil, fmt.Errorf("-dist %s: %w", backend, err)
	}
	j := &job{comm: comm, stderr: e.stderr, timeout: f.timeout}
	if backend == "nccl" {
		if j.dev, err = device.NewCUDA(comm.LocalRank()); err != nil {
			err = fmt.Errorf("-device cuda (GPU %d, the local rank): %w", comm.LocalRank(), err)
		}
	} else {
		j.dev = device.NewCPU(max(1, threads/localRanks()))
	}
	if err != nil {
		j.close(&err)
		return nil, nil, err
	}
	if j.rank() == 0 {
		return j, e, nil
	}
	return j, &env{stdout: io.Discard, stderr: io.Discard, onStep: e.onStep}, nil
}

// localRanks is the number of ranks on this host, as mpirun tells them;
// 1 when it does not.
func localRanks() int {
	n, err := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_LOCAL_SIZE"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// A nil job is a single process, as a job without -dist.

func (j *job) rank() int {
	if j == nil {
		return 0
	}
	return j.comm.Rank()
}

func (j *job) size() int {
	if j == nil {
		return 1
	}
	return j.comm.Size()
}

func (j *job) leader() bool { return j.rank() == 0 }

// distributed reports whether this is a -dist job (of any size).
func (j *job) distributed() bool { return j != nil && j.comm.Backend() != "none" }

// openDevice returns the device of a -dist job, or opens the one of
// -device.
func (j *job) openDevice(name string) (device.Device, error) {
	if j.dev != nil {
		return j.dev, nil
	}
	return openDevice(name)
}

// closeDevice releases d unless the job owns it (it closes it after the
// communicator).
func (j *job) closeDevice(d device.Device, err *error) {
	if j.dev == nil {
		closeDevice(d, err)
	}
}

// close ends the job with the command's error *err. Without -dist it does
// nothing. On a -dist job it prints every rank's own error, prefixed with
// its rank, before closing the communicator (which aborts the whole job
// after a failed collective), and turns it into a quiet exit code; a rank
// that stops because another failed (an agreed error) prints nothing. An
// error of this rank alone, which the other ranks did not agree on, ends
// the process without closing the communicator: mpirun then ends the
// other ranks at once, instead of leaving them waiting in their next
// collective until the timeout.
func (j *job) close(err *error) {
	if j == nil || !j.distributed() {
		return
	}
	j.flags.Free()
	var u *usageError
	var a *agreedError
	var de *dist.Error
	switch e := *err; {
	case e == nil, errors.Is(e, errInterrupted):
	case errors.As(e, &u):
		// Every rank parsed the same command line, and rank 0 reports it.
		if !j.leader() {
			*err = quietError{exitUsage}
		}
	case errors.As(e, &a) && !a.own:
		// The rank that failed prints its error.
		*err = quietError{exitError}
	case errors.As(e, &a), errors.As(e, &de):
		fmt.Fprintf(j.stderr, "gograd: rank %d: %s\n", j.rank(), oneLine(e.Error()))
		*err = quietError{exitError}
	default:
		fmt.Fprintf(j.stderr, "gograd: rank %d: %s\n", j.rank(), oneLine(e.Error()))
		*err = quietError{exitError}
		return // see above: mpirun ends the other ranks
	}
	cerr := j.comm.Close()
	if c, ok := j.dev.(io.Closer); ok {
		if e := c.Close(); e != nil && cerr == nil {
			cerr = fmt.Errorf("closing device %s: %w", j.dev.Name(), e)
		}
	}
	if cerr != nil && *err == nil {
		*err = fmt.Errorf("rank %d: %w", j.rank(), cerr)
	}
}

// quietError is an exit code whose message has already been printed (or,
// on ranks other than 0, is printed by rank 0).
type quietError struct{ code int }

func (q quietError) Error() string { return "exit " + strconv.Itoa(q.code) }

// agreedError is an error that every rank of the job knows of, so that
// they all stop together; own tells whether it is this rank's.
type agreedError struct {
	err error
	own bool
}

func (a *agreedError) Error() string { return a.err.Error() }
func (a *agreedError) Unwrap() error { return a.err }

// agree makes every rank fail when any rank passes an error: this rank's
// own error, or one naming the ranks that failed. It is a collective,
// for the steps that some ranks do alone (rank 0 writing the run
// directory) or that can fail on one rank only.
func (j *job) agree(err error) error {
	if !j.distributed() {
		return err
	}
	failed, _, cerr := j.anyRank(err != nil, false)
	switch {
	case cerr != nil:
		return cerr
	case err != nil:
		return &agreedError{err: err, own: true}
	case len(failed) > 0:
		return &agreedError{err: fmt.Errorf("stopping: %s failed (see its error)", rankList(failed))}
	}
	return nil
}

// anyRank returns the ranks that passed a set and those that passed b
// set, agreed by every rank: one all-reduce of a flag per rank and
// question, in a buffer kept on the device between calls.
func (j *job) anyRank(a, b bool) (ra, rb []int, err error) {
	n := j.size()
	if j.flags == nil {
		j.flags = tensor.New(j.dev, 2*n)
		j.host = make([]float32, 2*n)
	}
	clear(j.host)
	if a {
		j.host[j.rank()] = 1
	}
	if b {
		j.host[n+j.rank()] = 1
	}
	j.flags.CopyFrom(j.host)
	if err := j.comm.AllReduce(dist.Sum, j.flags); err != nil {
		return nil, nil, err
	}
	for r, x := range j.flags.Data() {
		switch {
		case x == 0:
		case r < n:
			ra = append(ra, r)
		default:
			rb = append(rb, r-n)
		}
	}
	return ra, rb, nil
}

func rankList(ranks []int) string {
	s := make([]string, len(ranks))
	for i, r := range ranks {
		s[i] = strconv.Itoa(r)
	}
	if len(ranks) == 1 {
		return "rank " + s[0]
	}
	return "ranks " + strings.Join(s, ", ")
}

// refuseExisting is the refuseExisting of rank 0, which alone writes the
// run directory, agreed by every rank.
func (j *job) refuseExisting(dir string, overwrite bool) error {
	var err error
	if j.leader() {
		err = refuseExisting(dir, overwrite)
	}
	return j.agree(err)
}

// batchOrder is the batches of every epoch: data.Batches in one process,
// this rank's shards of the same permutation in a -dist job.
type batchOrder interface {
	Len() int
	Epoch(e int) [][]int
}

// batches returns the batch order of n training examples with batch per
// rank. In one process it is data.NewBatches's, as it always was; in a
// -dist job, batch k of all the ranks together is batch k of one process
// with a batch size times larger (the leftover indices of an epoch are
// dropped, so every rank takes the same number of steps).
func (j *job) batches(n, batch int, seed uint64) (batchOrder, error) {
	if !j.distributed() {
		return data.NewBatches(n, batch, true, seed, true)
	}
	s, err := dist.NewSampler(n, j.rank(), j.size(), dist.SamplerConfig{Shuffle: true, Seed: seed, DropLast: true})
	if err != nil {
		return nil, err
	}
	if s.Len() < batch {
		return nil, fmt.Errorf("the training set has %d images, fewer than one batch of %d for each of %s", n, batch, processes(j.size()))
	}
	return shardBatches{s, batch}, nil
}

type shardBatches struct {
	s     *dist.Sampler
	batch int
}

func (b shardBatches) Len() int            { return b.s.Len() / b.batch }
func (b shardBatches) Epoch(e int) [][]int { return b.s.Batches(e, b.batch) }

// globalBatches is the number of batches of n examples in an epoch of
// every rank together, batch per rank.
func globalBatches(n, batch, ranks int) int { return n / max(ranks, 1) / batch }

// startDataParallel wraps the trainer's model in dist.DataParallel, which
// broadcasts rank 0's parameters (after a resume every rank restored the
// same ones) and averages the gradients from now on. Without -dist it does
// nothing.
func (t *trainer) startDataParallel() error {
	if !t.job.distributed() {
		return nil
	}
	dp, err := dist.NewDataParallel(t.job.comm, nn.Vars(t.model.Parameters()), dist.DataParallelConfig{})
	if err != nil {
		return err
	}
	t.dp = dp
	return nil
}

// syncGrads waits for the gradients averaged over the ranks: between
// Backward and the optimizer step.
func (t *trainer) syncGrads() error {
	if t.dp == nil {
		return nil
	}
	return t.dp.Wait()
}

// distCheckEvery is how many steps apart the ranks of a -dist job agree
// on stopping: the agreement is a collective, which costs a few per cent
// of a small model's step if taken every step.
const distCheckEvery = 8

// stopAt reports whether training must stop before batch b of epoch, on
// an interrupt. In a -dist job the ranks agree on it every
// distCheckEvery batches, and on whether any rank's running loss has
// diverged (every rank then fails), so that all stop at the same batch:
// an interrupt that reaches the ranks at different moments stops them
// all at the first such batch after one of them saw it.
func (t *trainer) stopAt(ctx context.Context, epoch, b int) (bool, error) {
	if !t.job.distributed() {
		return ctx.Err() != nil, nil
	}
	if b%distCheckEvery != 0 {
		return false, nil
	}
	lossErr := t.lossError(epoch, b)
	diverged, stop, err := t.job.anyRank(lossErr != nil, ctx.Err() != nil)
	if err != nil {
		return false, err
	}
	if len(diverged) > 0 {
		if lossErr != nil {
			return false, &agreedError{err: lossErr, own: true}
		}
		return false, &agreedError{err: fmt.Errorf("stopping: training diverged on %s (see its error)", rankList(diverged))}
	}
	return len(stop) > 0, nil
}

// endEpoch averages the running loss of epoch (n batches) over the
// ranks, and fails on every rank alike if it diverged. Without -dist the
// loss was checked after every step.
func (t *trainer) endEpoch(epoch, n int) error {
	if !t.job.distributed() {
		return nil
	}
	if err := t.averageLoss(); err != nil {
		return err
	}
	if err := t.lossError(epoch, n); err != nil {
		return &agreedError{err: err, own: true}
	}
	if t.job.size() == 1 {
		return nil
	}
	sum, err := t.checkSameWeights(epoch)
	if err != nil {
		return err
	}
	st := t.dp.Stats()
	waited := st.WaitTime - t.waited
	t.waited = st.WaitTime
	fmt.Fprintf(t.env.stdout, "epoch %d: weights identical on the %s (fnv64 %016x); %.3f ms per step waiting for the all-reduces\n",
		epoch+1, processes(t.job.size()), sum, float64(waited)/1e6/float64(max(n, 1)))
	return nil
}

// checkSameWeights checks, after epoch, that every rank holds rank 0's
// weights bit for bit, as averaged gradients and identical optimizer
// steps must give: each rank compares a hash of its parameters with
// rank 0's. Every rank fails if one differs (a nondeterministic device,
// or ranks running different builds).
func (t *trainer) checkSameWeights(epoch int) (uint64, error) {
	h := fnv.New64a()
	var b [4]byte
	for _, p := range t.model.Parameters() {
		for _, v := range p.Value.Data() {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	sum := h.Sum64()
	// Four 16-bit parts: float32 holds each exactly.
	own := make([]float32, 4)
	for i := range own {
		own[i] = float32(sum >> (16 * i) & 0xffff)
	}
	ref := tensor.FromSlice(t.dev, own, 4)
	defer ref.Free()
	if err := t.job.comm.Broadcast(0, ref); err != nil {
		return 0, err
	}
	differ := !slices.Equal(ref.Data(), own)
	bad, _, err := t.job.anyRank(differ, false)
	switch {
	case err != nil:
		return 0, err
	case len(bad) > 0:
		return 0, &agreedError{err: fmt.Errorf("after epoch %d the weights of %s differ from rank 0's: the ranks diverged (a nondeterministic device, or ranks running different builds of gograd)", epoch+1, rankList(bad)), own: differ}
	}
	return sum, nil
}

// describeJob prints the processes of a -dist job.
func (t *trainer) describeJob(w io.Writer) {
	if !t.job.distributed() {
		return
	}
	fmt.Fprintf(w, "data-parallel: -dist %s, %s, batch %d each (%d in all), timeout %v\n", t.job.comm.Backend(),
		processes(t.job.size()), t.cfg.Batch, t.cfg.Batch*t.job.size(), t.job.timeout)
}

// saveRun saves the run directory (trainer.save) on rank 0, which alone
// writes it.
func (t *trainer) saveRun(ck *checkpoint, conf *confusionMatrix) error {
	if !t.job.leader() {
		return nil
	}
	return t.save(ck, conf)
}

// averageLoss replaces the running loss by its mean over the ranks: at
// the end of an epoch and before saving an interrupted one. The losses of
// the earlier part of a resumed epoch, the same on every rank, stay as
// they are.
func (t *trainer) averageLoss() error {
	if !t.job.distributed() {
		return nil
	}
	return t.job.comm.AllReduce(dist.Mean, t.lossSum)
}

// checkWorldSize refuses to resume, with a different number of ranks,
// a run whose batches were cut for another number: the batch of each
// rank, and so the training, would change.
func (j *job) checkWorldSize(fs *command, ck *checkpoint, dir string) error {
	if ck.WorldSize == j.size() {
		return nil
	}
	how := fmt.Sprintf("gograd train -resume %s", dir)
	if ck.WorldSize > 1 {
		backend := j.comm.Backend()
		if backend == "none" {
			backend = "mpi"
		}
		how = fmt.Sprintf("mpirun -np %d gograd train -dist %s -resume %s", ck.WorldSize, backend, dir)
	}
	return fs.usagef("the run in %s was trained by %s and this job has %s: a run resumes with the number of processes it started with (-batch %d is per process); resume it with: %s",
		dir, processes(ck.WorldSize), processes(j.size()), ck.Config.Batch, how)
}

// resumeCommand is the command line that resumes the run in dir with
// this job's processes.
func (j *job) resumeCommand(dir string) string {
	if !j.distributed() {
		return "gograd train -resume " + dir
	}
	return fmt.Sprintf("mpirun -np %d gograd train -dist %s -resume %s", j.size(), j.comm.Backend(), dir)
}

func processes(n int) string {
	if n == 1 {
		return "1 process"
	}
	return fmt.Sprintf("%d processes", n)
}

// worldSizeOf reads a checkpoint's world_size; one where it is absent.
func worldSizeOf(md map[string]string) (int, error) {
	v, ok := md["world_size"]
	if !ok {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("metadata world_size=%q: want a number of processes, at least 1", v)
	}
	return n, nil
}
