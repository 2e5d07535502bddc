// allreduce_floor measures what a data-parallel step's all-reduce of n
// float32 values costs on this machine at the least, without gograd:
// Open MPI's blocking MPI_Allreduce and its non-blocking MPI_Iallreduce
// (with the algorithm the environment selects; bench/dist_scaling.sh sets
// the ring, as gograd's MPI backend does), each from C, and the data
// movement of a rank of 2 that receives the other's half: copying it in,
// adding it to its own, and copying the sum back out, on one core alone
// (an engine that read the other rank's memory in place would save one of
// the copies).
// It prints the medians of reps runs, in milliseconds:
//
//	mpicc -O3 -march=native -o /tmp/allreduce_floor bench/allreduce_floor.c
//	mpirun -np 2 --bind-to core /tmp/allreduce_floor 535818
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { reps = 200 };

static int cmp(const void* a, const void* b) {
	double x = *(const double*)a, y = *(const double*)b;
	return (x > y) - (x < y);
}

static double median(double* t) {
	qsort(t, reps, sizeof *t, cmp);
	return t[reps / 2] * 1e3;
}

int main(int argc, char** argv) {
	MPI_Init(&argc, &argv);
	int rank;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	long n = argc > 1 ? atol(argv[1]) : 0;
	if (n < 2 || n > 1 << 30) {
		if (rank == 0) fprintf(stderr, "usage: allreduce_floor VALUES (2 to 2^30)\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	float* a = malloc(n * sizeof *a);
	float* own = malloc(n / 2 * sizeof *own);
	float* in = malloc(n / 2 * sizeof *in);
	if (!a || !own || !in) {
		fprintf(stderr, "allreduce_floor: out of memory for %ld values\n", n);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	for (long i = 0; i < n; i++) a[i] = (float)(i % 7);
	memcpy(own, a, n / 2 * sizeof *own);
	double t[2][reps], copy[reps];
	for (int mode = 0; mode < 2; mode++) {
		for (int r = 0; r < reps; r++) {
			MPI_Barrier(MPI_COMM_WORLD);
			double s = MPI_Wtime();
			if (mode == 0) {
				MPI_Allreduce(MPI_IN_PLACE, a, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
			} else {
				MPI_Request req;
				MPI_Iallreduce(MPI_IN_PLACE, a, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
				MPI_Wait(&req, MPI_STATUS_IGNORE);
			}
			t[mode][r] = MPI_Wtime() - s;
		}
	}
	MPI_Barrier(MPI_COMM_WORLD);
	if (rank == 0) {
		for (int r = 0; r < reps; r++) {
			double s = MPI_Wtime();
			memcpy(in, a + n / 2, n / 2 * sizeof *in);
			for (long i = 0; i < n / 2; i++) own[i] += in[i];
			memcpy(a + n / 2, own, n / 2 * sizeof *own);
			copy[r] = MPI_Wtime() - s;
		}
		printf("floor: %ld values: MPI_Allreduce %.3f ms, MPI_Iallreduce %.3f ms, copying and adding alone %.3f ms\n",
			n, median(t[0]), median(t[1]), median(copy));
	}
	MPI_Barrier(MPI_COMM_WORLD);
	MPI_Finalize();
	return 0;
}
