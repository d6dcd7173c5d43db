/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The working-set file: the guest-memory ranges a restored VM touched first, earliest
 * first, so that a later restore of the same snapshot can prefetch them before the guest
 * asks (tools/ember-uffd-handler --record and --prefetch; tools/README.md).
 *
 * Binary, little-endian:
 *   0  8  magic "EMBERWS1"
 *   8  4  version, 1
 *  12  4  page size, 4096
 *  16  8  memory_bytes: the size of the memory file the offsets are into
 *  24  4  nr_ranges (at most memory_bytes / page size)
 *  28  4  reserved, 0
 *  32     nr_ranges x { u64 offset; u64 length }: page-aligned, length a non-zero multiple
 *         of the page size, inside the memory file, no two overlapping; in recorded order
 *  end-8  CRC-64/XZ (lzma_crc64) of every byte before it
 *
 * Every function returns 0 or -errno and sets a one-line message with error__set().
 */
#ifndef EMBER_VMM_WORKING_SET_H
#define EMBER_VMM_WORKING_SET_H

#include <stddef.h>
#include <stdint.h>

#define WORKING_SET_MAGIC "EMBERWS1"
#define WORKING_SET_MAGIC_LEN 8
#define WORKING_SET_VERSION 1
#define WORKING_SET_PAGE_SIZE 4096
#define WORKING_SET_HEADER_LEN 32
#define WORKING_SET_RANGE_LEN 16
#define WORKING_SET_TRAILER_LEN 8

struct ws_range {
	uint64_t offset, length;
};

struct working_set {
	uint64_t memory_bytes;
	uint32_t nr;
	struct ws_range *ranges; /* nr of them, malloc'd; NULL when nr is 0 */
};

/* Validates every byte of buf (exactly one file); *out is owned by the caller. */
int working_set__parse(const void *buf, size_t len, struct working_set *out);
/* Reads and parses path; refuses a set made for a memory file of another size. */
int working_set__load(const char *path, uint64_t memory_bytes, struct working_set *out);
/* The file's bytes in a malloc'd *buf; refuses a set that parse() would refuse. */
int working_set__encode(const struct working_set *ws, uint8_t **buf, size_t *len);
/* Writes durably: a temporary file beside path, fsync, rename, fsync of the directory. */
int working_set__save(const char *path, const struct working_set *ws);
void working_set__free(struct working_set *ws);
/* The bytes the ranges cover. */
uint64_t working_set__bytes(const struct working_set *ws);

/*
 * Ranges from page offsets in first-touch order: a page right after the previous range's
 * end joins it, a page seen before is dropped. Offsets must be page-aligned and inside
 * memory_bytes.
 */
int working_set__from_pages(const uint64_t *page_offsets, size_t n, uint64_t memory_bytes,
			    struct working_set *out);

#endif
