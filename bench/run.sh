#!/usr/bin/env bash
# run.sh [LOGDIR]: gograd's GPU checks, on a machine with an NVIDIA GPU, its
# driver, PyTorch and the CUDA toolkit, but no Go. `make gpu-bundle` writes
# this file into the bundle from bench/run.sh (gograd @COMMIT@, built @BUILT@).
#
# In order, each step under a time limit (the whole run within $BUDGET_S):
#   1. nvidia-smi, torch and CUDA versions;
#   2. every cuda-tagged test binary of the bundle (*.test), -test.v;
#   3. compute-sanitizer --tool memcheck on device.test (-test.short);
#   4. the Go SGEMM and MLP-step benchmarks, then cuBLAS through torch.matmul
#      (bench/sgemm.py) and the PyTorch MLP (bench/torch_mlp_gpu.py);
#   5. the MNIST training run of the gograd command, when the bundle has it;
# then a summary table, printed last. Full logs go to LOGDIR (default $OUT,
# else ./logs next to this script).
set -u
B=$(cd "$(dirname "$0")" && pwd)
LOGS=${1:-${OUT:-$B/logs}}
mkdir -p "$LOGS"
LOGS=$(cd "$LOGS" && pwd)
BUDGET_S=${BUDGET_S:-360}
START=$(date +%s)
# The driver compiles the embedded PTX when a module loads; its cache makes
# every load after the first cheap.
export CUDA_CACHE_PATH=${CUDA_CACHE_PATH:-/tmp/gograd-cuda-cache}
export CUDA_CACHE_MAXSIZE=${CUDA_CACHE_MAXSIZE:-1073741824}
export PATH=$PATH:/usr/local/cuda/bin
export MNIST_DIR=$B/data
SUMMARY=$LOGS/summary.txt
: >"$SUMMARY"

say() { echo "$*" | tee -a "$SUMMARY"; }
step() { echo; echo "=== $* ($(($(date +%s) - START)) s)"; }

# limit S: S seconds, or what is left of the budget, at least 10.
limit() {
	local left=$((BUDGET_S - ($(date +%s) - START)))
	if [ "$left" -lt "$1" ]; then
		[ "$left" -lt 10 ] && left=10
		echo "$left"
	else
		echo "$1"
	fi
}

# run NAME SECONDS CMD...: runs CMD with its output in $LOGS/NAME.log, killed
# after SECONDS; prints a one-line verdict and sets RC.
run() {
	local name=$1 secs
	secs=$(limit "$2")
	shift 2
	local t0=$(date +%s)
	(cd "$B" && timeout -k 5 "$secs" "$@") >"$LOGS/$name.log" 2>&1
	RC=$?
	local dt=$(($(date +%s) - t0))
	case $RC in
	0) echo "$name: ok (${dt} s)" ;;
	124 | 137) echo "$name: TIMED OUT after ${secs} s (log: $LOGS/$name.log)" ;;
	*) echo "$name: exit status $RC (${dt} s, log: $LOGS/$name.log)" ;;
	esac
}

step "1. GPU and versions"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1
nvidia-smi 2>&1 | head -n 20 >"$LOGS/nvidia-smi.log"
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "device", torch.cuda.get_device_name(0))' 2>&1 | tail -n 1
command -v nvcc >/dev/null && nvcc --version | tail -n 1
command -v compute-sanitizer >/dev/null || echo "compute-sanitizer: not found"
echo "bundle: gograd @COMMIT@, built @BUILT@; logs in $LOGS"

step "2. test binaries"
declare -A TEST_RESULT
TESTS=$(cd "$B" && ls *.test 2>/dev/null)
for t in $TESTS; do
	secs=110
	[ "$t" != device.test ] && secs=60
	run "$t" "$secs" "./$t" -test.v -test.timeout "$(($(limit $secs) - 5))s"
	pass=$(grep -c -- '^--- PASS' "$LOGS/$t.log")
	fail=$(grep -c -- '^--- FAIL' "$LOGS/$t.log")
	skip=$(grep -c -- '^--- SKIP' "$LOGS/$t.log")
	if [ "$RC" = 0 ]; then
		TEST_RESULT[$t]="PASS ($pass passed, $skip skipped)"
	else
		TEST_RESULT[$t]="FAIL (exit $RC: $fail failed, $pass passed; log $t.log)"
		echo "--- first failures of $t:"
		grep -E -A 12 -- '--- FAIL|panic:|differ|cuda: ' "$LOGS/$t.log" | head -n 60
	fi
done

step "3. compute-sanitizer --tool memcheck device.test -test.short"
SANITIZER="not run"
if command -v compute-sanitizer >/dev/null && [ -x "$B/device.test" ]; then
	run sanitizer 90 compute-sanitizer --tool memcheck --leak-check no --print-limit 20 \
		./device.test -test.short -test.v -test.timeout 10m
	SANITIZER=$(grep -h 'ERROR SUMMARY' "$LOGS/sanitizer.log" | tail -n 1 | sed 's/^=* *//')
	[ -z "$SANITIZER" ] && SANITIZER="no verdict (exit $RC): $(tail -n 2 "$LOGS/sanitizer.log" | tr '\n' ' ')"
	[ "$RC" = 124 ] || [ "$RC" = 137 ] && SANITIZER="$SANITIZER; timed out"
	grep -E -m 20 'Invalid|out of bounds|Program hit|--- FAIL' "$LOGS/sanitizer.log"
elif ! command -v compute-sanitizer >/dev/null; then
	SANITIZER="compute-sanitizer not found"
fi
echo "sanitizer: $SANITIZER"

step "4. benchmarks: gograd SGEMM and MLP step, cuBLAS, PyTorch MLP"
if [ -x "$B/device.test" ]; then
	run gobench 60 ./device.test -test.run '^$' -test.bench 'CUDASgemm|CUDAMLPStep' -test.benchtime 1s
	grep -E '^Benchmark|kernel' "$LOGS/gobench.log"
fi
run torch_sgemm 45 python3 bench/sgemm.py
grep -E '^(sgemm|#)' "$LOGS/torch_sgemm.log"
run torch_mlp 45 python3 bench/torch_mlp_gpu.py --data "$B/data" --epochs 3
tail -n 5 "$LOGS/torch_mlp.log"

step "5. MNIST training with the gograd command"
if [ -x "$B/gograd" ]; then
	# The protocol of bench/torch_mlp_gpu.py: SGD lr 0.05, momentum 0.9,
	# batch 128, no schedule, no validation split, 3 epochs.
	run gograd_train 90 ./gograd train -device cuda -epochs 3 -lr 0.05 -schedule none -val 0 \
		-data "$B/data" -out "$LOGS/run" -overwrite
	grep -v -E '^\s*$' "$LOGS/gograd_train.log" | grep -E -i 'epoch|device|error|acc' | tail -n 12
	run gograd_eval 30 ./gograd eval -device cuda -model "$LOGS/run/model.safetensors" -data "$B/data"
	head -n 3 "$LOGS/gograd_eval.log"
else
	echo "gograd: not in this bundle"
fi

# ---------------------------------------------------------------- summary
echo
say "=== summary: gograd @COMMIT@ on ${GPU:-unknown GPU}, $(($(date +%s) - START)) s, logs in $LOGS"
say "tests:"
for t in $TESTS; do
	say "$(printf '  %-22s %s' "$t" "${TEST_RESULT[$t]}")"
done
say "compute-sanitizer memcheck (device.test -test.short): $SANITIZER"
say "SGEMM FP32, TF32 off (TFLOP/s):"
say "$(printf '  %-22s %10s %10s %7s  %s' size gograd cuBLAS ratio kernel)"
if [ -f "$LOGS/gobench.log" ]; then
	awk '
		FNR == NR && /^sgemm torch/ { split($4, f, "="); torch[$3] = f[2]; next }
		FNR != NR && /^BenchmarkCUDASgemm\// {
			name = $1; sub(/^BenchmarkCUDASgemm\//, "", name); sub(/-[0-9]+$/, "", name)
			for (i = 2; i < NF; i++) if ($(i + 1) == "TFLOP/s") ours = $i
			order[++n] = name; go[name] = ours
		}
		FNR != NR && / kernel [0-9x]+_[NT][NT] sgemm/ {
			for (i = 1; i < NF; i++) if ($i == "kernel") break
			k = $(i + 2); for (j = i + 3; j <= NF; j++) k = k " " $j
			kern[$(i + 1)] = k
		}
		END {
			for (i = 1; i <= n; i++) {
				s = order[i]; r = (torch[s] > 0) ? sprintf("%.2f", go[s] / torch[s]) : "-"
				printf "  %-22s %10s %10s %7s  %s\n", s, go[s], (s in torch) ? torch[s] : "-", r, kern[s]
			}
		}' "$LOGS/torch_sgemm.log" "$LOGS/gobench.log" | tee -a "$SUMMARY"
fi
OURS=$(grep '^BenchmarkCUDAMLPStep' "$LOGS/gobench.log" 2>/dev/null | awk '{for (i = 2; i < NF; i++) if ($(i + 1) == "samples/s") print $i}')
THEIRS=$(grep '^mlp torch' "$LOGS/torch_mlp.log" 2>/dev/null | sed 's/.*samples_per_s=\([0-9.]*\).*/\1/')
RATIO=$(awk -v a="${OURS:-0}" -v b="${THEIRS:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }')
say "MLP 784-512-256-10 training step, batch 128 (samples/s): gograd device ops ${OURS:--}, PyTorch eager ${THEIRS:--}, ratio $RATIO"
say "  (PyTorch: $(grep '^mlp torch' "$LOGS/torch_mlp.log" 2>/dev/null | cut -d' ' -f3- || echo not run))"
