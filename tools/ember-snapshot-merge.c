// SPDX-License-Identifier: Apache-2.0
/*
 * ember-snapshot-merge: applies a Diff snapshot's memory file to its base memory file, in
 * place, like Firecracker's `snapshot-editor edit-memory rebase` (tools/README.md).
 *
 * A diff memory file is as large as guest memory and sparse: it holds data exactly where
 * the guest dirtied pages since the base was taken (all-zero dirty pages included: they are
 * written, so they are data, not holes). Every data extent of the diff, found with
 * lseek(SEEK_DATA/SEEK_HOLE) and widened to whole pages, is copied to the same offset of
 * the base. Everything is checked before the first write, so a refused merge leaves the
 * base as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE ((uint64_t)4096)
#define CHUNK ((size_t)1 << 20) /* bytes copied per read/write */

struct merge {
	const char *base_path, *diff_path;
	int base, diff;
	uint64_t size;
	uint64_t pages, extents;
};

/* Prints "ember-snapshot-merge: <message>" and returns ret. */
__attribute__((format(printf, 2, 3))) static int fail(int ret, const char *fmt, ...)
{
	va_list ap;

	fputs("ember-snapshot-merge: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return ret;
}

static int open_checked(const char *path, int flags, struct stat *st)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return fail(-errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, st)) {
		int ret = fail(-errno, "%s: %s", path, strerror(errno));

		close(fd);
		return ret;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return fail(-EINVAL, "%s: not a regular file", path);
	}
	if (st->st_size % PAGE) {
		close(fd);
		return fail(-EINVAL, "%s: %lld bytes, not a multiple of the %" PRIu64 "-byte page",
			    path, (long long)st->st_size, PAGE);
	}
	return fd;
}

/* Opens both files and checks that they can be merged; nothing is written yet. */
static int open_files(struct merge *m)
{
	struct stat bs, ds;
	int ret;

	m->base = open_checked(m->base_path, O_RDWR, &bs);
	if (m->base < 0)
		return m->base;
	m->diff = open_checked(m->diff_path, O_RDONLY, &ds);
	if (m->diff < 0) {
		ret = m->diff;
		goto err_close_base;
	}
	if (bs.st_dev == ds.st_dev && bs.st_ino == ds.st_ino) {
		ret = fail(-EINVAL, "%s and %s are the same file", m->base_path, m->diff_path);
		goto err_close_diff;
	}
	if (bs.st_size != ds.st_size) {
		ret = fail(-EINVAL,
			   "%s has %lld bytes and %s has %lld: a diff is as large as its base",
			   m->base_path, (long long)bs.st_size, m->diff_path,
			   (long long)ds.st_size);
		goto err_close_diff;
	}
	m->size = (uint64_t)bs.st_size;
	return 0;
err_close_diff:
	close(m->diff);
err_close_base:
	close(m->base);
	return ret;
}

static int copy_extent(struct merge *m, uint8_t *buf, uint64_t start, uint64_t end)
{
	for (uint64_t off = start; off < end;) {
		size_t want = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
		ssize_t n = pread(m->diff, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(n ? -errno : -EIO, "reading %s at %" PRIu64 ": %s",
				    m->diff_path, off, n ? strerror(errno) : "end of file");
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(m->base, buf + done, (size_t)(n - done),
					   (off_t)(off + (uint64_t)done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return fail(w ? -errno : -EIO, "writing %s at %" PRIu64 ": %s",
					    m->base_path, off + (uint64_t)done,
					    w ? strerror(errno) : "no progress");
			done += w;
		}
		off += (uint64_t)n;
	}
	m->pages += (end - start) / PAGE;
	m->extents++;
	return 0;
}

/* The next data extent of the diff at or after *pos, widened to whole pages; 1 at the end. */
static int next_extent(struct merge *m, uint64_t pos, uint64_t *start, uint64_t *end)
{
	off_t data, hole;

	if (pos >= m->size)
		return 1;
	data = lseek(m->diff, (off_t)pos, SEEK_DATA);
	if (data < 0 && errno == ENXIO)
		return 1; /* only a hole is left */
	if (data < 0)
		return fail(-errno, "%s: SEEK_DATA: %s", m->diff_path, strerror(errno));
	hole = lseek(m->diff, data, SEEK_HOLE);
	if (hole < 0)
		return fail(-errno, "%s: SEEK_HOLE: %s", m->diff_path, strerror(errno));
	*start = (uint64_t)data / PAGE * PAGE;
	*end = ((uint64_t)hole + PAGE - 1) / PAGE * PAGE;
	if (*end > m->size)
		*end = m->size;
	return 0;
}

static int merge(struct merge *m)
{
	uint64_t pos = 0, start = 0, end = 0;
	uint8_t *buf;
	int ret;

	buf = malloc(CHUNK);
	if (!buf)
		return fail(-ENOMEM, "out of memory");
	while (!(ret = next_extent(m, pos, &start, &end))) {
		ret = copy_extent(m, buf, start, end); /* start >= pos: pos is page-aligned */
		if (ret)
			break;
		pos = end;
	}
	free(buf);
	if (ret < 0)
		return ret;
	if (fsync(m->base))
		return fail(-errno, "syncing %s: %s", m->base_path, strerror(errno));
	return 0;
}

static void usage(FILE *out)
{
	fputs("usage: ember-snapshot-merge --base BASE_MEM --diff DIFF_MEM\n"
	      "  copies every page the diff memory file holds (its data extents) into the base\n"
	      "  memory file, in place; apply several diffs in the order they were taken.\n"
	      "  --memory-path and --diff-path are the same as --base and --diff.\n",
	      out);
}

static int parse_args(int argc, char **argv, struct merge *m)
{
	static const struct option opts[] = {
		{ "base", required_argument, NULL, 'b' },
		{ "memory-path", required_argument, NULL, 'b' },
		{ "diff", required_argument, NULL, 'd' },
		{ "diff-path", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'b')
			m->base_path = optarg;
		else if (c == 'd')
			m->diff_path = optarg;
		else if (c == 'h')
			return 1;
		else
			return -EINVAL;
	}
	if (optind < argc)
		return fail(-EINVAL, "unexpected argument '%s'", argv[optind]);
	if (!m->base_path || !m->diff_path)
		return fail(-EINVAL, "both --base and --diff are required");
	return 0;
}

int main(int argc, char **argv)
{
	struct merge m = { .base = -1, .diff = -1 };
	int ret;

	ret = parse_args(argc, argv, &m);
	if (ret) {
		usage(ret > 0 ? stdout : stderr);
		return ret > 0 ? 0 : 1;
	}
	if (open_files(&m))
		return 1;
	ret = merge(&m);
	close(m.diff);
	if (close(m.base) && !ret)
		ret = fail(-errno, "closing %s: %s", m.base_path, strerror(errno));
	if (ret)
		return 1;
	printf("ember-snapshot-merge: copied %" PRIu64 " pages (%" PRIu64 " bytes) in %" PRIu64
	       " extents from %s into %s\n",
	       m.pages, m.pages * PAGE, m.extents, m.diff_path, m.base_path);
	return 0;
}
