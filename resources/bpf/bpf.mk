# SPDX-License-Identifier: Apache-2.0
# eBPF programs: resources/bpf/<name>.bpf.c is built with `clang -target bpf` into
# build/resources/bpf/<name>.bpf.o, and that object is linked into libember.a as a blob
# (symbols ember_bpf_<name>_start/_end), so the ember binary carries its programs and
# needs no file beside it (a jail's chroot has none). src/virtio/net_bpf.c loads them with
# libbpf's bpf_object__open_mem().

BPF_CLANG ?= clang
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_x86 -Isrc -I/usr/include/$(shell gcc -dumpmachine) \
	-Wall -Wextra -Werror
BPF_SRCS := $(sort $(wildcard resources/bpf/*.bpf.c))
BPF_OBJS := $(BPF_SRCS:%.bpf.c=$(BUILD)/%.bpf.o)
BPF_BLOBS := $(BPF_SRCS:%.bpf.c=$(BUILD)/%.blob.o)
LIB_BLOBS += $(BPF_BLOBS)

$(BUILD)/resources/bpf/%.bpf.o: resources/bpf/%.bpf.c
	@mkdir -p $(dir $@)
	$(quiet) BPF $@
	$(Q)$(BPF_CLANG) $(BPF_CFLAGS) -MMD -MP -MF $@.d -MT $@ -c $< -o $@.tmp
	$(Q)llvm-strip -g $@.tmp && mv $@.tmp $@

$(BUILD)/resources/bpf/%.blob.o: $(BUILD)/resources/bpf/%.bpf.o
	$(quiet) BLOB $@
	$(Q)printf '%s\n' '.section .rodata' '.balign 8' \
		'.global ember_bpf_$*_start' 'ember_bpf_$*_start:' '.incbin "$<"' \
		'.global ember_bpf_$*_end' 'ember_bpf_$*_end:' \
		'.section .note.GNU-stack,"",@progbits' | $(CC) -c -x assembler -o $@ -
.SECONDARY: $(BPF_OBJS)
