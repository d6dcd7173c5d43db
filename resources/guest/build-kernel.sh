#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# build-kernel.sh [--path] NAME FRAGMENT...
#
# Builds a Linux kernel from Debian's linux-source-6.1 as `make tinyconfig` plus the given
# config fragments, checks that every option the fragments ask for is in the final .config,
# and caches vmlinux (ELF, with the PVH note when CONFIG_PVH=y), bzImage, the .config and
# System.map in
#     $EMBER_CACHE/kernel/NAME-KEY/
# where KEY hashes the inputs: this script's version, the base config, the fragments'
# contents, the linux-source-6.1 package version and the compiler version. A cache hit
# costs a dpkg-query and a sha256sum. The directory appears atomically, complete or not at
# all. Progress goes to stderr; the directory's path is the only thing on stdout.
#
#   --path   print the directory this NAME and FRAGMENTs map to, build nothing
#
# Environment: EMBER_CACHE (default ~/.cache/ember), EMBER_JOBS (default: nproc).
# docs/guest-images.md describes the cache and the configs.
set -eu

SCRIPT_VERSION=1
BASE_CONFIG=tinyconfig
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

path_only=0
if [ "${1:-}" = "--path" ]; then
	path_only=1
	shift
fi
if [ $# -lt 2 ]; then
	echo "usage: $0 [--path] NAME FRAGMENT..." >&2
	exit 2
fi
name=$1
shift
EMBER_TAG="build-kernel[$name]"
case $name in
*[!A-Za-z0-9_.-]* | "") die "arguments" "NAME must be [A-Za-z0-9_.-]+, got '$name'" ;;
esac
for f in "$@"; do
	[ -r "$f" ] || die "arguments" "config fragment '$f' is not readable"
done

# ---- step: inputs and cache key ----
srcver=$(linux_src_version)
[ -n "$srcver" ] || die "check $LINUX_SRC_PKG" \
	"the Debian package $LINUX_SRC_PKG is not installed (run scripts/deps.sh, or apt-get install $LINUX_SRC_PKG)"
ccver=$(gcc -dumpfullversion 2>/dev/null) || die "check compiler" "gcc not found (apt-get install build-essential)"

key_inputs() {
	echo "build-kernel.sh v$SCRIPT_VERSION"
	echo "arch x86_64"
	echo "base $BASE_CONFIG"
	echo "$LINUX_SRC_PKG $srcver"
	echo "gcc $ccver"
	for f in "$@"; do
		echo "fragment $(basename "$f")"
		cat "$f"
	done
}
key=$(key_inputs "$@" | short_hash)
out="$EMBER_CACHE/kernel/$name-$key"

cache_answer "$path_only" "$out" vmlinux bzImage

# ---- one kernel build at a time: each uses every core ----
mkdir -p "$EMBER_CACHE/locks" "$EMBER_CACHE/tmp" "$EMBER_CACHE/kernel" "$EMBER_CACHE/logs" ||
	die "create cache" "cannot create directories under $EMBER_CACHE"
exec 9>"$EMBER_CACHE/locks/kernel-build.lock"
if ! flock -n 9; then
	say "waiting for another kernel build to finish (lock $EMBER_CACHE/locks/kernel-build.lock)"
	flock 9
fi
if [ -f "$out/vmlinux" ]; then
	note "cached (built meanwhile): $out"
	echo "$out"
	exit 0
fi

tmp=$(mktemp -d "$EMBER_CACHE/tmp/kernel-$name-$key.XXXXXX")
make_pid=""
cleanup() {
	if [ -n "$make_pid" ]; then kill "$make_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log="$tmp/build.log"

# fail STEP MESSAGE: keep the log where the user can read it, show its tail, stop.
fail() {
	keep="$EMBER_CACHE/logs/kernel-$name-$key.failed.log"
	cp "$log" "$keep" 2>/dev/null || true
	tail -n 25 "$log" 2>/dev/null | sed 's/^/    | /' >&2
	die "$1" "$2 (full log: $keep)"
}

# ---- step: source tree, extracted once per package version ----
src="$EMBER_CACHE/linux-src/$LINUX_SRC_PKG-$srcver"
if [ ! -f "$src/Makefile" ]; then
	[ -r "$LINUX_SRC_TARBALL" ] || die "extract source" "$LINUX_SRC_TARBALL is missing (reinstall $LINUX_SRC_PKG)"
	need_space "extract source" "$EMBER_CACHE" 2500
	say "extracting $LINUX_SRC_TARBALL (once per package version, ~15 s)"
	mkdir -p "$EMBER_CACHE/linux-src"
	xtmp="$tmp/src"
	mkdir "$xtmp"
	tar -C "$xtmp" -xf "$LINUX_SRC_TARBALL" >"$log" 2>&1 || fail "extract source" "tar failed"
	[ -f "$xtmp/$LINUX_SRC_PKG/Makefile" ] || fail "extract source" "no $LINUX_SRC_PKG/ in the tarball"
	rm -rf "$src"
	mv "$xtmp/$LINUX_SRC_PKG" "$src" || fail "extract source" "cannot move the tree into the cache"
fi

need_space "check disk space" "$EMBER_CACHE" 1500
obj="$tmp/obj"
mkdir "$obj"
kmake() { make -C "$src" O="$obj" ARCH=x86_64 CC=gcc HOSTCC=gcc "$@"; }

# ---- step: configure ----
frags=""
for f in "$@"; do frags="$frags $(basename "$f")"; done
say "configuring: $BASE_CONFIG +$frags (key $key)"
{
	kmake "$BASE_CONFIG" &&
		"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$@" &&
		kmake olddefconfig
} >>"$log" 2>&1 || fail "configure" "make $BASE_CONFIG / merge_config.sh / make olddefconfig failed"

# ---- step: every requested option must be in the final .config ----
missing=""
for f in "$@"; do
	bad=$(awk -v frag="$(basename "$f")" '
		FNR == NR { have[$0] = 1; if (match($0, /^CONFIG_[A-Za-z0-9_]+=/)) set[substr($0, 1, RLENGTH - 1)] = $0; next }
		/^CONFIG_[A-Za-z0-9_]+=/ {
			sym = $0; sub(/=.*/, "", sym)
			if (!($0 in have)) printf "  %s (from %s): final .config has %s\n", $0, frag, (sym in set) ? set[sym] : "it unset"
			next
		}
		/^# CONFIG_[A-Za-z0-9_]+ is not set/ {
			sym = $2
			if (sym in set) printf "  %s (from %s): final .config has %s\n", $0, frag, set[sym]
		}' "$obj/.config" "$f")
	missing="$missing$bad"
done
if [ -n "$missing" ]; then
	cp "$obj/.config" "$EMBER_CACHE/logs/kernel-$name-$key.config"
	printf '%s\n' "$missing" | sed '/^$/d' >&2
	die "check config" "options asked for above are not in the final .config (unknown symbol, or a \
dependency is not met; that .config is $EMBER_CACHE/logs/kernel-$name-$key.config)"
fi
say "config check passed: every option in$frags is set as asked"

# ---- step: compile, with a progress line every 20 s ----
jobs=${EMBER_JOBS:-$(nproc)}
say "compiling with $jobs jobs (log: $log)"
start=$(date +%s)
kmake -j"$jobs" vmlinux bzImage >>"$log" 2>&1 &
make_pid=$!
n=0
while kill -0 "$make_pid" 2>/dev/null; do
	sleep 1
	n=$((n + 1))
	if [ $((n % 20)) -eq 0 ]; then
		say "still compiling: $(grep -c '^  CC' "$log" || true) objects, $(($(date +%s) - start)) s"
	fi
done
rc=0
wait "$make_pid" || rc=$?
make_pid=""
[ "$rc" -eq 0 ] || fail "compile" "make vmlinux bzImage exited with $rc"
say "compiled $(grep -c '^  CC' "$log" || true) objects in $(($(date +%s) - start)) s"

# ---- step: check and install ----
if grep -qx 'CONFIG_PVH=y' "$obj/.config" && ! readelf -nW "$obj/vmlinux" | grep -q 'Xen.*0x00000012'; then
	fail "check PVH note" "CONFIG_PVH=y but vmlinux has no XEN_ELFNOTE_PHYS32_ENTRY note"
fi
stage="$tmp/out"
mkdir "$stage"
cp "$obj/vmlinux" "$obj/arch/x86/boot/bzImage" "$obj/System.map" "$stage/" &&
	cp "$obj/.config" "$stage/config" &&
	key_inputs "$@" >"$stage/inputs" &&
	cp "$log" "$stage/build.log" || fail "install to cache" "copying the results failed"
rm -rf "$out"
mv "$stage" "$out" || fail "install to cache" "cannot rename into $out"
prune_cache "$EMBER_CACHE/kernel" "$name" 3
find "$EMBER_CACHE/tmp" -maxdepth 1 -name 'kernel-*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
say "done: $out (vmlinux $(du -h "$out/vmlinux" | cut -f1), bzImage $(du -h "$out/bzImage" | cut -f1))"
echo "$out"
