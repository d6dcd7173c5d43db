// SPDX-License-Identifier: Apache-2.0
/*
 * The working-set file (layout in working_set.h). parse() and encode() share one check of
 * the ranges, so Ember never writes a file it would refuse to read, and every accepted file
 * re-encodes to the same bytes.
 */
#include "vmm/working_set.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define PAGE WORKING_SET_PAGE_SIZE

/* Offsets in the header. */
#define HDR_VERSION 8
#define HDR_PAGE_SIZE 12
#define HDR_MEMORY_BYTES 16
#define HDR_NR 24
#define HDR_RESERVED 28

/* The size of a file with nr ranges. */
#define FILE_LEN(nr)                                                                               \
	(WORKING_SET_HEADER_LEN + (uint64_t)(nr)*WORKING_SET_RANGE_LEN + WORKING_SET_TRAILER_LEN)

static uint64_t get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void working_set__free(struct working_set *ws)
{
	free(ws->ranges);
	memset(ws, 0, sizeof(*ws));
}

uint64_t working_set__bytes(const struct working_set *ws)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < ws->nr; i++)
		sum += ws->ranges[i].length;
	return sum;
}

static int check_memory_bytes(uint64_t memory_bytes)
{
	if (!memory_bytes || memory_bytes % PAGE)
		return error__set(-EINVAL,
				  "working set: memory size %" PRIu64
				  " is not a non-zero multiple of %d",
				  memory_bytes, PAGE);
	return 0;
}

/* ---- the one check of the ranges, for parse() and encode() ---- */
struct indexed_range {
	uint64_t offset, end;
	uint32_t index;
};

static int by_offset(const void *a, const void *b)
{
	const struct indexed_range *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int check_range(const struct ws_range *r, uint32_t i, uint64_t memory_bytes)
{
	if (r->offset % PAGE)
		return error__set(
			-EINVAL, "working set: range %u is not page-aligned (offset 0x%" PRIx64 ")",
			i, r->offset);
	if (!r->length || r->length % PAGE)
		return error__set(-EINVAL,
				  "working set: range %u has length %" PRIu64
				  ", not a non-zero multiple of %d",
				  i, r->length, PAGE);
	if (r->offset > memory_bytes || r->length > memory_bytes - r->offset)
		return error__set(-EINVAL,
				  "working set: range %u (offset 0x%" PRIx64 ", %" PRIu64
				  " bytes) goes past the end of the %" PRIu64 "-byte memory file",
				  i, r->offset, r->length, memory_bytes);
	return 0;
}

/* Overlaps: sorted by offset, each range must end before the next one starts. */
static int check_overlaps(const struct working_set *ws)
{
	struct indexed_range *s;
	int ret = 0;

	if (ws->nr < 2)
		return 0;
	s = calloc(ws->nr, sizeof(*s));
	if (!s)
		return error__set(-ENOMEM, "working set: out of memory");
	for (uint32_t i = 0; i < ws->nr; i++)
		s[i] = (struct indexed_range){ ws->ranges[i].offset,
					       ws->ranges[i].offset + ws->ranges[i].length, i };
	qsort(s, ws->nr, sizeof(*s), by_offset);
	for (uint32_t i = 1; i < ws->nr && !ret; i++) {
		const struct indexed_range *a = &s[i - 1], *b = &s[i];

		if (a->end > b->offset)
			ret = error__set(-EINVAL, "working set: range %u overlaps range %u",
					 a->index > b->index ? a->index : b->index,
					 a->index > b->index ? b->index : a->index);
	}
	free(s);
	return ret;
}

static int check_set(const struct working_set *ws)
{
	int ret = check_memory_bytes(ws->memory_bytes);

	if (ret)
		return ret;
	if (ws->nr > ws->memory_bytes / PAGE)
		return error__set(-EINVAL,
				  "working set: %u ranges, more than the %" PRIu64
				  " pages of its memory file",
				  ws->nr, ws->memory_bytes / PAGE);
	for (uint32_t i = 0; i < ws->nr; i++) {
		ret = check_range(&ws->ranges[i], i, ws->memory_bytes);
		if (ret)
			return ret;
	}
	return check_overlaps(ws);
}

/* ---- reading ---- */

/* Magic, version and size, before anything else is trusted: the header of a good file. */
static int check_header(const uint8_t *p, size_t len)
{
	uint64_t want;

	if (!len)
		return error__set(-EINVAL, "working set: empty file");
	if (len < WORKING_SET_MAGIC_LEN && !memcmp(p, WORKING_SET_MAGIC, len))
		return error__set(-EINVAL, "working set: truncated (%zu bytes)", len);
	if (len < WORKING_SET_MAGIC_LEN || memcmp(p, WORKING_SET_MAGIC, WORKING_SET_MAGIC_LEN))
		return error__set(-EINVAL,
				  "working set: bad magic (not an Ember working-set file)");
	if (len < FILE_LEN(0))
		return error__set(-EINVAL, "working set: truncated (%zu bytes)", len);
	if (get_le(p + HDR_VERSION, 4) != WORKING_SET_VERSION)
		return error__set(-EINVAL,
				  "working set: format version %" PRIu64 ", Ember reads %d",
				  get_le(p + HDR_VERSION, 4), WORKING_SET_VERSION);
	want = FILE_LEN(get_le(p + HDR_NR, 4));
	if (len < want)
		return error__set(-EINVAL,
				  "working set: truncated (%zu bytes, its header says %" PRIu64 ")",
				  len, want);
	if (len > want)
		return error__set(-EINVAL,
				  "working set: %zu bytes, its header says %" PRIu64
				  " (data after the end)",
				  len, want);
	return 0;
}

static int check_fields(const uint8_t *p, size_t len)
{
	uint64_t crc = lzma_crc64(p, len - WORKING_SET_TRAILER_LEN, 0);
	uint64_t stored = get_le(p + len - WORKING_SET_TRAILER_LEN, 8);

	if (crc != stored)
		return error__set(-EINVAL,
				  "working set: CRC mismatch (contents 0x%016" PRIx64
				  ", trailer 0x%016" PRIx64 ")",
				  crc, stored);
	if (get_le(p + HDR_PAGE_SIZE, 4) != PAGE)
		return error__set(-EINVAL, "working set: page size %" PRIu64 ", expected %d",
				  get_le(p + HDR_PAGE_SIZE, 4), PAGE);
	if (get_le(p + HDR_RESERVED, 4))
		return error__set(-EINVAL, "working set: reserved field is 0x%" PRIx64 ", not 0",
				  get_le(p + HDR_RESERVED, 4));
	return 0;
}

int working_set__parse(const void *buf, size_t len, struct working_set *out)
{
	const uint8_t *p = buf;
	struct working_set ws = { 0 };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = check_header(p, len);
	if (!ret)
		ret = check_fields(p, len);
	if (ret)
		return ret;
	ws.memory_bytes = get_le(p + HDR_MEMORY_BYTES, 8);
	ws.nr = (uint32_t)get_le(p + HDR_NR, 4);
	/* check_header() matched nr to len: the allocation is no larger than the file */
	if (ws.nr) {
		ws.ranges = calloc(ws.nr, sizeof(*ws.ranges));
		if (!ws.ranges)
			return error__set(-ENOMEM, "working set: out of memory");
	}
	for (uint32_t i = 0; i < ws.nr; i++) {
		const uint8_t *r = p + WORKING_SET_HEADER_LEN + (size_t)i * WORKING_SET_RANGE_LEN;

		ws.ranges[i].offset = get_le(r, 8);
		ws.ranges[i].length = get_le(r + 8, 8);
	}
	ret = check_set(&ws);
	if (ret) {
		working_set__free(&ws);
		return ret;
	}
	*out = ws;
	return 0;
}

/* Reads all of fd's size bytes (the file may not change meanwhile). */
static int read_exact(int fd, uint8_t *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -EIO; /* shrank while it was read */
		got += (size_t)n;
	}
	return 0;
}

int working_set__load(const char *path, uint64_t memory_bytes, struct working_set *out)
{
	/* the largest file that could describe a memory file of this size */
	uint64_t max_ranges = memory_bytes / PAGE < UINT32_MAX ? memory_bytes / PAGE : UINT32_MAX;
	struct stat st;
	uint8_t *buf = NULL;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error__set(-errno, "working set %s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = error__set(-errno, "working set %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_LEN(max_ranges)) {
		ret = error__set(-EINVAL,
				 "working set %s: not a regular file of at most %" PRIu64
				 " bytes (the most a %" PRIu64 "-byte memory file needs)",
				 path, FILE_LEN(max_ranges), memory_bytes);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = error__set(-ENOMEM, "working set %s: out of memory", path);
		goto out;
	}
	ret = read_exact(fd, buf, (size_t)st.st_size);
	if (ret) {
		error__set(ret, "working set %s: read error: %s", path, strerror(-ret));
		goto out;
	}
	ret = working_set__parse(buf, (size_t)st.st_size, out);
	if (ret) {
		error__add_context(ret, "%s", path);
		goto out;
	}
	if (out->memory_bytes != memory_bytes) {
		ret = error__set(-EINVAL,
				 "working set %s: expects a %" PRIu64
				 "-byte memory file, this one has %" PRIu64 " bytes",
				 path, out->memory_bytes, memory_bytes);
		working_set__free(out);
	}
out:
	free(buf);
	close(fd);
	return ret;
}

/* ---- writing ---- */
int working_set__encode(const struct working_set *ws, uint8_t **buf, size_t *len)
{
	uint8_t *p;
	size_t n;
	int ret;

	*buf = NULL;
	*len = 0;
	ret = check_set(ws);
	if (ret)
		return ret;
	n = (size_t)FILE_LEN(ws->nr);
	p = calloc(1, n);
	if (!p)
		return error__set(-ENOMEM, "working set: out of memory");
	memcpy(p, WORKING_SET_MAGIC, WORKING_SET_MAGIC_LEN);
	put_le(p + HDR_VERSION, WORKING_SET_VERSION, 4);
	put_le(p + HDR_PAGE_SIZE, PAGE, 4);
	put_le(p + HDR_MEMORY_BYTES, ws->memory_bytes, 8);
	put_le(p + HDR_NR, ws->nr, 4);
	for (uint32_t i = 0; i < ws->nr; i++) {
		uint8_t *r = p + WORKING_SET_HEADER_LEN + (size_t)i * WORKING_SET_RANGE_LEN;

		put_le(r, ws->ranges[i].offset, 8);
		put_le(r + 8, ws->ranges[i].length, 8);
	}
	put_le(p + n - WORKING_SET_TRAILER_LEN, lzma_crc64(p, n - WORKING_SET_TRAILER_LEN, 0), 8);
	*buf = p;
	*len = n;
	return 0;
}

int working_set__save(const char *path, const struct working_set *ws)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = working_set__encode(ws, &buf, &len);
	if (ret)
		return error__add_context(ret, "%s", path);
	/* the snapshot state file's durable write: temp file, fsync, rename, fsync dir */
	ret = snapshot_file__write(path, buf, len);
	free(buf);
	return ret;
}

/* ---- building from a page list ---- */
static int check_page(uint64_t page, uint64_t memory_bytes)
{
	if (page % PAGE)
		return error__set(-EINVAL,
				  "working set: page offset 0x%" PRIx64 " is not page-aligned",
				  page);
	if (page >= memory_bytes)
		return error__set(-EINVAL,
				  "working set: page offset 0x%" PRIx64
				  " is past the end of the %" PRIu64 "-byte memory file",
				  page, memory_bytes);
	return 0;
}

int working_set__from_pages(const uint64_t *page_offsets, size_t n, uint64_t memory_bytes,
			    struct working_set *out)
{
	struct working_set ws = { .memory_bytes = memory_bytes };
	uint64_t *seen; /* one bit a page of the memory file */
	int ret;

	memset(out, 0, sizeof(*out));
	ret = check_memory_bytes(memory_bytes);
	if (ret)
		return ret;
	seen = calloc((memory_bytes / PAGE + 63) / 64, sizeof(*seen));
	/* at most one range a page; n + 1 so that n == 0 allocates something */
	ws.ranges = calloc(n + 1, sizeof(*ws.ranges));
	if (!seen || !ws.ranges) {
		ret = error__set(-ENOMEM, "working set: out of memory");
		goto err;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t page = page_offsets[i], bit = page / PAGE;
		struct ws_range *last = ws.nr ? &ws.ranges[ws.nr - 1] : NULL;

		ret = check_page(page, memory_bytes);
		if (ret)
			goto err;
		if (seen[bit / 64] & (1ULL << (bit % 64)))
			continue;
		seen[bit / 64] |= 1ULL << (bit % 64);
		if (last && last->offset + last->length == page) {
			last->length += PAGE;
		} else if (ws.nr == UINT32_MAX) {
			ret = error__set(-E2BIG, "working set: more than %u ranges", UINT32_MAX);
			goto err;
		} else {
			ws.ranges[ws.nr++] = (struct ws_range){ page, PAGE };
		}
	}
	free(seen);
	if (!ws.nr) {
		free(ws.ranges);
		ws.ranges = NULL;
	}
	*out = ws;
	return 0;
err:
	free(seen);
	free(ws.ranges);
	return ret;
}
