#!/usr/bin/env bash
# profile.sh [LOGDIR]: profiles gograd's MNIST MLP training step on the GPU,
# from the bundle that `make gpu-bundle` writes (run it next to run.sh).
#   1. nsys: kernel launches per training step, their GPU time, and the
#      host-side cost of each launch, over one epoch of `gograd train`;
#   2. ncu --clock-control none: the SGEMM at 4096³ and the kernels of one
#      training step (GEMM tiles, fused softmax + cross-entropy, bias +
#      activation, SGD), with throughput against the hardware's peaks.
# Each tool runs under a time limit; a tool that is missing or refused is
# reported and skipped.
set -u
B=$(cd "$(dirname "$0")" && pwd)
LOGS=${1:-${OUT:-$B/logs}}/profile
mkdir -p "$LOGS"
export PATH=$PATH:/usr/local/cuda/bin
export CUDA_CACHE_PATH=${CUDA_CACHE_PATH:-/tmp/gograd-cuda-cache}
export MNIST_DIR=$B/data
cd "$B" || exit 1
TRAIN="./gograd train -device cuda -epochs 1 -lr 0.05 -schedule none -val 0 -data $B/data -overwrite"

echo "=== nsys: one epoch of gograd train (468 steps of batch 128)"
if command -v nsys >/dev/null; then
	timeout -k 5 150 nsys profile -t cuda --force-overwrite true -o "$LOGS/epoch" $TRAIN -out "$LOGS/run-nsys" >"$LOGS/nsys.log" 2>&1
	echo "nsys exit $?"
	timeout -k 5 90 nsys stats -q -r cuda_gpu_kern_sum,cuda_api_sum -f csv -o "$LOGS/epoch" "$LOGS/epoch.nsys-rep" >>"$LOGS/nsys.log" 2>&1
	for f in "$LOGS"/epoch_cuda_gpu_kern_sum.csv "$LOGS"/epoch_cuda_api_sum.csv; do
		[ -f "$f" ] && { echo "--- $(basename "$f")"; cut -d, -f1-9 "$f" | head -n 40; }
	done
	tail -n 5 "$LOGS/nsys.log"
else
	echo "nsys: not found"
fi

echo "=== ncu: SGEMM 4096x4096x4096 NN"
if command -v ncu >/dev/null; then
	timeout -k 5 90 ncu --clock-control none -k regex:sgemm_128 -c 1 \
		--section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
		./device.test -test.run '^$' -test.bench 'CUDASgemm/4096x4096x4096_NN' -test.benchtime 1x >"$LOGS/ncu_sgemm.log" 2>&1
	echo "ncu exit $?"
	grep -E 'sgemm|Duration|Throughput|Registers|Achieved Occupancy|Theoretical Occupancy|Block Limit|ERR|==PROF==|==ERROR==' "$LOGS/ncu_sgemm.log" | head -n 40
	echo "=== ncu: the kernels of training steps (skipping the first 400 launches)"
	timeout -k 5 120 ncu --clock-control none -s 400 -c 60 --section SpeedOfLight \
		$TRAIN -limit 12800 -out "$LOGS/run-ncu" >"$LOGS/ncu_step.log" 2>&1
	echo "ncu exit $?"
	# Per kernel: launches among the 60 profiled, mean duration, mean SM and
	# DRAM throughput (% of peak).
	awk '/^  [a-z_0-9]+_f32/ { k = $1; n[k]++ }
		/Duration/ && $2 == "us" { d[k] += $3 } /Duration/ && $2 == "ns" { d[k] += $3 / 1000 }
		/Compute \(SM\) Throughput/ { sm[k] += $NF } /DRAM Throughput/ { dr[k] += $NF }
		END { printf "%-24s %6s %10s %8s %8s\n", "kernel", "count", "mean_us", "SM%", "DRAM%";
			for (k in n) printf "%-24s %6d %10.2f %8.2f %8.2f\n", k, n[k], d[k] / n[k], sm[k] / n[k], dr[k] / n[k] }' "$LOGS/ncu_step.log"
	grep -E '==ERROR==|ERR_' "$LOGS/ncu_step.log" | head -n 5
else
	echo "ncu: not found"
fi
