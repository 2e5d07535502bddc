#!/bin/sh
# Data-parallel scaling of `gograd train` on MNIST, the MLP 784-512-256-10
# of its defaults or, with MODEL=cnn, `-model cnn` on the first LIMIT
# training images (default 3072 for the cnn, all for the mlp):
# 2 ranks of 1 thread each (mpirun -np 2 --bind-to core, -dist mpi -batch 64)
# against 1 process of 1 thread (taskset -c 0), with -batch 128 (the same
# training: the same batches and, to float rounding, the same weights) and
# with -batch 64 (the same work per process). EPOCHS epochs each; the best
# epoch's samples/s counts (training time only, without the evaluation).
# Then the share of the all-reduce time that Backward hid: the 2-rank run's
# wait per step against the time the same buckets take to all-reduce
# alone, which examples/ddp measures. Needs Open MPI (apt-get install -y
# openmpi-bin libopenmpi-dev) and MNIST in the Go module cache.
#
#	sh bench/dist_scaling_train.sh [EPOCHS]
#	MODEL=cnn sh bench/dist_scaling_train.sh 2
set -eu
cd "$(dirname "$0")/.."
epochs=${1:-3}
model=${MODEL:-mlp}
case $model in
mlp) limit=${LIMIT:-0} ;;
cnn) limit=${LIMIT:-3072} ;;
*) echo "dist_scaling_train.sh: unknown MODEL $model (want mlp or cnn)" >&2; exit 2 ;;
esac
common="-model $model -limit $limit"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags mpi -o "$tmp/gograd" ./cmd/gograd
go build -tags mpi -o "$tmp/ddp" ./examples/ddp
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

best() { # the best samples/s of the epoch lines
	awk '/^epoch [0-9]+\// { for (i = 1; i <= NF; i++) if ($(i+1) == "samples/s") { v = $i + 0; if (v > b) b = v } } END { printf "%.0f", b }' "$1"
}
one() { # batch
	taskset -c 0 "$tmp/gograd" train $common -batch "$1" -epochs "$epochs" -out "$tmp/one$1" >"$tmp/one$1.txt"
	grep -E '^(device|epoch [0-9]+/)' "$tmp/one$1.txt"
}
one 128
one 64
mpirun -np 2 --bind-to core "$tmp/gograd" train $common -dist mpi -batch 64 -epochs "$epochs" -out "$tmp/two" >"$tmp/two.txt"
grep -E '^(device|data-parallel|epoch [0-9])' "$tmp/two.txt"
mpirun -np 2 --bind-to core "$tmp/ddp" -dist mpi -model "$model" -threads 1 -batch 64 -steps 3 -epochs 1 -test=false -measure 100 >"$tmp/ddp.txt"
grep '^all-reduce' "$tmp/ddp.txt"

one128=$(best "$tmp/one128.txt")
one64=$(best "$tmp/one64.txt")
two=$(best "$tmp/two.txt")
waited=$(awk '/waiting for the all-reduces/ { for (i = 1; i <= NF; i++) if ($(i+1) == "ms") { s += $i; n++ } } END { printf "%.3f", s / n }' "$tmp/two.txt")
alone=$(awk '/^all-reduce:/ { for (i = 1; i <= NF; i++) if ($i == "median") print $(i+1) }' "$tmp/ddp.txt")
echo
echo "1 process, batch 128:     $one128 samples/s"
echo "1 process, batch 64:      $one64 samples/s"
echo "2 ranks, batch 64 each:   $two samples/s"
awk -v a="$two" -v b="$one128" -v c="$one64" -v w="$waited" -v z="$alone" 'BEGIN {
	printf "ratio against batch 128:  %.2f (the same training)\n", a / b
	printf "ratio against batch 64:   %.2f (the same batch per process)\n", a / c
	h = 1 - w / z; if (h < 0) h = 0
	printf "all-reduce per step:      %.3f ms alone, %.3f ms waited in training (step %.3f ms): %.0f%% hidden behind backward\n",
		z, w, 128000 / a, 100 * h }'
