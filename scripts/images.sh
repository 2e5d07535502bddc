#!/usr/bin/env bash
# images.sh: the container images of docker/.
#
#   scripts/images.sh make cpu|bench|cuda
#       Builds one image (gograd, gograd-bench or gograd-cuda) from the real
#       bases and runs its default command, with its output in ./runs: with
#       docker when its daemon answers, otherwise with buildah (or podman) to
#       build and podman to run; where podman cannot run containers (no
#       usable cgroups, as in some sandboxes), with `buildah run`. The make
#       targets docker-cpu, docker-bench and docker-cuda call this.
#       CONTAINER_ENGINE=docker|podman|buildah chooses the engine.
#
#   scripts/images.sh ci
#       What .ci/run calls, with buildah and podman, on a machine with no
#       container registry: builds every image from local stand-ins for its
#       bases, runs inside the CPU images a short training (its run directory
#       checked, then `gograd eval` on it) and a short benchmark (one round,
#       two epochs: the first is the warm-up that the tables leave out) whose
#       tables must appear, checks that the CUDA image holds the bundle, and
#       removes everything it made (images, containers, the stand-ins' root
#       file system). Prints how long each step took.
#
# The stand-ins, and what each replaces:
#   localhost/gograd-ci-debian   a Debian bookworm minbase root file system
#                                (debootstrap) with no apt lists: replaces
#                                debian:bookworm-slim, and in the CUDA image
#                                the PyTorch CUDA image (TORCH_IMAGE), whose
#                                stage only copies the bundle in, so CI
#                                checks the files but not CUDA or PyTorch.
#   localhost/gograd-ci-golang   that root file system with this machine's Go
#                                toolchain at /usr/local/go, its CA bundle and
#                                the official image's environment: replaces
#                                golang:1.26-bookworm (which also has gcc,
#                                make and git; the CUDA image installs the
#                                first two itself). The CUDA headers and stubs
#                                are not part of any stand-in: the CUDA build
#                                stage fetches them as a real build does
#                                (make gpu-bundle runs scripts/cuda-sdk.sh).
# The minbase root file system is cached as a tar in
# ${GOGRAD_IMAGES_CACHE:-~/.cache/gograd/images} and made again when it is
# missing or older than 7 days (debootstrap: about 2 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "images: $*"; }
die() {
	echo "images: $*" >&2
	exit 1
}

# The process and file limits of buildah's containers may not exceed the
# hard limits that buildah runs them under (its defaults can: "setrlimit
# RLIMIT_NPROC: Operation not permitted"); in a sandbox, buildah's chroot
# isolation held 32768 processes where the shell allowed more.
ulimits() {
	local u n
	u=$(ulimit -Hu)
	n=$(ulimit -Hn)
	[ "$u" = unlimited ] || [ "$u" -gt 32768 ] && u=32768
	[ "$u" != unlimited ] && echo "--ulimit nproc=$u:$u"
	[ "$n" != unlimited ] && echo "--ulimit nofile=$n:$n"
	return 0
}
# shellcheck disable=SC2207
ULIMITS=($(ulimits))
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}

# dockerfile IMAGE: the Dockerfile of an image.
dockerfile() {
	case $1 in
	cpu) echo docker/Dockerfile ;;
	bench) echo docker/Dockerfile.bench ;;
	cuda) echo docker/Dockerfile.cuda ;;
	*) die "unknown image $1 (cpu, bench or cuda)" ;;
	esac
}

commit() { git describe --always --dirty 2>/dev/null || echo unknown; }

# brun IMAGE [buildah run options] -- [ARGS...]: runs IMAGE's entrypoint
# with ARGS, or its default command without, as `docker run --rm` does.
brun() {
	local image=$1 c rc=0 opts=() args=() cmd=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	args=("$@")
	# shellcheck disable=SC2207
	local ep=($(buildah inspect --type image --format '{{range .OCIv1.Config.Entrypoint}}{{.}} {{end}}' "$image"))
	if [ ${#args[@]} -eq 0 ]; then
		# shellcheck disable=SC2207
		args=($(buildah inspect --type image --format '{{range .OCIv1.Config.Cmd}}{{.}} {{end}}' "$image"))
	fi
	cmd=("${ep[@]}" "${args[@]}")
	c=$(buildah from --pull=never "${ULIMITS[@]}" "$image")
	CONTAINERS+=("$c")
	buildah run "${opts[@]}" "$c" -- "${cmd[@]}" || rc=$?
	buildah rm "$c" >/dev/null
	return $rc
}
CONTAINERS=()

# ------------------------------------------------------------------ make
make_image() {
	local which=$1 file name engine
	file=$(dockerfile "$which")
	name=gograd
	[ "$which" != cpu ] && name=gograd-$which
	engine=${CONTAINER_ENGINE:-}
	if [ -z "$engine" ]; then
		# docker only with a daemon to talk to (the CLI alone is not enough).
		if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
			engine=docker
		elif command -v buildah >/dev/null; then
			engine=buildah
		elif command -v podman >/dev/null; then
			engine=podman
		fi
	fi
	[ -n "$engine" ] || die "no docker, buildah or podman found: install one (Debian: apt-get install buildah podman)"
	mkdir -p runs
	local build=(-f "$file" -t "$name" .)
	[ "$which" != cpu ] && build=(--build-arg "GOGRAD_COMMIT=$(commit)" "${build[@]}")
	say "$engine build -f $file -t $name"
	case $engine in
	docker) docker build "${build[@]}" ;;
	buildah) buildah build "${ULIMITS[@]}" "${build[@]}" ;;
	podman) podman build "${build[@]}" ;;
	*) die "CONTAINER_ENGINE must be docker, podman or buildah, not $engine" ;;
	esac

	# What runs, and with which mounts: as the Dockerfiles' comments say.
	local mount args=() envs=() gpu=()
	case $which in
	cpu)
		mount="$PWD/runs:/work/runs"
		args=(train -out runs/docker -overwrite)
		;;
	bench)
		mkdir -p runs/bench
		mount="$PWD/runs/bench:/out"
		for v in ROUNDS EPOCHS GEMM QUIET_WAIT OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
			[ -n "${!v:-}" ] && envs+=(-e "$v=${!v}")
		done
		;;
	cuda)
		mkdir -p runs/gpu
		mount="$PWD/runs/gpu:/logs"
		;;
	esac
	if [ "$engine" = docker ]; then
		[ "$which" = cuda ] && gpu=(--gpus all)
		docker run --rm "${gpu[@]}" "${envs[@]}" -v "$mount" "$name" "${args[@]}"
		return
	fi
	if command -v podman >/dev/null; then
		[ "$which" = cuda ] && gpu=(--device nvidia.com/gpu=all)
		local rc=0
		podman run --rm "${ULIMITS[@]}" "${gpu[@]}" "${envs[@]}" -v "$mount:Z" "localhost/$name" "${args[@]}" || rc=$?
		# 125 and 126: podman or its OCI runtime failed, not the command
		# (in a sandbox: "cgroups in hybrid mode not supported").
		[ $rc != 125 ] && [ $rc != 126 ] && return $rc
		say "podman could not run the container; running it with buildah run"
	fi
	[ "$which" = cuda ] && die "buildah run cannot pass a GPU to the container: run localhost/$name with podman or docker"
	brun "localhost/$name" "${envs[@]}" -v "$mount" -- "${args[@]}"
}

# ------------------------------------------------------------------ ci
T0=$(date +%s)
LAST=$T0
TIMES=()
# lap STEP: records how long STEP took since the last lap.
lap() {
	local now
	now=$(date +%s)
	TIMES+=("$(printf '%5d s  %s' $((now - LAST)) "$1")")
	say "$1: $((now - LAST)) s"
	LAST=$now
}

ci() {
	for t in buildah podman debootstrap; do
		command -v $t >/dev/null || die "$t not found: apt-get install buildah podman debootstrap"
	done
	local tag=ci-$$ tmp cache mirror suite
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/gograd-images.XXXXXX")
	IMAGES=()
	cleanup() {
		local c i
		for c in "${CONTAINERS[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
		for i in "${IMAGES[@]}"; do buildah rmi "$i" >/dev/null 2>&1 || true; done
		rm -rf "$tmp"
	}
	trap cleanup EXIT

	# 1. The minbase root file system, from the cache or debootstrap.
	cache=${GOGRAD_IMAGES_CACHE:-$HOME/.cache/gograd/images}
	suite=bookworm
	mirror=${GOGRAD_APT_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
	mirror=${mirror:-http://deb.debian.org/debian}
	local tar=$cache/$suite-minbase.tar
	if [ ! -s "$tar" ] || [ -n "$(find "$tar" -mtime +7)" ]; then
		say "debootstrap --variant=minbase $suite from $mirror"
		mkdir -p "$cache"
		debootstrap --variant=minbase "$suite" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
			{ tail -n 20 "$tmp/debootstrap.log"; die "debootstrap failed"; }
		# As the official images: no package lists, no downloaded packages.
		rm -rf "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/cache/apt/*.bin
		find "$tmp/rootfs/var/cache/apt/archives" -name '*.deb' -delete
		tar -C "$tmp/rootfs" -cf "$tar.tmp.$$" .
		mv "$tar.tmp.$$" "$tar"
		rm -rf "$tmp/rootfs"
		lap "minbase root file system (debootstrap, cached in $tar)"
	else
		say "minbase root file system from $tar"
	fi

	# 2. The stand-ins (see the top of this file).
	local debian=localhost/gograd-ci-debian:$tag golang=localhost/gograd-ci-golang:$tag c
	IMAGES+=("$debian")
	podman import -q "$tar" "$debian" >/dev/null
	IMAGES+=("$golang")
	c=$(buildah from --pull=never "$debian")
	CONTAINERS+=("$c")
	buildah copy -q "$c" "$(go env GOROOT)" /usr/local/go >/dev/null
	buildah copy -q "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
	buildah config --env GOLANG_VERSION="$(go env GOVERSION | sed 's/^go//')" --env GOTOOLCHAIN=local \
		--env GOPATH=/go --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--workingdir /go "$c"
	buildah commit -q --rm "$c" "$golang" >/dev/null
	lap "stand-in images (podman import, buildah copy of $(go env GOVERSION))"

	# 3. The three images, each from its Dockerfile, as `make docker-*` builds them.
	local build=(buildah build --pull=never "${ULIMITS[@]}" --network host
		--build-arg "GOGRAD_COMMIT=$(commit)" --build-arg "GO_IMAGE=$golang")
	local cpu=localhost/gograd:$tag bench=localhost/gograd-bench:$tag cuda=localhost/gograd-cuda:$tag
	IMAGES+=("$cpu" "$bench" "$cuda")
	"${build[@]}" -f docker/Dockerfile -t "$cpu" . >"$tmp/build-cpu.log" 2>&1 ||
		{ tail -n 30 "$tmp/build-cpu.log"; die "docker/Dockerfile did not build"; }
	lap "build docker/Dockerfile"
	"${build[@]}" --build-arg "BASE_IMAGE=$debian" -f docker/Dockerfile.bench -t "$bench" . >"$tmp/build-bench.log" 2>&1 ||
		{ tail -n 30 "$tmp/build-bench.log"; die "docker/Dockerfile.bench did not build"; }
	lap "build docker/Dockerfile.bench"
	"${build[@]}" --build-arg "TORCH_IMAGE=$debian" -f docker/Dockerfile.cuda -t "$cuda" . >"$tmp/build-cuda.log" 2>&1 ||
		{ tail -n 30 "$tmp/build-cuda.log"; die "docker/Dockerfile.cuda did not build"; }
	lap "build docker/Dockerfile.cuda"
	for i in "$cpu" "$bench" "$cuda"; do
		say "$(buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$i")"
	done
	# The training image must stay small (the command and MNIST).
	local bytes
	bytes=$(podman image inspect --format '{{.Size}}' "$cpu")
	if [ "$bytes" -gt $((64 << 20)) ]; then
		die "the training image is $((bytes >> 20)) MiB; it should hold only the gograd command and MNIST"
	fi

	# 4. The training image: a short training run into a host directory,
	# whose run directory must be complete, then eval of its model.
	mkdir -p "$tmp/runs"
	brun "$cpu" -v "$tmp/runs:/work/runs" -- train -limit 5000 -epochs 1 -out runs/ci >"$tmp/train.log" 2>&1 ||
		{ tail -n 20 "$tmp/train.log"; die "training in the image failed"; }
	local f
	for f in model.safetensors checkpoint.safetensors metrics.csv curves.png confusion.png; do
		test -s "$tmp/runs/ci/$f" || die "the run directory written in the image has no $f"
	done
	test "$(wc -l <"$tmp/runs/ci/metrics.csv")" -eq 2 || die "metrics.csv should hold a header and one epoch"
	brun "$cpu" -v "$tmp/runs:/work/runs" -- eval -model runs/ci/model.safetensors >"$tmp/eval.txt" 2>&1 ||
		{ cat "$tmp/eval.txt"; die "gograd eval in the image failed"; }
	grep '^test accuracy: ' "$tmp/eval.txt" | sed 's/^/images: training image: /' ||
		{ cat "$tmp/eval.txt"; die "gograd eval printed no test accuracy"; }
	lap "training image: train 1 epoch on 5000 images, eval"

	# 5. The benchmark image's default command, one round of two epochs.
	mkdir -p "$tmp/bench"
	brun "$bench" -e ROUNDS=1 -e EPOCHS=2 -e QUIET_WAIT=0 -v "$tmp/bench:/out" -- >"$tmp/bench.log" 2>&1 ||
		{ tail -n 30 "$tmp/bench.log"; die "the benchmark image's default command failed"; }
	for f in '^| configuration | epoch' '^| gograd | ' '^| torch-env | ' '^| step_all_8 | '; do
		grep -q -- "$f" "$tmp/bench.log" || { cat "$tmp/bench.log"; die "the benchmark printed no line matching '$f'"; }
	done
	for f in results.tsv summary.md cpu_compare.png; do
		test -s "$tmp/bench/$f" || die "the benchmark wrote no $f"
	done
	sed -n '/^| configuration/,/^$/p' "$tmp/bench.log"
	lap "benchmark image: bench/cpu_compare.sh, 1 round, 2 epochs"

	# 6. The CUDA image holds what make gpu-bundle builds; its binaries are
	# linked to the driver library, which a machine without a GPU lacks.
	local want=(gograd run.sh profile.sh bench/sgemm.py bench/torch_mlp_gpu.py
		data/train-images-idx3-ubyte.gz data/t10k-labels-idx1-ubyte.gz) p
	for p in $(sed -n 's/^CUDA_TEST_PKGS ?= //p' Makefile); do
		want+=("$(echo "${p#./}" | tr / _).test")
	done
	c=$(buildah from --pull=never "${ULIMITS[@]}" "$cuda")
	CONTAINERS+=("$c")
	for f in "${want[@]}"; do
		buildah run "$c" -- test -s "/opt/gograd/$f" || die "the CUDA image has no /opt/gograd/$f"
	done
	[ "$(buildah inspect --format '{{range .OCIv1.Config.Cmd}}{{.}} {{end}}' "$c")" = "bash run.sh /logs " ] ||
		die "the CUDA image's default command is not bash run.sh /logs"
	local out
	out=$(buildah run "$c" -- /opt/gograd/gograd 2>&1 || true)
	case $out in
	*libcuda.so.1*) ;;
	*) die "the CUDA image's gograd should need libcuda.so.1; it printed: $out" ;;
	esac
	buildah rm "$c" >/dev/null
	say "CUDA image: /opt/gograd holds ${#want[@]} files of the bundle; gograd needs libcuda.so.1"
	lap "CUDA image: contents"

	cleanup
	trap - EXIT
	local left
	left=$(buildah images --format '{{.Name}}:{{.Tag}}' | grep -c ":$tag\$" || true)
	[ "$left" = 0 ] || die "$left images tagged $tag are left"
	lap "clean up"
	say "times:"
	printf 'images:   %s\n' "${TIMES[@]}"
	say "total: $(($(date +%s) - T0)) s"
}

case ${1:-} in
make)
	[ $# -eq 2 ] || die "usage: $0 make cpu|bench|cuda"
	make_image "$2"
	;;
ci) ci ;;
*) die "usage: $0 make cpu|bench|cuda | ci" ;;
esac
