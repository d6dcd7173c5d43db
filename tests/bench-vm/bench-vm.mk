# SPDX-License-Identifier: Apache-2.0
# The real-KVM bench and the Linux tests (included from the top Makefile, after
# resources/guest/images.mk). docs/bench-vm.md describes the bench.
#
#   make bench-kernel        build and cache the bench's L1 kernel and initramfs
#   make linux-test          Ember's Linux tests (tests/integration): directly on a host with
#                            vmx/svm and /dev/kvm, otherwise inside the bench's L1
#   make bench-vm-selftest   test the bench itself (status, timeout, shares)
#
#   LINUX_TEST_ARGS=...      extra pytest arguments, e.g. LINUX_TEST_ARGS='-k panic -x'
#   LINUX_TEST_VIA=bench     force the bench even on a host with hardware virtualization
#   BENCH_VM_TIMEOUT=1800    seconds before a hung L1 is killed (exit 124)
#   BENCH_VM_SHARDS=N        split the tests over N L1s side by side, one per core (default:
#                            the number of cores, at most 2); 1 shows the output live

BENCH_VM_DIR := tests/bench-vm
BENCH_VM_RUN := $(BENCH_VM_DIR)/run-in-l1
BENCH_VM_TIMEOUT ?= 1800
BENCH_VM_SHARDS ?= $(shell n=$$(nproc); [ $$n -gt 2 ] && n=2; echo $$n)
LINUX_TEST_ARGS ?=
LINUX_TEST_VIA ?= auto
HOST_HAS_HW_VIRT = $(shell grep -qwE 'vmx|svm' /proc/cpuinfo && test -c /dev/kvm && echo yes)

.PHONY: bench-kernel linux-test bench-vm-selftest

bench-kernel:
	$(quiet) KERNEL "bench L1 kernel + initramfs (cached in $${EMBER_CACHE:-~/.cache/ember})"
	$(Q)resources/guest/build-kernel.sh bench $(BENCH_VM_DIR)/bench-kernel.fragment >/dev/null
	$(Q)resources/guest/build-rootfs.sh bench-l1 $(BENCH_VM_DIR)/l1-init 8 >/dev/null

linux-test: all guest-images
	@if [ "$(LINUX_TEST_VIA)" != bench ] && [ "$(HOST_HAS_HW_VIRT)" = yes ]; then \
		echo "linux-test: this host has vmx/svm and /dev/kvm: running the tests directly"; \
		$(PYTHON) -m pytest -q tests/integration $(LINUX_TEST_ARGS); \
	else \
		echo "linux-test: no vmx/svm here: running the tests inside the real-KVM bench (docs/bench-vm.md)" && \
		if [ "$(BENCH_VM_SHARDS)" -gt 1 ]; then \
			$(BENCH_VM_DIR)/run-sharded -n $(BENCH_VM_SHARDS) --timeout $(BENCH_VM_TIMEOUT) -- \
				$(PYTHON) -m pytest -q tests/integration --shard={shard} $(LINUX_TEST_ARGS); \
		else \
			$(BENCH_VM_RUN) --timeout $(BENCH_VM_TIMEOUT) -- \
				$(PYTHON) -m pytest -q tests/integration $(LINUX_TEST_ARGS); \
		fi; \
	fi

bench-vm-selftest: bench-kernel
	$(Q)$(BENCH_VM_DIR)/selftest.sh
