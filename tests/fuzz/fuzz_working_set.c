// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for src/vmm/working_set.c, the working-set file reader.
 *
 * Input: one mode byte, then the file. Mode bit 0: the target first sets nr_ranges from the
 * file's length and the CRC trailer right, so that mutations reach the range checks behind
 * the CRC. Mode bit 1: the bytes after the mode byte are instead a list of page numbers
 * (u16 each) for working_set__from_pages(), whose result must encode and parse back. The
 * seeds (tests/fuzz/corpus/working_set/) come from
 * `WORKING_SET_SEEDS=DIR build/tests/unit/test_working_set`.
 *
 * Besides the sanitizers, it checks the contract: a refused file leaves a message and an
 * empty set; an accepted file's ranges are valid and it re-encodes to the same bytes.
 */
#include <endian.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/working_set.h"

#define PAGE WORKING_SET_PAGE_SIZE

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the line and the parser's last message when the contract is broken. */
#define check(ok, what)                                                                            \
	do {                                                                                       \
		if (!(ok)) {                                                                       \
			fprintf(stderr, "fuzz_working_set:%d: %s (error: \"%s\")\n", __LINE__,     \
				what, error__get());                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void check_valid(const struct working_set *ws)
{
	check(ws->memory_bytes && ws->memory_bytes % PAGE == 0, "memory_bytes");
	for (uint32_t i = 0; i < ws->nr; i++) {
		const struct ws_range *r = &ws->ranges[i];

		check(r->offset % PAGE == 0 && r->length && r->length % PAGE == 0, "range shape");
		check(r->offset < ws->memory_bytes && r->length <= ws->memory_bytes - r->offset,
		      "range outside the memory file");
		for (uint32_t j = 0; j < i && ws->nr < 256; j++)
			check(r->offset >= ws->ranges[j].offset + ws->ranges[j].length ||
				      ws->ranges[j].offset >= r->offset + r->length,
			      "ranges overlap");
	}
}

/* Encodes ws and parses it back: the same set, and (with file) the same bytes. */
static void reencode(const struct working_set *ws, const uint8_t *file, size_t len)
{
	struct working_set again;
	uint8_t *out;
	size_t out_len;

	check(!working_set__encode(ws, &out, &out_len), "an accepted set does not encode");
	if (file)
		check(out_len == len && !memcmp(out, file, len),
		      "re-encoding is not the same bytes");
	check(!working_set__parse(out, out_len, &again), "the encoded set is refused");
	check(again.nr == ws->nr && again.memory_bytes == ws->memory_bytes &&
		      (!ws->nr || !memcmp(again.ranges, ws->ranges, ws->nr * sizeof(*ws->ranges))),
	      "the encoded set parses differently");
	working_set__free(&again);
	free(out);
}

static void from_pages(const uint8_t *data, size_t len)
{
	size_t n = len / 2;
	uint64_t *pages = calloc(n + 1, sizeof(*pages));
	struct working_set ws;

	if (!pages)
		return;
	for (size_t i = 0; i < n; i++)
		pages[i] = (uint64_t)(data[2 * i] | data[2 * i + 1] << 8) * PAGE;
	if (!working_set__from_pages(pages, n, 65536ULL * PAGE, &ws)) {
		check(working_set__bytes(&ws) <= n * PAGE, "more pages than were given");
		check_valid(&ws);
		reencode(&ws, NULL, 0);
		working_set__free(&ws);
	}
	free(pages);
}

/* A file: parsed from an exact-size copy, so that ASan sees any read past the end. */
static void parse_file(const uint8_t *data, size_t len, bool fix)
{
	uint8_t *file = malloc(len ? len : 1);
	struct working_set ws;

	if (!file)
		return;
	memcpy(file, data, len);
	if (fix && len >= 40 && (len - 40) % 16 == 0) {
		uint32_t nr = htole32((uint32_t)((len - 40) / 16));
		uint64_t crc;

		memcpy(file + 24, &nr, sizeof(nr));
		crc = htole64(lzma_crc64(file, len - 8, 0));
		memcpy(file + len - 8, &crc, sizeof(crc));
	}
	error__clear();
	if (working_set__parse(file, len, &ws)) {
		check(error__get()[0] != '\0', "refused without a message");
		check(ws.ranges == NULL && ws.nr == 0, "refused but the set is not empty");
	} else {
		check_valid(&ws);
		reencode(&ws, file, len);
		working_set__free(&ws);
	}
	free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size && (data[0] & 2))
		from_pages(data + 1, size - 1);
	else if (size)
		parse_file(data + 1, size - 1, data[0] & 1);
	return 0;
}
