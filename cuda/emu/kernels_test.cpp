// kernels_test.cpp: runs the kernels of kernels.cu on the CPU through emu.h
// and compares them with float64 references, with the grid and block sizes of
// cuda/launch.go (on a pretend GPU of 4 multiprocessors, so that the split
// paths are taken): the three SGEMM tiles in the four transpose cases, with
// and without accumulate, at odd sizes, split-K and a misaligned base; every
// reduction path with ties and NaN; softmax, log-softmax and the fused
// cross-entropy with a bad label; bias + activation and its fused backward
// with the bias gradient; batch norm forward and backward (group
// "batch_norm"); gather with a bad index; elementwise ops, walks at
// both index widths, and the dropout hash; the activations and gradients of
// the op table against float64 references (group "ops"); 6-axis binary,
// ternary and padded, dst-strided copy walks with offsets (group "walks");
// the multi-tensor optimizer steps against one launch per tensor, bit for bit,
// maximize against the step on -g, and Adam (with AMSGrad) against float64;
// im2col and col2im at odd window geometries (group "conv").
// A failure prints the kernel, the shape and the first mismatching indices.
#include "kernels.cu"
#include <cstdio>
#include <random>
#include <unistd.h>
static std::mt19937 rng(1);
static int failures = 0;
std::vector<float> rnd(size_t n, float lo = -1, float hi = 1) {
	std::uniform_real_distribution<float> d(lo, hi);
	std::vector<float> v(n);
	for (auto& x : v) x = d(rng);
	return v;
}
bool expect(const char* what, const std::vector<float>& got, const std::vector<double>& want, double atol, double rtol) {
	int bad = 0;
	for (size_t i = 0; i < want.size(); i++) {
		double g = got[i], w = want[i];
		bool ok = (std::isnan(w) && std::isnan(g)) || std::fabs(g - w) <= atol + rtol * std::fabs(w);
		if (!ok) {
			if (bad < 4) printf("  %s: [%zu] got %.8g want %.8g\n", what, i, g, w);
			bad++;
		}
	}
	if (bad) { printf("FAIL %s: %d of %zu\n", what, bad, want.size()); failures++; }
	return !bad;
}
const int SMS = 4; // small, so that the split paths are taken
dim3 g1(long long items, int threads = 256) { long long b = (items + threads - 1) / threads; return {(unsigned)std::min<long long>(std::max<long long>(b, 1), 32 * SMS), 1, 1}; }

void gemm_launch(int kern, float* C, float* A, float* B, int m, int n, int k, int ta, int tb, int acc, long long kchunk, unsigned tiles, unsigned splits) {
	emu_launch([&] {
		if (kern == 0) sgemm_128_f32(C, A, B, m, n, k, ta, tb, acc, kchunk);
		else if (kern == 1) sgemm_64_f32(C, A, B, m, n, k, ta, tb, acc, kchunk);
		else sgemm_32_f32(C, A, B, m, n, k, ta, tb, acc, kchunk);
	}, {tiles, splits, 1}, {256, 1, 1});
}
void test_gemm() {
	int sizes[][3] = {{1, 1, 1}, {7, 13, 33}, {131, 67, 259}, {33, 129, 7}, {64, 16, 64}, {128, 8, 128}, {130, 9, 131}, {128, 64, 256}, {96, 36, 100}, {5, 0, 3}, {40, 100, 36}};
	for (auto& s : sizes) {
		int m = s[0], k = s[1], n = s[2];
		auto a = rnd((size_t)m * k + 1), b = rnd((size_t)k * n + 1);
		for (int kern = 0; kern < 3; kern++)
			for (int ta = 0; ta < 2; ta++)
				for (int tb = 0; tb < 2; tb++)
					for (int acc = 0; acc < 2; acc++) {
						auto c0 = rnd((size_t)m * n);
						std::vector<double> want(m * n);
						for (int i = 0; i < m; i++)
							for (int j = 0; j < n; j++) {
								double sum = acc ? c0[i * n + j] : 0;
								for (int l = 0; l < k; l++) sum += (double)(ta ? a[l * m + i] : a[i * k + l]) * (tb ? b[j * k + l] : b[l * n + j]);
								want[i * n + j] = sum;
							}
						int t = kern == 0 ? 128 : kern == 1 ? 64 : 32;
						unsigned tiles = ((m + t - 1) / t) * ((n + t - 1) / t);
						auto c = c0;
						gemm_launch(kern, c.data(), a.data(), b.data(), m, n, k, ta, tb, acc, k, tiles, 1);
						char name[128];
						snprintf(name, sizeof name, "sgemm_%d %dx%dx%d ta=%d tb=%d acc=%d", t, m, k, n, ta, tb, acc);
						expect(name, c, want, 1e-5, 1e-5);
						if (k > 32) {
							unsigned splits = (k + 31) / 32;
							std::vector<float> ws((size_t)splits * m * n, -777);
							gemm_launch(kern, ws.data(), a.data(), b.data(), m, n, k, ta, tb, 0, 32, tiles, splits);
							auto c2 = c0;
							long long mn = (long long)m * n;
							float *C2 = c2.data(), *W = ws.data();
							emu_launch([&] { sgemm_splitk_sum_f32(C2, W, mn, (int)splits, acc); }, {2, 1, 1}, {64, 1, 1});
							snprintf(name, sizeof name, "sgemm_%d split-K %u %dx%dx%d ta=%d tb=%d acc=%d", t, splits, m, k, n, ta, tb, acc);
							expect(name, c2, want, 1e-5, 1e-5);
						}
					}
	}
	// Misaligned bases (views one float in): the float4 path must not be taken.
	int m = 64, k = 64, n = 64;
	auto a = rnd(m * k + 1), b = rnd(k * n + 1), c = rnd(m * n + 1);
	std::vector<double> want(m * n);
	for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) { double s = 0; for (int l = 0; l < k; l++) s += (double)a[1 + i * k + l] * b[1 + l * n + j]; want[i * n + j] = s; }
	gemm_launch(1, c.data() + 1, a.data() + 1, b.data() + 1, m, n, k, 0, 0, 0, k, 1, 1);
	std::vector<float> got(c.begin() + 1, c.end());
	expect("sgemm_64 misaligned", got, want, 1e-5, 1e-5);
}

struct RAccH { double s; float m; long long i; };
double ref_reduce(int op, const float* x, long long n, long long stride) {
	if (op <= 1) { double s = 0; for (long long j = 0; j < n; j++) s += x[j * stride]; return op == 1 ? s / n : s; }
	float best = x[0]; long long at = 0;
	for (long long j = 0; j < n; j++) { float v = x[j * stride]; if (v > best || (v != v && best == best)) { best = v; at = j; } }
	return op == 2 ? best : at;
}
void reduce_dispatch(int op, float* dst, float* x, long long outer, long long n, long long inner) {
	if (inner > 1) {
		emu_launch([&] { reduce_cols_f32(op, dst, x, outer, n, inner); }, {(unsigned)((inner + 31) / 32), (unsigned)std::min<long long>(outer, 65535), 1}, {32, 8, 1});
	} else if (n <= 4096 || outer >= 32 * SMS) {
		emu_launch([&] { reduce_rows_f32(op, dst, x, outer, n); }, g1(outer * 32), {256, 1, 1});
	} else {
		long long parts = std::min({std::max<long long>((4 * SMS + outer - 1) / outer, 1), 1024LL, (n + 2047) / 2048});
		long long chunk = (n + parts - 1) / parts;
		parts = (n + chunk - 1) / chunk;
		std::vector<RAccH> scratch(outer * parts);
		RAcc* sp = (RAcc*)scratch.data();
		emu_launch([&] { reduce_partial_f32(op, sp, x, outer, n, chunk); }, {(unsigned)parts, (unsigned)std::min<long long>(outer, 65535), 1}, {256, 1, 1});
		emu_launch([&] { reduce_final_f32(op, dst, sp, outer, parts, n); }, {(unsigned)std::min<long long>(outer, 32 * SMS), 1, 1}, {256, 1, 1});
	}
}
void test_reduce() {
	static_assert(sizeof(RAccH) == 24);
	long long shapes[][3] = {{1, 1, 1}, {1, 7, 1}, {3, 129, 1}, {200, 10, 1}, {3, 5000, 1}, {1, 20000, 1}, {1, 129, 7}, {5, 100, 129}, {1, 33, 40}, {3, 1, 70}, {129, 1, 1}};
	for (auto& s : shapes) {
		long long outer = s[0], n = s[1], inner = s[2];
		for (int op = 0; op < 4; op++) {
			auto x = rnd(outer * n * inner, -2, 2);
			if (op == 3) for (auto& v : x) v = (float)(rng() % 4);
			if (op >= 2 && outer * n * inner > 10) x[outer * n * inner / 2] = NAN;
			std::vector<float> dst(outer * inner + 1, -12345);
			std::vector<double> want(outer * inner + 1, -12345);
			for (long long o = 0; o < outer; o++) for (long long j = 0; j < inner; j++) want[o * inner + j] = ref_reduce(op, x.data() + o * n * inner + j, n, inner);
			reduce_dispatch(op, dst.data(), x.data(), outer, n, inner);
			char name[128]; snprintf(name, sizeof name, "reduce op %d [%lld,%lld,%lld]", op, outer, n, inner);
			expect(name, dst, want, 1e-6, 1e-6);
		}
	}
}
int row_threads(long long n) { return n <= 128 ? 32 : n <= 1024 ? 128 : 256; }
void test_softmax() {
	long long shapes[][2] = {{1, 1}, {7, 10}, {3, 300}, {2, 2000}, {5, 33}};
	for (auto& s : shapes) {
		long long rows = s[0], n = s[1];
		for (int lg = 0; lg < 2; lg++) {
			auto x = rnd(rows * n, -8, 8);
			std::vector<float> dst(rows * n);
			std::vector<double> want(rows * n);
			for (long long r = 0; r < rows; r++) {
				double m = -INFINITY, sum = 0;
				for (long long j = 0; j < n; j++) m = std::max(m, (double)x[r * n + j]);
				for (long long j = 0; j < n; j++) sum += std::exp(x[r * n + j] - m);
				for (long long j = 0; j < n; j++) want[r * n + j] = lg ? x[r * n + j] - m - std::log(sum) : std::exp(x[r * n + j] - m) / sum;
			}
			float *D = dst.data(), *X = x.data();
			emu_launch([&] { softmax_f32(D, X, rows, n, lg); }, {(unsigned)std::min<long long>(rows, 3), 1, 1}, {(unsigned)row_threads(n), 1, 1});
			char name[64]; snprintf(name, sizeof name, "softmax log=%d [%lld,%lld]", lg, rows, n);
			expect(name, dst, want, 1e-6, 1e-5);
		}
		// Cross-entropy in place, with one bad label.
		auto x = rnd(rows * n, -8, 8);
		std::vector<float> lab(rows), loss(rows, -1);
		for (auto& l : lab) l = rng() % n;
		if (rows > 2) lab[1] = n; // out of range
		std::vector<double> wl(rows), wg(rows * n);
		for (long long r = 0; r < rows; r++) {
			double m = -INFINITY, sum = 0;
			for (long long j = 0; j < n; j++) m = std::max(m, (double)x[r * n + j]);
			for (long long j = 0; j < n; j++) sum += std::exp(x[r * n + j] - m);
			bool ok = lab[r] < n;
			wl[r] = ok ? std::log(sum) + m - x[r * n + (long long)lab[r]] : NAN;
			for (long long j = 0; j < n; j++) wg[r * n + j] = ok ? (std::exp(x[r * n + j] - m) / sum - (j == lab[r])) * 0.5 : NAN;
		}
		unsigned long long fault = 0;
		float *X = x.data(), *L = loss.data(), *Y = lab.data();
		emu_launch([&] { softmax_ce_f32(L, X, X, Y, rows, n, 0.5f, &fault); }, {(unsigned)std::min<long long>(rows, 2), 1, 1}, {(unsigned)row_threads(n), 1, 1});
		char name[64]; snprintf(name, sizeof name, "softmax_ce [%lld,%lld]", rows, n);
		expect(name, loss, wl, 1e-5, 1e-5);
		expect(name, x, wg, 1e-7, 1e-5);
		unsigned long long want_fault = rows > 2 ? ((unsigned long long)__float_as_uint((float)n) << 32 | 1 << 8 | 2) : 0;
		if (fault != want_fault) { printf("FAIL %s fault 0x%llx want 0x%llx\n", name, fault, want_fault); failures++; }
	}
}
void test_rows() {
	long long rows = 37, n = 300;
	for (int act = 0; act < 4; act++) {
		auto x = rnd(rows * n, -3, 3), bias = rnd(n);
		std::vector<float> d(rows * n);
		std::vector<double> w(rows * n);
		for (long long r = 0; r < rows; r++) for (long long j = 0; j < n; j++) {
			double v = (float)(x[r * n + j] + bias[j]);
			w[r * n + j] = act == 1 ? (v <= 0 ? 0 : v) : act == 2 ? 1 / (1 + std::exp(-v)) : act == 3 ? std::tanh(v) : v;
		}
		float *D = d.data(), *X = x.data(), *Bp = bias.data();
		emu_launch([&] { bias_act_f32(D, X, Bp, rows, n, act); }, {2, 5, 1}, {128, 1, 1});
		expect("bias_act", d, w, 1e-6, 4e-6);
	}
	long long srcRows = 11, rowLen = 70, nidx = 20;
	auto src = rnd(srcRows * rowLen);
	std::vector<float> idx(nidx), d(nidx * rowLen);
	std::vector<double> w(nidx * rowLen);
	for (long long i = 0; i < nidx; i++) idx[i] = rng() % srcRows;
	idx[7] = 2.5f;
	for (long long i = 0; i < nidx; i++) for (long long j = 0; j < rowLen; j++) w[i * rowLen + j] = i == 7 ? NAN : src[(long long)idx[i] * rowLen + j];
	unsigned long long fault = 0;
	float *D = d.data(), *S = src.data(), *I = idx.data();
	emu_launch([&] { gather_f32(D, S, I, nidx, rowLen, srcRows, &fault); }, {1, 3, 1}, {96, 1, 1});
	expect("gather", d, w, 0, 0);
	if (fault != ((unsigned long long)__float_as_uint(2.5f) << 32 | 7 << 8 | 1)) { printf("FAIL gather fault 0x%llx\n", fault); failures++; }
}
// bias_grad_rows is biasGradRows of cuda/launch.go.
unsigned bias_grad_rows(long long rows) { return rows <= 64 ? 8 : rows <= 256 ? 16 : 32; }
void test_bias_act_grad() {
	long long shapes[][2] = {{1, 1}, {7, 129}, {100, 40}, {300, 70}, {1000, 10}, {4097, 7}, {0, 5}};
	for (auto& s : shapes) {
		long long rows = s[0], n = s[1];
		for (int act = 0; act < 4; act++)
			for (int acc = 0; acc < 2; acc++)
				for (int grid : {0, 1}) { // the launcher's grid, then one block for every strip
					float lo = act == 2 ? 0.05f : act == 3 ? -0.95f : -2, hi = act == 2 ? 0.95f : act == 3 ? 0.95f : 2;
					auto y = rnd(rows * n, lo, hi), g = rnd(rows * n), db0 = rnd(n);
					std::vector<float> dx(rows * n, -12345), db = db0, dx2 = g;
					std::vector<double> wdx(rows * n), wdb(n);
					for (long long j = 0; j < n; j++) wdb[j] = acc ? db0[j] : 0;
					for (long long i = 0; i < rows * n; i++) {
						double v = y[i], d = g[i];
						d = act == 1 ? (v > 0 ? d : 0) : act == 2 ? d * v * (1 - v) : act == 3 ? d * (1 - v * v) : d;
						wdx[i] = d;
						wdb[i % n] += d;
					}
					dim3 gd = {grid ? 1u : (unsigned)((n + 31) / 32), 1, 1}, bd = {32, bias_grad_rows(rows), 1};
					float *DX = dx.data(), *DB = db.data(), *Y = y.data(), *G = g.data(), *DX2 = dx2.data();
					emu_launch([&] { bias_act_grad_f32(DX, DB, Y, G, rows, n, act, acc); }, gd, bd);
					char name[96];
					snprintf(name, sizeof name, "bias_act_grad %d [%lld,%lld] acc=%d grid=%u", act, rows, n, acc, gd.x);
					expect(name, dx, wdx, 1e-7, 1e-6);
					expect(name, db, wdb, 2e-7 * rows + 1e-6, 1e-5);
					// In place over g, with no bias gradient.
					emu_launch([&] { bias_act_grad_f32(DX2, nullptr, Y, DX2, rows, n, act, acc); }, gd, bd);
					expect(name, dx2, wdx, 1e-7, 1e-6);
				}
	}
	// The CPU's ReLU mask: +Inf passes the gradient, NaN, -0 and 0 do not.
	std::vector<float> y = {INFINITY, NAN, -0.0f, 0.0f, 1e-45f, -1e-45f}, g = {1, 2, 3, 4, 5, 6}, dx(6), db(6);
	float *DX = dx.data(), *DB = db.data(), *Y = y.data(), *G = g.data();
	emu_launch([&] { bias_act_grad_f32(DX, DB, Y, G, 1, 6, 1, 0); }, {1, 1, 1}, {32, 8, 1});
	expect("bias_act_grad relu edges", dx, {1, 0, 0, 0, 5, 0}, 0, 0);
	expect("bias_act_grad relu edges dbias", db, {1, 0, 0, 0, 5, 0}, 0, 0);
}
void same_bits(const char* what, const std::vector<float>& got, const std::vector<float>& want);
// bn_threads is bnThreads of cuda/launch.go.
unsigned bn_threads(long long m) { return m >= 8192 ? 1024 : m >= 256 ? 256 : (unsigned)((m + 31) / 32 * 32); }
void test_batch_norm() {
	long long shapes[][3] = {{2, 3, 1}, {1, 3, 5}, {5, 2, 7}, {3, 4, 33}, {2, 1, 300}, {7, 3, 1}, {1, 1, 2}, {3, 2, 3000}};
	for (auto& s : shapes) {
		long long outer = s[0], c = s[1], inner = s[2], n = outer * c * inner, m = outer * inner;
		auto x = rnd(n, -1, 3), w = rnd(c, 0.5, 1.5), b = rnd(c), g = rnd(n), rm0 = rnd(c), rv0 = rnd(c, 0.5, 2);
		std::vector<double> wy(n), wmean(c), wis(c), wrm(c), wrv(c), wdx(n), wdw(c), wdb(c);
		for (long long ch = 0; ch < c; ch++) {
			double sum = 0, ss = 0, sg = 0, sgx = 0;
			for (long long o = 0; o < outer; o++)
				for (long long i = 0; i < inner; i++) sum += x[(o * c + ch) * inner + i];
			double mu = sum / m;
			for (long long o = 0; o < outer; o++)
				for (long long i = 0; i < inner; i++) { double d = x[(o * c + ch) * inner + i] - mu; ss += d * d; }
			double var = ss / m, is = 1 / std::sqrt(var + 1e-5);
			wmean[ch] = mu, wis[ch] = is;
			wrm[ch] = 0.9 * rm0[ch] + 0.1 * mu, wrv[ch] = 0.9 * rv0[ch] + 0.1 * var * m / (m - 1);
			for (long long o = 0; o < outer; o++)
				for (long long i = 0; i < inner; i++) {
					long long k = (o * c + ch) * inner + i;
					wy[k] = (x[k] - mu) * is * w[ch] + b[ch];
					sg += g[k], sgx += g[k] * (x[k] - mu) * is;
				}
			wdw[ch] = sgx, wdb[ch] = sg;
			for (long long o = 0; o < outer; o++)
				for (long long i = 0; i < inner; i++) {
					long long k = (o * c + ch) * inner + i;
					wdx[k] = w[ch] * is * (g[k] - sg / m - (x[k] - mu) * is * sgx / m);
				}
		}
		for (int grid : {0, 1}) { // one block per channel, then one block for all
			dim3 gd = {grid ? 1u : (unsigned)c, 1, 1}, bd = {bn_threads(m), 1, 1};
			char name[96];
			snprintf(name, sizeof name, "batch_norm [%lld,%lld,%lld] grid=%u", outer, c, inner, gd.x);
			std::vector<float> y(n, -12345), mean(c), is(c), rm = rm0, rv = rv0;
			float *Y = y.data(), *M = mean.data(), *IS = is.data(), *RM = rm.data(), *RV = rv.data();
			emu_launch([&] { batch_norm_f32(Y, M, IS, RM, RV, x.data(), w.data(), b.data(), outer, c, inner, 1e-5f, 0.1f, 0); }, gd, bd);
			expect(name, y, wy, 1e-5, 1e-5);
			expect(name, mean, wmean, 1e-6, 1e-5);
			expect(name, is, wis, 1e-6, 1e-5);
			expect(name, rm, wrm, 1e-6, 1e-5);
			expect(name, rv, wrv, 1e-6, 1e-5);
			// Without running estimates, in place over x.
			std::vector<float> y2 = x;
			float* Y2 = y2.data();
			emu_launch([&] { batch_norm_f32(Y2, M, IS, nullptr, nullptr, Y2, w.data(), b.data(), outer, c, inner, 1e-5f, 0.1f, 0); }, gd, bd);
			expect(name, y2, wy, 1e-5, 1e-5);
			snprintf(name, sizeof name, "batch_norm_grad [%lld,%lld,%lld] grid=%u", outer, c, inner, gd.x);
			for (int acc = 0; acc < 2; acc++) {
				auto dw0 = rnd(c), db0 = rnd(c);
				std::vector<float> dx(n, -12345), dw = dw0, db = db0;
				std::vector<double> edw(c), edb(c);
				for (long long ch = 0; ch < c; ch++) edw[ch] = wdw[ch] + (acc ? dw0[ch] : 0), edb[ch] = wdb[ch] + (acc ? db0[ch] : 0);
				float *DX = dx.data(), *DW = dw.data(), *DB = db.data();
				emu_launch([&] { batch_norm_grad_f32(DX, DW, DB, x.data(), nullptr, M, IS, w.data(), g.data(), outer, c, inner, acc); }, gd, bd);
				expect(name, dx, wdx, 1e-5, 1e-4);
				expect(name, dw, edw, 1e-5 * m, 1e-4);
				expect(name, db, edb, 1e-6 * m, 1e-5);
			}
			// In place over g, with no parameter gradients.
			std::vector<float> g2 = g;
			float* G2 = g2.data();
			emu_launch([&] { batch_norm_grad_f32(G2, nullptr, nullptr, x.data(), nullptr, M, IS, w.data(), G2, outer, c, inner, 0); }, gd, bd);
			expect(name, g2, wdx, 1e-5, 1e-4);

			// The fused ReLU: against the float64 reference, and bit for bit
			// against the unfused kernels with the ReLU and its mask (the
			// CPU's rules: -0 becomes +0, a NaN y or gradient is dropped
			// where y is not positive). Channel 0 normalises to exact zeros.
			snprintf(name, sizeof name, "batch_norm relu [%lld,%lld,%lld] grid=%u", outer, c, inner, gd.x);
			auto wr = w, br = b;
			wr[0] = 0, br[0] = 0;
			std::vector<float> yu(n), yr(n, -12345), rmu = rm0, rvu = rv0, rmr = rm0, rvr = rv0, mu(c), isu(c), mr(c), isr(c);
			float *YU = yu.data(), *YR = yr.data(), *MU = mu.data(), *ISU = isu.data(), *MR = mr.data(), *ISR = isr.data();
			float *RMU = rmu.data(), *RVU = rvu.data(), *RMR = rmr.data(), *RVR = rvr.data();
			emu_launch([&] { batch_norm_f32(YU, MU, ISU, RMU, RVU, x.data(), wr.data(), br.data(), outer, c, inner, 1e-5f, 0.1f, 0); }, gd, bd);
			emu_launch([&] { batch_norm_f32(YR, MR, ISR, RMR, RVR, x.data(), wr.data(), br.data(), outer, c, inner, 1e-5f, 0.1f, 1); }, gd, bd);
			std::vector<double> wyr(n);
			for (long long k = 0; k < n; k++) {
				long long ch = k / inner % c;
				wyr[k] = ch == 0 ? 0 : std::max(wy[k], 0.0);
				yu[k] = yu[k] <= 0.0f ? 0.0f : yu[k];
			}
			expect(name, yr, wyr, 1e-5, 1e-5);
			same_bits(name, yr, yu);
			same_bits(name, mr, mu);
			same_bits(name, isr, isu);
			same_bits(name, rmr, rmu);
			same_bits(name, rvr, rvu);
			snprintf(name, sizeof name, "batch_norm_grad relu [%lld,%lld,%lld] grid=%u", outer, c, inner, gd.x);
			std::vector<float> gr = g, gm(n);
			for (long long k = 0; k < n; k++) {
				if (yr[k] <= 0.0f && k % 3 == 0) gr[k] = NAN;
				gm[k] = yr[k] > 0.0f ? gr[k] : 0.0f;
			}
			std::vector<float> dxu(n), dwu(c), dbu(c), dxr(n, -12345), dwr(c), dbr(c);
			float *DXU = dxu.data(), *DWU = dwu.data(), *DBU = dbu.data(), *DXR = dxr.data(), *DWR = dwr.data(), *DBR = dbr.data();
			emu_launch([&] { batch_norm_grad_f32(DXU, DWU, DBU, x.data(), nullptr, MR, ISR, wr.data(), gm.data(), outer, c, inner, 0); }, gd, bd);
			emu_launch([&] { batch_norm_grad_f32(DXR, DWR, DBR, x.data(), YR, MR, ISR, wr.data(), gr.data(), outer, c, inner, 0); }, gd, bd);
			same_bits(name, dxr, dxu);
			same_bits(name, dwr, dwu);
			same_bits(name, dbr, dbu);
			std::vector<double> wdxr(n), wdwr(c), wdbr(c);
			for (long long ch = 0; ch < c; ch++) {
				double sg = 0, sgx = 0;
				for (long long o = 0; o < outer; o++)
					for (long long i = 0; i < inner; i++) {
						long long k = (o * c + ch) * inner + i;
						sg += gm[k], sgx += gm[k] * (x[k] - wmean[ch]) * wis[ch];
					}
				wdwr[ch] = sgx, wdbr[ch] = sg;
				for (long long o = 0; o < outer; o++)
					for (long long i = 0; i < inner; i++) {
						long long k = (o * c + ch) * inner + i;
						double xh = (x[k] - wmean[ch]) * wis[ch];
						wdxr[k] = wr[ch] * wis[ch] * (gm[k] - sg / m - xh * sgx / m);
					}
			}
			expect(name, dxr, wdxr, 1e-5, 1e-4);
			expect(name, dwr, wdwr, 1e-5 * m, 1e-4);
			expect(name, dbr, wdbr, 1e-6 * m, 1e-5);
			// In place over g.
			std::vector<float> g3 = gr;
			float* G3 = g3.data();
			emu_launch([&] { batch_norm_grad_f32(G3, nullptr, nullptr, x.data(), YR, MR, ISR, wr.data(), G3, outer, c, inner, 0); }, gd, bd);
			same_bits(name, g3, dxu);
		}
	}
}
void test_elementwise() {
	for (long long n : {1LL, 7LL, 129LL, 1001LL}) {
		auto a = rnd(n, 0.1, 2), b = rnd(n, -2, 2);
		for (int op = 0; op < NUM_UNARY_OPS; op++) {
			std::vector<float> d(n + 1, -12345); std::vector<double> w(n + 1, -12345);
			for (long long i = 0; i < n; i++) w[i] = apply_unary(op, a[i], 0.5f, 1.5f);
			float *D = d.data(), *A = a.data();
			emu_launch([&] { unary_f32(op, D, A, n, 0.5f, 1.5f); }, {2, 1, 1}, {32, 1, 1});
			expect("unary", d, w, 0, 0);
		}
		for (int op = 0; op < NUM_BINARY_OPS; op++) {
			std::vector<float> d(n + 1, -12345); std::vector<double> w(n + 1, -12345);
			for (long long i = 0; i < n; i++) w[i] = apply_binary(op, a[i], b[i], 0.5f, 1.5f);
			float *D = d.data(), *A = a.data(), *Bp = b.data();
			emu_launch([&] { binary_f32(op, D, A, Bp, n, 0.5f, 1.5f); }, {3, 1, 1}, {32, 1, 1});
			expect("binary", d, w, 0, 0);
		}
		std::vector<float> d(n + 1, -12345); std::vector<double> w(n + 1, -12345);
		for (long long i = 0; i < n; i++) w[i] = 2.5;
		float* D = d.data();
		emu_launch([&] { fill_f32(D, n, 2.5f); }, {1, 1, 1}, {64, 1, 1});
		expect("fill", d, w, 0, 0);
	}
	// Walks at both index widths: shape [3,7,5,9], a permuted, b broadcast.
	long long s0 = 3, s1 = 7, s2 = 5, s3 = 9, n = s0 * s1 * s2 * s3;
	long long sa[4] = {1, 3, 21, 105}, sb[4] = {45, 0, 9, 1};
	auto a = rnd(945), b = rnd(135);
	std::vector<double> wc, wb;
	for (long long i0 = 0; i0 < s0; i0++) for (long long i1 = 0; i1 < s1; i1++) for (long long i2 = 0; i2 < s2; i2++) for (long long i3 = 0; i3 < s3; i3++) {
		float x = a[i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3]], y = b[i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3]];
		wc.push_back(x); wb.push_back(x - y);
	}
	for (int wide = 0; wide < 2; wide++) {
		std::vector<float> d(n);
		float *D = d.data(), *A = a.data(), *Bp = b.data();
		emu_launch([&] { copy_walk_f32(D, A, n, 4, 1, s0, s1, s2, s3, 0, 0, 0, sa[0], sa[1], sa[2], sa[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, wide); }, {2, 1, 1}, {64, 1, 1});
		expect("copy_walk", d, wc, 0, 0);
		emu_launch([&] { binary_walk_f32(1, D, A, Bp, n, 4, 1, s0, s1, s2, s3, 0, 0, 0, sa[0], sa[1], sa[2], sa[3], 0, 0, 0, sb[0], sb[1], sb[2], sb[3], 0, 0, wide); }, {3, 1, 1}, {32, 1, 1});
		expect("binary_walk", d, wb, 0, 0);
	}
	std::vector<float> d(8);
	float* D = d.data();
	emu_launch([&] { dropout_f32(D, 8, 0.5f, 2.0f, 42); }, {1, 1, 1}, {32, 1, 1});
	// device.HashUniform(42, i) for i < 4, printed by Go with %.9g.
	const double want_hash[4] = {0.74156487, 0.159910381, 0.27860111, 0.344190657};
	std::vector<double> wd(8);
	for (int i = 0; i < 8; i++) wd[i] = hash_uniform(42, i) >= 0.5f ? 2 : 0;
	expect("dropout", d, wd, 0, 0);
	for (int i = 0; i < 4; i++)
		if (std::fabs(hash_uniform(42, i) - want_hash[i]) > 1e-9) {
			printf("FAIL hash_uniform(42, %d) = %.9g, want %.9g\n", i, hash_uniform(42, i), want_hash[i]);
			failures++;
		}
}

// The activations added with the op table, against float64 references
// written out here (not the kernels' own device functions), at odd sizes
// with the kinks, softplus's threshold and NaN among the inputs.
static double sigmoid_d(double x) { return 1 / (1 + std::exp(-x)); }
static double sign_d(double x) { return x > 0 ? 1 : (x < 0 ? -1 : 0); }
static double gelu_tanh_d(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
static double unary_ref(int op, double x, double alpha, double beta) {
	switch (op) {
	case U_ABS: return std::fabs(x);
	case U_LEAKY_RELU: return x > 0 ? x : alpha * x;
	case U_GELU_TANH: return gelu_tanh_d(x);
	case U_GELU_ERF: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
	case U_SILU: return x * sigmoid_d(x);
	case U_SOFTPLUS: return x > 20 ? x : std::log1p(std::exp(x));
	case U_CLAMP: return std::isnan(x) ? x : std::min(std::max(x, alpha), beta);
	case U_SIGN: return sign_d(x);
	}
	return NAN;
}
static double binary_ref(int op, double a, double b, double alpha, double beta) {
	switch (op) {
	case B_GREATER: return a > b;
	case B_EQUAL: return a == b;
	case B_ABS_GRAD: return b * sign_d(a);
	case B_LEAKY_RELU_GRAD: return a > 0 ? b : alpha * b;
	case B_GELU_TANH_GRAD: { double h = 1e-6; return b * (gelu_tanh_d(a + h) - gelu_tanh_d(a - h)) / (2 * h); }
	case B_GELU_ERF_GRAD: return b * (0.5 * (1 + std::erf(a / std::sqrt(2.0))) + a * std::exp(-a * a / 2) / std::sqrt(2 * M_PI));
	case B_SILU_GRAD: { double s = sigmoid_d(a); return b * s * (1 + a * (1 - s)); }
	case B_SOFTPLUS_GRAD: return a > 20 ? b : b * sigmoid_d(a);
	case B_CLAMP_GRAD: return (a >= alpha && a <= beta) ? b : 0;
	}
	return NAN;
}
void test_new_ops() {
	const float specials[] = {0, -0.0f, -0.5f, 0.5f, 1, -1, 20, 20.5f, 19.5f, -30, 30, 1e-7f, NAN};
	for (long long n0 : {1LL, 7LL, 1001LL}) {
		auto a = rnd(n0, -6, 6);
		for (float v : specials) a.push_back(v);
		long long n = a.size();
		auto b = rnd(n, -2, 2);
		b[0] = a[0]; // a tie for equal
		float *A = a.data(), *Bp = b.data();
		for (int op = U_ABS; op <= U_SIGN; op++) {
			std::vector<float> d(n + 1, -12345); std::vector<double> w(n + 1, -12345);
			for (long long i = 0; i < n; i++) w[i] = unary_ref(op, a[i], -1.0, 1.0);
			float* D = d.data();
			emu_launch([&] { unary_f32(op, D, A, n, -1.0f, 1.0f); }, {2, 1, 1}, {32, 1, 1});
			char name[64];
			snprintf(name, sizeof name, "unary op %d n=%lld", op, n);
			expect(name, d, w, 2e-6, 2e-6);
		}
		for (int op = B_GREATER; op <= B_CLAMP_GRAD; op++) {
			std::vector<float> d(n + 1, -12345); std::vector<double> w(n + 1, -12345);
			for (long long i = 0; i < n; i++) w[i] = binary_ref(op, a[i], b[i], -1.0, 1.0);
			float* D = d.data();
			emu_launch([&] { binary_f32(op, D, A, Bp, n, -1.0f, 1.0f); }, {3, 1, 1}, {32, 1, 1});
			char name[64];
			snprintf(name, sizeof name, "binary op %d n=%lld", op, n);
			expect(name, d, w, 2e-5, 2e-5);
		}
	}
}

// 6-axis walks at odd sizes and both index widths: a binary walk with
// broadcasting and offsets, a ternary where with a NaN on the unselected
// side, and copies with padding, a strided dst and offsets.
void test_walks6() {
	const long long sh[6] = {2, 3, 1, 5, 3, 7};
	long long n = 1;
	for (long long v : sh) n *= v;
	long long sb[6], sc[6], st;
	// a permuted: the layout of the transposed shape {7,3,5,1,3,2}
	long long perm_sh[6] = {7, 3, 5, 1, 3, 2}, pst[6], pos[6] = {5, 4, 3, 2, 1, 0};
	st = 1;
	for (int d = 5; d >= 0; d--) { pst[d] = st; st *= perm_sh[d]; }
	long long sa[6];
	for (int d = 0; d < 6; d++) sa[d] = pst[pos[d]];
	// b broadcast on axes 1 and 4, c on axis 5
	long long bsh[6] = {2, 1, 1, 5, 1, 7}, csh[6] = {2, 3, 1, 5, 3, 1};
	st = 1;
	for (int d = 5; d >= 0; d--) { sb[d] = bsh[d] == 1 ? 0 : st; st *= bsh[d]; }
	long long nb = st;
	st = 1;
	for (int d = 5; d >= 0; d--) { sc[d] = csh[d] == 1 ? 0 : st; st *= csh[d]; }
	long long nc = st;
	const long long offa = 3, offb = 2, offc = 1;
	auto a = rnd(n + offa), b = rnd(nb + offb), c = rnd(nc + offc);
	for (size_t i = 0; i < c.size(); i += 4) c[i] = NAN;
	std::vector<double> wb(n), wt(n);
	for (long long i = 0; i < n; i++) {
		long long r = i, idx[6];
		for (int d = 5; d >= 0; d--) { idx[d] = r % sh[d]; r /= sh[d]; }
		long long oa = offa, ob = offb, oc = offc;
		for (int d = 0; d < 6; d++) { oa += idx[d] * sa[d]; ob += idx[d] * sb[d]; oc += idx[d] * sc[d]; }
		wb[i] = a[oa] - b[ob]; // rounded to float, as the kernel does
		wt[i] = a[oa] > 0 ? (double)b[ob] : (double)c[oc];
	}
	for (int wide = 0; wide < 2; wide++) {
		std::vector<float> d(n);
		float *D = d.data(), *A = a.data(), *Bp = b.data(), *C = c.data();
		emu_launch([&] { binary_walk_f32(B_SUB, D, A, Bp, n, 6, sh[1], sh[2], sh[3], sh[4], sh[5], offa, sa[0], sa[1], sa[2], sa[3], sa[4], sa[5], offb, sb[0], sb[1], sb[2], sb[3], sb[4], sb[5], 0, 0, wide); }, {3, 1, 1}, {64, 1, 1});
		expect("binary_walk 6-d", d, wb, 0, 0);
		// where(a > 0, b, c) as where(cond, b, c) with cond = a itself (nonzero where a != 0): use greater first.
		std::vector<float> cond(n + offa);
		for (long long i = 0; i < n + offa; i++) cond[i] = a[i] > 0 ? 1.0f : 0.0f;
		float* Cd = cond.data();
		emu_launch([&] { ternary_walk_f32(T_WHERE, D, Cd, Bp, C, n, 6, sh[1], sh[2], sh[3], sh[4], sh[5], offa, sa[0], sa[1], sa[2], sa[3], sa[4], sa[5], offb, sb[0], sb[1], sb[2], sb[3], sb[4], sb[5], offc, sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], wide); }, {2, 1, 1}, {64, 1, 1});
		expect("ternary_walk where 6-d", d, wt, 0, 0);
		// Pad: the output {2,3,1,5,3,7} reads x of shape {2,2,1,3,3,4}
		// (contiguous from offset offa) inside lo..hi, fill elsewhere; dst
		// is written at stride 2 along the last axis, from offset 5.
		long long lo[6] = {0, 1, 0, 1, 0, 2}, hi[6] = {2, 3, 1, 4, 3, 6}, xs[6], td[6];
		st = 1;
		for (int k = 5; k >= 0; k--) { xs[k] = st; st *= hi[k] - lo[k]; }
		st = 1;
		for (int k = 5; k >= 0; k--) { td[k] = k == 5 ? 2 : st * 2; st *= sh[k]; }
		td[5] = 2;
		st = 2 * sh[5];
		for (int k = 4; k >= 0; k--) { td[k] = st; st *= sh[k]; }
		long long dn = 5 + st;
		std::vector<float> dp(dn, -12345);
		std::vector<double> wp(dn, -12345);
		for (long long i = 0; i < n; i++) {
			long long r = i, idx[6];
			for (int k = 5; k >= 0; k--) { idx[k] = r % sh[k]; r /= sh[k]; }
			bool in = true;
			long long ox = offa, od = 5;
			for (int k = 0; k < 6; k++) {
				in = in && idx[k] >= lo[k] && idx[k] < hi[k];
				ox += (idx[k] - lo[k]) * xs[k];
				od += idx[k] * td[k];
			}
			wp[od] = in ? a[ox] : 2.5;
		}
		float* DP = dp.data();
		emu_launch([&] { copy_walk_f32(DP, A, n, 6, sh[1], sh[2], sh[3], sh[4], sh[5], offa, xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], 5, td[0], td[1], td[2], td[3], td[4], td[5], 1, 1, lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], hi[0], hi[1], hi[2], hi[3], hi[4], hi[5], 2.5f, wide); }, {3, 1, 1}, {64, 1, 1});
		expect("copy_walk padded, strided dst, 6-d", dp, wp, 0, 0);
	}
}
// same_bits checks that got and want hold the same float bits.
void same_bits(const char* what, const std::vector<float>& got, const std::vector<float>& want) {
	for (size_t i = 0; i < want.size(); i++)
		if (__float_as_uint(got[i]) != __float_as_uint(want[i])) {
			printf("FAIL %s: [%zu] got %.9g want %.9g (of %zu)\n", what, i, got[i], want[i], want.size());
			failures++;
			return;
		}
}
// multi_launch builds the table of tensors p, g, s1, s2 of lengths ns as
// cuda/multi.go does and runs the multi-tensor kernel body(tab, chunks, nchunks)
// on 2 blocks, so that blocks loop over chunks.
template <typename F>
void multi_launch(const std::vector<long long>& ns, std::vector<std::vector<float>>* bufs[5], F body) {
	std::vector<MultiTensor> tab;
	std::vector<unsigned> chunks;
	for (size_t t = 0; t < ns.size(); t++) {
		float* q[5] = {};
		for (int k = 0; k < 5; k++) q[k] = bufs[k] ? (*bufs[k])[t].data() : nullptr;
		tab.push_back({q[0], q[1], q[2], q[3], q[4], ns[t], (long long)chunks.size()});
		for (long long c = 0; c < (ns[t] + MULTI_CHUNK - 1) / MULTI_CHUNK; c++) chunks.push_back((unsigned)t);
	}
	const MultiTensor* T = tab.data();
	const unsigned* C = chunks.data();
	long long nc = (long long)chunks.size();
	emu_launch([&] { body(T, C, nc); }, {2, 1, 1}, {256, 1, 1});
}
void test_optim() {
	const std::vector<long long> ns = {1, 7, 0, 129, 2100};
	// Each case runs one launch per tensor (p[0]), the multi-tensor kernel
	// (p[1]) and, for maximize, the minimizing step on -g (p[2]): all three
	// must agree bit for bit.
	struct SGDCase { float lr, mom, damp, wd; int nesterov, maximize; };
	for (auto c : {SGDCase{0.1f, 0, 0, 0, 0, 0}, SGDCase{0.1f, 0.9f, 0, 0, 0, 0}, SGDCase{0.05f, 0.9f, 0.1f, 0.01f, 0, 0}, SGDCase{0.01f, 0.9f, 0, 5e-4f, 1, 0},
	               SGDCase{0.05f, 0.9f, 0.1f, 0.01f, 1, 1}, SGDCase{0.1f, 0, 0, 0.01f, 0, 1}}) {
		std::vector<std::vector<float>> p[3], b[3], g;
		for (long long n : ns) {
			auto p0 = rnd(n), b0 = rnd(n);
			for (int k = 0; k < 3; k++) p[k].push_back(p0), b[k].push_back(b0);
		}
		for (int step = 0; step < 3; step++) {
			g.clear();
			for (long long n : ns) g.push_back(rnd(n));
			const int first = step == 0;
			for (size_t t = 0; t < ns.size(); t++) {
				float *P = p[0][t].data(), *G = g[t].data(), *B = c.mom != 0 ? b[0][t].data() : nullptr;
				long long n = ns[t];
				if (n > 0) emu_launch([&] { sgd_f32(P, G, B, n, c.lr, c.mom, 1 - c.damp, c.wd, c.nesterov, first, c.maximize); }, g1(n), {256, 1, 1});
				if (c.maximize && n > 0) {
					std::vector<float> ng(g[t]);
					for (auto& x : ng) x = -x;
					float *P2 = p[2][t].data(), *G2 = ng.data(), *B2 = c.mom != 0 ? b[2][t].data() : nullptr;
					emu_launch([&] { sgd_f32(P2, G2, B2, n, c.lr, c.mom, 1 - c.damp, c.wd, c.nesterov, first, 0); }, g1(n), {256, 1, 1});
				}
			}
			std::vector<std::vector<float>>* bufs[5] = {&p[1], &g, c.mom != 0 ? &b[1] : nullptr, nullptr, nullptr};
			multi_launch(ns, bufs, [&](const MultiTensor* T, const unsigned* C, long long nc) {
				sgd_multi_f32(T, C, nc, c.lr, c.mom, 1 - c.damp, c.wd, c.nesterov, first, c.maximize);
			});
		}
		for (size_t t = 0; t < ns.size(); t++) {
			same_bits("sgd_multi p", p[1][t], p[0][t]);
			same_bits("sgd_multi buf", b[1][t], b[0][t]);
			if (c.maximize) same_bits("sgd maximize = sgd on -g", p[2][t], p[0][t]);
		}
	}
	// Adam as SGD above, and with AMSGrad against a float64 reference of
	// torch.optim.Adam(amsgrad=True) (p[2], m[2], v[2], vm[2] in double).
	struct AdamCase { float lr, b1, b2, eps, wd; int decoupled, maximize, amsgrad; };
	for (auto c : {AdamCase{1e-3f, 0.9f, 0.999f, 1e-8f, 0, 0, 0, 0}, AdamCase{1e-2f, 0.8f, 0.99f, 1e-6f, 0.1f, 0, 0, 0}, AdamCase{1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 0, 0},
	               AdamCase{1e-2f, 0.8f, 0.99f, 1e-6f, 0.1f, 0, 1, 1}, AdamCase{1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 0, 1}}) {
		std::vector<std::vector<float>> p[2], m[2], v[2], vm[2], g;
		std::vector<std::vector<double>> rp, rm, rv, rvm;
		for (long long n : ns) {
			auto p0 = rnd(n);
			for (int k = 0; k < 2; k++) p[k].push_back(p0), m[k].push_back(std::vector<float>(n)), v[k].push_back(std::vector<float>(n)), vm[k].push_back(std::vector<float>(n));
			rp.push_back(std::vector<double>(p0.begin(), p0.end())), rm.push_back(std::vector<double>(n)), rv.push_back(std::vector<double>(n)), rvm.push_back(std::vector<double>(n));
		}
		for (int step = 1; step <= 3; step++) {
			g.clear();
			for (long long n : ns) g.push_back(rnd(n));
			const float step_size = (float)(c.lr / (1 - std::pow((double)c.b1, step)));
			const float bc2sqrt = (float)std::sqrt(1 - std::pow((double)c.b2, step));
			const float decay = (float)(1 - (double)c.lr * c.wd);
			for (size_t t = 0; t < ns.size(); t++) {
				float *P = p[0][t].data(), *G = g[t].data(), *M = m[0][t].data(), *V = v[0][t].data(), *VM = c.amsgrad ? vm[0][t].data() : nullptr;
				long long n = ns[t];
				if (n > 0) emu_launch([&] { adam_f32(P, G, M, V, VM, n, c.b1, c.b2, c.eps, c.wd, c.decoupled, decay, step_size, bc2sqrt, c.maximize); }, g1(n), {256, 1, 1});
				for (long long i = 0; i < n; i++) { // torch.optim.Adam's rule, in double
					double gi = c.maximize ? -(double)g[t][i] : g[t][i], pi = rp[t][i];
					if (c.wd != 0) { if (c.decoupled) pi *= 1 - (double)c.lr * c.wd; else gi += c.wd * pi; }
					rm[t][i] = c.b1 * rm[t][i] + (1 - (double)c.b1) * gi;
					rv[t][i] = c.b2 * rv[t][i] + (1 - (double)c.b2) * gi * gi;
					double d = rv[t][i];
					if (c.amsgrad) d = rvm[t][i] = std::max(rvm[t][i], rv[t][i]);
					double bc1 = 1 - std::pow((double)c.b1, step), bc2 = 1 - std::pow((double)c.b2, step);
					rp[t][i] = pi - c.lr / bc1 * rm[t][i] / (std::sqrt(d) / std::sqrt(bc2) + c.eps);
				}
			}
			std::vector<std::vector<float>>* bufs[5] = {&p[1], &g, &m[1], &v[1], c.amsgrad ? &vm[1] : nullptr};
			multi_launch(ns, bufs, [&](const MultiTensor* T, const unsigned* C, long long nc) {
				adam_multi_f32(T, C, nc, c.b1, c.b2, c.eps, c.wd, c.decoupled, decay, step_size, bc2sqrt, c.maximize);
			});
		}
		for (size_t t = 0; t < ns.size(); t++) {
			same_bits("adam_multi p", p[1][t], p[0][t]);
			same_bits("adam_multi m", m[1][t], m[0][t]);
			same_bits("adam_multi v", v[1][t], v[0][t]);
			same_bits("adam_multi vmax", vm[1][t], vm[0][t]);
			char name[64];
			snprintf(name, sizeof name, "adam maximize=%d amsgrad=%d vs float64", c.maximize, c.amsgrad);
			expect(name, p[0][t], rp[t], 1e-6, 1e-4);
		}
	}
}
// test_conv runs im2col_f32 and col2im_f32 (stored and accumulated) at odd
// geometries (stride, padding, dilation, non-square images and kernels,
// batch 1) against plain loops in float64.
void test_conv() {
	struct G { long long N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW; } gs[] = {
		{2, 3, 7, 5, 3, 3, 2, 2, 1, 1, 1, 1}, {1, 2, 6, 7, 3, 2, 1, 3, 2, 0, 2, 1}, {3, 1, 5, 4, 2, 2, 2, 2, 0, 0, 1, 1},
		{1, 4, 9, 8, 5, 5, 2, 1, 2, 2, 1, 2}, {2, 2, 4, 3, 1, 1, 3, 2, 0, 1, 1, 1}, {5, 3, 11, 13, 3, 3, 1, 1, 1, 1, 1, 1}};
	for (auto& g : gs) {
		long long OH = (g.H + 2 * g.PH - g.DH * (g.KH - 1) - 1) / g.SH + 1, OW = (g.W + 2 * g.PW - g.DW * (g.KW - 1) - 1) / g.SW + 1;
		long long L = OH * OW, rows = g.C * g.KH * g.KW, cols = g.N * L, pixels = g.N * g.C * g.H * g.W;
		auto x = rnd(pixels);
		std::vector<double> want(rows * cols), back(pixels, 0);
		auto colv = rnd(rows * cols);
		auto x0 = rnd(pixels);
		for (long long c = 0; c < g.C; c++)
			for (long long i = 0; i < g.KH; i++)
				for (long long j = 0; j < g.KW; j++)
					for (long long n = 0; n < g.N; n++)
						for (long long oh = 0; oh < OH; oh++)
							for (long long ow = 0; ow < OW; ow++) {
								long long h = oh * g.SH + i * g.DH - g.PH, w = ow * g.SW + j * g.DW - g.PW;
								long long e = (((c * g.KH + i) * g.KW + j) * g.N + n) * L + oh * OW + ow;
								bool in = h >= 0 && h < g.H && w >= 0 && w < g.W;
								long long p = ((n * g.C + c) * g.H + h) * g.W + w;
								want[e] = in ? x[p] : -2.5;
								if (in) back[p] += colv[e];
							}
		std::vector<float> col(rows * cols, 777);
		emu_launch([&] { im2col_f32(col.data(), x.data(), g.N, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, -2.5f); },
		           g1(rows * cols), {256, 1, 1});
		char name[128];
		snprintf(name, sizeof name, "im2col %lldx%lldx%lldx%lld k%lldx%lld s%lldx%lld p%lldx%lld d%lldx%lld", g.N, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW);
		expect(name, col, want, 0, 0);
		for (int acc = 0; acc < 2; acc++) {
			auto xs = x0;
			std::vector<double> w2(pixels);
			for (long long p = 0; p < pixels; p++) w2[p] = back[p] + (acc ? x0[p] : 0);
			emu_launch([&] { col2im_f32(xs.data(), colv.data(), g.N, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, acc); },
			           g1(pixels), {256, 1, 1});
			snprintf(name, sizeof name, "col2im acc=%d %lldx%lldx%lldx%lld k%lldx%lld s%lldx%lld", acc, g.N, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW);
			expect(name, xs, w2, 1e-6, 1e-6);
		}
	}
}
// main runs every group of tests, or only those named as arguments
// (elementwise, ops, walks, optim, rows, bias_act_grad, batch_norm, softmax, reduce, gemm, conv).
int main(int argc, char** argv) {
	alarm(900); // a lane that skips a barrier or shuffle deadlocks
	struct { const char* name; void (*fn)(); } groups[] = {
		{"elementwise", test_elementwise}, {"ops", test_new_ops}, {"walks", test_walks6}, {"optim", test_optim},
		{"rows", test_rows}, {"bias_act_grad", test_bias_act_grad}, {"batch_norm", test_batch_norm},
		{"softmax", test_softmax},
		{"reduce", test_reduce}, {"gemm", test_gemm}, {"conv", test_conv},
	};
	for (auto& g : groups) {
		bool run = argc == 1;
		for (int i = 1; i < argc; i++) run = run || strcmp(argv[i], g.name) == 0;
		if (run) g.fn();
	}
	printf("%s (%d failures)\n", failures ? "FAIL" : "ok", failures);
	return failures != 0;
}
