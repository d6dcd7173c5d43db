# SPDX-License-Identifier: Apache-2.0
# The jailer (docs/jailer.md): build/ember-jailer, a binary of its own from
# src/jail/jailer*.c and src/jail/jail_*.c. It links libc only (none of libember's KVM
# code) and is linked statically (static-pie), so it runs on a host without Ember's
# libraries. src/jail/seccomp*.c belongs to seccomp.mk, not here.
#
#   make security-test   the jailer's tests (tests/security, as root; seccomp tests too)
#   make bench-jailer    bench/jailer.py: jailer overhead and parallel jails

JAILER_SRCS := $(sort $(wildcard src/jail/jailer*.c src/jail/jail_*.c))
JAILER_OBJS := $(JAILER_SRCS:%.c=$(BUILD)/%.o)
JAILER := $(BUILD)/ember-jailer
JAILER_LDFLAGS := -static-pie -Wl,-z,relro,-z,now

all: $(JAILER)

$(JAILER): $(JAILER_OBJS)
	$(quiet) LD $@
	$(Q)$(CC) $(JAILER_LDFLAGS) -o $@ $^

.PHONY: security-test bench-jailer
security-test: all $(GUEST_BINS)
	@$(PYTHON) -m pytest -q tests/security

bench-jailer: all $(GUEST_BINS)
	@$(PYTHON) bench/jailer.py
