/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exit-now.elf: a PVH kernel whose first instructions write a line ("!\n") to the serial
 * port and then 0 to the debug-exit port, then halt for good. The start-up benchmark
 * (bench/startup.py) times process start to the serial byte's arrival on the VMM's
 * stdout, for Ember and for QEMU alike. The bytes mean the same in 32-bit and 64-bit
 * mode, so it is also its own 64-bit entry.
 */
#define COM1_PORT 0x3f8
#define DEBUG_EXIT_PORT 0xf4

	.section .text.head, "ax"
	.code32
	.globl pvh_entry32, exit_now
pvh_entry32:
exit_now:
	movw $COM1_PORT, %dx
	movb $'!', %al
	outb %al, %dx
	movb $'\n', %al
	outb %al, %dx
	xorl %eax, %eax
	outb %al, $DEBUG_EXIT_PORT
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
