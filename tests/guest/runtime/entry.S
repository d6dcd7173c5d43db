/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test guest's entry points, GDT, page tables and trap stubs.
 *
 * Offsets from the load address GUEST_LOAD_ADDR are fixed:
 *   +0x000  pvh_entry32  PVH: 32-bit protected mode, paging off, EBX = hvm_start_info
 *   +0x200  entry64      Linux 64-bit boot protocol: long mode, RSI = boot_params
 * Application processors start in ap_trampoline (real mode; smp.c copies it to
 * AP_TRAMPOLINE_ADDR), go to 32-bit protected mode, then to long mode like the PVH path.
 * Every path switches to this image's own GDT, IDT, page tables and stack at once. The
 * tables are all built at assembly or link time: ring-0 code may be emulated at ~1 us an
 * instruction, so no loop runs to make them.
 */
#include "guest.h"

#define CR0_PE 0x00000001
#define CR0_NW_CD 0x60000000
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define PTE_TABLE 0x03 /* present, writable */
#define PDE_WB 0x83 /* present, writable, 2 MiB page */
#define PDE_UC 0x9b /* the same, cache disabled, write-through */
#define IDT_INTERRUPT_GATE 0x8e
/* The exception stubs sit at a fixed address, so the IDT can be assembled. */
#define TRAP_STUBS_OFFSET 0x400
#define TRAP_STUBS_ADDR (GUEST_LOAD_ADDR + TRAP_STUBS_OFFSET)
#define TRAP_STUB_SIZE 16

	.section .text.head, "ax"
	.code32
	.globl pvh_entry32
pvh_entry32:
	cli
	cld
	movl $pvh64, %ebp
	jmp long_mode32

	.org 0x200
	.code64
	.globl entry64
entry64:
	cli
	cld
	lgdt gdt_desc(%rip)
	movl $boot_pml4, %eax
	movq %rax, %cr3
	movq $boot_stack_top, %rsp
	movq %rsi, %rbx
	movl $BOOT_LINUX64, %r12d
	pushq $SEG_CODE64
	pushq $start64
	lretq

/* ---- exceptions: 32 stubs of TRAP_STUB_SIZE bytes; idt below points at them ---- */
	.org TRAP_STUBS_OFFSET
trap_stubs:
	.set vec, 0
	.rept 32
	.org TRAP_STUBS_OFFSET + vec * TRAP_STUB_SIZE
	/* The CPU pushes an error code for these vectors; the others get a 0. */
	.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || \
		(vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp trap_common
	.set vec, vec + 1
	.endr

	.text
	.code32
/* From 32-bit protected mode with paging off to long mode; then jumps to %ebp. */
long_mode32:
	lgdt gdt_desc
	ljmp $SEG_CODE32, $1f
1:	movl $SEG_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	andl $~CR0_NW_CD, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $SEG_CODE64, $2f
	.code64
2:	movl %ebp, %ebp
	jmp *%rbp

/* PVH, now in long mode: EBX still holds the hvm_start_info address. */
pvh64:
	movq $boot_stack_top, %rsp
	movl %ebx, %ebx
	movl $BOOT_PVH, %r12d
/* Both boot paths: RBX = boot structure, R12D = protocol, on the boot stack. */
start64:
	lidt idt_desc
	movl $SEG_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	/* A bzImage's payload has no .bss: clear it here, whoever loaded us. */
	movl $_bss_start, %edi
	movl $_bss_end, %ecx
	subl %edi, %ecx
	shrl $3, %ecx
	xorl %eax, %eax
	rep stosq
	movl %r12d, %edi
	movq %rbx, %rsi
	call guest_main
	.globl halt64
halt64:
	cli
	hlt
	jmp halt64

/* ---- application processors ---- */
	.code16
	.balign 16
	.globl ap_trampoline, ap_trampoline_end
/* Runs at AP_TRAMPOLINE_ADDR with CS = AP_TRAMPOLINE_ADDR >> 4, IP = 0. */
ap_trampoline:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl ap_gdt_desc - ap_trampoline
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $SEG_CODE32, $ap_entry32
	.balign 4
ap_gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
ap_trampoline_end:

	.code32
ap_entry32:
	movl $SEG_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $ap_entry64, %ebp
	jmp long_mode32

	.code64
/* Each AP takes the next stack from ap_stacks_base (smp.c) and runs ap_main(). */
ap_entry64:
	lidt idt_desc
	movl $1, %eax
	lock xaddl %eax, ap_next_index(%rip)
	incl %eax
	imull $AP_STACK_SIZE, %eax
	movq ap_stacks_base(%rip), %rsp
	addq %rax, %rsp
	call ap_main
	jmp halt64

/* Exceptions end here: the handler gets the frame (struct trap_frame) and never returns. */
trap_common:
	movq %rsp, %rdi
	andq $-16, %rsp
	call traps__handler
	jmp halt64

/* ---- GDT ---- */
	.data
	.balign 16
gdt:
	.quad 0
	.quad 0x00af9b000000ffff /* SEG_CODE64 */
	.quad 0x00cf93000000ffff /* SEG_DATA */
	.quad 0x00cf9b000000ffff /* SEG_CODE32 */
gdt_end:
	.balign 8
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

/* ---- IDT: vectors 0-31, interrupt gates to the stubs ---- */
	.balign 16
idt:
	.set vec, 0
	.rept 32
	.word (TRAP_STUBS_ADDR + vec * TRAP_STUB_SIZE) & 0xffff
	.word SEG_CODE64
	.byte 0, IDT_INTERRUPT_GATE
	.word (TRAP_STUBS_ADDR + vec * TRAP_STUB_SIZE) >> 16
	.long 0, 0
	.set vec, vec + 1
	.endr
idt_end:
	.balign 8
idt_desc:
	.word idt_end - idt - 1
	.quad idt

/* ---- page tables: identity map of 0..4 GiB in 2 MiB pages, the MMIO gap uncached ---- */
	.balign 4096
	.globl boot_pml4, boot_pdpt
boot_pml4:
	.quad boot_pdpt + PTE_TABLE
	.fill 511, 8, 0
boot_pdpt:
	.quad boot_pd + 0x0000 + PTE_TABLE
	.quad boot_pd + 0x1000 + PTE_TABLE
	.quad boot_pd + 0x2000 + PTE_TABLE
	.quad boot_pd + 0x3000 + PTE_TABLE
	.fill 508, 8, 0
boot_pd:
	.set pd_addr, 0
	.rept 2048
	.if pd_addr < MMIO_GAP_START
	.quad pd_addr + PDE_WB
	.else
	.quad pd_addr + PDE_UC
	.endif
	.set pd_addr, pd_addr + 0x200000
	.endr

/* ---- the boot CPU's stack ---- */
	.section .noinit, "aw", @nobits
	.balign 16
boot_stack:
	.skip BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
