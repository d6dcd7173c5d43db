// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/vmm/working_set.c: the working-set file's round trip, the page-list
 * builder, and every kind of bad file the parser must refuse (each truncation, each flipped
 * bit, each field).
 *
 * With WORKING_SET_SEEDS=DIR in the environment it writes the fuzzer's seed corpus
 * (tests/fuzz/corpus/working_set/) into DIR instead: one mode byte (1: the fuzzer fixes
 * the range count and CRC; 2: a page list instead of a file) and a file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lzma.h>

#include "vmm/log.h"
#include "vmm/working_set.h"

#define PAGE WORKING_SET_PAGE_SIZE
#define MIB (1024ULL * 1024)

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A file's CRC made right again after an edit by hand. */
static void fix_crc(uint8_t *f, size_t len)
{
	put_le(f + len - 8, lzma_crc64(f, len - 8, 0), 8);
}

/* A file with these fields and ranges, and a right CRC, whatever the fields say. */
static uint8_t *raw_file(uint64_t memory_bytes, const struct ws_range *r, uint32_t nr, size_t *len)
{
	uint8_t *f;

	*len = 40 + (size_t)nr * 16;
	f = calloc(1, *len);
	assert_non_null(f);
	memcpy(f, "EMBERWS1", 8);
	put_le(f + 8, 1, 4);
	put_le(f + 12, PAGE, 4);
	put_le(f + 16, memory_bytes, 8);
	put_le(f + 24, nr, 4);
	for (uint32_t i = 0; i < nr; i++) {
		put_le(f + 32 + i * 16, r[i].offset, 8);
		put_le(f + 40 + i * 16, r[i].length, 8);
	}
	fix_crc(f, *len);
	return f;
}

/* Parsing f must fail with -EINVAL and a message that holds what. */
static void refused(const uint8_t *f, size_t len, const char *what)
{
	struct working_set ws;

	error__clear();
	assert_int_equal(working_set__parse(f, len, &ws), -EINVAL);
	assert_null(ws.ranges);
	assert_int_equal(ws.nr, 0);
	if (!strstr(error__get(), what))
		fail_msg("expected \"%s\" in \"%s\"", what, error__get());
}

static void refused_ranges(uint64_t memory_bytes, const struct ws_range *r, uint32_t nr,
			   const char *what)
{
	size_t len;
	uint8_t *f = raw_file(memory_bytes, r, nr, &len);

	refused(f, len, what);
	free(f);
}

static const struct ws_range sample_ranges[] = {
	{ 0x5000, 3 * PAGE }, { 0, PAGE }, { 0x100000, 16 * PAGE }, { 0x9000, PAGE }
};

static uint8_t *sample(size_t *len)
{
	return raw_file(2 * MIB, sample_ranges, 4, len);
}

static void test_round_trip(void **state)
{
	struct working_set ws, again;
	uint8_t *f, *out;
	size_t len, out_len;

	(void)state;
	f = sample(&len);
	assert_int_equal(working_set__parse(f, len, &ws), 0);
	assert_int_equal(ws.memory_bytes, 2 * MIB);
	assert_int_equal(ws.nr, 4);
	assert_memory_equal(ws.ranges, sample_ranges, sizeof(sample_ranges));
	assert_int_equal(working_set__bytes(&ws), 21 * PAGE);
	assert_int_equal(working_set__encode(&ws, &out, &out_len), 0);
	assert_int_equal(out_len, len);
	assert_memory_equal(out, f, len);
	assert_int_equal(working_set__parse(out, out_len, &again), 0);
	assert_int_equal(again.nr, 4);
	working_set__free(&again);
	working_set__free(&ws);
	assert_null(ws.ranges);
	free(out);
	free(f);
}

static void test_empty_set(void **state)
{
	struct working_set ws = { .memory_bytes = PAGE }, back;
	uint8_t *out;
	size_t len;

	(void)state;
	assert_int_equal(working_set__encode(&ws, &out, &len), 0);
	assert_int_equal(len, 40);
	assert_int_equal(working_set__parse(out, len, &back), 0);
	assert_int_equal(back.nr, 0);
	assert_null(back.ranges);
	assert_int_equal(back.memory_bytes, PAGE);
	free(out);
}

static void test_every_truncation_is_refused(void **state)
{
	size_t len;
	uint8_t *f = sample(&len);

	(void)state;
	for (size_t n = 0; n < len; n++) {
		/* an exact-size copy, so that a read past the end is a real one */
		uint8_t *cut = malloc(n ? n : 1);

		assert_non_null(cut);
		memcpy(cut, f, n);
		refused(cut, n, n ? "truncated" : "empty");
		free(cut);
	}
	free(f);
}

static void test_data_after_the_end(void **state)
{
	size_t len;
	uint8_t *f = sample(&len), *g = calloc(1, len + 16);

	(void)state;
	memcpy(g, f, len);
	refused(g, len + 1, "data after the end");
	/* a whole extra range that nr_ranges does not count */
	refused(g, len + 16, "data after the end");
	free(g);
	free(f);
}

static void test_every_flipped_bit_is_refused(void **state)
{
	size_t len;
	uint8_t *f = sample(&len);
	struct working_set ws;

	(void)state;
	for (size_t bit = 0; bit < len * 8; bit++) {
		f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		error__clear();
		if (working_set__parse(f, len, &ws) != -EINVAL)
			fail_msg("bit %zu flipped was accepted", bit);
		assert_true(error__get()[0] != '\0');
		f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(working_set__parse(f, len, &ws), 0);
	working_set__free(&ws);
	free(f);
}

static void test_header_refusals(void **state)
{
	size_t len;
	uint8_t *f = sample(&len);

	(void)state;
	f[0] = 'X';
	refused(f, len, "working set: bad magic");
	refused(f, 4, "working set: bad magic");
	f[0] = 'E';
	refused(f, 5, "working set: truncated (5 bytes)");
	f[len - 1] ^= 0x80;
	refused(f, len, "working set: CRC mismatch");
	f[len - 1] ^= 0x80;
	put_le(f + 8, 2, 4);
	fix_crc(f, len);
	refused(f, len, "working set: format version 2, Ember reads 1");
	put_le(f + 8, 1, 4);
	put_le(f + 12, 2 * MIB, 4);
	fix_crc(f, len);
	refused(f, len, "working set: page size 2097152, expected 4096");
	put_le(f + 12, PAGE, 4);
	put_le(f + 28, 1, 4);
	fix_crc(f, len);
	refused(f, len, "working set: reserved field");
	put_le(f + 28, 0, 4);
	put_le(f + 24, 5, 4); /* one range more than the file holds */
	fix_crc(f, len);
	refused(f, len, "truncated (104 bytes, its header says 120)");
	free(f);
}

static void test_memory_bytes_refusals(void **state)
{
	const struct ws_range one = { 0, PAGE };
	const struct ws_range three[] = { { 0, PAGE }, { PAGE, PAGE }, { 2 * PAGE, PAGE } };

	(void)state;
	refused_ranges(0, NULL, 0, "memory size 0 is not a non-zero multiple of 4096");
	refused_ranges(PAGE + 1, &one, 1, "memory size 4097");
	/* nr_ranges is capped at the memory file's page count */
	refused_ranges(2 * PAGE, three, 3, "working set: 3 ranges, more than the 2 pages");
}

static void test_range_refusals(void **state)
{
	const struct ws_range unaligned[] = {
		{ 0, PAGE }, { PAGE, PAGE }, { 0x2000, PAGE }, { 0x3100, PAGE }
	};
	const struct ws_range zero[] = { { 0, PAGE }, { PAGE, 0 } };
	const struct ws_range odd[] = { { 0, PAGE + 512 } };
	const struct ws_range past[] = { { 0, PAGE }, { 15 * PAGE, 2 * PAGE } };
	const struct ws_range wraps[] = { { 0xfffffffffffff000ULL, 2 * PAGE } };
	const struct ws_range overlap[] = { { 0, PAGE },
					    { 4 * PAGE, 4 * PAGE },
					    { 7 * PAGE, PAGE } };
	const struct ws_range same[] = { { 3 * PAGE, PAGE }, { 3 * PAGE, PAGE } };
	const struct ws_range inside[] = { { 2 * PAGE, PAGE }, { 0, 8 * PAGE } };
	const struct ws_range touching[] = { { 4 * PAGE, PAGE },
					     { 3 * PAGE, PAGE },
					     { 5 * PAGE, PAGE } };
	struct working_set ws;
	size_t len;
	uint8_t *f;

	(void)state;
	refused_ranges(16 * PAGE, unaligned, 4, "working set: range 3 is not page-aligned");
	refused_ranges(16 * PAGE, zero, 2, "range 1 has length 0, not a non-zero multiple");
	refused_ranges(16 * PAGE, odd, 1, "range 0 has length 4608");
	refused_ranges(16 * PAGE, past, 2,
		       "range 1 (offset 0xf000, 8192 bytes) goes past the "
		       "end of the 65536-byte memory file");
	refused_ranges(16 * PAGE, wraps, 1, "range 0 (offset 0xfffffffffffff000");
	refused_ranges(16 * PAGE, overlap, 3, "working set: range 2 overlaps range 1");
	refused_ranges(16 * PAGE, same, 2, "range 1 overlaps range 0");
	refused_ranges(16 * PAGE, inside, 2, "range 1 overlaps range 0");
	/* ranges that only touch are fine */
	f = raw_file(16 * PAGE, touching, 3, &len);
	assert_int_equal(working_set__parse(f, len, &ws), 0);
	working_set__free(&ws);
	free(f);
}

static void test_encode_refuses_what_parse_refuses(void **state)
{
	struct ws_range r[] = { { 0, 2 * PAGE }, { PAGE, PAGE } };
	struct working_set ws = { .memory_bytes = 16 * PAGE, .nr = 2, .ranges = r };
	uint8_t *out = (uint8_t *)1;
	size_t len = 1;

	(void)state;
	assert_int_equal(working_set__encode(&ws, &out, &len), -EINVAL);
	assert_non_null(strstr(error__get(), "range 1 overlaps range 0"));
	assert_null(out);
	assert_int_equal(len, 0);
	r[1].offset = 8 * PAGE;
	ws.memory_bytes = 8 * PAGE;
	assert_int_equal(working_set__encode(&ws, &out, &len), -EINVAL);
	assert_non_null(strstr(error__get(), "goes past the end"));
}

static void test_from_pages(void **state)
{
	/* touched: 5 6 7, then 2, 3 (joins 2), 6 again (dropped), 8 (not after 3: new range),
	 * 9, 0, 2 again (dropped), 1 (after 0: joins it) */
	const uint64_t pages[] = { 5, 6, 7, 2, 3, 6, 8, 9, 0, 2, 1 };
	const struct ws_range want[] = { { 5 * PAGE, 3 * PAGE },
					 { 2 * PAGE, 2 * PAGE },
					 { 8 * PAGE, 2 * PAGE },
					 { 0, 2 * PAGE } };
	uint64_t offsets[11];
	struct working_set ws;

	(void)state;
	for (size_t i = 0; i < 11; i++)
		offsets[i] = pages[i] * PAGE;
	assert_int_equal(working_set__from_pages(offsets, 11, 16 * PAGE, &ws), 0);
	assert_int_equal(ws.memory_bytes, 16 * PAGE);
	assert_int_equal(ws.nr, 4);
	assert_memory_equal(ws.ranges, want, sizeof(want));
	working_set__free(&ws);

	assert_int_equal(working_set__from_pages(NULL, 0, 16 * PAGE, &ws), 0);
	assert_int_equal(ws.nr, 0);
	assert_null(ws.ranges);

	offsets[3] = 2 * PAGE + 8;
	assert_int_equal(working_set__from_pages(offsets, 11, 16 * PAGE, &ws), -EINVAL);
	assert_non_null(strstr(error__get(), "page offset 0x2008 is not page-aligned"));
	offsets[3] = 16 * PAGE;
	assert_int_equal(working_set__from_pages(offsets, 11, 16 * PAGE, &ws), -EINVAL);
	assert_non_null(strstr(error__get(), "0x10000 is past the end of the 65536-byte"));
	assert_int_equal(working_set__from_pages(offsets, 1, 3 * PAGE + 1, &ws), -EINVAL);
	assert_null(ws.ranges);
}

static void test_save_and_load(void **state)
{
	char dir[] = "/tmp/test_working_set.XXXXXX", path[96], big[96];
	const uint64_t offsets[] = { 0x3000, 0x4000, 0x1000 };
	struct working_set ws, back;
	FILE *out;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ws", dir);
	assert_int_equal(working_set__from_pages(offsets, 3, 1024 * MIB, &ws), 0);
	assert_int_equal(working_set__save(path, &ws), 0);
	assert_int_equal(working_set__load(path, 1024 * MIB, &back), 0);
	assert_int_equal(back.nr, 2);
	assert_memory_equal(back.ranges, ws.ranges, 2 * sizeof(*ws.ranges));
	working_set__free(&back);

	assert_int_equal(working_set__load(path, 512 * MIB, &back), -EINVAL);
	assert_non_null(strstr(error__get(), "expects a 1073741824-byte memory file"));
	assert_null(back.ranges);
	/* a file too large to describe a 1-page memory file is not even read */
	assert_int_equal(working_set__load(path, PAGE, &back), -EINVAL);
	assert_non_null(strstr(error__get(), "not a regular file of at most"));
	assert_int_equal(working_set__load(dir, 1024 * MIB, &back), -EINVAL);
	snprintf(big, sizeof(big), "%s/missing", dir);
	assert_int_equal(working_set__load(big, 1024 * MIB, &back), -ENOENT);
	assert_non_null(strstr(error__get(), big));
	/* a damaged file: the message names it */
	out = fopen(path, "r+");
	assert_non_null(out);
	fseek(out, 40, SEEK_SET);
	fputc(0x55, out);
	fclose(out);
	assert_int_equal(working_set__load(path, 1024 * MIB, &back), -EINVAL);
	assert_non_null(strstr(error__get(), "CRC mismatch"));
	assert_non_null(strstr(error__get(), path));

	snprintf(big, sizeof(big), "%s/missing/ws", dir);
	assert_int_equal(working_set__save(big, &ws), -ENOENT);
	working_set__free(&ws);
	unlink(path);
	assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
}

/* ---- the fuzzer's seed corpus ---- */
static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *f,
		       size_t len)
{
	char path[512];
	FILE *out;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	out = fopen(path, "we");
	if (!out || fputc(mode, out) == EOF || fwrite(f, 1, len, out) != len || fclose(out)) {
		perror(path);
		exit(1);
	}
}

static int write_seeds(const char *dir)
{
	const struct ws_range one = { 0, PAGE };
	/* mode 2: u16 page numbers for working_set__from_pages() */
	const uint8_t pages[] = { 5, 0, 6, 0, 7, 0, 2, 0, 3, 0, 6, 0, 0, 1, 1, 1, 0, 0 };
	size_t len;
	uint8_t *f;

	write_seed(dir, "pages", 2, pages, sizeof(pages));
	f = sample(&len);
	write_seed(dir, "sample", 0, f, len);
	write_seed(dir, "sample-fix", 1, f, len);
	free(f);
	f = raw_file(PAGE, NULL, 0, &len);
	write_seed(dir, "empty", 1, f, len);
	free(f);
	f = raw_file(PAGE, &one, 1, &len);
	write_seed(dir, "one", 1, f, len);
	free(f);
	return 0;
}

int main(void)
{
	const char *seeds = getenv("WORKING_SET_SEEDS");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_set),
		cmocka_unit_test(test_every_truncation_is_refused),
		cmocka_unit_test(test_data_after_the_end),
		cmocka_unit_test(test_every_flipped_bit_is_refused),
		cmocka_unit_test(test_header_refusals),
		cmocka_unit_test(test_memory_bytes_refusals),
		cmocka_unit_test(test_range_refusals),
		cmocka_unit_test(test_encode_refuses_what_parse_refuses),
		cmocka_unit_test(test_from_pages),
		cmocka_unit_test(test_save_and_load),
	};

	if (seeds)
		return write_seeds(seeds);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
