# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the guest-image and bench scripts (sourced, POSIX sh).
#
# The cache lives outside the clone, in $EMBER_CACHE (default ~/.cache/ember), so that
# every clone, every branch and the real-KVM bench (which sees the host's files read-only)
# share one copy of each image. See docs/guest-images.md for its layout.

EMBER_CACHE=${EMBER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ember}
LINUX_SRC_PKG=${EMBER_LINUX_SRC_PKG:-linux-source-6.1}
LINUX_SRC_TARBALL=${EMBER_LINUX_TARBALL:-/usr/src/$LINUX_SRC_PKG.tar.xz}

# The tag in front of every message; scripts set it.
EMBER_TAG=${EMBER_TAG:-ember}

say() { printf '%s: %s\n' "$EMBER_TAG" "$*" >&2; }
# note: like say, but silent with EMBER_QUIET=1 (cache hits and other non-news).
note() { [ "${EMBER_QUIET:-0}" = 1 ] || say "$@"; }

# die STEP MESSAGE: stop with a message that names the step that failed.
die() {
	step=$1
	shift
	printf '%s: FAILED at step "%s": %s\n' "$EMBER_TAG" "$step" "$*" >&2
	exit 1
}

# cache_answer PATH_ONLY OUT FILE...: when only the path is asked for, print OUT and
# exit; when OUT already holds every FILE, say so, print OUT and exit. Else return.
cache_answer() {
	path_only=$1
	out=$2
	shift 2
	if [ "$path_only" = 1 ]; then
		echo "$out"
		exit 0
	fi
	for f in "$@"; do
		[ -f "$out/$f" ] || return 0
	done
	note "cached: $out"
	touch "$out" 2>/dev/null || true
	echo "$out"
	exit 0
}

# sha256 of stdin, first 16 hex digits (64 bits is plenty for a handful of entries).
short_hash() { sha256sum | cut -c1-16; }

# The installed linux-source-6.1 package version, or empty.
linux_src_version() {
	dpkg-query -W -f='${Status} ${Version}\n' "$LINUX_SRC_PKG" 2>/dev/null |
		sed -n 's/^install ok installed //p'
}

# need_space STEP DIR MIB: fail unless DIR's filesystem has MIB MiB free.
need_space() {
	avail_kib=$(df -Pk "$2" | awk 'NR == 2 { print $4 }')
	# test hook (resources/guest/selftest.sh): pretend the disk is this full
	[ -z "${EMBER_TEST_FREE_MIB:-}" ] || avail_kib=$((EMBER_TEST_FREE_MIB * 1024))
	if [ -z "$avail_kib" ] || [ "$avail_kib" -lt $(($3 * 1024)) ]; then
		die "$1" "no disk space: need $3 MiB free in $2, have $((${avail_kib:-0} / 1024)) MiB"
	fi
}

# need_cmd STEP CMD PACKAGE: fail with a hint when a tool is missing.
need_cmd() {
	command -v "$2" >/dev/null 2>&1 ||
		die "$1" "'$2' not found; install the Debian package '$3' (scripts/deps.sh does)"
}

# The busybox-static binary (Debian installs it as /bin/busybox).
busybox_path() {
	for b in ${EMBER_BUSYBOX:-} /bin/busybox /usr/bin/busybox; do
		if [ -x "$b" ] && file_is_static "$b"; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

# A static ELF has no PT_INTERP program header; readelf is in binutils.
file_is_static() { ! readelf -lW "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }

# prune_cache DIR NAME KEEP: keeps the KEEP most recently used DIR/NAME-KEY entries (a cache
# hit touches its entry).
prune_cache() {
	ls -1dt "$1/$2"-???????????????? 2>/dev/null | tail -n +$(($3 + 1)) | while read -r old; do
		note "pruning old cache entry $old"
		rm -rf "$old"
	done
}
