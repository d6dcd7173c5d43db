# SPDX-License-Identifier: Apache-2.0
# Block device-model benchmark (bench/blk*): `make bench-blk` builds the harness, a driver
# on the host that drives Ember's virtio-blk through the transport, and runs bench/blk.py,
# which sets it beside fio on the same file (results in bench/results/blk.{md,json}).

BLK_HARNESS := $(BUILD)/bench/blk_harness

$(BLK_HARNESS): bench/blk_harness.c $(EMBER_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(EMBER_LIB) $(LIBS)

.PHONY: bench-blk
bench-blk: $(BLK_HARNESS)
	@$(PYTHON) bench/blk.py
