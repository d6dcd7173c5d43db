// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for src/vmm/snapshot_file.c, the snapshot state file reader.
 *
 * Input: one mode byte, then the file. Mode bit 0: the target first sets the file's size
 * field and CRC trailer right, so that mutations reach the section checks behind the CRC;
 * bits 1-2 pick how the section payloads are read (as records, or as u8/u16/u32/u64
 * fields and strings). The seeds (tests/fuzz/corpus/snapshot_file/) come from
 * `SNAPSHOT_FILE_SEEDS=DIR build/tests/unit/test_snapshot_file`.
 *
 * Besides the sanitizers, it checks the contract: a refused file leaves a message and an
 * empty reader; an accepted file re-encodes (header strings and every known section through
 * the writer) into a file that is accepted with the same sections, and that is the same
 * bytes when nothing was skipped (no unknown section, no header field of a newer minor).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/snapshot_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_snapshot_file: %s (error: \"%s\")\n", what, error__get());
		abort();
	}
}

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void fix_size_and_crc(uint8_t *f, size_t len)
{
	size_t body = len - SNAPSHOT_FILE_TRAILER_LEN;

	put_le(f + 16, len, 8);
	put_le(f + body, snapshot_file__crc64(0, f, body), 8);
}

/* Reads a payload to its end, one way or another; no read may go out of bounds. */
static void walk(struct snapshot_file_cursor *c, unsigned int how, unsigned int depth)
{
	struct snapshot_file_cursor sub;
	uint32_t tag, flags, v32;
	uint64_t v64, before;
	uint16_t v16;
	uint8_t v8;
	char str[16];

	while (snapshot_file__remaining(c)) {
		before = c->pos;
		if (how == 0 && depth < 16 && !snapshot_file__get_record(c, &tag, &flags, &sub)) {
			check(sub.pos == 0 && sub.len <= c->len, "record cursor");
			walk(&sub, how, depth + 1);
			check(snapshot_file__expect_end(&sub) == 0,
			      "a walked record has bytes left");
		} else if (how == 1 && !snapshot_file__get_str(c, str, sizeof(str))) {
			check(strlen(str) < sizeof(str), "string");
		} else if (how == 2 && !snapshot_file__get_u64(c, &v64)) {
		} else if (how == 3 && !snapshot_file__get_u32(c, &v32)) {
		} else if (!snapshot_file__get_u16(c, &v16)) {
		} else {
			check(snapshot_file__get_u8(c, &v8) == 0,
			      "a byte left that get_u8 refuses");
		}
		check(c->pos > before && c->pos <= c->len, "cursor moved wrongly");
	}
	check(snapshot_file__get_u8(c, &v8) != 0, "a read past the end succeeded");
	check(snapshot_file__expect_end(c) == 0, "expect_end at the end");
}

static void same_sections(const struct snapshot_file_reader *a,
			  const struct snapshot_file_reader *b)
{
	struct snapshot_file_section sa, sb;
	uint64_t pa = 0, pb = 0;
	bool more;

	while ((more = snapshot_file__next(a, &pa, &sa))) {
		check(snapshot_file__next(b, &pb, &sb), "re-encoded file lost a section");
		check(sa.id == sb.id && sa.flags == sb.flags && sa.len == sb.len &&
			      !memcmp(sa.data, sb.data, sa.len),
		      "re-encoded section differs");
	}
	check(!snapshot_file__next(b, &pb, &sb), "re-encoded file has an extra section");
}

static void reencode(const struct snapshot_file_reader *r, const uint8_t *file, size_t len)
{
	struct snapshot_file_writer w;
	struct snapshot_file_reader again;
	struct snapshot_file_section s;
	const uint8_t *out;
	uint64_t pos = 0;
	size_t out_len;

	check(!snapshot_file__writer_init(&w, r->ember_version, r->cpu_model), "writer_init");
	while (snapshot_file__next(r, &pos, &s)) {
		snapshot_file__begin_section(&w, s.id, s.flags);
		snapshot_file__put_bytes(&w, s.data, s.len);
		check(!snapshot_file__end_section(&w), "re-encoding a section");
	}
	check(!snapshot_file__finish(&w, &out, &out_len), "finish");
	check(!snapshot_file__open_buffer(&again, out, out_len), "re-encoded file refused");
	check(again.nr_sections == r->nr_sections && !again.nr_skipped, "section counts");
	check(!strcmp(again.ember_version, r->ember_version) &&
		      !strcmp(again.cpu_model, r->cpu_model),
	      "header strings");
	same_sections(r, &again);
	if (!r->nr_skipped && !r->header_extra && r->minor == SNAPSHOT_FILE_MINOR)
		check(out_len == len && !memcmp(out, file, len),
		      "re-encoding is not the same bytes");
	snapshot_file__writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot_file_reader r;
	struct snapshot_file_section s;
	struct snapshot_file_cursor c;
	uint64_t pos = 0;
	unsigned int mode, n = 0;
	uint8_t *file;
	size_t len;

	if (!size)
		return 0;
	mode = data[0];
	len = size - 1;
	/* An exact-size copy, so that ASan sees any read past the end. */
	file = malloc(len ? len : 1);
	if (!file)
		return 0;
	memcpy(file, data + 1, len);
	if ((mode & 1) && len >= SNAPSHOT_FILE_HEADER_LEN + SNAPSHOT_FILE_TRAILER_LEN)
		fix_size_and_crc(file, len);
	error__clear();
	if (snapshot_file__open_buffer(&r, file, len)) {
		check(error__get()[0] != '\0', "refused without a message");
		check(r.data == NULL && r.nr_sections == 0, "refused but the reader is not empty");
		free(file);
		return 0;
	}
	while (snapshot_file__next(&r, &pos, &s)) {
		check(s.offset <= len && s.len <= len - s.offset, "section out of the file");
		check(snapshot_file__section_name(s.id) != NULL, "next() gave an unknown section");
		snapshot_file__cursor(&s, &c);
		walk(&c, (mode >> 1) & 3, 0);
		n++;
	}
	check(n == r.nr_sections, "next() and nr_sections disagree");
	reencode(&r, file, len);
	free(file);
	return 0;
}
