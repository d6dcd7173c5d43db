# SPDX-License-Identifier: Apache-2.0
# Device-model benchmarks (bench/*_harness.c): each harness is a driver on the host that
# drives Ember's device code through the virtio-mmio transport, with a fake guest memory
# and a KVM VM without vCPUs from tests/support/ ($(TEST_SUPPORT_LIB)).
#
# `make bench-blk`: bench/blk.py sets virtio-blk beside fio on the same file (results in
# bench/results/blk.{md,json}).

BENCH_HARNESS_CFLAGS := $(CFLAGS) -Itests/support
BLK_HARNESS := $(BUILD)/bench/blk_harness

$(BUILD)/bench/%_harness: bench/%_harness.c $(TEST_SUPPORT_LIB) $(EMBER_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(BENCH_HARNESS_CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_LIB) $(EMBER_LIB) \
		$(LIBS)

.PHONY: bench-blk
bench-blk: $(BLK_HARNESS)
	@$(PYTHON) bench/blk.py

# `make bench-net`: bench/net.py runs net_harness (virtio-net on a TAP in a network
# namespace of its own, as root) beside a plain read()/write() loop on the same TAP
# (results in bench/results/net.{md,json}), and vsock_harness (virtio-vsock and its
# Unix-socket bridge) beside a Unix socket pair between the same two threads.
NET_HARNESSES := $(BUILD)/bench/net_harness $(BUILD)/bench/vsock_harness

.PHONY: bench-net
bench-net: $(NET_HARNESSES)
	@$(PYTHON) bench/net.py
