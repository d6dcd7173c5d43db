# SPDX-License-Identifier: Apache-2.0
# The freestanding x86_64 test guest (docs/test-guest.md), included by the top Makefile.
# A test is tests/guest/<name>.c plus one GUEST_TEST(<name>) line in tests/guest/tests.def;
# the runtime is tests/guest/runtime/. Host-side tests: tests/guest/test_*.py (pytest).

GUEST_CC ?= gcc
GUEST_OBJCOPY ?= objcopy
GUEST_OUT := $(BUILD)/tests/guest
GUEST_OBJ := $(GUEST_OUT)/obj

GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie -mcmodel=small \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fcf-protection=none --param=min-pagesize=0 -Itests/guest $(WARNINGS) -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments

# Everything but the three special assembly files goes into every full guest.
GUEST_SPECIAL := pvh_note exit_now bzimage
GUEST_SRCS := $(sort $(wildcard tests/guest/*.c tests/guest/runtime/*.c)) \
	$(filter-out $(GUEST_SPECIAL:%=tests/guest/runtime/%.S),$(wildcard tests/guest/runtime/*.S))
GUEST_OBJS := $(patsubst tests/guest/%,$(GUEST_OBJ)/%.o,$(basename $(GUEST_SRCS)))

GUEST_BINS := $(GUEST_OUT)/guest.elf $(GUEST_OUT)/guest-linux64.elf $(GUEST_OUT)/guest.bzImage \
	$(GUEST_OUT)/exit-now.elf

$(GUEST_OBJ)/%.o: tests/guest/%.c
	@mkdir -p $(dir $@)
	$(quiet) GUESTCC $@
	$(Q)$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OBJ)/%.o: tests/guest/%.S
	@mkdir -p $(dir $@)
	$(quiet) GUESTAS $@
	$(Q)$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OUT)/guest.elf: $(GUEST_OBJS) $(GUEST_OBJ)/runtime/pvh_note.o tests/guest/guest.lds
	$(quiet) GUESTLD $@
	$(Q)$(GUEST_CC) $(GUEST_LDFLAGS) -T tests/guest/guest.lds -o $@ $(filter %.o,$^)

$(GUEST_OUT)/guest-linux64.elf: $(GUEST_OBJS) tests/guest/guest.lds
	$(quiet) GUESTLD $@
	$(Q)$(GUEST_CC) $(GUEST_LDFLAGS) -T tests/guest/guest.lds -o $@ $(filter %.o,$^)

$(GUEST_OUT)/exit-now.elf: $(GUEST_OBJ)/runtime/exit_now.o $(GUEST_OBJ)/runtime/pvh_note.o \
		tests/guest/guest.lds
	$(quiet) GUESTLD $@
	$(Q)$(GUEST_CC) $(GUEST_LDFLAGS) -T tests/guest/guest.lds -Wl,-e,exit_now -o $@ \
		$(filter %.o,$^)

# The bzImage payload: the 64-bit guest flattened, loaded at 0x100000 by the VMM.
$(GUEST_OUT)/guest-linux64.bin: $(GUEST_OUT)/guest-linux64.elf
	$(quiet) OBJCOPY $@
	$(Q)$(GUEST_OBJCOPY) -O binary $< $@

$(GUEST_OBJ)/runtime/bzimage.o: tests/guest/runtime/bzimage.S $(GUEST_OUT)/guest-linux64.bin
	@mkdir -p $(dir $@)
	$(quiet) GUESTAS $@
	$(Q)$(GUEST_CC) $(GUEST_CFLAGS) -DGUEST_PAYLOAD='"$(GUEST_OUT)/guest-linux64.bin"' \
		-c $< -o $@

# init_size comes from the 64-bit ELF's symbols (guest_init_size in guest.lds).
$(GUEST_OUT)/guest.bzImage: $(GUEST_OBJ)/runtime/bzimage.o $(GUEST_OUT)/guest-linux64.elf \
		tests/guest/bzimage.lds
	$(quiet) GUESTLD $@
	$(Q)$(GUEST_CC) $(GUEST_LDFLAGS) -T tests/guest/bzimage.lds \
		-Wl,--just-symbols=$(GUEST_OUT)/guest-linux64.elf -o $(GUEST_OBJ)/bzimage.elf $<
	$(Q)$(GUEST_OBJCOPY) -O binary $(GUEST_OBJ)/bzimage.elf $@

guest: $(GUEST_BINS)

guest-test: $(BUILD)/ember $(GUEST_BINS)
	@EMBER_BUILD=$(BUILD) $(PYTHON) -m pytest -q tests/guest

.PHONY: guest
