// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/vmm/snapshot_file.c: the snapshot state file's writer, reader, cursor,
 * CRC64 and durable write, and every kind of bad input the reader must refuse.
 *
 * With SNAPSHOT_FILE_SEEDS=DIR in the environment it also writes the fuzzer's seed corpus
 * (tests/fuzz/corpus/snapshot_file/) into DIR: each seed is one mode byte (1: the fuzzer
 * fixes the size and CRC) and a file.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/cli.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define CPU "AMD EPYC 7B13 64-Core Processor"
#define UNKNOWN_ID 0x7777u
#define SEC_HDR SNAPSHOT_FILE_SECTION_HEADER_LEN

/* A file built by the tests, owned by the test. */
struct file {
	uint8_t *data;
	size_t len;
};

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* After editing a file by hand: its size field and trailer made right again. */
static void fix_crc(struct file *f)
{
	uint64_t body = f->len - SNAPSHOT_FILE_TRAILER_LEN;

	put_le(f->data + 16, f->len, 8);
	put_le(f->data + body, snapshot_file__crc64(0, f->data, body), 8);
}

static struct file take(struct snapshot_file_writer *w)
{
	const uint8_t *data;
	struct file f;

	assert_int_equal(snapshot_file__finish(w, &data, &f.len), 0);
	f.data = malloc(f.len);
	assert_non_null(f.data);
	memcpy(f.data, data, f.len);
	snapshot_file__writer_free(w);
	return f;
}

/* A section of n bytes 0..n-1. */
static void add_section(struct snapshot_file_writer *w, uint32_t id, uint32_t flags, size_t n)
{
	assert_int_equal(snapshot_file__begin_section(w, id, flags), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(snapshot_file__put_u8(w, (uint8_t)i), 0);
	assert_int_equal(snapshot_file__end_section(w), 0);
}

/* vm-config, two vCPUs with a nested record each, an optional unknown section, serial. */
static struct file sample(bool with_unknown)
{
	static const char json[] = "{\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":128}}";
	struct snapshot_file_writer w;

	assert_int_equal(snapshot_file__writer_init(&w, NULL, CPU), 0);
	assert_int_equal(snapshot_file__begin_section(&w, SNAPSHOT_SECTION_VM_CONFIG,
						      SNAPSHOT_FILE_MUST_UNDERSTAND),
			 0);
	snapshot_file__put_bytes(&w, json, sizeof(json) - 1);
	assert_int_equal(snapshot_file__end_section(&w), 0);
	for (uint32_t cpu = 0; cpu < 2; cpu++) {
		snapshot_file__begin_section(&w, SNAPSHOT_SECTION_VCPU,
					     SNAPSHOT_FILE_MUST_UNDERSTAND);
		snapshot_file__put_u32(&w, cpu);
		snapshot_file__begin_record(&w, 1, 0);
		snapshot_file__put_u64(&w, 0x1122334455667788ULL + cpu);
		snapshot_file__put_u16(&w, 0xbeef);
		snapshot_file__end_record(&w);
		snapshot_file__put_str(&w, "tail");
		assert_int_equal(snapshot_file__end_section(&w), 0);
	}
	if (with_unknown)
		add_section(&w, UNKNOWN_ID, 0, 5);
	add_section(&w, SNAPSHOT_SECTION_SERIAL, SNAPSHOT_FILE_MUST_UNDERSTAND, 12);
	return take(&w);
}

/* The offset of the header of the n-th section (known or not). */
static size_t section_offset(const struct file *f, unsigned int n)
{
	size_t off = get_le(f->data + 12, 4);

	while (n--)
		off += SEC_HDR + get_le(f->data + off + 8, 8);
	return off;
}

static void expect_refused(const struct file *f, const char *msg)
{
	struct snapshot_file_reader r;

	error__clear();
	assert_int_equal(snapshot_file__open_buffer(&r, f->data, f->len), -EINVAL);
	if (!strstr(error__get(), msg))
		fail_msg("expected \"%s\" in \"%s\"", msg, error__get());
	assert_null(r.data);
}

static void test_crc64_check_value(void **state)
{
	static const char check[] = "123456789";
	uint64_t crc;

	(void)state;
	assert_true(snapshot_file__crc64(0, check, 9) == 0x995DC9BBDF1939FAULL);
	assert_true(snapshot_file__crc64(0, "", 0) == 0);
	crc = snapshot_file__crc64(0, check, 4);
	assert_true(snapshot_file__crc64(crc, check + 4, 5) == 0x995DC9BBDF1939FAULL);
}

static void test_round_trip(void **state)
{
	struct file f = sample(false);
	struct snapshot_file_reader r;
	struct snapshot_file_section s;
	struct snapshot_file_cursor c, rec;
	uint64_t pos = 0, v64;
	uint32_t v32, tag, flags;
	uint16_t v16;
	char str[8];
	unsigned int n = 0;

	(void)state;
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	assert_int_equal(r.major, SNAPSHOT_FILE_MAJOR);
	assert_int_equal(r.minor, SNAPSHOT_FILE_MINOR);
	assert_string_equal(r.ember_version, EMBER_VERSION);
	assert_string_equal(r.cpu_model, CPU);
	assert_int_equal(r.nr_sections, 4);
	assert_int_equal(r.nr_skipped, 0);
	assert_int_equal(snapshot_file__count(&r, SNAPSHOT_SECTION_VCPU), 2);

	assert_int_equal(snapshot_file__find(&r, SNAPSHOT_SECTION_VM_CONFIG, &s), 0);
	assert_int_equal(s.flags, SNAPSHOT_FILE_MUST_UNDERSTAND);
	assert_memory_equal(s.data, "{\"machine-config\"", 17);

	while (snapshot_file__next(&r, &pos, &s)) {
		if (s.id != SNAPSHOT_SECTION_VCPU)
			continue;
		snapshot_file__cursor(&s, &c);
		assert_int_equal(snapshot_file__get_u32(&c, &v32), 0);
		assert_int_equal(v32, n);
		assert_int_equal(snapshot_file__get_record(&c, &tag, &flags, &rec), 0);
		assert_int_equal(tag, 1);
		assert_int_equal(flags, 0);
		assert_int_equal(snapshot_file__remaining(&rec), 10);
		assert_int_equal(snapshot_file__get_u64(&rec, &v64), 0);
		assert_true(v64 == 0x1122334455667788ULL + n);
		assert_int_equal(snapshot_file__get_u16(&rec, &v16), 0);
		assert_int_equal(v16, 0xbeef);
		assert_int_equal(snapshot_file__expect_end(&rec), 0);
		assert_int_equal(snapshot_file__get_str(&c, str, sizeof(str)), 0);
		assert_string_equal(str, "tail");
		assert_int_equal(snapshot_file__expect_end(&c), 0);
		n++;
	}
	assert_int_equal(n, 2);
	assert_int_equal(snapshot_file__find(&r, SNAPSHOT_SECTION_PIT, &s), -ENOENT);
	assert_non_null(strstr(error__get(), "no pit section"));
	snapshot_file__close(&r);
	free(f.data);
}

/* Reads past the end fail with -EINVAL, a message, and the cursor where it was. */
static void test_cursor_bounds(void **state)
{
	struct file f = sample(false);
	struct snapshot_file_reader r;
	struct snapshot_file_section s;
	struct snapshot_file_cursor c, rec;
	uint8_t buf[16], v8;
	uint64_t v64;
	uint32_t v32, tag, flags;
	const uint8_t *p;
	char str[4];

	(void)state;
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	assert_int_equal(snapshot_file__find(&r, SNAPSHOT_SECTION_SERIAL, &s), 0);
	snapshot_file__cursor(&s, &c);
	assert_int_equal(snapshot_file__get_bytes(&c, buf, 10), 0);
	error__clear();
	assert_int_equal(snapshot_file__get_u32(&c, &v32), -EINVAL);
	assert_non_null(strstr(error__get(), "serial section"));
	assert_int_equal(snapshot_file__get_u64(&c, &v64), -EINVAL);
	assert_int_equal(snapshot_file__get_bytes(&c, buf, 3), -EINVAL);
	assert_int_equal(snapshot_file__get_ptr(&c, UINT64_MAX, &p), -EINVAL);
	assert_int_equal(snapshot_file__skip(&c, UINT64_MAX - 5), -EINVAL);
	assert_int_equal(snapshot_file__remaining(&c), 2);
	assert_int_equal(snapshot_file__expect_end(&c), -EINVAL);
	assert_non_null(strstr(error__get(), "2 bytes left over"));
	assert_int_equal(snapshot_file__get_u8(&c, &v8), 0);
	assert_int_equal(v8, 10);
	assert_int_equal(snapshot_file__get_u8(&c, &v8), 0);
	assert_int_equal(snapshot_file__get_u8(&c, &v8), -EINVAL);
	assert_int_equal(snapshot_file__expect_end(&c), 0);

	/* A record or string whose length overruns; a string too long for the buffer. */
	snapshot_file__cursor(&s, &c);
	assert_int_equal(snapshot_file__get_record(&c, &tag, &flags, &rec), -EINVAL);
	assert_int_equal(c.pos, 0);
	assert_int_equal(snapshot_file__get_str(&c, str, sizeof(str)), -EINVAL);
	assert_int_equal(c.pos, 0);
	assert_int_equal(snapshot_file__find(&r, SNAPSHOT_SECTION_VCPU, &s), 0);
	snapshot_file__cursor(&s, &c);
	assert_int_equal(snapshot_file__skip(&c, 4 + SEC_HDR + 10), 0);
	assert_int_equal(snapshot_file__get_str(&c, str, 4), -EINVAL); /* "tail" needs 5 */
	assert_int_equal(c.pos, 4 + SEC_HDR + 10);
	snapshot_file__close(&r);
	free(f.data);
}

static void test_unknown_optional_section_is_skipped(void **state)
{
	struct file f = sample(true);
	struct snapshot_file_reader r;
	struct snapshot_file_section s;
	uint64_t pos = 0;
	unsigned int n = 0;

	(void)state;
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	assert_int_equal(r.nr_sections, 4);
	assert_int_equal(r.nr_skipped, 1);
	while (snapshot_file__next(&r, &pos, &s)) {
		assert_int_not_equal(s.id, UNKNOWN_ID);
		n++;
	}
	assert_int_equal(n, 4);
	assert_int_equal(snapshot_file__find(&r, SNAPSHOT_SECTION_SERIAL, &s), 0);
	assert_int_equal(s.len, 12);
	assert_int_equal(snapshot_file__count(&r, UNKNOWN_ID), 0);
	free(f.data);
}

static void test_unknown_must_understand_section_is_refused(void **state)
{
	struct file f = sample(true);

	(void)state;
	put_le(f.data + section_offset(&f, 3) + 4, SNAPSHOT_FILE_MUST_UNDERSTAND, 4);
	fix_crc(&f);
	expect_refused(&f, "section 0x7777 at offset");
	expect_refused(&f, "must-understand");
	free(f.data);
}

/* Unknown flags: bits 1-15 are ignored, bits 16-31 refuse the section. */
static void test_unknown_flags(void **state)
{
	struct file f = sample(false);
	struct snapshot_file_reader r;
	size_t off = section_offset(&f, 3);

	(void)state;
	put_le(f.data + off + 4, SNAPSHOT_FILE_MUST_UNDERSTAND | 0x8000, 4);
	fix_crc(&f);
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	put_le(f.data + off + 4, SNAPSHOT_FILE_MUST_UNDERSTAND | 0x10000, 4);
	fix_crc(&f);
	expect_refused(&f, "serial section at offset");
	expect_refused(&f, "flags 0x00010001 that Ember");
	free(f.data);
}

static void test_empty_and_truncated(void **state)
{
	struct file f = sample(false);
	struct file part;

	(void)state;
	part.data = f.data;
	part.len = 0;
	expect_refused(&part, "empty");
	for (part.len = 1; part.len < f.len; part.len++)
		expect_refused(&part, "truncated");
	part.len = 100;
	expect_refused(&part, "truncated: 100 bytes, its header says");
	free(f.data);
}

static void test_trailing_data(void **state)
{
	struct file f = sample(false);

	(void)state;
	f.data = realloc(f.data, f.len + 3);
	memset(f.data + f.len, 0, 3);
	f.len += 3;
	expect_refused(&f, "data after the end");
	free(f.data);
}

static void test_bad_magic(void **state)
{
	struct file f = sample(false);
	static uint8_t text[] = "hello";
	struct file t = { text, sizeof(text) - 1 };

	(void)state;
	f.data[0] = 'E';
	expect_refused(&f, "not an Ember snapshot state file (bad magic)");
	expect_refused(&t, "bad magic");
	free(f.data);
}

static void test_versions(void **state)
{
	struct file f = sample(false);
	struct snapshot_file_reader r;

	(void)state;
	/* A newer major is refused before the CRC is looked at. */
	put_le(f.data + 8, SNAPSHOT_FILE_MAJOR + 1, 2);
	expect_refused(&f, "format version 2.0, newer than Ember " EMBER_VERSION " reads (1.x)");
	fix_crc(&f);
	expect_refused(&f, "restore it with a newer Ember");
	put_le(f.data + 8, 0, 2);
	fix_crc(&f);
	expect_refused(&f, "format version 0.0, which no Ember ever wrote");
	/* A newer minor is read. */
	put_le(f.data + 8, SNAPSHOT_FILE_MAJOR, 2);
	put_le(f.data + 10, SNAPSHOT_FILE_MINOR + 1, 2);
	fix_crc(&f);
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	assert_int_equal(r.minor, SNAPSHOT_FILE_MINOR + 1);
	free(f.data);
}

/* A newer minor may add header fields and append fields to a known section's payload. */
static void test_newer_minor_extensions(void **state)
{
	struct snapshot_file_writer w;
	struct snapshot_file_reader r;
	struct snapshot_file_section s;
	struct snapshot_file_cursor c;
	struct file f, g;
	size_t hlen, extra = 8;
	uint32_t v;

	(void)state;
	snapshot_file__writer_init(&w, "9.9.9", CPU);
	assert_int_equal(snapshot_file__begin_section(&w, SNAPSHOT_SECTION_PIT, 1), 0);
	snapshot_file__put_u32(&w, 42);
	snapshot_file__put_u32(&w, 43); /* the field a newer minor added */
	snapshot_file__end_section(&w);
	f = take(&w);
	hlen = get_le(f.data + 12, 4);
	g.len = f.len + extra;
	g.data = calloc(1, g.len);
	memcpy(g.data, f.data, hlen);
	memcpy(g.data + hlen + extra, f.data + hlen, f.len - hlen);
	put_le(g.data + 12, hlen + extra, 4);
	put_le(g.data + 28, 0xabcd, 4); /* the reserved field, used by the newer minor */
	fix_crc(&g);
	expect_refused(&g, "header fields format 1.0 does not have");

	put_le(g.data + 10, SNAPSHOT_FILE_MINOR + 1, 2);
	fix_crc(&g);
	assert_int_equal(snapshot_file__open_buffer(&r, g.data, g.len), 0);
	assert_int_equal(r.header_extra, extra);
	assert_string_equal(r.ember_version, "9.9.9");
	assert_int_equal(snapshot_file__find(&r, SNAPSHOT_SECTION_PIT, &s), 0);
	snapshot_file__cursor(&s, &c);
	assert_int_equal(snapshot_file__get_u32(&c, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(snapshot_file__expect_end(&c), 0);

	/* The same payload in a file of this minor: the extra field is an error. */
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	assert_int_equal(snapshot_file__find(&r, SNAPSHOT_SECTION_PIT, &s), 0);
	snapshot_file__cursor(&s, &c);
	assert_int_equal(snapshot_file__get_u32(&c, &v), 0);
	assert_int_equal(snapshot_file__expect_end(&c), -EINVAL);
	free(f.data);
	free(g.data);
}

static void test_crc_mismatch(void **state)
{
	struct file f = sample(false);

	(void)state;
	f.data[section_offset(&f, 1) + SEC_HDR] ^= 0x10;
	expect_refused(&f, "the file is damaged: CRC64 ");
	free(f.data);
}

/* Every single flipped bit, anywhere in the file, is caught. */
static void test_every_flipped_bit_is_caught(void **state)
{
	struct file f = sample(true);
	struct snapshot_file_reader r;

	(void)state;
	for (size_t i = 0; i < f.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			f.data[i] ^= (uint8_t)(1 << bit);
			if (snapshot_file__open_buffer(&r, f.data, f.len) != -EINVAL)
				fail_msg("a flip of bit %d of byte %zu was not caught", bit, i);
			f.data[i] ^= (uint8_t)(1 << bit);
		}
	}
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	free(f.data);
}

/* Hostile section lengths with a valid CRC: no overflow, no read past the end. */
static void test_section_overruns(void **state)
{
	static const uint64_t bad[] = { 13, 1000, UINT64_MAX, UINT64_MAX - 15, 1ULL << 63 };
	struct file f = sample(false);
	size_t off = section_offset(&f, 3); /* serial, 12 bytes, the last */

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_le(f.data + off + 8, bad[i], 8);
		fix_crc(&f);
		expect_refused(&f, "serial section at offset");
		expect_refused(&f, "past the end of the sections");
	}
	/* 12 bytes of payload read as 4 and a section header of 8: too short. */
	put_le(f.data + off + 8, 4, 8);
	fix_crc(&f);
	expect_refused(&f, "a section header at offset");
	free(f.data);
}

static void test_duplicates(void **state)
{
	struct snapshot_file_writer w;
	struct snapshot_file_reader r;
	struct file f;

	(void)state;
	/* The writer refuses a second "once" section... */
	snapshot_file__writer_init(&w, NULL, CPU);
	add_section(&w, SNAPSHOT_SECTION_PIC, 1, 4);
	assert_int_equal(snapshot_file__begin_section(&w, SNAPSHOT_SECTION_PIC, 1), -EINVAL);
	assert_non_null(strstr(error__get(), "a second pic section"));
	snapshot_file__writer_free(&w);

	/* ...and so does the reader; repeated vCPUs are fine. */
	snapshot_file__writer_init(&w, NULL, CPU);
	add_section(&w, SNAPSHOT_SECTION_PIC, 1, 4);
	add_section(&w, UNKNOWN_ID, 1, 4);
	add_section(&w, SNAPSHOT_SECTION_VCPU, 1, 4);
	add_section(&w, SNAPSHOT_SECTION_VCPU, 1, 4);
	f = take(&w);
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), -EINVAL);
	put_le(f.data + section_offset(&f, 1), SNAPSHOT_SECTION_VCPU, 4);
	fix_crc(&f);
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	assert_int_equal(snapshot_file__count(&r, SNAPSHOT_SECTION_VCPU), 3);
	put_le(f.data + section_offset(&f, 1), SNAPSHOT_SECTION_PIC, 4);
	fix_crc(&f);
	expect_refused(&f, "a second pic section at offset");
	expect_refused(&f, "only one is allowed");
	free(f.data);
}

static void test_bad_header_fields(void **state)
{
	struct file f = sample(false);
	size_t hlen = get_le(f.data + 12, 4);

	(void)state;
	put_le(f.data + 12, hlen - 1, 4);
	fix_crc(&f);
	expect_refused(&f, "header length");
	put_le(f.data + 12, f.len, 4);
	fix_crc(&f);
	expect_refused(&f, "header length");
	put_le(f.data + 12, hlen, 4);
	f.data[32] = '\n';
	fix_crc(&f);
	expect_refused(&f, "Ember version or CPU model");
	f.data[32] = '0';
	put_le(f.data + section_offset(&f, 0), 0, 4);
	fix_crc(&f);
	expect_refused(&f, "section id 0");
	free(f.data);
}

static void test_writer_misuse(void **state)
{
	struct snapshot_file_writer w;
	char long_str[SNAPSHOT_FILE_STR_MAX + 2];

	(void)state;
	memset(long_str, 'x', sizeof(long_str) - 1);
	long_str[sizeof(long_str) - 1] = '\0';
	assert_int_equal(snapshot_file__writer_init(&w, NULL, ""), -EINVAL);
	assert_int_equal(snapshot_file__writer_init(&w, NULL, NULL), -EINVAL);
	assert_int_equal(snapshot_file__writer_init(&w, "1\n", CPU), -EINVAL);
	assert_int_equal(snapshot_file__writer_init(&w, NULL, long_str), -EINVAL);
	long_str[SNAPSHOT_FILE_STR_MAX] = '\0';
	assert_int_equal(snapshot_file__writer_init(&w, NULL, long_str), 0);
	snapshot_file__writer_free(&w);

	snapshot_file__writer_init(&w, NULL, CPU);
	assert_int_equal(snapshot_file__put_u8(&w, 1), -EINVAL);
	assert_non_null(strstr(error__get(), "outside a section"));
	/* The first error sticks. */
	assert_int_equal(snapshot_file__begin_section(&w, SNAPSHOT_SECTION_PIT, 1), -EINVAL);
	assert_int_equal(snapshot_file__finish(&w, NULL, NULL), -EINVAL);
	snapshot_file__writer_free(&w);

	snapshot_file__writer_init(&w, NULL, CPU);
	assert_int_equal(snapshot_file__begin_section(&w, 0, 1), -EINVAL);
	snapshot_file__writer_free(&w);

	snapshot_file__writer_init(&w, NULL, CPU);
	snapshot_file__begin_section(&w, SNAPSHOT_SECTION_PIT, 1);
	assert_int_equal(snapshot_file__finish(&w, NULL, NULL), -EINVAL);
	assert_non_null(strstr(error__get(), "inside a section"));
	snapshot_file__writer_free(&w);

	snapshot_file__writer_init(&w, NULL, CPU);
	snapshot_file__begin_section(&w, SNAPSHOT_SECTION_PIT, 1);
	snapshot_file__begin_record(&w, 1, 0);
	assert_int_equal(snapshot_file__end_section(&w), -EINVAL);
	assert_non_null(strstr(error__get(), "record(s) open"));
	snapshot_file__writer_free(&w);

	snapshot_file__writer_init(&w, NULL, CPU);
	snapshot_file__begin_section(&w, SNAPSHOT_SECTION_PIT, 1);
	assert_int_equal(snapshot_file__end_record(&w), -EINVAL);
	snapshot_file__writer_free(&w);

	snapshot_file__writer_init(&w, NULL, CPU);
	snapshot_file__begin_section(&w, SNAPSHOT_SECTION_PIT, 1);
	for (int i = 0; i < SNAPSHOT_FILE_RECORD_DEPTH; i++)
		assert_int_equal(snapshot_file__begin_record(&w, 1, 0), 0);
	assert_int_equal(snapshot_file__begin_record(&w, 1, 0), -EINVAL);
	snapshot_file__writer_free(&w);

	snapshot_file__writer_init(&w, NULL, CPU);
	assert_int_equal(snapshot_file__finish(&w, NULL, NULL), 0);
	assert_int_equal(snapshot_file__begin_section(&w, SNAPSHOT_SECTION_PIT, 1), -EINVAL);
	assert_non_null(strstr(error__get(), "after finish"));
	snapshot_file__writer_free(&w);
}

/* A file with no sections at all is valid; nested records nest. */
static void test_empty_file_and_nesting(void **state)
{
	struct snapshot_file_writer w;
	struct snapshot_file_reader r;
	struct snapshot_file_section s;
	struct snapshot_file_cursor c, r1, r2;
	uint32_t tag, flags;
	uint8_t v;
	uint64_t pos = 0;
	struct file f;

	(void)state;
	snapshot_file__writer_init(&w, NULL, CPU);
	f = take(&w);
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	assert_false(snapshot_file__next(&r, &pos, &s));
	free(f.data);

	snapshot_file__writer_init(&w, NULL, CPU);
	snapshot_file__begin_section(&w, SNAPSHOT_SECTION_VIRTIO_MMIO, 1);
	snapshot_file__begin_record(&w, 10, 0);
	snapshot_file__begin_record(&w, 20, 1);
	snapshot_file__put_u8(&w, 7);
	snapshot_file__end_record(&w);
	snapshot_file__end_record(&w);
	snapshot_file__put_u8(&w, 8);
	snapshot_file__end_section(&w);
	f = take(&w);
	assert_int_equal(snapshot_file__open_buffer(&r, f.data, f.len), 0);
	assert_int_equal(snapshot_file__find(&r, SNAPSHOT_SECTION_VIRTIO_MMIO, &s), 0);
	snapshot_file__cursor(&s, &c);
	assert_int_equal(snapshot_file__get_record(&c, &tag, &flags, &r1), 0);
	assert_int_equal(tag, 10);
	assert_int_equal(snapshot_file__remaining(&r1), SEC_HDR + 1);
	assert_int_equal(snapshot_file__get_record(&r1, &tag, &flags, &r2), 0);
	assert_int_equal(tag, 20);
	assert_int_equal(flags, 1);
	assert_int_equal(snapshot_file__get_u8(&r2, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(snapshot_file__get_u8(&r2, &v), -EINVAL);
	assert_int_equal(snapshot_file__get_u8(&c, &v), 0);
	assert_int_equal(v, 8);
	assert_int_equal(snapshot_file__expect_end(&c), 0);
	free(f.data);
}

static void test_section_names(void **state)
{
	(void)state;
	assert_string_equal(snapshot_file__section_name(SNAPSHOT_SECTION_VCPU), "vcpu");
	assert_string_equal(snapshot_file__section_name(SNAPSHOT_SECTION_RATE_LIMITER),
			    "rate-limiter");
	assert_null(snapshot_file__section_name(UNKNOWN_ID));
	assert_null(snapshot_file__section_name(0));
	assert_true(snapshot_file__section_repeats(SNAPSHOT_SECTION_VIRTIO_BLK));
	assert_false(snapshot_file__section_repeats(SNAPSHOT_SECTION_VIRTIO_VSOCK));
	assert_false(snapshot_file__section_repeats(UNKNOWN_ID));
}

static void test_host_cpu_model(void **state)
{
	char buf[SNAPSHOT_FILE_STR_MAX + 1], tiny[4];

	(void)state;
	snapshot_file__host_cpu_model(buf, sizeof(buf));
	assert_true(strlen(buf) > 0);
	assert_null(strchr(buf, '\n'));
	snapshot_file__host_cpu_model(tiny, sizeof(tiny));
	assert_true(strlen(tiny) <= 3);
}

static unsigned int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_durable_write_and_open_path(void **state)
{
	char dir[] = "/tmp/test_snapshot_file.XXXXXX", path[64], bad[96];
	struct file f = sample(true);
	struct snapshot_file_reader r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(snapshot_file__write(path, "old", 3), 0);
	assert_int_equal(snapshot_file__open_path(&r, path), -EINVAL);
	assert_non_null(strstr(error__get(), path));
	assert_int_equal(snapshot_file__write(path, f.data, f.len), 0);
	assert_int_equal(count_entries(dir), 1); /* no temporary left behind */
	assert_int_equal(snapshot_file__open_path(&r, path), 0);
	assert_int_equal(r.size, f.len);
	assert_memory_equal(r.data, f.data, f.len);
	assert_int_equal(r.nr_skipped, 1);
	snapshot_file__close(&r);
	assert_null(r.data);

	snprintf(bad, sizeof(bad), "%s/missing/state", dir);
	assert_int_equal(snapshot_file__write(bad, f.data, f.len), -ENOENT);
	assert_non_null(strstr(error__get(), "creating"));
	assert_int_equal(snapshot_file__open_path(&r, bad), -ENOENT);
	assert_int_equal(snapshot_file__open_path(&r, dir), -EINVAL);
	assert_non_null(strstr(error__get(), "not a regular file"));
	assert_int_equal(count_entries(dir), 1);
	unlink(path);
	rmdir(dir);
	free(f.data);
}

/* ---- the fuzzer's seed corpus ---- */
static void write_seed(const char *dir, const char *name, uint8_t mode, const struct file *f)
{
	char path[512];
	FILE *out;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	out = fopen(path, "we");
	if (!out || fputc(mode, out) == EOF || fwrite(f->data, 1, f->len, out) != f->len ||
	    fclose(out)) {
		perror(path);
		exit(1);
	}
}

static int write_seeds(const char *dir)
{
	struct snapshot_file_writer w;
	struct file f;

	f = sample(false);
	write_seed(dir, "sample", 0, &f);
	write_seed(dir, "sample-fix", 1, &f);
	free(f.data);
	f = sample(true);
	write_seed(dir, "sample-unknown", 1, &f);
	free(f.data);
	snapshot_file__writer_init(&w, NULL, CPU);
	f = take(&w);
	write_seed(dir, "empty", 1, &f);
	free(f.data);
	snapshot_file__writer_init(&w, "0.1.0-seed", "Intel(R) Xeon(R) CPU @ 2.20GHz");
	for (uint32_t id = SNAPSHOT_SECTION_PIC; id <= SNAPSHOT_SECTION_KVMCLOCK; id++)
		add_section(&w, id, SNAPSHOT_FILE_MUST_UNDERSTAND, 24);
	snapshot_file__begin_section(&w, SNAPSHOT_SECTION_VIRTIO_MMIO, 1);
	snapshot_file__begin_record(&w, 1, 0);
	snapshot_file__begin_record(&w, 2, 0);
	snapshot_file__put_str(&w, "queue");
	snapshot_file__end_record(&w);
	snapshot_file__put_u64(&w, 0x1000);
	snapshot_file__end_record(&w);
	snapshot_file__end_section(&w);
	add_section(&w, SNAPSHOT_SECTION_RATE_LIMITER, 0x8001, 3);
	add_section(&w, 0x9999, 0, 0);
	f = take(&w);
	write_seed(dir, "devices", 1, &f);
	free(f.data);
	return 0;
}

int main(void)
{
	const char *seeds = getenv("SNAPSHOT_FILE_SEEDS");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc64_check_value),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_cursor_bounds),
		cmocka_unit_test(test_unknown_optional_section_is_skipped),
		cmocka_unit_test(test_unknown_must_understand_section_is_refused),
		cmocka_unit_test(test_unknown_flags),
		cmocka_unit_test(test_empty_and_truncated),
		cmocka_unit_test(test_trailing_data),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_newer_minor_extensions),
		cmocka_unit_test(test_crc_mismatch),
		cmocka_unit_test(test_every_flipped_bit_is_caught),
		cmocka_unit_test(test_section_overruns),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_bad_header_fields),
		cmocka_unit_test(test_writer_misuse),
		cmocka_unit_test(test_empty_file_and_nesting),
		cmocka_unit_test(test_section_names),
		cmocka_unit_test(test_host_cpu_model),
		cmocka_unit_test(test_durable_write_and_open_path),
	};

	if (seeds)
		return write_seeds(seeds);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
