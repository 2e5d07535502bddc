// kernels.cu: every CUDA kernel of gograd (float32).
//
// `make ptx` compiles this file to cuda/kernels.ptx (compute_80 PTX, which the
// driver compiles for the GPU at load time); the cuda package embeds it and
// its launchers (cuda/launch.go) choose grid and block sizes. Conventions:
//   - kernels are extern "C" and named <op>_f32;
//   - scalar parameters are long long (sizes, strides), int (op codes,
//     flags), float or unsigned long long; the Go side passes every argument
//     as 8 bytes, of which a 4-byte parameter reads the low half;
//   - elementwise kernels use grid-stride loops, so any grid size is correct;
//   - reductions combine within a warp by xor shuffles, then across warps
//     through shared memory. Every launch uses a block size that is a multiple
//     of 32 and every lane reaches every shuffle, so full masks are valid;
//   - op codes are the values of device.UnaryOp, BinaryOp, TernaryOp,
//     ReduceOp and Activation, from cuda/ops.h (generated);
//   - integer data (labels, row indices, argmax results) is stored as float32.
//     Kernels that read an index check it, and for a bad one write NaN and
//     record it in a fault word (see report_fault) instead of reading out of
//     bounds; the host reports it at its next synchronisation.

#include <math_constants.h>

#define FULL_MASK 0xffffffffu

// ---------------------------------------------------------------------------
// Shared helpers

// The op codes: U_* (device.UnaryOp), B_* (BinaryOp), T_* (TernaryOp), R_*
// (ReduceOp) and A_* (Activation), generated from the op table of package
// device by `go generate ./device`.
#include "cuda/ops.h"

__device__ __forceinline__ long long grid_start() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ long long grid_stride() { return (long long)gridDim.x * blockDim.x; }
__device__ __forceinline__ bool aligned16(const void* p) { return ((unsigned long long)p & 15) == 0; }

// relu passes NaN through, as the CPU backend does.
__device__ __forceinline__ float relu(float x) { return x <= 0.0f ? 0.0f : x; }
__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// sign_of is -1, 0 or 1; 0 for NaN, as PyTorch's sign.
__device__ __forceinline__ float sign_of(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f); }
#define GELU_K 0.7978845608028654f // sqrt(2/pi)
#define GELU_C 0.044715f
__device__ __forceinline__ float gelu_tanh(float x) {
	return 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x)));
}
__device__ __forceinline__ float gelu_tanh_grad(float x) {
	float t = tanhf(GELU_K * (x + GELU_C * x * x * x));
	return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
}
__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }
__device__ __forceinline__ float gelu_erf_grad(float x) {
	return 0.5f * (1.0f + erff(x * 0.7071067811865476f)) + x * 0.3989422804014327f * expf(-0.5f * x * x);
}
// clamp keeps NaN, as PyTorch's clamp; with lo > hi every value is hi.
__device__ __forceinline__ float clamp(float x, float lo, float hi) { return x != x ? x : fminf(fmaxf(x, lo), hi); }

__device__ __forceinline__ float apply_unary(int op, float x, float alpha, float beta) {
	switch (op) {
	case U_NEG: return -x;
	case U_EXP: return expf(x);
	case U_LOG: return logf(x);
	case U_RELU: return relu(x);
	case U_SIGMOID: return sigmoid(x);
	case U_TANH: return tanhf(x);
	case U_SQRT: return sqrtf(x);
	case U_ADD_SCALAR: return x + alpha;
	case U_MUL_SCALAR: return x * alpha;
	case U_POW_SCALAR: return alpha == 2.0f ? x * x : powf(x, alpha);
	case U_SQUARE: return x * x;
	case U_ABS: return fabsf(x);
	case U_LEAKY_RELU: return x > 0.0f ? x : alpha * x;
	case U_GELU_TANH: return gelu_tanh(x);
	case U_GELU_ERF: return gelu_erf(x);
	case U_SILU: return x * sigmoid(x);
	case U_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
	case U_CLAMP: return clamp(x, alpha, beta);
	case U_SIGN: return sign_of(x);
	}
	return CUDART_NAN_F;
}

__device__ __forceinline__ float apply_binary(int op, float a, float b, float alpha, float beta) {
	switch (op) {
	case B_ADD: return a + b;
	case B_SUB: return a - b;
	case B_MUL: return a * b;
	case B_DIV: return a / b;
	case B_POW: return powf(a, b);
	case B_MAX: return (a > b || a != a) ? a : b; // NaN wins, as Go's max
	case B_GREATER_EQ: return a >= b ? 1.0f : 0.0f;
	case B_RELU_GRAD: return a > 0.0f ? b : 0.0f;
	case B_SIGMOID_GRAD: return b * a * (1.0f - a);
	case B_TANH_GRAD: return b * (1.0f - a * a);
	case B_GREATER: return a > b ? 1.0f : 0.0f;
	case B_EQUAL: return a == b ? 1.0f : 0.0f;
	case B_ABS_GRAD: return b * sign_of(a);
	case B_LEAKY_RELU_GRAD: return a > 0.0f ? b : alpha * b;
	case B_GELU_TANH_GRAD: return b * gelu_tanh_grad(a);
	case B_GELU_ERF_GRAD: return b * gelu_erf_grad(a);
	case B_SILU_GRAD: {
		float s = sigmoid(a);
		return b * (s * (1.0f + a * (1.0f - s)));
	}
	case B_SOFTPLUS_GRAD: return a > 20.0f ? b : b * sigmoid(a);
	case B_CLAMP_GRAD: return (a >= alpha && a <= beta) ? b : 0.0f;
	}
	return CUDART_NAN_F;
}

__device__ __forceinline__ float apply_ternary(int op, float a, float b, float c) {
	switch (op) {
	case T_WHERE: return a != 0.0f ? b : c;
	}
	return CUDART_NAN_F;
}

__device__ __forceinline__ float activate(int act, float x) {
	switch (act) {
	case A_RELU: return relu(x);
	case A_SIGMOID: return sigmoid(x);
	case A_TANH: return tanhf(x);
	}
	return x;
}

// Walks: an iteration over a row-major output of up to 6 axes [_, s1..s5],
// of which the last nd are used (the launcher drops leading unit axes).
// walk_index splits the flat output index i into idx[6 - nd .. 5]. I is
// unsigned or unsigned long long: the launcher picks 32 bits when every
// offset fits, which makes the divisions much cheaper.
#define WALK_DIMS 6 // device.MaxDims
template <typename I>
__device__ __forceinline__ void walk_index(I i, int nd, const I* s, I* idx) {
	for (int d = WALK_DIMS - 1; d > WALK_DIMS - nd; d--) {
		idx[d] = i % s[d];
		i /= s[d];
	}
	idx[WALK_DIMS - nd] = i;
}

// walk_dot is off + Σ idx[d]*t[d] over the last nd axes.
template <typename I>
__device__ __forceinline__ I walk_dot(int nd, const I* idx, I off, const I* t) {
	for (int d = WALK_DIMS - nd; d < WALK_DIMS; d++) off += idx[d] * t[d];
	return off;
}

// report_fault records a bad index v at row of the kernel tagged tag in the
// fault word, host memory mapped into the device: one 8-byte store of
// (bits of v) << 32 | (row mod 2^24) << 8 | tag, so that racing writers leave
// one consistent record. The host reads and clears it after synchronising.
__device__ __forceinline__ void report_fault(unsigned long long* fault, unsigned tag, long long row, float v) {
	*(volatile unsigned long long*)fault = (unsigned long long)__float_as_uint(v) << 32 |
	                                       (unsigned long long)(row & 0xffffff) << 8 | tag;
}

// ---------------------------------------------------------------------------
// Elementwise kernels

// fill_f32: dst[i] = v for i < n.
extern "C" __global__ void fill_f32(float* dst, long long n, float v) {
	long long n4 = aligned16(dst) ? n / 4 : 0;
	float4 v4 = make_float4(v, v, v, v);
	for (long long i = grid_start(); i < n4; i += grid_stride()) reinterpret_cast<float4*>(dst)[i] = v4;
	for (long long i = n4 * 4 + grid_start(); i < n; i += grid_stride()) dst[i] = v;
}

template <typename I>
__device__ __forceinline__ void copy_walk(float* dst, const float* x, I n, int nd, const I* s, I offa, const I* ta,
                                          I offd, const I* td, int dstrided, int pad, const I* lo, const I* hi,
                                          float fill) {
	for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
		I idx[WALK_DIMS];
		walk_index<I>(i, nd, s, idx);
		float v;
		bool inside = true;
		if (pad)
			for (int d = WALK_DIMS - nd; d < WALK_DIMS; d++) inside = inside && idx[d] >= lo[d] && idx[d] < hi[d];
		if (inside) {
			I o = offa;
			for (int d = WALK_DIMS - nd; d < WALK_DIMS; d++) o += (idx[d] - (pad ? lo[d] : 0)) * ta[d];
			v = x[o];
		} else {
			v = fill;
		}
		dst[dstrided ? walk_dot<I>(nd, idx, offd, td) : offd + i] = v;
	}
}

// copy_walk_f32: dst[offd + Σ i_d*d_d] (or dst[offd + i] unless dstrided) =
// x[offa + Σ (i_d - lo_d)*a_d] over the shape [n/(s1*...*s5), s1, ..., s5],
// and fill where pad is set and some i_d lies outside [lo_d, hi_d). wide
// selects 64-bit index arithmetic.
extern "C" __global__ void copy_walk_f32(float* dst, const float* x, long long n, int nd, long long s1, long long s2,
                                         long long s3, long long s4, long long s5, long long offa, long long a0,
                                         long long a1, long long a2, long long a3, long long a4, long long a5,
                                         long long offd, long long d0, long long d1, long long d2, long long d3,
                                         long long d4, long long d5, int dstrided, int pad, long long lo0,
                                         long long lo1, long long lo2, long long lo3, long long lo4, long long lo5,
                                         long long hi0, long long hi1, long long hi2, long long hi3, long long hi4,
                                         long long hi5, float fill, int wide) {
	if (wide) {
		typedef unsigned long long I;
		I s[6] = {0, (I)s1, (I)s2, (I)s3, (I)s4, (I)s5}, ta[6] = {(I)a0, (I)a1, (I)a2, (I)a3, (I)a4, (I)a5};
		I td[6] = {(I)d0, (I)d1, (I)d2, (I)d3, (I)d4, (I)d5};
		I lo[6] = {(I)lo0, (I)lo1, (I)lo2, (I)lo3, (I)lo4, (I)lo5}, hi[6] = {(I)hi0, (I)hi1, (I)hi2, (I)hi3, (I)hi4, (I)hi5};
		copy_walk<I>(dst, x, n, nd, s, offa, ta, offd, td, dstrided, pad, lo, hi, fill);
	} else {
		typedef unsigned I;
		I s[6] = {0, (I)s1, (I)s2, (I)s3, (I)s4, (I)s5}, ta[6] = {(I)a0, (I)a1, (I)a2, (I)a3, (I)a4, (I)a5};
		I td[6] = {(I)d0, (I)d1, (I)d2, (I)d3, (I)d4, (I)d5};
		I lo[6] = {(I)lo0, (I)lo1, (I)lo2, (I)lo3, (I)lo4, (I)lo5}, hi[6] = {(I)hi0, (I)hi1, (I)hi2, (I)hi3, (I)hi4, (I)hi5};
		copy_walk<I>(dst, x, (I)n, nd, s, (I)offa, ta, (I)offd, td, dstrided, pad, lo, hi, fill);
	}
}

// unary_f32: dst[i] = op(x[i], alpha, beta) for i < n; dst may be x.
extern "C" __global__ void unary_f32(int op, float* dst, const float* x, long long n, float alpha, float beta) {
	long long n4 = (aligned16(dst) && aligned16(x)) ? n / 4 : 0;
	for (long long i = grid_start(); i < n4; i += grid_stride()) {
		float4 v = reinterpret_cast<const float4*>(x)[i];
		v.x = apply_unary(op, v.x, alpha, beta);
		v.y = apply_unary(op, v.y, alpha, beta);
		v.z = apply_unary(op, v.z, alpha, beta);
		v.w = apply_unary(op, v.w, alpha, beta);
		reinterpret_cast<float4*>(dst)[i] = v;
	}
	for (long long i = n4 * 4 + grid_start(); i < n; i += grid_stride()) dst[i] = apply_unary(op, x[i], alpha, beta);
}

// binary_f32: dst[i] = op(a[i], b[i], alpha, beta) for i < n, all contiguous;
// dst may be a or b.
extern "C" __global__ void binary_f32(int op, float* dst, const float* a, const float* b, long long n, float alpha,
                                      float beta) {
	long long n4 = (aligned16(dst) && aligned16(a) && aligned16(b)) ? n / 4 : 0;
	for (long long i = grid_start(); i < n4; i += grid_stride()) {
		float4 u = reinterpret_cast<const float4*>(a)[i];
		float4 v = reinterpret_cast<const float4*>(b)[i];
		u.x = apply_binary(op, u.x, v.x, alpha, beta);
		u.y = apply_binary(op, u.y, v.y, alpha, beta);
		u.z = apply_binary(op, u.z, v.z, alpha, beta);
		u.w = apply_binary(op, u.w, v.w, alpha, beta);
		reinterpret_cast<float4*>(dst)[i] = u;
	}
	for (long long i = n4 * 4 + grid_start(); i < n; i += grid_stride()) dst[i] = apply_binary(op, a[i], b[i], alpha, beta);
}

template <typename I>
__device__ __forceinline__ void binary_walk(int op, float* dst, const float* a, const float* b, I n, int nd,
                                            const I* s, I offa, const I* ta, I offb, const I* tb, float alpha,
                                            float beta) {
	for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
		I idx[WALK_DIMS];
		walk_index<I>(i, nd, s, idx);
		dst[i] = apply_binary(op, a[walk_dot<I>(nd, idx, offa, ta)], b[walk_dot<I>(nd, idx, offb, tb)], alpha, beta);
	}
}

// binary_walk_f32: dst[i] = op(a[offa + Σ i_d*a_d], b[offb + Σ i_d*b_d],
// alpha, beta) over the shape [n/(s1*...*s5), s1, ..., s5] (stride 0
// broadcasts an axis).
extern "C" __global__ void binary_walk_f32(int op, float* dst, const float* a, const float* b, long long n, int nd,
                                           long long s1, long long s2, long long s3, long long s4, long long s5,
                                           long long offa, long long a0, long long a1, long long a2, long long a3,
                                           long long a4, long long a5, long long offb, long long b0, long long b1,
                                           long long b2, long long b3, long long b4, long long b5, float alpha,
                                           float beta, int wide) {
	if (wide) {
		typedef unsigned long long I;
		I s[6] = {0, (I)s1, (I)s2, (I)s3, (I)s4, (I)s5};
		I ta[6] = {(I)a0, (I)a1, (I)a2, (I)a3, (I)a4, (I)a5}, tb[6] = {(I)b0, (I)b1, (I)b2, (I)b3, (I)b4, (I)b5};
		binary_walk<I>(op, dst, a, b, n, nd, s, offa, ta, offb, tb, alpha, beta);
	} else {
		typedef unsigned I;
		I s[6] = {0, (I)s1, (I)s2, (I)s3, (I)s4, (I)s5};
		I ta[6] = {(I)a0, (I)a1, (I)a2, (I)a3, (I)a4, (I)a5}, tb[6] = {(I)b0, (I)b1, (I)b2, (I)b3, (I)b4, (I)b5};
		binary_walk<I>(op, dst, a, b, (I)n, nd, s, (I)offa, ta, (I)offb, tb, alpha, beta);
	}
}

template <typename I>
__device__ __forceinline__ void ternary_walk(int op, float* dst, const float* a, const float* b, const float* c, I n,
                                             int nd, const I* s, I offa, const I* ta, I offb, const I* tb, I offc,
                                             const I* tc) {
	for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
		I idx[WALK_DIMS];
		walk_index<I>(i, nd, s, idx);
		dst[i] = apply_ternary(op, a[walk_dot<I>(nd, idx, offa, ta)], b[walk_dot<I>(nd, idx, offb, tb)],
		                       c[walk_dot<I>(nd, idx, offc, tc)]);
	}
}

// ternary_walk_f32: dst[i] = op(a[...], b[...], c[...]), each read as
// binary_walk_f32 reads a and b.
extern "C" __global__ void ternary_walk_f32(int op, float* dst, const float* a, const float* b, const float* c,
                                            long long n, int nd, long long s1, long long s2, long long s3,
                                            long long s4, long long s5, long long offa, long long a0, long long a1,
                                            long long a2, long long a3, long long a4, long long a5, long long offb,
                                            long long b0, long long b1, long long b2, long long b3, long long b4,
                                            long long b5, long long offc, long long c0, long long c1, long long c2,
                                            long long c3, long long c4, long long c5, int wide) {
	if (wide) {
		typedef unsigned long long I;
		I s[6] = {0, (I)s1, (I)s2, (I)s3, (I)s4, (I)s5};
		I ta[6] = {(I)a0, (I)a1, (I)a2, (I)a3, (I)a4, (I)a5}, tb[6] = {(I)b0, (I)b1, (I)b2, (I)b3, (I)b4, (I)b5};
		I tc[6] = {(I)c0, (I)c1, (I)c2, (I)c3, (I)c4, (I)c5};
		ternary_walk<I>(op, dst, a, b, c, n, nd, s, offa, ta, offb, tb, offc, tc);
	} else {
		typedef unsigned I;
		I s[6] = {0, (I)s1, (I)s2, (I)s3, (I)s4, (I)s5};
		I ta[6] = {(I)a0, (I)a1, (I)a2, (I)a3, (I)a4, (I)a5}, tb[6] = {(I)b0, (I)b1, (I)b2, (I)b3, (I)b4, (I)b5};
		I tc[6] = {(I)c0, (I)c1, (I)c2, (I)c3, (I)c4, (I)c5};
		ternary_walk<I>(op, dst, a, b, c, (I)n, nd, s, (I)offa, ta, (I)offb, tb, (I)offc, tc);
	}
}

// ---------------------------------------------------------------------------
// Reductions. x is viewed as [outer, n, inner]; the middle axis is reduced.
// One accumulator type serves every op: sums in double (as the CPU backend
// does), the maximum with its index for max and argmax. The maximum prefers
// NaN, then the larger value, then the smaller index, so that the result does
// not depend on the order partial results are merged in.

struct RAcc {
	double s;    // sum (R_SUM, R_MEAN)
	float m;     // best value (R_MAX, R_ARGMAX)
	long long i; // index of m
};

__device__ __forceinline__ RAcc racc_empty() {
	RAcc a;
	a.s = 0.0;
	a.m = -CUDART_INF_F;
	a.i = 0x7fffffffffffffffLL;
	return a;
}

// better reports whether (v, j) should replace (m, i) as the maximum.
__device__ __forceinline__ bool better(float v, long long j, float m, long long i) {
	bool vn = v != v, mn = m != m;
	if (vn || mn) return vn && (!mn || j < i);
	return v > m || (v == m && j < i);
}

__device__ __forceinline__ RAcc racc_add(int op, RAcc a, float v, long long j) {
	if (op == R_SUM || op == R_MEAN) {
		a.s += (double)v;
	} else if (better(v, j, a.m, a.i)) {
		a.m = v;
		a.i = j;
	}
	return a;
}

__device__ __forceinline__ RAcc racc_merge(int op, RAcc a, RAcc b) {
	if (op == R_SUM || op == R_MEAN) {
		a.s += b.s;
	} else if (better(b.m, b.i, a.m, a.i)) {
		a.m = b.m;
		a.i = b.i;
	}
	return a;
}

// warp_reduce leaves the merge of the warp's 32 accumulators in every lane.
__device__ __forceinline__ RAcc warp_reduce(int op, RAcc a) {
#pragma unroll
	for (int off = 16; off > 0; off >>= 1) {
		RAcc o;
		o.s = __shfl_xor_sync(FULL_MASK, a.s, off);
		o.m = __shfl_xor_sync(FULL_MASK, a.m, off);
		o.i = __shfl_xor_sync(FULL_MASK, a.i, off);
		a = racc_merge(op, a, o);
	}
	return a;
}

// block_reduce merges the accumulators of a 1-D block; the result is valid in
// thread 0. sh must hold 32 entries. It starts with a barrier so that sh can
// be reused by the next call in a loop.
__device__ __forceinline__ RAcc block_reduce(int op, RAcc a, RAcc* sh) {
	const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	a = warp_reduce(op, a);
	__syncthreads();
	if (lane == 0) sh[warp] = a;
	__syncthreads();
	if (warp == 0) {
		a = lane < (int)(blockDim.x >> 5) ? sh[lane] : racc_empty();
		a = warp_reduce(op, a);
	}
	return a;
}

__device__ __forceinline__ float racc_result(int op, RAcc a, long long n) {
	switch (op) {
	case R_SUM: return (float)a.s;
	case R_MEAN: return (float)(a.s / (double)n);
	case R_MAX: return a.m;
	}
	return (float)a.i;
}

// reduce_rows_f32: dst[o] = op over j < n of x[o*n + j] (inner == 1), one
// warp per row; for short rows.
extern "C" __global__ void reduce_rows_f32(int op, float* dst, const float* x, long long outer, long long n) {
	const int lane = threadIdx.x & 31;
	const long long warps = grid_stride() >> 5;
	for (long long row = grid_start() >> 5; row < outer; row += warps) {
		const float* xr = x + row * n;
		RAcc a = racc_empty();
		for (long long j = lane; j < n; j += 32) a = racc_add(op, a, xr[j], j);
		a = warp_reduce(op, a);
		if (lane == 0) dst[row] = racc_result(op, a, n);
	}
}

// reduce_partial_f32: part[o*gridDim.x + c] = op over the c-th chunk (of
// chunk values) of row o of x (inner == 1); the first pass of a reduction of
// few long rows, including the reduction of everything (outer == 1).
extern "C" __global__ void reduce_partial_f32(int op, RAcc* part, const float* x, long long outer, long long n,
                                              long long chunk) {
	__shared__ RAcc sh[32];
	const long long lo = blockIdx.x * chunk, hi = min(n, lo + chunk);
	for (long long row = blockIdx.y; row < outer; row += gridDim.y) {
		const float* xr = x + row * n;
		RAcc a = racc_empty();
		for (long long j = lo + threadIdx.x; j < hi; j += blockDim.x) a = racc_add(op, a, xr[j], j);
		a = block_reduce(op, a, sh);
		if (threadIdx.x == 0) part[row * gridDim.x + blockIdx.x] = a;
	}
}

// reduce_final_f32: dst[o] = the merge of the nparts partial results of row o
// written by reduce_partial_f32.
extern "C" __global__ void reduce_final_f32(int op, float* dst, const RAcc* part, long long outer, long long nparts,
                                            long long n) {
	__shared__ RAcc sh[32];
	for (long long row = blockIdx.x; row < outer; row += gridDim.x) {
		RAcc a = racc_empty();
		for (long long c = threadIdx.x; c < nparts; c += blockDim.x) a = racc_merge(op, a, part[row * nparts + c]);
		a = block_reduce(op, a, sh);
		if (threadIdx.x == 0) dst[row] = racc_result(op, a, n);
	}
}

// reduce_cols_f32: dst[o*inner + j] = op over r < n of x[(o*n + r)*inner + j]
// (inner > 1). Blocks are 32x8: threadIdx.x picks a column, so loads are
// coalesced, and the 8 rows of threads split the reduced axis.
extern "C" __global__ void reduce_cols_f32(int op, float* dst, const float* x, long long outer, long long n,
                                           long long inner) {
	__shared__ RAcc sh[8][32];
	const long long j = (long long)blockIdx.x * 32 + threadIdx.x;
	for (long long o = blockIdx.y; o < outer; o += gridDim.y) {
		RAcc a = racc_empty();
		if (j < inner) {
			const float* xo = x + o * n * inner + j;
			for (long long r = threadIdx.y; r < n; r += 8) a = racc_add(op, a, xo[r * inner], r);
		}
		sh[threadIdx.y][threadIdx.x] = a;
		__syncthreads();
		if (threadIdx.y == 0 && j < inner) {
			for (int y = 1; y < 8; ++y) a = racc_merge(op, a, sh[y][threadIdx.x]);
			dst[o * inner + j] = racc_result(op, a, n);
		}
		__syncthreads();
	}
}

// ---------------------------------------------------------------------------
// Softmax family: one block per row (grid-stride over rows). Each thread keeps
// an online (max, sum of exp(x - max)) pair over its share of the row, so the
// row is read once for the statistics and once for the output.

struct MaxSum {
	float m, s;
};

__device__ __forceinline__ MaxSum ms_add(MaxSum a, float v) {
	if (v > a.m) {
		a.s = a.s * expf(a.m - v) + 1.0f;
		a.m = v;
	} else {
		a.s += expf(v - a.m);
	}
	return a;
}

__device__ __forceinline__ MaxSum ms_merge(MaxSum a, MaxSum b) {
	if (b.s == 0.0f) return a; // b saw no element
	if (a.s == 0.0f) return b;
	float m = fmaxf(a.m, b.m);
	a.s = a.s * expf(a.m - m) + b.s * expf(b.m - m);
	a.m = m;
	return a;
}

// row_max_sum returns the (max, sum) of the block's row in every thread.
// sh must hold 33 entries; it starts with a barrier so that sh can be reused
// by the next row.
__device__ __forceinline__ MaxSum row_max_sum(MaxSum a, MaxSum* sh) {
	const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
	for (int off = 16; off > 0; off >>= 1) {
		MaxSum o;
		o.m = __shfl_xor_sync(FULL_MASK, a.m, off);
		o.s = __shfl_xor_sync(FULL_MASK, a.s, off);
		a = ms_merge(a, o);
	}
	__syncthreads();
	if (lane == 0) sh[warp] = a;
	__syncthreads();
	if (threadIdx.x == 0) {
		MaxSum t = sh[0];
		for (int w = 1; w < (int)(blockDim.x >> 5); ++w) t = ms_merge(t, sh[w]);
		sh[32] = t;
	}
	__syncthreads();
	return sh[32];
}

// softmax_f32: dst[r,:] = softmax(x[r,:]) (or log_softmax when log_ is set)
// for rows of n; dst may be x.
extern "C" __global__ void softmax_f32(float* dst, const float* x, long long rows, long long n, int log_) {
	__shared__ MaxSum sh[33];
	for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
		const float* xr = x + r * n;
		float* dr = dst + r * n;
		MaxSum a = {-CUDART_INF_F, 0.0f};
		for (long long j = threadIdx.x; j < n; j += blockDim.x) a = ms_add(a, xr[j]);
		a = row_max_sum(a, sh);
		if (log_) {
			// (x - max) - log(sum), never x - (max + log(sum)): for large
			// logits the rounded sum max + log(sum) loses the small part.
			const float ls = logf(a.s);
			for (long long j = threadIdx.x; j < n; j += blockDim.x) dr[j] = (xr[j] - a.m) - ls;
		} else {
			const float inv = 1.0f / a.s;
			for (long long j = threadIdx.x; j < n; j += blockDim.x) dr[j] = expf(xr[j] - a.m) * inv;
		}
	}
}

// softmax_ce_f32: for each row r of logits (n classes) and its label y,
// loss[r] = -log softmax(logits[r,:])[y] and grad[r,:] = (softmax(logits[r,:])
// - onehot(y)) * scale; a label that is not an integer in [0, n) gives NaN
// and is reported in fault (tag 2).
//
// Fused: the probabilities are never stored. Each is recomputed from the row
// statistics and written straight into grad, so the unfused softmax buffer,
// its log for the loss, and the one-hot subtraction pass are all avoided.
// grad may be logits: x[y] is read before the first barrier.
extern "C" __global__ void softmax_ce_f32(float* loss, float* grad, const float* logits, const float* labels,
                                          long long rows, long long n, float scale,
                                          unsigned long long* fault) {
	__shared__ MaxSum sh[33];
	for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
		const float* xr = logits + r * n;
		float* gr = grad + r * n;
		const float lab = labels[r];
		const bool ok = lab >= 0.0f && lab < (float)n && lab == floorf(lab);
		const long long y = ok ? (long long)lab : 0;
		const float xy = ok ? xr[y] : CUDART_NAN_F;
		MaxSum a = {-CUDART_INF_F, 0.0f};
		for (long long j = threadIdx.x; j < n; j += blockDim.x) a = ms_add(a, xr[j]);
		a = row_max_sum(a, sh);
		if (!ok) {
			for (long long j = threadIdx.x; j < n; j += blockDim.x) gr[j] = CUDART_NAN_F;
			if (threadIdx.x == 0) {
				loss[r] = CUDART_NAN_F;
				report_fault(fault, 2, r, lab);
			}
			continue;
		}
		const float inv = 1.0f / a.s;
		for (long long j = threadIdx.x; j < n; j += blockDim.x) {
			const float p = expf(xr[j] - a.m) * inv;
			gr[j] = (j == y ? p - 1.0f : p) * scale;
		}
		if (threadIdx.x == 0) loss[r] = logf(a.s) - (xy - a.m);
	}
}

// ---------------------------------------------------------------------------
// Row-wise kernels: rows on blockIdx.y (grid-stride), columns on x.

// bias_act_f32: dst[r,j] = act(x[r,j] + bias[j]) for rows of n; dst may be x.
//
// Fused: the biased pre-activation x + bias is never stored, which saves
// writing and re-reading a whole [rows, n] buffer between the two passes.
extern "C" __global__ void bias_act_f32(float* dst, const float* x, const float* bias, long long rows, long long n,
                                        int act) {
	for (long long r = blockIdx.y; r < rows; r += gridDim.y)
		for (long long j = grid_start(); j < n; j += grid_stride())
			dst[r * n + j] = activate(act, x[r * n + j] + bias[j]);
}

// gather_f32: dst[i,:] = src[idx[i],:] for i < nidx, rows of rowLen; src has
// srcRows rows; a bad index gives a row of NaN and is reported in fault (tag 1).
extern "C" __global__ void gather_f32(float* dst, const float* src, const float* idx, long long nidx,
                                      long long rowLen, long long srcRows, unsigned long long* fault) {
	for (long long i = blockIdx.y; i < nidx; i += gridDim.y) {
		const float v = idx[i];
		const bool ok = v >= 0.0f && v < (float)srcRows && v == floorf(v);
		if (!ok && blockIdx.x == 0 && threadIdx.x == 0) report_fault(fault, 1, i, v);
		const float* s = src + (ok ? (long long)v : 0) * rowLen;
		float* d = dst + i * rowLen;
		for (long long j = grid_start(); j < rowLen; j += grid_stride()) d[j] = ok ? s[j] : CUDART_NAN_F;
	}
}

// ---------------------------------------------------------------------------
// Backward of bias + activation: 32-column strips on blockIdx.x.

// act_grad is g·act'(y) from the activation's output y: for ReLU g where
// y > 0 (+Inf included, NaN excluded), as the CPU backend does.
template <int A>
__device__ __forceinline__ float act_grad(float y, float g) {
	if (A == A_RELU) return y > 0.0f ? g : 0.0f;
	if (A == A_SIGMOID) return g * (y * (1.0f - y));
	if (A == A_TANH) return g * (1.0f - y * y);
	return g;
}

// bias_act_grad_cols is bias_act_grad_f32 for one activation; sh holds the
// block's partial sums.
template <int A>
__device__ __forceinline__ void bias_act_grad_cols(float* dx, float* dbias, const float* y, const float* g,
                                                   long long rows, long long n, int accumulate, float (*sh)[32]) {
	for (long long j0 = (long long)blockIdx.x * 32; j0 < n; j0 += (long long)gridDim.x * 32) {
		const long long j = j0 + threadIdx.x;
		float s = 0.0f;
		if (j < n) {
#pragma unroll 4
			for (long long r = threadIdx.y; r < rows; r += blockDim.y) {
				const long long i = r * n + j;
				const float d = act_grad<A>(y[i], g[i]);
				dx[i] = d;
				s += d;
			}
		}
		if (dbias != nullptr) { // the same in every thread: the barriers are uniform
			sh[threadIdx.y][threadIdx.x] = s;
			__syncthreads();
			if (threadIdx.y == 0 && j < n) {
				for (unsigned t = 1; t < blockDim.y; ++t) s += sh[t][threadIdx.x];
				dbias[j] = accumulate ? dbias[j] + s : s;
			}
			__syncthreads();
		}
	}
}

// bias_act_grad_f32: dx[r,j] = g[r,j]·act'(y[r,j]) for y = act(x + bias),
// rows of n, and dbias[j] = (accumulate ? dbias[j] : 0) + sum over r of
// dx[r,j]; dbias may be null, dx may be g.
//
// Fused: act'(y) is never stored, and each dx value is added to its column's
// sum while still in a register instead of being read back by a separate
// column reduction: one launch instead of two, and one [rows, n] read of
// global memory fewer. Blocks are 32 x blockDim.y threads over 32-column
// strips: threadIdx.x picks a column, so loads are coalesced, and each row of
// threads sums every blockDim.y-th row in order; the partial sums meet in
// shared memory in a fixed order, so the result is reproducible (no atomics).
extern "C" __global__ void __launch_bounds__(1024)
    bias_act_grad_f32(float* dx, float* dbias, const float* y, const float* g, long long rows, long long n, int act,
                      int accumulate) {
	__shared__ float sh[32][32];
	switch (act) {
	case A_RELU: bias_act_grad_cols<A_RELU>(dx, dbias, y, g, rows, n, accumulate, sh); break;
	case A_SIGMOID: bias_act_grad_cols<A_SIGMOID>(dx, dbias, y, g, rows, n, accumulate, sh); break;
	case A_TANH: bias_act_grad_cols<A_TANH>(dx, dbias, y, g, rows, n, accumulate, sh); break;
	default: bias_act_grad_cols<A_IDENTITY>(dx, dbias, y, g, rows, n, accumulate, sh);
	}
}

// ---------------------------------------------------------------------------
// Batch normalisation in training: one block per channel (grid-stride over
// the channels), x viewed as [outer, c, inner].

// bn_block_sum2 adds a and b over the block, in a fixed order (a butterfly
// of warp shuffles, then the warps' sums in turn), and returns the sums in
// every thread. blockDim.x is a multiple of 32, at most 1024.
__device__ __forceinline__ void bn_block_sum2(double& a, double& b, double (*sh)[2]) {
	for (int off = 16; off > 0; off >>= 1) {
		a += __shfl_xor_sync(FULL_MASK, a, off);
		b += __shfl_xor_sync(FULL_MASK, b, off);
	}
	const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
	if (lane == 0) {
		sh[warp][0] = a;
		sh[warp][1] = b;
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		for (unsigned w = 1; w < blockDim.x / 32; ++w) {
			a += sh[w][0];
			b += sh[w][1];
		}
		sh[0][0] = a;
		sh[0][1] = b;
	}
	__syncthreads();
	a = sh[0][0];
	b = sh[0][1];
	__syncthreads(); // sh is free again
}

// bn_at is the offset of the k-th of the m values of channel ch.
__device__ __forceinline__ long long bn_at(long long k, long long ch, long long c, long long inner) {
	const long long o = k / inner;
	return (o * c + ch) * inner + (k - o * inner);
}

// bn_grad is the gradient g[i] reaching a batch norm, through the ReLU
// that followed it when y, its output, is not null: g[i] where y[i] > 0,
// else 0, as the CPU's mask.
__device__ __forceinline__ float bn_grad(const float* g, const float* y, long long i) {
	return y == nullptr || y[i] > 0.0f ? g[i] : 0.0f;
}

// batch_norm_f32: per channel, the mean and the biased variance of x in one
// pass (each thread sums its values shifted by the channel's first value in
// float, the block adds the threads' sums in double), mean and invstd =
// 1/sqrt(var + eps) stored, y = (x - mean)·invstd·w + b written in a second
// pass, and, when rmean is not null, the running estimates updated with the
// momentum and the unbiased variance. With relu, y = relu(BN(x)), the ReLU
// that follows fused. y may be x. m = outer·inner >= 2.
extern "C" __global__ void __launch_bounds__(1024)
    batch_norm_f32(float* y, float* mean, float* invstd, float* rmean, float* rvar, const float* x, const float* w,
                   const float* b, long long outer, long long c, long long inner, float eps, float momentum,
                   int fuse_relu) {
	__shared__ double sh[32][2];
	const long long m = outer * inner;
	for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
		const float shift = x[ch * inner];
		float s = 0.0f, ss = 0.0f;
		for (long long k = threadIdx.x; k < m; k += blockDim.x) {
			const float d = x[bn_at(k, ch, c, inner)] - shift;
			s += d;
			ss += d * d;
		}
		double ds = s, dss = ss;
		bn_block_sum2(ds, dss, sh);
		const double mu = ds / (double)m;
		const double var = fmax(dss / (double)m - mu * mu, 0.0);
		const double mn = (double)shift + mu;
		const double is = 1.0 / sqrt(var + (double)eps);
		if (threadIdx.x == 0) {
			mean[ch] = (float)mn;
			invstd[ch] = (float)is;
			if (rmean != nullptr) {
				const double mom = momentum;
				rmean[ch] = (float)((1.0 - mom) * (double)rmean[ch] + mom * mn);
				rvar[ch] = (float)((1.0 - mom) * (double)rvar[ch] + mom * var * (double)m / (double)(m - 1));
			}
		}
		const float scale = (float)(is * (double)w[ch]);
		const float off = b[ch] - (float)mn * scale;
		for (long long k = threadIdx.x; k < m; k += blockDim.x) {
			const long long i = bn_at(k, ch, c, inner);
			const float v = x[i] * scale + off;
			y[i] = fuse_relu ? relu(v) : v;
		}
	}
}

// batch_norm_grad_f32: the backward pass of batch_norm_f32. Per channel, a
// first pass sums g and g·(x - mean) (in float per thread, in double over
// the block); dbias = Σg and dweight = Σg·x̂ are stored, or added when
// accumulate (either may be null); a second pass writes, when dx is not
// null, dx = w·invstd·(g - Σg/m - x̂·dweight/m) with this batch's sums, as
// a·g + bx·x + d. When y, the forward pass's output, is not null, a ReLU
// followed the batch norm: both passes use g·[y > 0] for g (a NaN y is not
// positive). dx may be g or y.
extern "C" __global__ void __launch_bounds__(1024)
    batch_norm_grad_f32(float* dx, float* dweight, float* dbias, const float* x, const float* y,
                        const float* mean, const float* invstd, const float* w, const float* g, long long outer,
                        long long c, long long inner, int accumulate) {
	__shared__ double sh[32][2];
	const long long m = outer * inner;
	for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
		const float mn = mean[ch];
		float s = 0.0f, sx = 0.0f;
		for (long long k = threadIdx.x; k < m; k += blockDim.x) {
			const long long i = bn_at(k, ch, c, inner);
			const float gi = bn_grad(g, y, i);
			s += gi;
			sx += gi * (x[i] - mn);
		}
		double sg = s, sgx = sx;
		bn_block_sum2(sg, sgx, sh);
		const double is = invstd[ch];
		const double dw = sgx * is;
		if (threadIdx.x == 0) {
			if (dweight != nullptr) dweight[ch] = accumulate ? dweight[ch] + (float)dw : (float)dw;
			if (dbias != nullptr) dbias[ch] = accumulate ? dbias[ch] + (float)sg : (float)sg;
		}
		if (dx == nullptr) continue;
		const double a = (double)w[ch] * is;
		const double bx = -a * is * dw / (double)m;
		const double d = -a * sg / (double)m - bx * (double)mn;
		const float a32 = (float)a, bx32 = (float)bx, d32 = (float)d;
		for (long long k = threadIdx.x; k < m; k += blockDim.x) {
			const long long i = bn_at(k, ch, c, inner);
			dx[i] = a32 * bn_grad(g, y, i) + bx32 * x[i] + d32;
		}
	}
}

// ---------------------------------------------------------------------------
// Dropout and optimizers

// hash_uniform is device.HashUniform: the splitmix64 finaliser of
// seed + (i+1)*golden, its top 24 bits scaled to [0, 1). Bit-identical to Go.
__device__ __forceinline__ float hash_uniform(unsigned long long seed, unsigned long long i) {
	unsigned long long x = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	x ^= x >> 31;
	return (float)(x >> 40) * (1.0f / 16777216.0f);
}

// dropout_f32: dst[i] = scale where hash_uniform(seed, i) >= p, else 0.
extern "C" __global__ void dropout_f32(float* dst, long long n, float p, float scale, unsigned long long seed) {
	for (long long i = grid_start(); i < n; i += grid_stride())
		dst[i] = hash_uniform(seed, (unsigned long long)i) >= p ? scale : 0.0f;
}

// sgd_update is one torch.optim.SGD step of element i of p, with gradient g
// (negated when maximize) and momentum buffer buf (unused when momentum is
// 0); omd is 1 - dampening. sgd_f32 and sgd_multi_f32 share it, so their
// results are bit-identical.
__device__ __forceinline__ void sgd_update(float* p, const float* g, float* buf, long long i, float lr,
                                           float momentum, float omd, float wd, int nesterov, int first,
                                           int maximize) {
	float gi = maximize ? -g[i] : g[i];
	if (wd != 0.0f) gi += wd * p[i];
	if (momentum != 0.0f) {
		const float b = first ? gi : momentum * buf[i] + omd * gi;
		buf[i] = b;
		gi = nesterov ? gi + momentum * b : b;
	}
	p[i] -= lr * gi;
}

// adam_update is one torch.optim.Adam (AdamW when decoupled) step of element
// i of p, with gradient g (negated when maximize) and moments m, v, and with
// AMSGrad (vmax not null) the running maximum vmax of v in the denominator.
// The host computes decay = 1 - lr*wd, step_size = lr / (1 - beta1^t) and
// bc2sqrt = sqrt(1 - beta2^t) in float64. adam_f32 and adam_multi_f32 share
// it.
__device__ __forceinline__ void adam_update(float* p, const float* g, float* m, float* v, float* vmax, long long i,
                                            float beta1, float beta2, float eps, float wd, int decoupled,
                                            float decay, float step_size, float bc2sqrt, int maximize) {
	float gi = maximize ? -g[i] : g[i], pi = p[i];
	if (wd != 0.0f) {
		if (decoupled)
			pi *= decay;
		else
			gi += wd * pi;
	}
	const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
	const float vi = beta2 * v[i] + (1.0f - beta2) * (gi * gi);
	m[i] = mi;
	v[i] = vi;
	float d = vi;
	if (vmax) {
		const float vm = vmax[i];
		d = (vm > vi || vm != vm) ? vm : vi; // NaN wins, as torch.maximum
		vmax[i] = d;
	}
	p[i] = pi - step_size * (mi / (sqrtf(d) / bc2sqrt + eps));
}

// sgd_f32: one torch.optim.SGD step of p (see sgd_update).
//
// Fused: weight decay, the momentum update, Nesterov's look-ahead and the
// parameter update happen in registers, where PyTorch's unfused path writes
// the decayed gradient and the Nesterov gradient as temporaries.
extern "C" __global__ void sgd_f32(float* p, const float* g, float* buf, long long n, float lr, float momentum,
                                   float omd, float wd, int nesterov, int first, int maximize) {
	for (long long i = grid_start(); i < n; i += grid_stride())
		sgd_update(p, g, buf, i, lr, momentum, omd, wd, nesterov, first, maximize);
}

// adam_f32: one torch.optim.Adam (AdamW when decoupled) step of p (see
// adam_update).
//
// Fused: the decayed gradient, both moment updates, the bias-corrected
// denominator and the update itself stay in registers: one read of p, g, m, v
// and one write of p, m, v, instead of about ten passes with temporaries.
extern "C" __global__ void adam_f32(float* p, const float* g, float* m, float* v, float* vmax, long long n,
                                    float beta1, float beta2, float eps, float wd, int decoupled, float decay,
                                    float step_size, float bc2sqrt, int maximize) {
	for (long long i = grid_start(); i < n; i += grid_stride())
		adam_update(p, g, m, v, vmax, i, beta1, beta2, eps, wd, decoupled, decay, step_size, bc2sqrt, maximize);
}

// Multi-tensor optimizer steps: one launch updates every parameter tensor of
// a model, where the kernels above take one launch per tensor (a small MLP's
// step has six, each far shorter than its launch). The tensors are cut into
// chunks of MULTI_CHUNK elements, and a block updates one chunk at a time
// (grid-stride over chunks). The host builds a table (cuda/multi.go):
// ntensors MultiTensor entries, then for each chunk the index of its tensor
// (unsigned). It uploads the table once per list of buffers and reuses it,
// since a model's parameters stay at the same addresses from step to step.

#define MULTI_CHUNK 1024 // cuda/multi.go's multiChunk

// MultiTensor is one tensor of a multi-tensor table: 56 bytes, seven 8-byte
// words in cuda/multi.go.
struct MultiTensor {
	float* p;
	const float* g;
	float* s1;        // SGD's momentum buffer (null without momentum), Adam's m
	float* s2;        // Adam's v (null for SGD)
	float* s3;        // Adam's vmax (null without AMSGrad, and for SGD)
	long long n;      // length
	long long chunk0; // index of its first chunk
};

// sgd_multi_f32: sgd_f32 on every tensor of the table tab, whose chunk
// indices are chunks[0..nchunks).
extern "C" __global__ void sgd_multi_f32(const MultiTensor* tab, const unsigned* chunks, long long nchunks, float lr,
                                         float momentum, float omd, float wd, int nesterov, int first, int maximize) {
	for (long long c = blockIdx.x; c < nchunks; c += gridDim.x) {
		const MultiTensor t = tab[chunks[c]];
		const long long lo = (c - t.chunk0) * MULTI_CHUNK, hi = min(t.n, lo + MULTI_CHUNK);
		for (long long i = lo + threadIdx.x; i < hi; i += blockDim.x)
			sgd_update(t.p, t.g, t.s1, i, lr, momentum, omd, wd, nesterov, first, maximize);
	}
}

// adam_multi_f32: adam_f32 on every tensor of the table tab, with m in s1,
// v in s2 and vmax in s3.
extern "C" __global__ void adam_multi_f32(const MultiTensor* tab, const unsigned* chunks, long long nchunks,
                                          float beta1, float beta2, float eps, float wd, int decoupled, float decay,
                                          float step_size, float bc2sqrt, int maximize) {
	for (long long c = blockIdx.x; c < nchunks; c += gridDim.x) {
		const MultiTensor t = tab[chunks[c]];
		const long long lo = (c - t.chunk0) * MULTI_CHUNK, hi = min(t.n, lo + MULTI_CHUNK);
		for (long long i = lo + threadIdx.x; i < hi; i += blockDim.x)
			adam_update(t.p, t.g, t.s1, t.s2, t.s3, i, beta1, beta2, eps, wd, decoupled, decay, step_size, bc2sqrt,
			            maximize);
	}
}

// ---------------------------------------------------------------------------
// SGEMM: C[M,N] = op(A)[M,K] · op(B)[K,N] (+ C when accumulate), row-major.
// A is stored [M,K] (lda = K), or [K,M] (lda = M) when transA; B is stored
// [K,N] (ldb = N), or [N,K] (ldb = K) when transB.
//
// A block of 16x16 threads computes a BM x BN tile of C, each thread a TM x TN
// sub-tile held in registers (outer products of a TM column of A and a TN row
// of B per k step). Tiles of A (stored k-major, as As[k][m]) and B (Bs[k][n])
// pass through shared memory in steps of BK, double-buffered: while the
// block multiplies one k-slab, each thread already holds its float4 of the
// next one in registers, so one barrier per slab suffices. A thread's rows
// (and columns) come in chunks of min(TM, 4) adjacent ones, 16 chunks apart,
// so its fragment reads are float4 (or float2) loads that a warp serves
// without bank conflicts; the rows of
// As and Bs are padded by 4 floats to spread the transposing stores over the
// banks. Global loads are float4 where the row stride and base allow it and
// the 4 values are in bounds; edge tiles load element by element and pad with
// zeros, so any M, N, K is correct. Blocks are numbered row-major over the
// tiles of C in a 1-D grid.

// SGEMM_DISPATCH instantiates the tile for the four transpose cases, so that
// each is compiled with constant strides and no per-load branches. With
// split-K (gridDim.y > 1), block row z multiplies k in [z*kchunk, (z+1)*kchunk)
// into slice z of the workspace C ([gridDim.y][M][N]), and
// sgemm_splitk_sum_f32 adds the slices in order afterwards.
#define SGEMM_DISPATCH(BM, BN, BK, TM, TN)                                                          \
	do {                                                                                            \
		__shared__ __align__(16) float smem[2 * BK * (BM + 4) + 2 * BK * (BN + 4)];                  \
		const int kbeg = (int)min((long long)blockIdx.y * kchunk, (long long)K);                    \
		const int kend = (int)min((long long)kbeg + kchunk, (long long)K);                          \
		C += (long long)blockIdx.y * M * N;                                                         \
		if (transA)                                                                                 \
			if (transB)                                                                             \
				sgemm_tiled<BM, BN, BK, TM, TN, true, true>(smem, C, A, B, M, N, K, kbeg, kend, accumulate); \
			else                                                                                    \
				sgemm_tiled<BM, BN, BK, TM, TN, true, false>(smem, C, A, B, M, N, K, kbeg, kend, accumulate); \
		else if (transB)                                                                            \
			sgemm_tiled<BM, BN, BK, TM, TN, false, true>(smem, C, A, B, M, N, K, kbeg, kend, accumulate); \
		else                                                                                        \
			sgemm_tiled<BM, BN, BK, TM, TN, false, false>(smem, C, A, B, M, N, K, kbeg, kend, accumulate); \
	} while (0)

template <int V>
__device__ __forceinline__ void load_frag(float* r, const float* s) {
	if constexpr (V == 4) {
		float4 v = *reinterpret_cast<const float4*>(s);
		r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
	} else if constexpr (V == 2) {
		float2 v = *reinterpret_cast<const float2*>(s);
		r[0] = v.x, r[1] = v.y;
	} else {
		r[0] = s[0];
	}
}

// load4 reads p[0..3], the elements at columns col..col+3 of a row that is in
// bounds when row_ok; columns from ncol on read as zero.
__device__ __forceinline__ float4 load4(const float* p, bool row_ok, int col, int ncol, bool vec) {
	float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
	if (!row_ok) return v;
	if (vec && col + 3 < ncol) return *reinterpret_cast<const float4*>(p);
	if (col < ncol) v.x = p[0];
	if (col + 1 < ncol) v.y = p[1];
	if (col + 2 < ncol) v.z = p[2];
	if (col + 3 < ncol) v.w = p[3];
	return v;
}

template <int BM, int BN, int BK, int TM, int TN, bool TA, bool TB>
__device__ __forceinline__ void sgemm_tiled(float* smem, float* __restrict__ C, const float* __restrict__ A,
                                            const float* __restrict__ B, int M, int N, int K, int kbeg,
                                            int kend, int accumulate) {
	constexpr int VM = TM < 4 ? TM : 4, VN = TN < 4 ? TN : 4; // fragment vector widths
	constexpr int SA = BM + 4, SB = BN + 4;                     // padded shared row lengths
	static_assert(BM == 16 * TM && BN == 16 * TN, "16x16 threads cover the tile");
	static_assert(BM * BK == 1024 && BN * BK == 1024, "each thread loads one float4 of A and of B per slab");
	float(*As)[BK][SA] = reinterpret_cast<float(*)[BK][SA]>(smem);          // [2][BK][SA]
	float(*Bs)[BK][SB] = reinterpret_cast<float(*)[BK][SB]>(smem + 2 * BK * SA); // [2][BK][SB]

	const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
	const int tilesN = (N + BN - 1) / BN;
	const int bm = (int)(blockIdx.x / tilesN) * BM, bn = (int)(blockIdx.x % tilesN) * BN;
	const int lda = TA ? M : K, ldb = TB ? K : N;

	// The float4 each thread loads per slab: stored row ar (relative to the
	// tile), columns ac..ac+3; likewise br, bc for B. pa and pb point at it and
	// advance by one slab at a time, from k = kbeg (a multiple of BK) to kend.
	constexpr int aq = TA ? BM / 4 : BK / 4, bq = TB ? BK / 4 : BN / 4;
	const int ar = tid / aq, ac = (tid % aq) * 4;
	const int br = tid / bq, bc = (tid % bq) * 4;
	const float* pa = TA ? A + (long long)(kbeg + ar) * lda + bm + ac : A + (long long)(bm + ar) * lda + kbeg + ac;
	const float* pb = TB ? B + (long long)(bn + br) * ldb + kbeg + bc : B + (long long)(kbeg + br) * ldb + bn + bc;
	const long long da = TA ? (long long)BK * lda : BK, db = TB ? BK : (long long)BK * ldb;
	const bool avec = (lda & 3) == 0 && aligned16(A), bvec = (ldb & 3) == 0 && aligned16(B);

	auto load_a = [&](int k0) {
		return TA ? load4(pa, k0 + ar < kend, bm + ac, M, avec) : load4(pa, bm + ar < M, k0 + ac, kend, avec);
	};
	auto load_b = [&](int k0) {
		return TB ? load4(pb, bn + br < N, k0 + bc, kend, bvec) : load4(pb, k0 + br < kend, bn + bc, N, bvec);
	};
	auto store_a = [&](int buf, float4 v) {
		if (TA) {
			*reinterpret_cast<float4*>(&As[buf][ar][ac]) = v;
		} else {
			As[buf][ac + 0][ar] = v.x;
			As[buf][ac + 1][ar] = v.y;
			As[buf][ac + 2][ar] = v.z;
			As[buf][ac + 3][ar] = v.w;
		}
	};
	auto store_b = [&](int buf, float4 v) {
		if (TB) {
			Bs[buf][bc + 0][br] = v.x;
			Bs[buf][bc + 1][br] = v.y;
			Bs[buf][bc + 2][br] = v.z;
			Bs[buf][bc + 3][br] = v.w;
		} else {
			*reinterpret_cast<float4*>(&Bs[buf][br][bc]) = v;
		}
	};

	float acc[TM][TN];
#pragma unroll
	for (int i = 0; i < TM; ++i)
#pragma unroll
		for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

	const int ntiles = (kend - kbeg + BK - 1) / BK;
	float4 ra, rb;
	if (ntiles > 0) {
		store_a(0, load_a(kbeg));
		store_b(0, load_b(kbeg));
	}
	__syncthreads();
	for (int t = 0; t < ntiles; ++t) {
		const int cur = t & 1;
		const bool more = t + 1 < ntiles;
		if (more) {
			pa += da;
			pb += db;
			ra = load_a(kbeg + (t + 1) * BK);
			rb = load_b(kbeg + (t + 1) * BK);
		}
#pragma unroll
		for (int kk = 0; kk < BK; ++kk) {
			float a[TM], b[TN];
#pragma unroll
			for (int c = 0; c < TM / VM; ++c) load_frag<VM>(&a[c * VM], &As[cur][kk][c * 16 * VM + ty * VM]);
#pragma unroll
			for (int c = 0; c < TN / VN; ++c) load_frag<VN>(&b[c * VN], &Bs[cur][kk][c * 16 * VN + tx * VN]);
#pragma unroll
			for (int i = 0; i < TM; ++i)
#pragma unroll
				for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
		}
		if (more) {
			store_a(cur ^ 1, ra);
			store_b(cur ^ 1, rb);
		}
		__syncthreads();
	}

	// Epilogue: thread row i is tile row (i/VM)*16*VM + ty*VM + i%VM, and
	// likewise for columns.
	const bool cvec = (N % VN) == 0 && ((unsigned long long)C % (4 * VN)) == 0;
#pragma unroll
	for (int i = 0; i < TM; ++i) {
		const int r = bm + (i / VM) * 16 * VM + ty * VM + i % VM;
		if (r >= M) continue;
		float* crow = C + (long long)r * N;
#pragma unroll
		for (int c = 0; c < TN / VN; ++c) {
			const int col = bn + c * 16 * VN + tx * VN;
			float* p = crow + col;
			const float* v = &acc[i][c * VN];
			if (VN == 4 && cvec && col < N) {
				float4 o = make_float4(v[0], v[1], v[2], v[3]);
				if (accumulate) {
					const float4 old = *reinterpret_cast<const float4*>(p);
					o.x += old.x, o.y += old.y, o.z += old.z, o.w += old.w;
				}
				*reinterpret_cast<float4*>(p) = o;
			} else if (VN == 2 && cvec && col < N) {
				float2 o = make_float2(v[0], v[1]);
				if (accumulate) {
					const float2 old = *reinterpret_cast<const float2*>(p);
					o.x += old.x, o.y += old.y;
				}
				*reinterpret_cast<float2*>(p) = o;
			} else {
#pragma unroll
				for (int j = 0; j < VN; ++j)
					if (col + j < N) p[j] = accumulate ? p[j] + v[j] : v[j];
			}
		}
	}
}

// sgemm_128_f32: C = op(A)·op(B) (+ C) with 128x128 tiles, 8x8 per thread,
// BK = 8; for large products. kchunk (a multiple of 32) splits K over
// gridDim.y, as SGEMM_DISPATCH describes; kchunk >= K with gridDim.y = 1
// computes C directly.
extern "C" __global__ void __launch_bounds__(256, 2)
    sgemm_128_f32(float* C, const float* A, const float* B, int M, int N, int K, int transA, int transB,
                  int accumulate, long long kchunk) {
	SGEMM_DISPATCH(128, 128, 8, 8, 8);
}

// sgemm_64_f32: as sgemm_128_f32 with 64x64 tiles, 4x4 per thread, BK = 16;
// for products too small to fill the GPU with 128x128 tiles.
extern "C" __global__ void __launch_bounds__(256)
    sgemm_64_f32(float* C, const float* A, const float* B, int M, int N, int K, int transA, int transB,
                  int accumulate, long long kchunk) {
	SGEMM_DISPATCH(64, 64, 16, 4, 4);
}

// sgemm_32_f32: as sgemm_128_f32 with 32x32 tiles, 2x2 per thread, BK = 32;
// for small and skinny products (a batch of 128 through an MLP layer).
extern "C" __global__ void __launch_bounds__(256)
    sgemm_32_f32(float* C, const float* A, const float* B, int M, int N, int K, int transA, int transB,
                  int accumulate, long long kchunk) {
	SGEMM_DISPATCH(32, 32, 32, 2, 2);
}

// sgemm_splitk_sum_f32: C[i] = (C[i] if accumulate) + sum over z < splits of
// W[z*mn + i], in order of z, for i < mn: the second pass of a split-K SGEMM.
extern "C" __global__ void sgemm_splitk_sum_f32(float* C, const float* W, long long mn, int splits, int accumulate) {
	for (long long i = grid_start(); i < mn; i += grid_stride()) {
		float s = accumulate ? C[i] : 0.0f;
		for (int z = 0; z < splits; ++z) s += W[z * mn + i];
		C[i] = s;
	}
}

// ---------------------------------------------------------------------------
// Convolutions and pooling: im2col and col2im over [N, C, H, W] images, with
// the layout of device.Im2col: col [C, KH, KW, N, OH, OW].

// ConvGeom is device.ConvGeom, passed as twelve long longs.
#define CONV_GEOM_ARGS                                                                                         \
	long long N, long long C, long long H, long long W, long long KH, long long KW, long long SH, long long SW, \
	    long long PH, long long PW, long long DH, long long DW

// im2col_f32: col[c,i,j,n,oh,ow] = x[n, c, oh*SH + i*DH - PH, ow*SW + j*DW - PW],
// or fill in the padding; one thread per element of col.
extern "C" __global__ void im2col_f32(float* col, const float* x, CONV_GEOM_ARGS, float fill) {
	const long long OH = (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1, OW = (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
	const long long total = C * KH * KW * N * OH * OW;
	for (long long e = grid_start(); e < total; e += grid_stride()) {
		long long r = e;
		const long long ow = r % OW; r /= OW;
		const long long oh = r % OH; r /= OH;
		const long long n = r % N; r /= N;
		const long long j = r % KW; r /= KW;
		const long long i = r % KH;
		const long long c = r / KH;
		const long long h = oh * SH + i * DH - PH, w = ow * SW + j * DW - PW;
		col[e] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * C + c) * H + h) * W + w] : fill;
	}
}

// col2im_f32: x[n,c,h,w] (+)= the sum of the elements of col read from it, in
// the order (i, j); one thread per pixel, so no two threads write one value
// and the sums are deterministic.
extern "C" __global__ void col2im_f32(float* x, const float* col, CONV_GEOM_ARGS, int accumulate) {
	const long long OH = (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1, OW = (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
	const long long total = N * C * H * W, L = OH * OW;
	for (long long e = grid_start(); e < total; e += grid_stride()) {
		long long r = e;
		const long long w = r % W; r /= W;
		const long long h = r % H; r /= H;
		const long long c = r % C;
		const long long n = r / C;
		float s = accumulate ? x[e] : 0.0f;
		for (long long i = 0; i < KH; i++) {
			const long long ph = h + PH - i * DH;
			if (ph < 0 || ph % SH != 0 || ph / SH >= OH) continue;
			for (long long j = 0; j < KW; j++) {
				const long long pw = w + PW - j * DW;
				if (pw < 0 || pw % SW != 0 || pw / SW >= OW) continue;
				s += col[(((c * KH + i) * KW + j) * N + n) * L + (ph / SH) * OW + pw / SW];
			}
		}
		x[e] = s;
	}
}
