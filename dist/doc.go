// Package dist trains one model in several processes at once: data-parallel
// training, where each process (a rank) holds a copy of the model, computes
// the gradients of its shard of every batch, and the ranks average their
// gradients before each optimizer step. The collectives come from existing
// engines, never from code of ours: Open MPI for CPU buffers (build tag
// mpi) and NCCL for CUDA buffers (build tags cuda and mpi; NCCL is loaded
// at run time, its unique id broadcast over MPI, one process per GPU).
//
// The pieces:
//
//   - Communicator: rank, size, in-place all-reduce (sum or mean) of a group
//     of tensors as one collective, its asynchronous form returning a
//     Request, broadcast, barrier. Open("mpi"), Open("nccl") or Open("none")
//     (one process, every collective the identity). Errors are *Error values
//     that name the reporting rank and, when known, the ranks that failed.
//   - DataParallel: PyTorch DistributedDataParallel's design. Parameters
//     are broadcast from rank 0 at start, after a check that every rank has
//     the same parameter shapes; gradients are grouped into buckets in
//     reverse parameter order (about 25 MB, the first one 1 MB), each
//     bucket's all-reduce starts from the autograd gradient hooks while
//     Backward computes the rest, and Wait leaves averaged gradients for the
//     optimizer step. After the first pass, buckets are rebuilt in the order
//     the gradients actually became ready.
//   - Any: a flag agreed by every rank, for decisions all must take at the
//     same step (stopping on an interrupt).
//   - Sampler: each rank's disjoint shard of every epoch's permutation, the
//     same permutation on every rank (the one data.NewBatches uses).
//
// A training step, on every rank:
//
//	comm, err := dist.Open("mpi")          // under mpirun
//	dp, err := dist.NewDataParallel(comm, nn.Vars(model.Parameters()), dist.Config{})
//	s, err := dist.NewSampler(n, comm.Rank(), comm.Size(), dist.SamplerConfig{Shuffle: true, Seed: 1})
//	for _, b := range s.Batches(epoch, 64) { // 64 per rank
//		loss := ...forward on b...
//		loss.Backward()  // the hooks start the all-reduces
//		dp.Wait()        // averaged gradients
//		opt.Step()
//		nn.ZeroGrad(model)
//	}
//
// Faults: a collective that has not completed within the communicator's
// timeout fails on the ranks waiting for it, with an error naming the
// ranks that never started it (a hung rank). A rank that dies makes mpirun
// end the whole job at once, naming it. After a failed collective the
// communicator refuses further work, and Close aborts the job, since MPI
// cannot cancel a collective in flight.
package dist
