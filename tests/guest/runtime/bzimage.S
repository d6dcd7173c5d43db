/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guest.bzImage: a boot sector and one setup sector carrying the Linux setup header
 * (Documentation/arch/x86/boot.rst, protocol 2.12), then the flat 64-bit guest
 * (GUEST_PAYLOAD, linked at 0x100000, 64-bit entry at +0x200). Only the 64-bit boot
 * protocol is supported: the real-mode entry just halts. The image is not relocatable.
 */
#define SETUP_SECTS 1
#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x0001
#define LOAD_ADDR 0x100000

	.section .bzimage, "a"
	.code16
	.globl bzimage_start
bzimage_start:
	.org 0x1f1
setup_sects:		.byte SETUP_SECTS
root_flags:		.word 0
syssize:		.long (payload_end - payload_start + 15) / 16
ram_size:		.word 0
vid_mode:		.word 0xffff
root_dev:		.word 0
boot_flag:		.word 0xaa55
	.org 0x200
jump:			.byte 0xeb, setup_halt - 1f
1:
header:			.ascii "HdrS"
version:		.word 0x020c
realmode_swtch:		.long 0
start_sys_seg:		.word 0x1000
kernel_version:		.word 0
type_of_loader:		.byte 0
loadflags:		.byte LOADED_HIGH
setup_move_size:	.word 0x8000
code32_start:		.long LOAD_ADDR
ramdisk_image:		.long 0
ramdisk_size:		.long 0
bootsect_kludge:	.long 0
heap_end_ptr:		.word 0
ext_loader_ver:		.byte 0
ext_loader_type:	.byte 0
cmd_line_ptr:		.long 0
initrd_addr_max:	.long 0x7fffffff
kernel_alignment:	.long LOAD_ADDR
relocatable_kernel:	.byte 0
min_alignment:		.byte 20 /* log2(kernel_alignment) */
xloadflags:		.word XLF_KERNEL_64
cmdline_size:		.long 4095
hardware_subarch:	.long 0
hardware_subarch_data:	.quad 0
payload_offset:		.long 0
payload_length:		.long 0
setup_data:		.quad 0
pref_address:		.quad LOAD_ADDR
init_size:		.long guest_init_size
handover_offset:	.long 0
	.org 0x268
setup_halt:
	cli
	hlt
	jmp setup_halt

	.org (SETUP_SECTS + 1) * 512
payload_start:
	.incbin GUEST_PAYLOAD
payload_end:

	.section .note.GNU-stack, "", @progbits
