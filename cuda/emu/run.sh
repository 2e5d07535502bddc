#!/bin/sh
# run.sh: compiles kernels.cu for the CPU with emu.h and runs kernels_test.cpp
# against float64 references: a check of the kernels' logic (indices, edges,
# barriers, shuffles) on a machine without a GPU. About two minutes on two
# cores, most of it creating threads. Needs g++ (C++20). `make cuda-check
# CUDA_EMU=1` runs it too. Arguments name the groups of tests to run
# (elementwise, ops, walks, optim, rows, bias_act_grad, softmax, reduce,
# gemm, conv); with none, all run.
set -eu
D=$(cd "$(dirname "$0")" && pwd)
R=$(cd "$D/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/inc"
: >"$T/inc/math_constants.h" # emu.h defines the two constants used
"${CXX:-g++}" -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -Wno-unused-function -I "$T/inc" -I "$R" -include "$D/emu.h" \
	"$D/kernels_test.cpp" "$D/emu.cpp" -o "$T/kernels_test"
"$T/kernels_test" "$@"
