// Package cuda is gograd's thin, checked layer over the CUDA driver API
// (gorgonia.org/cu): one context per Context value, the embedded kernel
// module (kernels.ptx, compiled from kernels.cu at the repository root),
// one launcher per kernel family that chooses grid and block sizes, and a
// caching allocator (Pool).
//
// Everything but Pool, SizeClass, FormatBytes and the layout of the
// multi-tensor optimizer tables (multi.go) is built only with the cuda build
// tag, and needs CUDA's headers and link-time stub library
// (scripts/cuda-sdk.sh fetches them; `make cuda-check` builds with them).
//
// A binary built with the cuda tag runs only where the NVIDIA driver is
// installed: it links libcuda.so.1, so without the driver the dynamic loader
// stops it before main (exit status 127), and gorgonia.org/cu's package
// initialiser calls cuInit and exits the process (status 1) when that fails,
// for instance on a machine with the driver but no GPU. Neither can be caught
// from Go, so CPU-only machines use the default build, which has no CUDA.
//
// Concurrency and streams: a CUDA context is current per OS thread, so every
// public method of Context locks its goroutine to its thread, makes the
// context current, works, and unlocks; calls are serialised by a mutex. All
// work is queued on the context's default stream and runs asynchronously;
// only copies to the host (and Sync) wait for it, and they report the errors
// of kernels that failed earlier.
//
// Testing without a GPU: cuda/emu runs kernels.cu on the CPU (a thread per
// CUDA thread, real barriers, emulated shuffles) against float64 references,
// with `sh cuda/emu/run.sh` or `make cuda-check CUDA_EMU=1`. The cuda-tagged
// tests of this package and of device need a GPU.
//
// Kernel parameters: gorgonia.org/cu copies exactly 8 bytes from each
// parameter pointer, so every argument is passed as a uint64 (a float32 or
// int32 in its low half), and kernels declare sizes as long long.
package cuda
