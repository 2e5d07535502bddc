// emu.h: just enough of CUDA to run kernels.cu on the CPU, for checking the
// kernels' logic on a machine without a GPU (see run.sh). Each CUDA thread is
// a std::thread; the blocks of a launch run one after another; __shared__
// variables become statics (shared by the threads of the running block);
// __syncthreads is a barrier of the block, and a warp shuffle exchanges
// values through a buffer between two barriers of the warp, so a lane that
// skips a shuffle deadlocks instead of passing. Nothing here models speed.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
	unsigned x = 1, y = 1, z = 1;
};
extern thread_local dim3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

struct alignas(16) float4 {
	float x, y, z, w;
};
struct alignas(8) float2 {
	float x, y;
};
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline float2 make_float2(float a, float b) { return {a, b}; }

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define CUDART_NAN_F std::numeric_limits<float>::quiet_NaN()
#define CUDART_INF_F std::numeric_limits<float>::infinity()
using std::max;
using std::min;

inline unsigned __float_as_uint(float f) {
	unsigned u;
	memcpy(&u, &f, 4);
	return u;
}

// The block being run.
struct EmuBlock {
	std::barrier<>* block;
	std::vector<std::unique_ptr<std::barrier<>>> warps;
	std::vector<uint64_t> exchange; // one slot per thread
};
extern EmuBlock* emu_block;

inline void __syncthreads() { emu_block->block->arrive_and_wait(); }

inline unsigned emu_thread() {
	return threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y;
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
	if (mask != 0xffffffffu) abort(); // kernels.cu shuffles whole warps only
	unsigned t = emu_thread(), w = t / 32, lane = t % 32;
	uint64_t bits = 0;
	memcpy(&bits, &v, sizeof(T));
	emu_block->exchange[t] = bits;
	emu_block->warps[w]->arrive_and_wait();
	uint64_t o = emu_block->exchange[w * 32 + (lane ^ lane_mask)];
	emu_block->warps[w]->arrive_and_wait();
	T r;
	memcpy(&r, &o, sizeof(T));
	return r;
}

// emu_launch runs body as every thread of a grid x block launch.
void emu_launch(const std::function<void()>& body, dim3 grid, dim3 block);
