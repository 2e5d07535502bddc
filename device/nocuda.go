//go:build !cuda

package device

// CUDABuilt reports whether this binary was built with the cuda tag.
const CUDABuilt = false

// NewCUDA returns ErrNoCUDA: this build has no CUDA backend.
func NewCUDA(ordinal int) (Device, error) {
	return nil, ErrNoCUDA
}
