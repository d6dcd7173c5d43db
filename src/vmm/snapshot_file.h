/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshot state file: encoding and decoding only (no KVM). A header (magic, format
 * version, the Ember version and host CPU model that wrote it), then sections, each with an
 * id, flags and a 64-bit length, then a CRC-64/XZ trailer over everything before it.
 * The byte layout, the versioning rules and the section table: docs/snapshot-format.md.
 *
 * Writing: snapshot_file__writer_init(), then for each section begin_section(), put_*()
 * (and begin_record()/end_record() for nested records), end_section(); finish() appends the
 * trailer and hands out the bytes; snapshot_file__write() puts them on disk durably. The
 * first error sticks: later calls return it, so a caller may check only end_section() and
 * finish().
 *
 * Reading: snapshot_file__open_buffer() or open_path() validates the whole file (magic,
 * version, CRC, every section's bounds, duplicates, unknown must-understand sections)
 * before it returns 0; then find()/next() give sections and a cursor reads their fields,
 * each read bounds-checked (-EINVAL past the end, never an out-of-bounds read). Every
 * failure sets a one-line message through error__set().
 */
#ifndef EMBER_VMM_SNAPSHOT_FILE_H
#define EMBER_VMM_SNAPSHOT_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "\x89EMB\r\n\x1a\n": a high byte, then CR LF, ^Z and LF catch text-mode transfers. */
/* clang-format off */
#define SNAPSHOT_FILE_MAGIC "\x89" "EMB\r\n\x1a\n"
/* clang-format on */
#define SNAPSHOT_FILE_MAGIC_LEN 8
/* A reader refuses a newer major; it reads any minor of its own major. */
#define SNAPSHOT_FILE_MAJOR 1
#define SNAPSHOT_FILE_MINOR 0
/* The fixed part of the header, the section header, the trailer (CRC64). */
#define SNAPSHOT_FILE_HEADER_LEN 32
#define SNAPSHOT_FILE_SECTION_HEADER_LEN 16
#define SNAPSHOT_FILE_TRAILER_LEN 8
/* The longest Ember version or CPU model string, in bytes. */
#define SNAPSHOT_FILE_STR_MAX 255
/* The largest state file open_path() reads (guest memory is in a file of its own). */
#define SNAPSHOT_FILE_MAX_SIZE (256ULL << 20)
/* How deep begin_record() nests. */
#define SNAPSHOT_FILE_RECORD_DEPTH 8

/* Section (and record) flags. */
/* A reader that does not know the section's id refuses the file; without it, skips it. */
#define SNAPSHOT_FILE_MUST_UNDERSTAND 0x00000001u
/* Bits 1-15: reserved, a reader ignores those it does not know (none is defined yet). */
#define SNAPSHOT_FILE_FLAGS_IGNORABLE 0x0000fffeu
/* Bits 16-31: reserved, a reader refuses a section with one it does not know. */
#define SNAPSHOT_FILE_FLAGS_CRITICAL 0xffff0000u
/* The flags this reader knows. */
#define SNAPSHOT_FILE_FLAGS_KNOWN SNAPSHOT_FILE_MUST_UNDERSTAND

/*
 * Section ids; docs/snapshot-format.md documents each payload's layout. Ids never change
 * meaning and are never reused; 0 is invalid. "once": at most one such section in a file.
 */
enum snapshot_section_id {
	/* 0x0001-0x00ff: the machine */
	SNAPSHOT_SECTION_VM_CONFIG = 0x0001,	 /* once: the VM config as JSON */
	SNAPSHOT_SECTION_MEMORY_LAYOUT = 0x0002, /* once: guest RAM regions, the memory file */
	/* 0x0100-0x01ff: vCPUs */
	SNAPSHOT_SECTION_VCPU = 0x0100, /* one per vCPU: regs, sregs, FPU, XSAVE, LAPIC, MSRs... */
	/* 0x0200-0x02ff: VM-wide KVM state */
	SNAPSHOT_SECTION_PIC = 0x0200,	    /* once: both 8259s (KVM_GET_IRQCHIP) */
	SNAPSHOT_SECTION_IOAPIC = 0x0201,   /* once: KVM_GET_IRQCHIP, IOAPIC */
	SNAPSHOT_SECTION_PIT = 0x0202,	    /* once: KVM_GET_PIT2 */
	SNAPSHOT_SECTION_KVMCLOCK = 0x0203, /* once: KVM_GET_CLOCK */
	/* 0x0300-0x03ff: legacy devices */
	SNAPSHOT_SECTION_SERIAL = 0x0300, /* once: the 16550A on COM1 */
	SNAPSHOT_SECTION_I8042 = 0x0301,  /* once */
	SNAPSHOT_SECTION_VMGENID = 0x0302, /* once (optional): the VM generation ID page */
	/* 0x0400-0x04ff: virtio */
	SNAPSHOT_SECTION_VIRTIO_MMIO = 0x0400,	/* one per device: transport registers, queues */
	SNAPSHOT_SECTION_VIRTIO_BLK = 0x0401,	/* one per drive */
	SNAPSHOT_SECTION_VIRTIO_NET = 0x0402,	/* one per interface */
	SNAPSHOT_SECTION_VIRTIO_VSOCK = 0x0403, /* once */
	SNAPSHOT_SECTION_RATE_LIMITER = 0x0404, /* one per rate limiter */
	SNAPSHOT_SECTION_VIRTIO_BALLOON = 0x0405, /* once: target, actual, stats interval */
};

/* The name of a known section id ("vcpu"), or NULL. */
const char *snapshot_file__section_name(uint32_t id);
/* Whether a file may hold more than one section with this (known) id. */
bool snapshot_file__section_repeats(uint32_t id);

/*
 * CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all ones): crc is 0 to
 * start, or the result over the bytes before, as with zlib's crc32().
 */
uint64_t snapshot_file__crc64(uint64_t crc, const void *data, size_t len);

/* The host's CPU model: /proc/cpuinfo's first "model name", or "unknown"; truncated. */
void snapshot_file__host_cpu_model(char *buf, size_t size);

/* ---- writing ---- */
struct snapshot_file_writer {
	uint8_t *buf;
	size_t len, cap;
	int err;	      /* the first error; sticks */
	size_t section_start; /* offset of the open section's header */
	bool in_section;
	bool finished;
	unsigned int depth; /* open records */
	size_t record_start[SNAPSHOT_FILE_RECORD_DEPTH];
	uint64_t once_seen; /* bit i: known section i (in the table) written */
};

/* ember_version NULL: EMBER_VERSION. Strings of 1 to SNAPSHOT_FILE_STR_MAX printable bytes. */
int snapshot_file__writer_init(struct snapshot_file_writer *w, const char *ember_version,
			       const char *cpu_model);
void snapshot_file__writer_free(struct snapshot_file_writer *w);
/* Any non-zero id; a known "once" id only once. Known ids want SNAPSHOT_FILE_MUST_UNDERSTAND. */
int snapshot_file__begin_section(struct snapshot_file_writer *w, uint32_t id, uint32_t flags);
int snapshot_file__end_section(struct snapshot_file_writer *w);
/* A nested record inside a section: the same 16-byte header (tag, flags, length). */
int snapshot_file__begin_record(struct snapshot_file_writer *w, uint32_t tag, uint32_t flags);
int snapshot_file__end_record(struct snapshot_file_writer *w);
/* Little-endian fields, inside a section. */
int snapshot_file__put_u8(struct snapshot_file_writer *w, uint8_t v);
int snapshot_file__put_u16(struct snapshot_file_writer *w, uint16_t v);
int snapshot_file__put_u32(struct snapshot_file_writer *w, uint32_t v);
int snapshot_file__put_u64(struct snapshot_file_writer *w, uint64_t v);
int snapshot_file__put_bytes(struct snapshot_file_writer *w, const void *data, size_t len);
/* A u32 length, then the bytes (no NUL). */
int snapshot_file__put_str(struct snapshot_file_writer *w, const char *s);
/*
 * Appends the trailer; *data and *len (either may be NULL) point into the writer, valid
 * until snapshot_file__writer_free(). Nothing can be added afterwards.
 */
int snapshot_file__finish(struct snapshot_file_writer *w, const uint8_t **data, size_t *len);

/*
 * Writes a file durably: a temporary file (mode 0600) in the same directory, fsync, rename
 * over path, fsync of the directory. A failure before the rename leaves path untouched and
 * no temporary behind; only the directory's fsync comes after it.
 */
int snapshot_file__write(const char *path, const void *data, size_t len);

/* ---- reading ---- */
struct snapshot_file_reader {
	const uint8_t *data;
	size_t size;
	uint8_t *owned; /* open_path()'s copy of the file */
	uint16_t major, minor;
	char ember_version[SNAPSHOT_FILE_STR_MAX + 1];
	char cpu_model[SNAPSHOT_FILE_STR_MAX + 1];
	uint64_t header_len;	  /* offset of the first section */
	uint64_t sections_end;	  /* offset of the trailer */
	unsigned int nr_sections; /* known ones, which next() gives */
	unsigned int nr_skipped;  /* unknown optional sections */
	uint64_t header_extra;	  /* header bytes a newer minor added, skipped */
};

struct snapshot_file_section {
	uint32_t id, flags;
	uint64_t offset; /* of the payload in the file */
	uint64_t len;
	const uint8_t *data;
	bool newer_minor; /* the file's minor is newer than this Ember's */
};

/* A bounds-checked read position in a section or record. */
struct snapshot_file_cursor {
	const uint8_t *data;
	uint64_t len, pos;
	uint32_t id;   /* the section's, for messages */
	uint64_t base; /* offset of data in the file, for messages */
	bool newer_minor;
};

/* Validates everything; data must stay valid and unchanged while the reader is used. */
int snapshot_file__open_buffer(struct snapshot_file_reader *r, const void *data, size_t size);
/* Reads the file (at most SNAPSHOT_FILE_MAX_SIZE) into memory and validates it. */
int snapshot_file__open_path(struct snapshot_file_reader *r, const char *path);
void snapshot_file__close(struct snapshot_file_reader *r);

/* Iteration over the known sections in file order: *pos 0 to start; false at the end. */
bool snapshot_file__next(const struct snapshot_file_reader *r, uint64_t *pos,
			 struct snapshot_file_section *s);
/* The first section with this id; -ENOENT (with a message) if there is none. */
int snapshot_file__find(const struct snapshot_file_reader *r, uint32_t id,
			struct snapshot_file_section *s);
/* How many sections with this id the file holds. */
unsigned int snapshot_file__count(const struct snapshot_file_reader *r, uint32_t id);

void snapshot_file__cursor(const struct snapshot_file_section *s, struct snapshot_file_cursor *c);
/* Each returns 0, or -EINVAL (with a message) and moves nothing when past the end. */
int snapshot_file__get_u8(struct snapshot_file_cursor *c, uint8_t *v);
int snapshot_file__get_u16(struct snapshot_file_cursor *c, uint16_t *v);
int snapshot_file__get_u32(struct snapshot_file_cursor *c, uint32_t *v);
int snapshot_file__get_u64(struct snapshot_file_cursor *c, uint64_t *v);
int snapshot_file__get_bytes(struct snapshot_file_cursor *c, void *dst, uint64_t len);
/* Points *p at the next len bytes in place (no copy). */
int snapshot_file__get_ptr(struct snapshot_file_cursor *c, uint64_t len, const uint8_t **p);
int snapshot_file__skip(struct snapshot_file_cursor *c, uint64_t len);
/* A put_str() string into buf with its NUL; -EINVAL if it holds a NUL or does not fit. */
int snapshot_file__get_str(struct snapshot_file_cursor *c, char *buf, size_t size);
/* A nested record: its header, and a cursor over its payload; c moves past it. */
int snapshot_file__get_record(struct snapshot_file_cursor *c, uint32_t *tag, uint32_t *flags,
			      struct snapshot_file_cursor *sub);
uint64_t snapshot_file__remaining(const struct snapshot_file_cursor *c);
/*
 * -EINVAL (with a message) if bytes are left unread: a payload longer than expected. In a
 * file of a newer minor, 0: that minor may have appended fields this Ember does not know.
 */
int snapshot_file__expect_end(const struct snapshot_file_cursor *c);

#endif
