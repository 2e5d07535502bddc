#!/bin/sh
# Data-parallel scaling on the machine's cores, MNIST, for each model of
# MODELS (default: mlp cnn; the MLP 784-512-256-10 and the CNN of `gograd
# train -model cnn`): 2 ranks of 1 thread each (mpirun -np 2 --bind-to core,
# batch B per rank) against 1 process of 1 thread pinned to one core
# (taskset -c 0; GOMAXPROCS=2, as the MPI backend sets it in a rank), at
# batch B (the same batch per process: weak scaling, DDP's usual figure)
# and at batch 2B (the same global batch: the same training). B is 128, the
# MNIST protocol's batch (BATCH overrides it).
#
# A fourth run trains 2 independent processes at batch B side by side, one
# pinned to each core, without communication: the ideal that 2 ranks would
# match. On an idle machine their samples/s add up to twice the 1 process
# figure (the cores do not slow each other); where a round's sum falls
# short of that, other jobs had the cores and its figures measure the
# scheduler, not the code (one that computes without pause gets its fair
# share of a busy core, and a rank that sleeps briefly every step more).
#
# The four runs alternate ROUNDS times (default 3), each of EPOCHS short
# epochs of STEPS steps (defaults per model below); the 1-minute load
# average is printed with each round. A run's figure is its best epoch's
# samples/s, and the table takes each configuration's best round; the
# rounds' own ratios (and their median, in the table) show how far the
# load moves them. The table also
# gives the median time of a step (after the first epoch): its
# computation (gather, forward, backward, optimizer step) and its wait for
# the all-reduces, in 1 process and in a rank, and the median time the
# same buckets take to all-reduce alone, without computation: the share of
# it that the 2-rank step did not wait for is the share hidden behind
# backward. Last, bench/allreduce_floor.c all-reduces as many values from
# C, without gograd: the time Open MPI itself takes, and the copying and
# adding of a rank that receives the other's half, on one core alone. That work runs on
# the cores that compute, so a step of 2 ranks takes at least the 1
# process step plus the all-reduce, which bounds the ratio at
# 2 x step / (step + all-reduce) even where the ranks would not slow each
# other at all. Needs Open MPI (apt-get install -y openmpi-bin
# libopenmpi-dev) and MNIST in the Go module cache (go mod download).
#
#	sh bench/dist_scaling.sh
#	MODELS=cnn ROUNDS=2 sh bench/dist_scaling.sh
set -eu
cd "$(dirname "$0")/.."
models=${MODELS:-mlp cnn}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags mpi -o "$tmp/ddp" ./examples/ddp
mpicc -O3 -march=native -o "$tmp/floor" bench/allreduce_floor.c
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

best() { # the best samples/s of the epoch lines of $1
	awk '/^epoch/ { for (i = 1; i <= NF; i++) if ($(i+1) == "samples/s") { v = $i + 0; if (v > b) b = v } } END { printf "%.0f", b }' "$1"
}
quart() { # the median of field $2 (1 step, 2 computing, 3 waiting) in $1
	awk -v f="$2" -F'; ' '/^step \(quartiles/ { split($f, q, " / "); print q[2] + 0 }' "$1"
}
load() { cut -d' ' -f1 /proc/loadavg; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }

for model in $models; do
	case $model in
	mlp) steps=${STEPS:-100} epochs=${EPOCHS:-4} ;;
	cnn) steps=${STEPS:-5} epochs=${EPOCHS:-3} ;;
	*) echo "dist_scaling.sh: unknown model $model (want mlp or cnn)" >&2; exit 2 ;;
	esac
	b=${BATCH:-128}
	b2=$((2 * b))
	args="-model $model -threads 1 -steps $steps -epochs $epochs -test=false"
	echo "== $model: batch $b per process, $epochs epochs of $steps steps per run, $rounds rounds"
	bestA=0 bestB=0 bestT=0 bestP=0 weak=""
	for r in $(seq "$rounds"); do
		lA=$(load)
		GOMAXPROCS=2 taskset -c 0 "$tmp/ddp" -dist none $args -batch "$b" -measure 0 >"$tmp/a$r.txt"
		lB=$(load)
		GOMAXPROCS=2 taskset -c 0 "$tmp/ddp" -dist none $args -batch "$b2" -measure 0 >"$tmp/b$r.txt"
		lT=$(load)
		mpirun -np 2 --bind-to core "$tmp/ddp" -dist mpi $args -batch "$b" -measure 100 >"$tmp/t$r.txt"
		lP=$(load)
		GOMAXPROCS=2 taskset -c 0 "$tmp/ddp" -dist none $args -batch "$b" -measure 0 >"$tmp/p0$r.txt" &
		GOMAXPROCS=2 taskset -c 1 "$tmp/ddp" -dist none $args -batch "$b" -measure 0 -seed 2 >"$tmp/p1$r.txt"
		wait
		a=$(best "$tmp/a$r.txt") bb=$(best "$tmp/b$r.txt") t=$(best "$tmp/t$r.txt")
		p=$(awk -v x="$(best "$tmp/p0$r.txt")" -v y="$(best "$tmp/p1$r.txt")" 'BEGIN { print x + y }')
		awk -v r="$r" -v a="$a" -v b="$bb" -v t="$t" -v p="$p" -v la="$lA" -v lb="$lB" -v lt="$lT" -v lp="$lP" -v B="$b" -v B2="$b2" 'BEGIN {
			printf "round %d: 1 process batch %d: %.0f samples/s (load %s); batch %d: %.0f (load %s); 2 ranks: %.0f (load %s); 2 independent: %.0f (load %s): ratios %.2f and %.2f; the 2 independent at %.2f times 1\n",
				r, B, a, la, B2, b, lb, t, lt, p, lp, t / a, t / b, p / a }'
		weak="$weak $(awk -v a="$a" -v t="$t" 'BEGIN { print t / a }')"
		if [ "$(max "$a" "$bestA")" = "$a" ]; then bestA=$a ra=$r; fi
		if [ "$(max "$bb" "$bestB")" = "$bb" ]; then bestB=$bb rb=$r; fi
		if [ "$(max "$t" "$bestT")" = "$t" ]; then bestT=$t rt=$r; fi
		if [ "$(max "$p" "$bestP")" = "$p" ]; then bestP=$p; fi
	done
	aComp=$(quart "$tmp/a$ra.txt" 2)
	tComp=$(quart "$tmp/t$rt.txt" 2) tWait=$(quart "$tmp/t$rt.txt" 3)
	alone=$(awk '/^all-reduce:/ { for (i = 1; i <= NF; i++) if ($i == "median") print $(i+1) }' "$tmp/t$rt.txt")
	buckets=$(sed -n 's/^all-reduce: \([0-9]* buckets \[[^]]*\]\).*/\1/p' "$tmp/t$rt.txt")
	values=$(sed -n 's/^all-reduce: .*, \([0-9]*\) values,.*/\1/p' "$tmp/t$rt.txt")
	# The same values all-reduced from C, with the ring gograd selects.
	floor=$(OMPI_MCA_coll_libnbc_iallreduce_algorithm=1 mpirun -np 2 --bind-to core "$tmp/floor" "$values" | sed -n 's/^floor: //p')
	fC=$(echo "$floor" | sed -n 's/.*MPI_Allreduce \([0-9.]*\) ms.*/\1/p')
	fN=$(echo "$floor" | sed -n 's/.*MPI_Iallreduce \([0-9.]*\) ms.*/\1/p')
	fM=$(echo "$floor" | sed -n 's/.*alone \([0-9.]*\) ms.*/\1/p')
	echo
	echo "| $model, best of $rounds rounds | samples/s | median step: computing + waiting |"
	echo "|---|---|---|"
	echo "| 1 process, 1 thread, batch $b | $bestA | $aComp + 0 ms |"
	echo "| 1 process, 1 thread, batch $b2 | $bestB | |"
	echo "| 2 ranks, 1 thread each, batch $b each | $bestT | $tComp + $tWait ms |"
	awk -v a="$bestA" -v b="$bestB" -v t="$bestT" -v p="$bestP" -v B="$b" -v B2="$b2" -v al="$alone" -v w="$tWait" -v bk="$buckets" -v weak="$weak" 'BEGIN {
		n = split(weak, r, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] + 0 < r[i] + 0) { x = r[i]; r[i] = r[j]; r[j] = x }
		med = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
		printf "| ratio against batch %d (weak scaling) | **%.2f** | median of the rounds'"'"' own ratios %.2f |\n", B, t / a, med
		printf "| ratio against batch %d (the same training) | **%.2f** | |\n", B2, t / b
		printf "| 2 independent processes of batch %d side by side (the ideal) | %.0f | %.2f times 1 process: 2 on an idle machine |\n", B, p, p / a
		printf "| efficiency of the 2 ranks against the ideal | %.2f | |\n", t / p
		h = 1 - w / al; if (h < 0) h = 0
		printf "| all-reduce of the gradients (%s): alone / waited | %.3f / %.3f ms | %.0f%% hidden behind backward |\n", bk, al, w, 100 * h }'
	awk -v c="$aComp" -v fc="$fC" -v fn="$fN" -v fm="$fM" -v n="$values" 'BEGIN {
		f = (fc < fn) ? fc : fn
		printf "| the same %d values from C: Open MPI blocking / non-blocking, and copying and adding alone | %.3f / %.3f / %.3f ms | |\n", n, fc, fn, fm
		printf "| bound on the ratio with Open MPI, 2 x step / (step + all-reduce), ranks not slowing each other | **%.2f** | |\n", 2 * c / (c + f)
		printf "| bound with only the copying and adding | %.2f | |\n", 2 * c / (c + fm) }'
	echo
done
