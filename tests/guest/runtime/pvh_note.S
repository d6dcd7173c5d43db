/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PVH ELF note: name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY, descriptor = the 32-bit
 * physical entry address. Linked into guest.elf and exit-now.elf only.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a", @note
	.balign 4
	.long 4 /* namesz */
	.long 4 /* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_entry32

	/* Not part of the note (guest.lds places it right after): QEMU reads the
	 * descriptor as 8 bytes, so the next 4 must be zero. */
	.section .note.Xen.pad, "a", @progbits
	.long 0

	.section .note.GNU-stack, "", @progbits
