#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages Ember builds, tests and benchmarks with. Idempotent: when
# everything is present it changes nothing and says so.
set -eu

PKGS="build-essential pkg-config clang lld llvm libclang-rt-14-dev \
libcjson-dev libcmocka-dev libseccomp-dev liburing-dev libbpf-dev liblzma-dev \
python3 python3-pytest qemu-system-x86 qemu-utils busybox-static \
linux-source-6.1 bc flex bison libelf-dev libssl-dev dwarves cpio xz-utils e2fsprogs \
hyperfine curl iproute2 fio"

missing=""
for p in $PKGS; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	"install ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "deps: all $(echo $PKGS | wc -w) packages present"
	exit 0
fi

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
	echo "deps: apt-get install failed; refreshing the package lists and trying once more" >&2
	$SUDO apt-get update
	$SUDO apt-get install -y --no-install-recommends $missing
fi
