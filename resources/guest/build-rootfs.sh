#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# build-rootfs.sh [--path] NAME INIT [EXT4_MIB]
#
# Builds a busybox-static root filesystem whose /init is the shell script INIT, with the
# guest agent (agent/agent.c, compiled static) at /usr/bin/ember-agent, in two forms, and
# caches them in
#     $EMBER_CACHE/rootfs/NAME-KEY/initramfs.cpio.gz   newc cpio, gzip; boot with rdinit=/init
#     $EMBER_CACHE/rootfs/NAME-KEY/rootfs.ext4         ext4 made with mkfs.ext4 -d (no mount)
#     $EMBER_CACHE/rootfs/NAME-KEY/ember-agent         the agent (it runs on the host too)
# KEY hashes this script, mkcpio.py, INIT, the busybox binary, EXT4_MIB (default 64), the
# agent's source and the versions of the compiler and of libc6-dev (the static glibc).
# The ext4 image is the cached master: copy it before booting a guest that writes to it.
# Progress goes to stderr; the directory's path is the only thing on stdout.
#
# Environment: EMBER_CACHE, EMBER_BUSYBOX, EMBER_AGENT_CC (the agent's compiler, default gcc).
set -eu

SCRIPT_VERSION=1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

path_only=0
if [ "${1:-}" = "--path" ]; then
	path_only=1
	shift
fi
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 [--path] NAME INIT [EXT4_MIB]" >&2
	exit 2
fi
name=$1
init=$2
ext4_mib=${3:-64}
EMBER_TAG="build-rootfs[$name]"
case $name in
*[!A-Za-z0-9_.-]* | "") die "arguments" "NAME must be [A-Za-z0-9_.-]+, got '$name'" ;;
esac
[ -r "$init" ] || die "arguments" "init script '$init' is not readable"

busybox=$(busybox_path) || die "check busybox" \
	"no static busybox found (apt-get install busybox-static, or set EMBER_BUSYBOX)"
agent_src="$here/agent/agent.c"
[ -r "$agent_src" ] || die "check agent source" "$agent_src is missing"
agent_cc=${EMBER_AGENT_CC:-gcc}
ccver=$("$agent_cc" --version 2>/dev/null | head -n 1)
[ -n "$ccver" ] || die "check compiler" \
	"the agent's compiler '$agent_cc' was not found (apt-get install build-essential, or set EMBER_AGENT_CC)"
libcver=$(dpkg-query -W -f='${Version}' libc6-dev 2>/dev/null || getconf GNU_LIBC_VERSION)
key=$({
	echo "build-rootfs.sh v$SCRIPT_VERSION ext4 ${ext4_mib}M"
	echo "agent cc $ccver; libc6-dev $libcver"
	cat "$here/build-rootfs.sh" "$here/mkcpio.py" "$init" "$busybox" "$agent_src"
} | short_hash)
out="$EMBER_CACHE/rootfs/$name-$key"

cache_answer "$path_only" "$out" initramfs.cpio.gz rootfs.ext4 ember-agent

need_cmd "check tools" mkfs.ext4 e2fsprogs
mkdir -p "$EMBER_CACHE/tmp" "$EMBER_CACHE/rootfs" || die "create cache" "cannot create directories under $EMBER_CACHE"
need_space "check disk space" "$EMBER_CACHE" $((ext4_mib + 64))
tmp=$(mktemp -d "$EMBER_CACHE/tmp/rootfs-$name-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- step: the guest agent, static (glibc's libc.a is in libc6-dev) ----
say "compiling the guest agent ($agent_cc -static)"
libc_a=$("$agent_cc" -print-file-name=libc.a 2>/dev/null) || libc_a=""
[ -f "$libc_a" ] || die "compile agent" \
	"no static C library for '$agent_cc' (libc.a; apt-get install libc6-dev)"
"$agent_cc" -std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wvla \
	-Wmissing-prototypes -Wstrict-prototypes -Wundef -Wwrite-strings -static -s \
	-o "$tmp/ember-agent" "$agent_src" >"$tmp/agent.log" 2>&1 ||
	die "compile agent" "$agent_cc failed on $agent_src: $(tail -n 20 "$tmp/agent.log")"
file_is_static "$tmp/ember-agent" || die "compile agent" "$tmp/ember-agent is not a static binary"
"$tmp/ember-agent" sha256 </dev/null | grep -q '^0 e3b0c44298fc1c149afbf4c8996fb924' ||
	die "compile agent" "the agent's SHA-256 of nothing is wrong (a miscompiled agent)"

# ---- step: the tree ----
say "assembling the tree: $busybox + $(basename "$init") + ember-agent"
tree="$tmp/tree"
{
	mkdir -p "$tree/bin" "$tree/sbin" "$tree/usr/bin" "$tree/usr/sbin" "$tree/etc" \
		"$tree/dev" "$tree/proc" "$tree/sys" "$tree/tmp" "$tree/run" "$tree/root" \
		"$tree/mnt" "$tree/var/tmp" &&
		chmod 1777 "$tree/tmp" "$tree/var/tmp" &&
		chmod 0700 "$tree/root" &&
		cp "$busybox" "$tree/bin/busybox" &&
		cp "$init" "$tree/init" &&
		cp "$tmp/ember-agent" "$tree/usr/bin/ember-agent" &&
		chmod 0755 "$tree/init" "$tree/bin/busybox" "$tree/usr/bin/ember-agent"
} || die "assemble tree" "cannot create the directories or copy busybox and init"
for applet in $("$busybox" --list-full); do
	case $applet in
	bin/busybox | sbin/init | linuxrc) continue ;;
	esac
	dots=$(echo "$applet" | sed 's|[^/]*/|../|g; s|[^/]*$||')
	ln -s "${dots}bin/busybox" "$tree/$applet" || die "assemble tree" "cannot link applet $applet"
done
ln -s ../init "$tree/sbin/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$tree/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$tree/etc/group"
printf 'export PS1="[ember-guest \\w]# "\n' >"$tree/etc/profile"
: >"$tree/etc/fstab"

# ---- step: initramfs ----
say "packing initramfs.cpio.gz"
${PYTHON:-python3} "$here/mkcpio.py" "$tree" "$tmp/initramfs.cpio.gz" \
	--node /dev/console:c:5:1:600 --node /dev/null:c:1:3:666 ||
	die "pack initramfs" "mkcpio.py failed"

# ---- step: ext4 ----
say "making rootfs.ext4 (${ext4_mib} MiB, mkfs.ext4 -d)"
truncate -s "${ext4_mib}M" "$tmp/rootfs.ext4" || die "make ext4" "cannot create the image file"
mkfs.ext4 -q -F -L ember-root -E root_owner=0:0 -d "$tree" "$tmp/rootfs.ext4" >"$tmp/mkfs.log" 2>&1 ||
	die "make ext4" "mkfs.ext4 -d failed: $(cat "$tmp/mkfs.log")"

# ---- step: install ----
stage="$tmp/out"
mkdir "$stage" && mv "$tmp/initramfs.cpio.gz" "$tmp/rootfs.ext4" "$tmp/ember-agent" "$stage/" &&
	cp "$init" "$stage/init" || die "install to cache" "cannot stage the images"
rm -rf "$out"
mv "$stage" "$out" || die "install to cache" "cannot rename into $out"
prune_cache "$EMBER_CACHE/rootfs" "$name" 3
say "done: $out"
echo "$out"
