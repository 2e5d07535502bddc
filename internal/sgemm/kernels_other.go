//go:build !amd64 || purego

package sgemm

// kernels returns the microkernels this build can run, fastest first.
func kernels() []kernel {
	return []kernel{genericKernel()}
}
