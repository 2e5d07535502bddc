//go:build !mpi

package dist

// openMPI reports that this build has no MPI backend.
func openMPI(Config) (Communicator, error) { return nil, ErrNoMPI }

// MPIBuilt reports whether this binary has the MPI backend.
const MPIBuilt = false
