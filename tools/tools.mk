# SPDX-License-Identifier: Apache-2.0
# Snapshot tools (tools/README.md):
#   build/ember-snapshot-merge   applies a Diff snapshot's memory file to its base
#   build/ember-uffd-handler     the example page-fault handler for the Uffd memory backend
# `make tools` builds both (`make all` too); `make tools-test` runs tests/tools (pytest),
# whose handler tests use a small C client, build/tests/tools/uffd_client.

TOOLS := $(BUILD)/ember-snapshot-merge $(BUILD)/ember-uffd-handler
TOOLS_TEST_BINS := $(BUILD)/tests/tools/uffd_client

.PHONY: tools tools-test
all: tools
tools: $(TOOLS)

# libc only
$(BUILD)/ember-snapshot-merge: $(BUILD)/tools/ember-snapshot-merge.o
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

# The working-set file code (src/vmm/working_set.c) comes from libember.a; the linker takes
# only the objects it needs.
$(BUILD)/ember-uffd-handler: $(BUILD)/tools/ember-uffd-handler.o $(EMBER_LIB)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

tools-test: tools $(TOOLS_TEST_BINS)
	@$(PYTHON) -m pytest -q tests/tools
