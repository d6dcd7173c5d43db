# SPDX-License-Identifier: Apache-2.0
# Ember: one non-recursive Makefile. `make`, `make test`, `make bench`, `make deps`.
# Fragments under tests/ and resources/ add their own targets; see the `include` lines.

CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
PYTHON ?= /usr/bin/python3
BUILD ?= build

ifeq ($(V),1)
Q :=
quiet = @true
else
Q := @
quiet = @printf '  %-7s %s\n'
endif

WARNINGS := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wvla -Wmissing-prototypes \
	-Wstrict-prototypes -Wundef -Wwrite-strings
HARDENING := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -D_GNU_SOURCE -pthread $(WARNINGS) $(HARDENING) -Isrc -MMD -MP
LDFLAGS += -pie -Wl,-z,relro,-z,now -pthread
LIBS := -lcjson -luring -lbpf -llzma

# Everything under src/ except the entry point goes into a static library, so unit tests
# and fuzzers link exactly the code that ships.
# src/jail/seccomp.c installs the per-thread filters: it is Ember's too (the jailer is not).
EMBER_SRCS := $(sort $(wildcard src/vmm/*.c src/virtio/*.c src/api/*.c) src/jail/seccomp.c)
EMBER_MAIN := src/vmm/main.c
LIB_SRCS := $(filter-out $(EMBER_MAIN),$(EMBER_SRCS))
# Data built into the library as objects: eBPF programs (resources/bpf/bpf.mk, built with
# clang -target bpf) and the compiled seccomp filters (src/jail/seccomp.mk).
LIB_BLOBS :=
include resources/bpf/bpf.mk
include src/jail/seccomp.mk
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(LIB_BLOBS)
EMBER_LIB := $(BUILD)/libember.a

.PHONY: all deps test test-all unit-test guest-test api-test fuzz fuzz-smoke bench run clean help
.DEFAULT_GOAL := all

all: $(BUILD)/ember

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(EMBER_LIB): $(LIB_OBJS)
	$(quiet) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/ember: $(BUILD)/$(EMBER_MAIN:.c=.o) $(EMBER_LIB)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# ---- unit tests (cmocka): tests/unit/test_<module>.c, each its own binary ----
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
UNIT_CFLAGS := $(CFLAGS) -Wno-missing-prototypes

# Helpers that tests and bench harnesses share (a fake guest memory, ...): tests/support/.
TEST_SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(BUILD)/%.o)
TEST_SUPPORT_LIB := $(BUILD)/libtestsupport.a

$(TEST_SUPPORT_LIB): $(TEST_SUPPORT_OBJS)
	$(quiet) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/unit/%: tests/unit/%.c $(TEST_SUPPORT_LIB) $(EMBER_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(UNIT_CFLAGS) -Itests/support $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_LIB) $(EMBER_LIB) \
		$(LIBS) -lcmocka

unit-test: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

include tests/guest/guest.mk
# The jailer (src/jail/jailer.mk: build/ember-jailer), after guest.mk (its tests boot the guest).
-include src/jail/jailer.mk
include tests/fuzz/fuzz.mk
include resources/guest/images.mk
include tests/bench-vm/bench-vm.mk
include bench/bench.mk
# Snapshot tools (tools/tools.mk: build/ember-snapshot-merge, build/ember-uffd-handler).
-include tools/tools.mk

# ---- set-up ----
deps:
	@scripts/deps.sh

# `make test` works on a fresh Debian 12 machine: it installs what is missing first, then
# re-reads this Makefile so that everything it builds sees the new packages.
test: deps
	@$(MAKE) --no-print-directory test-all

# The fast layers first, then the images, the bench's own tests, and Linux on the bench.
test-all: all unit-test tools-test guest-test api-test security-test fuzz-smoke \
	guest-images-selftest bench-vm-selftest linux-test

# The API against a live `ember --api-sock`, with the test guest (tests/api/).
api-test: all $(GUEST_BINS)
	@$(PYTHON) -m pytest -q tests/api

# Boots the default Linux guest and shows its console (through the bench without vmx/svm).
run:
	@resources/guest/run-ember.sh

$(BUILD)/bench/spawn: bench/spawn.c
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

bench: deps
	@$(MAKE) --no-print-directory all $(GUEST_BINS) $(BUILD)/bench/spawn
	@$(PYTHON) bench/startup.py
	@$(PYTHON) bench/api.py
	@$(PYTHON) bench/snapshot.py
	@$(MAKE) --no-print-directory guest-images bench-kernel
	@$(PYTHON) bench/linux_boot.py
	@$(PYTHON) bench/linux_blk.py
	@$(PYTHON) bench/linux_net.py
	@$(PYTHON) bench/linux_snapshot.py
	@$(PYTHON) bench/density.py
	@$(MAKE) --no-print-directory bench-blk
	@$(MAKE) --no-print-directory bench-net
	@$(MAKE) --no-print-directory bench-jailer

clean:
	rm -rf $(BUILD)

help:
	@echo 'make            build build/ember'
	@echo 'make test       install missing packages, build, run every test'
	@echo 'make run        boot the default Linux guest and show its console'
	@echo 'make linux-test the Linux suite only (on the real-KVM bench without vmx/svm)'
	@echo 'make bench      run the benchmarks, results in bench/results/'
	@echo 'make deps       install the Debian packages Ember needs (idempotent)'
	@echo 'make fuzz       run each libFuzzer target for FUZZ_SECONDS (default 60)'

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
