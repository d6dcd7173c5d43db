# SPDX-License-Identifier: Apache-2.0
# Seccomp (docs/seccomp.md): build/ember-seccompiler compiles resources/seccomp/x86_64.json
# with libseccomp into build/resources/seccomp/x86_64.bpf at build time, and that file is
# linked into the library (symbols ember_seccomp_builtin_start/_end), so Ember parses no
# rules at run time. `make seccomp-report` prints the allowed syscalls per thread.

SECCOMPILER := $(BUILD)/ember-seccompiler
SECCOMP_RULES := resources/seccomp/x86_64.json
SECCOMP_BPF := $(BUILD)/resources/seccomp/x86_64.bpf
SECCOMP_BLOB := $(BUILD)/resources/seccomp/x86_64.blob.o
LIB_BLOBS += $(SECCOMP_BLOB)

$(SECCOMPILER): src/jail/seccompiler.c src/jail/seccomp_format.h
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lseccomp -lcjson

$(SECCOMP_BPF): $(SECCOMP_RULES) $(SECCOMPILER)
	@mkdir -p $(dir $@)
	$(quiet) SECCOMP $@
	$(Q)$(SECCOMPILER) $(SECCOMP_RULES) $@

$(SECCOMP_BLOB): $(SECCOMP_BPF)
	$(quiet) BLOB $@
	$(Q)printf '%s\n' '.section .rodata' '.balign 8' \
		'.global ember_seccomp_builtin_start' 'ember_seccomp_builtin_start:' \
		'.incbin "$<"' '.global ember_seccomp_builtin_end' 'ember_seccomp_builtin_end:' \
		'.section .note.GNU-stack,"",@progbits' | $(CC) -c -x assembler -o $@ -

all: $(SECCOMPILER)

.PHONY: seccomp-report
seccomp-report: $(SECCOMPILER)
	@$(SECCOMPILER) --report $(SECCOMP_RULES)
	@echo "Firecracker v1.x (its x86_64 defaults): vcpu 27, api 31, vmm 50"

# tests/security/test_seccomp.py's trigger: a test binary, never part of ember.
SECCOMP_TRIGGER := $(BUILD)/tests/security/seccomp_trigger
$(SECCOMP_TRIGGER): tests/security/seccomp_trigger.c $(EMBER_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(EMBER_LIB) $(LIBS)

security-test: $(SECCOMP_TRIGGER) $(SECCOMPILER)
