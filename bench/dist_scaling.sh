#!/bin/sh
# Data-parallel scaling on the MNIST MLP 784-512-256-10: 2 ranks of 1
# thread each (mpirun -np 2, batch 64 per rank) against 1 process of 1
# thread (batch 64, and batch 128 for the same global batch). Each run
# trains EPOCHS short epochs of STEPS steps; the best epoch counts. Prints
# samples/s, the ratios, and the share of the all-reduce time that Backward
# hid. Needs Open MPI (apt-get install -y openmpi-bin libopenmpi-dev) and
# MNIST in the Go module cache (go mod download).
#
#	sh bench/dist_scaling.sh [STEPS] [EPOCHS]
set -eu
cd "$(dirname "$0")/.."
steps=${1:-200}
epochs=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags mpi -o "$tmp/ddp" ./examples/ddp

best() { # the best samples/s of the epoch lines
	awk '/^epoch/ { for (i = 1; i <= NF; i++) if ($(i+1) == "samples/s") { v = $i + 0; if (v > b) b = v } } END { printf "%.0f", b }' "$1"
}
run1() { # batch
	taskset -c 0 "$tmp/ddp" -dist none -threads 1 -batch "$1" -steps "$steps" -epochs "$epochs" >"$tmp/one$1.txt"
	cat "$tmp/one$1.txt"
}
run1 64
run1 128
mpirun -np 2 --allow-run-as-root --bind-to core "$tmp/ddp" -dist mpi -threads 1 -batch 64 \
	-steps "$steps" -epochs "$epochs" >"$tmp/two.txt"
cat "$tmp/two.txt"
one64=$(best "$tmp/one64.txt")
one128=$(best "$tmp/one128.txt")
two=$(best "$tmp/two.txt")
echo
echo "1 process, batch 64:        $one64 samples/s"
echo "1 process, batch 128:       $one128 samples/s"
echo "2 ranks, batch 64 each:     $two samples/s"
awk -v a="$two" -v b="$one64" -v c="$one128" 'BEGIN {
	printf "ratio against batch 64:     %.2f (weak scaling: the batch per process is the same)\n", a / b
	printf "ratio against batch 128:    %.2f (the same global batch, so the same training)\n", a / c }'
grep '^all-reduce' "$tmp/two.txt"
