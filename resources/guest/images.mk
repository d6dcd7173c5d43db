# SPDX-License-Identifier: Apache-2.0
# Guest images (included from the top Makefile). docs/guest-images.md describes them.
#
#   make guest-images        build and cache the guest kernel (vmlinux + bzImage), the
#                            busybox rootfs (with the guest agent) as ext4 and as an initramfs
#   make guest-image-paths   print where they are
#   make guest-images-selftest  test the builders' failure paths and the cache, and the
#                            guest agent's protocol on the host (~1 min)
#
# The images live outside the clone, in $(EMBER_CACHE) (default ~/.cache/ember), keyed
# by a hash of their inputs; a cache hit costs a few milliseconds. The variables below are
# evaluated only when a recipe uses them.

GUEST_IMAGES_DIR := resources/guest
GUEST_IMAGES_SH := $(GUEST_IMAGES_DIR)/guest-images.sh
guest_image_path = $(shell $(GUEST_IMAGES_SH) | sed -n 's/^$(1)=//p')
GUEST_VMLINUX = $(call guest_image_path,GUEST_VMLINUX)
GUEST_BZIMAGE = $(call guest_image_path,GUEST_BZIMAGE)
GUEST_INITRAMFS = $(call guest_image_path,GUEST_INITRAMFS)
GUEST_ROOTFS_EXT4 = $(call guest_image_path,GUEST_ROOTFS_EXT4)
GUEST_AGENT = $(call guest_image_path,GUEST_AGENT)

.PHONY: guest-images guest-image-paths guest-images-selftest

guest-images:
	$(quiet) IMAGES "guest kernel + busybox rootfs (cached in $${EMBER_CACHE:-~/.cache/ember})"
	$(Q)$(GUEST_IMAGES_SH) --build >/dev/null

guest-image-paths:
	@$(GUEST_IMAGES_SH)

guest-images-selftest: guest-images
	$(Q)$(GUEST_IMAGES_DIR)/selftest.sh
