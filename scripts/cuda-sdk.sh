#!/bin/sh
# cuda-sdk.sh [--nvcc] [--print-env]
#
# Puts what a `-tags cuda` build needs into a cache outside the repository,
# without installing any package:
#   - the CUDA 11.8 headers (cuda.h, ...) and the link-time stub libcuda.so,
#     from Debian 12's non-free package nvidia-cuda-dev;
#   - with --nvcc, also nvcc, cicc and ptxas from nvidia-cuda-toolkit, enough
#     to compile kernels.cu to PTX and to check the PTX for sm_90.
#
# The cache is ${GOGRAD_CUDA_SDK:-$HOME/.cache/gograd/cuda-sdk}. A second run
# finds everything in place and does nothing. Debian's non-free component is
# enabled only in a private apt configuration under the cache (its own sources
# list, package lists and apt cache); the machine's apt sources, lists and
# installed packages are left untouched. The mirror and suite are those of the
# machine's Debian sources (override with GOGRAD_APT_MIRROR / GOGRAD_APT_SUITE).
#
# It prints the CGO_CFLAGS and CGO_LDFLAGS to use; with --print-env it prints
# only those two export lines. Cost: about 860 MB downloaded, 20-40 s of xz
# decompression, 16 MB of disk (about 190 MB with --nvcc).
set -eu

WITH_NVCC=0
PRINT_ENV=0
for a in "$@"; do
	case $a in
	--nvcc) WITH_NVCC=1 ;;
	--print-env) PRINT_ENV=1 ;;
	*)
		echo "usage: $0 [--nvcc] [--print-env]" >&2
		exit 2
		;;
	esac
done

SDK=$(realpath -m "${GOGRAD_CUDA_SDK:-$HOME/.cache/gograd/cuda-sdk}")
INC=$SDK/usr/include
STUBS=$SDK/usr/lib/x86_64-linux-gnu/stubs
NVCC=$SDK/usr/lib/nvidia-cuda-toolkit/bin/nvcc
PTXAS=$SDK/usr/bin/ptxas

log() { [ "$PRINT_ENV" = 1 ] || echo "cuda-sdk: $*" >&2; }
die() {
	echo "cuda-sdk: $*" >&2
	exit 1
}

print_env() {
	echo "export CGO_CFLAGS=\"-O2 -g -I$INC\""
	echo "export CGO_LDFLAGS=\"-L$STUBS\""
	if [ -x "$NVCC" ]; then
		echo "# nvcc:  $NVCC"
		echo "# ptxas: $PTXAS"
	fi
}

need_dev() { [ ! -f "$INC/cuda.h" ] || [ ! -f "$STUBS/libcuda.so" ]; }
need_nvcc() { [ "$WITH_NVCC" = 1 ] && { [ ! -x "$NVCC" ] || [ ! -x "$PTXAS" ] || [ ! -f "$SDK/usr/lib/nvidia-cuda-toolkit/bin/nvcc.profile" ]; }; }

if ! need_dev && ! need_nvcc; then
	log "already present in $SDK"
	print_env
	exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian 12 (bookworm) machine"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

# mirror_suite prints "URI SUITE KEYRING" of the first Debian entry (not
# -security, -updates or -backports) in the machine's apt sources.
mirror_suite() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && uri != "" && suite != "") print uri, suite, (key == "" ? "-" : key)
				types = ""; uri = ""; suite = ""; key = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^#/ { next }
			tolower($1) == "types:" { types = $0; sub(/^[^:]*:[ \t]*/, "", types) }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "signed-by:" && NF == 2 { key = $2 }
			tolower($1) == "suites:" {
				for (i = 2; i <= NF; i++) if ($i !~ /-(security|updates|backports|proposed-updates)$/) { suite = $i; break }
			}
			END { flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '
			$1 == "deb" {
				i = 2
				key = "-"
				if ($2 ~ /^\[/) {
					for (; i <= NF; i++) {
						if ($i ~ /signed-by=/) { key = $i; sub(/.*signed-by=/, "", key); sub(/\]$/, "", key) }
						if ($i ~ /\]$/) { i++; break }
					}
				}
				if ($(i + 1) !~ /-(security|updates|backports|proposed-updates)$/) print $i, $(i + 1), key
			}
		' "$f"
	done
}

LINE=$(mirror_suite | grep -i debian | grep -v -- '-security' | head -n 1 || true)
URI=${GOGRAD_APT_MIRROR:-$(echo "$LINE" | awk '{print $1}')}
SUITE=${GOGRAD_APT_SUITE:-$(echo "$LINE" | awk '{print $2}')}
KEY=$(echo "$LINE" | awk '{print $3}')
[ -n "$URI" ] && [ -n "$SUITE" ] ||
	die "no Debian mirror found in /etc/apt/sources.list{,.d}; set GOGRAD_APT_MIRROR (e.g. http://deb.debian.org/debian) and GOGRAD_APT_SUITE (bookworm)"
if [ -z "$KEY" ] || [ "$KEY" = - ] || [ ! -f "$KEY" ]; then
	KEY=/usr/share/keyrings/debian-archive-keyring.gpg
fi
[ -f "$KEY" ] || die "no Debian archive keyring at $KEY"

# The private apt configuration: only the non-free component of the machine's
# mirror and suite, with lists and cache of its own.
APT=$SDK/apt
mkdir -p "$APT/sources.list.d" "$APT/lists/partial" "$APT/cache/archives/partial" "$SDK"
cat >"$APT/sources.list.d/non-free.sources" <<EOF
Types: deb
URIs: $URI
Suites: $SUITE
Components: non-free
Signed-By: $KEY
EOF
: >"$APT/sources.list"
SANDBOX=
if [ "$(id -u)" = 0 ]; then
	SANDBOX="-o APT::Sandbox::User=root"
fi
aptget() {
	# shellcheck disable=SC2086
	apt-get -q \
		-o Dir::Etc::SourceList="$APT/sources.list" \
		-o Dir::Etc::SourceParts="$APT/sources.list.d" \
		-o Dir::State::Lists="$APT/lists" \
		-o Dir::Cache="$APT/cache" \
		-o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache="" \
		-o Acquire::Languages=none \
		-o APT::Get::List-Cleanup=false \
		$SANDBOX "$@"
}

log "apt: $URI $SUITE non-free (private lists in $APT)"
aptget update >&2 || die "apt-get update of the private non-free source failed"

TMP=$(mktemp -d "$SDK/.dl.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
if need_dev; then
	log "downloading nvidia-cuda-dev (about 774 MB)"
	(cd "$TMP" && aptget download nvidia-cuda-dev >&2) || die "apt-get download nvidia-cuda-dev failed"
	log "extracting headers and stubs (decompresses the whole archive: 20-40 s)"
	dpkg-deb --fsys-tarfile "$TMP"/nvidia-cuda-dev_*.deb |
		tar -x -C "$SDK" --wildcards './usr/include/*' './usr/lib/x86_64-linux-gnu/stubs/*'
	rm -f "$TMP"/nvidia-cuda-dev_*.deb
	[ -f "$INC/cuda.h" ] && [ -f "$STUBS/libcuda.so" ] || die "cuda.h or stubs/libcuda.so missing after extraction"
fi
if need_nvcc; then
	log "downloading nvidia-cuda-toolkit (about 84 MB)"
	(cd "$TMP" && aptget download nvidia-cuda-toolkit >&2) || die "apt-get download nvidia-cuda-toolkit failed"
	dpkg-deb -x "$TMP"/nvidia-cuda-toolkit_*.deb "$SDK"
	rm -f "$TMP"/nvidia-cuda-toolkit_*.deb
	B=$SDK/usr/lib/nvidia-cuda-toolkit/bin
	# The shipped nvcc.profile is an absolute symlink to /etc/nvcc.profile,
	# which does not exist without the package: write a relocatable one.
	rm -f "$B/nvcc.profile"
	cat >"$B/nvcc.profile" <<'EOF'
TOP = $(_HERE_)/../../../..
NVVMIR_LIBRARY_DIR = $(TOP)/usr/lib/nvidia-cuda-toolkit/libdevice
PATH += $(TOP)/usr/lib/nvidia-cuda-toolkit/bin:$(TOP)/usr/bin:
INCLUDES += "-I$(TOP)/usr/include" $(_SPACE_)
LIBRARIES =+ $(_SPACE_) "-L$(TOP)/usr/lib/x86_64-linux-gnu/stubs"
EOF
	[ -x "$NVCC" ] && [ -x "$PTXAS" ] || die "nvcc or ptxas missing after extraction"
fi
rm -rf "$APT/cache/archives"
log "done: $SDK ($(du -sh "$SDK" | cut -f1))"
print_env
