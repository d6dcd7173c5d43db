#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# guest-images.sh [--build]
#
# Prints where Ember's default guest images are, one NAME=PATH line each (shell and make
# friendly):
#   GUEST_VMLINUX       the guest kernel as an ELF with a PVH entry note
#   GUEST_BZIMAGE       the same kernel as a bzImage
#   GUEST_INITRAMFS     busybox rootfs as a gzip newc cpio (boot with rdinit=/init)
#   GUEST_ROOTFS_EXT4   the same rootfs as an ext4 image (root=/dev/vda); copy before writing
#   GUEST_AGENT         the guest agent in both (/usr/bin/ember-agent), static: runs here too
# With --build, builds whatever is missing first (progress on stderr; cache hits are
# instant). Without it, the paths may not exist yet.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mode=--path
if [ "${1:-}" = "--build" ]; then
	mode=""
fi
kernel=$("$here/build-kernel.sh" $mode guest "$here/kernel.fragment" | tail -n 1)
rootfs=$("$here/build-rootfs.sh" $mode guest "$here/init" | tail -n 1)
echo "GUEST_VMLINUX=$kernel/vmlinux"
echo "GUEST_BZIMAGE=$kernel/bzImage"
echo "GUEST_INITRAMFS=$rootfs/initramfs.cpio.gz"
echo "GUEST_ROOTFS_EXT4=$rootfs/rootfs.ext4"
echo "GUEST_AGENT=$rootfs/ember-agent"
