/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test guest's runtime: everything a test file (tests/guest/<name>.c) may use.
 * docs/test-guest.md explains the guest; tests.def lists the tests.
 */
#ifndef EMBER_GUEST_H
#define EMBER_GUEST_H

/* Shared with the assembly in runtime/entry.S. */
#define GUEST_LOAD_ADDR 0x100000
#define BOOT_PVH 1
#define BOOT_LINUX64 2
#define SEG_CODE64 0x08
#define SEG_DATA 0x10
#define SEG_CODE32 0x18
#define BOOT_STACK_SIZE 16384
#define AP_STACK_SIZE 8192
/* Where the AP start-up code is copied: SIPI vector 0x08. */
#define AP_TRAMPOLINE_ADDR 0x8000
#define MMIO_GAP_START 0xd0000000

#ifndef __ASSEMBLER__

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PREFIX "EMBER-GUEST: "
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF(a, b) __attribute__((format(printf, a, b)))
#define NOINIT __attribute__((section(".noinit")))

/* ---- boot information (runtime/boot.c), copied out of the boot structures at start ---- */
#define E820_RAM 1
#define MEMMAP_MAX 128
#define CMDLINE_MAX 4096

struct mem_region {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

struct boot_info {
	unsigned int protocol; /* BOOT_PVH or BOOT_LINUX64 */
	unsigned int nr_regions;
	struct mem_region regions[MEMMAP_MAX];
	char cmdline[CMDLINE_MAX];
};

extern struct boot_info boot_info;
void boot__init(unsigned int protocol, uint64_t info_paddr);
const char *boot__protocol_name(unsigned int protocol);

/* ---- serial console (runtime/console.c): COM1, one lock for all CPUs ---- */
void console__init(void);
void console__lock(void);
void console__unlock(void);
/* Caller holds the lock. */
void console__putc(char c);
void console__write(const char *s, size_t len);
/* One whole line "EMBER-GUEST: <formatted>\n", atomic with respect to other CPUs. */
void report(const char *fmt, ...) PRINTF(1, 2);
/* printf subset: %c %s %d %i %u %x %p, flags '0' '-', width, precision for %s,
 * length h hh l ll z. */
int vsnformat(char *buf, size_t size, const char *fmt, va_list ap);
int snformat(char *buf, size_t size, const char *fmt, ...) PRINTF(3, 4);

/* ---- tests (tests.def, runtime/main.c) ---- */
/* A test returns NULL when it passes, or a one-line reason when it fails. */
typedef const char *(*guest_test_fn)(void);
/* Formats a failure reason into a static buffer and returns it. */
const char *fail(const char *fmt, ...) PRINTF(1, 2);

#define GUEST_TEST(name) const char *test_##name(void);
#include "tests.def"
#undef GUEST_TEST

/* Ends the run as the command line asked (exit=...); `passed` is for exit=auto. */
_Noreturn void guest__exit(bool passed);
/* Resets the machine by a triple fault. */
_Noreturn void guest__triple_fault(void);
/* A fatal error on the boot CPU: fails the running test, prints the summary, exits. */
_Noreturn void guest__abort(const char *why);
/* The boot CPU's APIC id. */
extern unsigned int boot_cpu_apic_id;

/* ---- memory (runtime/memory.c) ---- */
/* Pages after the image, from the RAM region holding it; not zeroed (that costs ~1 us per
 * 8 bytes when ring 0 is emulated). NULL when exhausted. */
void *memory__alloc(size_t bytes);
/* Identity-maps [start, end) with 2 MiB pages; below 4 GiB is always mapped already.
 * 0, or -1 when out of page-table memory or beyond 512 GiB. */
int memory__map(uint64_t start, uint64_t end, bool uncached);
void memory__init(void);

/* ---- exceptions (runtime/traps.c) ---- */
struct trap_frame {
	uint64_t vector;
	uint64_t error;
	uint64_t rip;
	uint64_t cs;
	uint64_t rflags;
	uint64_t rsp;
	uint64_t ss;
};

/* ---- called from runtime/entry.S ---- */
void guest_main(unsigned int protocol, uint64_t info_paddr);
void ap_main(void);
void traps__handler(const struct trap_frame *f);
extern const char ap_trampoline[], ap_trampoline_end[];
/* AP stacks: AP number i (in wake-up order) gets the stack ending at base + (i+1) * size. */
extern uint64_t ap_stacks_base;
extern uint32_t ap_next_index;

/* ---- freestanding libc bits (runtime/lib.c) ---- */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
bool str_has_prefix(const char *s, const char *prefix);
/* Decimal (or 0x hex) to unsigned; false on junk or overflow past `max`. */
bool parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* ---- the CPU ---- */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint8_t mmio_read8(uint64_t addr)
{
	return *(volatile uint8_t *)(uintptr_t)addr;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline uint64_t mmio_read64(uint64_t addr)
{
	return *(volatile uint64_t *)(uintptr_t)addr;
}

static inline void mmio_write8(uint64_t addr, uint8_t v)
{
	*(volatile uint8_t *)(uintptr_t)addr = v;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)addr = v;
}

static inline void mmio_write64(uint64_t addr, uint64_t v)
{
	*(volatile uint64_t *)(uintptr_t)addr = v;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(subleaf));
}

/* The initial APIC id, CPUID leaf 1 EBX[31:24]. */
static inline unsigned int cpu_apic_id(void)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	return r[1] >> 24;
}

static inline _Noreturn void cpu_halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" : : : "memory");
}

#endif /* __ASSEMBLER__ */
#endif
