//go:build !(cuda && mpi)

package dist

// openNCCL reports that this build has no NCCL backend.
func openNCCL(Config) (Communicator, error) { return nil, ErrNoNCCL }
