// SPDX-License-Identifier: Apache-2.0
/*
 * The snapshot state file: docs/snapshot-format.md. Everything a reader takes from the file
 * is checked before it is used: lengths against what is left, with no addition that could
 * overflow.
 */
#include "vmm/snapshot_file.h"

#include <errno.h>
#include <lzma.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/log.h"

/* Offsets in the fixed header. */
#define HDR_MAJOR 8
#define HDR_MINOR 10
#define HDR_HEADER_LEN 12
#define HDR_FILE_SIZE 16
#define HDR_VERSION_LEN 24
#define HDR_CPU_LEN 26
#define HDR_RESERVED 28

/* CRC-64/XZ: the ECMA-182 polynomial 0x42F0E1EBA9EA3693, reflected. */

struct section_info {
	uint32_t id;
	const char *name;
	bool repeats;
};

static const struct section_info section_table[] = {
	{ SNAPSHOT_SECTION_VM_CONFIG, "vm-config", false },
	{ SNAPSHOT_SECTION_MEMORY_LAYOUT, "memory-layout", false },
	{ SNAPSHOT_SECTION_VCPU, "vcpu", true },
	{ SNAPSHOT_SECTION_PIC, "pic", false },
	{ SNAPSHOT_SECTION_IOAPIC, "ioapic", false },
	{ SNAPSHOT_SECTION_PIT, "pit", false },
	{ SNAPSHOT_SECTION_KVMCLOCK, "kvmclock", false },
	{ SNAPSHOT_SECTION_SERIAL, "serial", false },
	{ SNAPSHOT_SECTION_I8042, "i8042", false },
	{ SNAPSHOT_SECTION_VMGENID, "vmgenid", false },
	{ SNAPSHOT_SECTION_VIRTIO_MMIO, "virtio-mmio", true },
	{ SNAPSHOT_SECTION_VIRTIO_BLK, "virtio-blk", true },
	{ SNAPSHOT_SECTION_VIRTIO_NET, "virtio-net", true },
	{ SNAPSHOT_SECTION_VIRTIO_VSOCK, "virtio-vsock", false },
	{ SNAPSHOT_SECTION_RATE_LIMITER, "rate-limiter", true },
	{ SNAPSHOT_SECTION_VIRTIO_BALLOON, "virtio-balloon", false },
};

#define NR_KNOWN_SECTIONS (sizeof(section_table) / sizeof(section_table[0]))
_Static_assert(NR_KNOWN_SECTIONS <= 64, "once_seen is a 64-bit mask");

/* The index of a known id in section_table, or -1. */
static int section_index(uint32_t id)
{
	for (size_t i = 0; i < NR_KNOWN_SECTIONS; i++)
		if (section_table[i].id == id)
			return (int)i;
	return -1;
}

const char *snapshot_file__section_name(uint32_t id)
{
	int i = section_index(id);

	return i < 0 ? NULL : section_table[i].name;
}

bool snapshot_file__section_repeats(uint32_t id)
{
	int i = section_index(id);

	return i >= 0 && section_table[i].repeats;
}

/* "vcpu section" or "section 0x1234", for messages. */
static const char *describe(uint32_t id, char *buf, size_t size)
{
	const char *name = snapshot_file__section_name(id);

	if (name)
		snprintf(buf, size, "%s section", name);
	else
		snprintf(buf, size, "section 0x%" PRIx32, id);
	return buf;
}

/* ---- CRC-64/XZ: liblzma's (xz-utils), which is fast and well kept ---- */

uint64_t snapshot_file__crc64(uint64_t crc, const void *data, size_t len)
{
	return lzma_crc64(data, len, crc);
}

void snapshot_file__host_cpu_model(char *buf, size_t size)
{
	char line[512];
	FILE *f;

	if (!size)
		return;
	snprintf(buf, size, "unknown");
	f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = '\0';
		if (*colon)
			snprintf(buf, size, "%s", colon);
		break;
	}
	fclose(f);
}

/* ---- little-endian access ---- */
static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void store_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* 1 to SNAPSHOT_FILE_STR_MAX bytes, none of them a control character. */
static bool valid_string(const uint8_t *s, size_t len)
{
	if (!len || len > SNAPSHOT_FILE_STR_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* ---- writing ---- */
static int writer_fail(struct snapshot_file_writer *w, int ret)
{
	if (!w->err)
		w->err = ret;
	return ret;
}

static int reserve(struct snapshot_file_writer *w, size_t n)
{
	size_t cap = w->cap ? w->cap : 4096;
	uint8_t *buf;

	if (n <= w->cap - w->len)
		return 0;
	while (cap - w->len < n) {
		if (cap > SIZE_MAX / 2)
			return writer_fail(w, error__set(-ENOMEM, "snapshot state file too large"));
		cap *= 2;
	}
	buf = realloc(w->buf, cap);
	if (!buf)
		return writer_fail(w, error__set(-ENOMEM, "snapshot state file: out of memory"));
	w->buf = buf;
	w->cap = cap;
	return 0;
}

static int append(struct snapshot_file_writer *w, const void *data, size_t len)
{
	int ret;

	if (w->err)
		return w->err;
	ret = reserve(w, len);
	if (ret)
		return ret;
	if (len)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

static int append_le(struct snapshot_file_writer *w, uint64_t v, unsigned int n)
{
	uint8_t b[8];

	store_le(b, v, n);
	return append(w, b, n);
}

int snapshot_file__writer_init(struct snapshot_file_writer *w, const char *ember_version,
			       const char *cpu_model)
{
	size_t vlen, clen;
	uint8_t hdr[SNAPSHOT_FILE_HEADER_LEN] = { 0 };
	int ret;

	memset(w, 0, sizeof(*w));
	if (!ember_version)
		ember_version = EMBER_VERSION;
	vlen = strlen(ember_version);
	clen = cpu_model ? strlen(cpu_model) : 0;
	if (!valid_string((const uint8_t *)ember_version, vlen) ||
	    !valid_string((const uint8_t *)cpu_model, clen))
		return error__set(-EINVAL,
				  "snapshot state file: the Ember version and the CPU model "
				  "must be 1 to %d printable bytes",
				  SNAPSHOT_FILE_STR_MAX);
	memcpy(hdr, SNAPSHOT_FILE_MAGIC, SNAPSHOT_FILE_MAGIC_LEN);
	store_le(hdr + HDR_MAJOR, SNAPSHOT_FILE_MAJOR, 2);
	store_le(hdr + HDR_MINOR, SNAPSHOT_FILE_MINOR, 2);
	store_le(hdr + HDR_HEADER_LEN, SNAPSHOT_FILE_HEADER_LEN + vlen + clen, 4);
	store_le(hdr + HDR_VERSION_LEN, vlen, 2);
	store_le(hdr + HDR_CPU_LEN, clen, 2);
	ret = append(w, hdr, sizeof(hdr));
	if (!ret)
		ret = append(w, ember_version, vlen);
	if (!ret)
		ret = append(w, cpu_model, clen);
	if (ret)
		snapshot_file__writer_free(w);
	return ret;
}

void snapshot_file__writer_free(struct snapshot_file_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* Calls that must come inside an open section (or outside any). */
static int check_state(struct snapshot_file_writer *w, bool in_section, const char *what)
{
	if (w->err)
		return w->err;
	if (w->finished || w->in_section != in_section)
		return writer_fail(w, error__set(-EINVAL, "snapshot state file: %s %s", what,
						 w->finished  ? "after finish"
						 : in_section ? "outside a section"
							      : "inside a section"));
	return 0;
}

/* A 16-byte header whose length finish_header() fills in. */
static int begin_header(struct snapshot_file_writer *w, uint32_t id, uint32_t flags)
{
	uint8_t hdr[SNAPSHOT_FILE_SECTION_HEADER_LEN] = { 0 };

	store_le(hdr, id, 4);
	store_le(hdr + 4, flags, 4);
	return append(w, hdr, sizeof(hdr));
}

static void finish_header(struct snapshot_file_writer *w, size_t start)
{
	store_le(w->buf + start + 8, w->len - start - SNAPSHOT_FILE_SECTION_HEADER_LEN, 8);
}

int snapshot_file__begin_section(struct snapshot_file_writer *w, uint32_t id, uint32_t flags)
{
	int i = section_index(id);
	char what[48];
	int ret;

	ret = check_state(w, false, "begin_section");
	if (ret)
		return ret;
	if (!id)
		return writer_fail(w, error__set(-EINVAL, "snapshot state file: section id 0"));
	if (i >= 0 && !section_table[i].repeats && (w->once_seen >> i & 1))
		return writer_fail(w, error__set(-EINVAL, "snapshot state file: a second %s",
						 describe(id, what, sizeof(what))));
	ret = begin_header(w, id, flags);
	if (ret)
		return ret;
	if (i >= 0)
		w->once_seen |= 1ULL << i;
	w->section_start = w->len - SNAPSHOT_FILE_SECTION_HEADER_LEN;
	w->in_section = true;
	return 0;
}

int snapshot_file__end_section(struct snapshot_file_writer *w)
{
	int ret = check_state(w, true, "end_section");

	if (ret)
		return ret;
	if (w->depth)
		return writer_fail(w, error__set(-EINVAL,
						 "snapshot state file: end_section with "
						 "%u record(s) open",
						 w->depth));
	finish_header(w, w->section_start);
	w->in_section = false;
	return 0;
}

int snapshot_file__begin_record(struct snapshot_file_writer *w, uint32_t tag, uint32_t flags)
{
	int ret = check_state(w, true, "begin_record");

	if (ret)
		return ret;
	if (w->depth == SNAPSHOT_FILE_RECORD_DEPTH)
		return writer_fail(w, error__set(-EINVAL,
						 "snapshot state file: records nested "
						 "deeper than %d",
						 SNAPSHOT_FILE_RECORD_DEPTH));
	ret = begin_header(w, tag, flags);
	if (ret)
		return ret;
	w->record_start[w->depth++] = w->len - SNAPSHOT_FILE_SECTION_HEADER_LEN;
	return 0;
}

int snapshot_file__end_record(struct snapshot_file_writer *w)
{
	int ret = check_state(w, true, "end_record");

	if (ret)
		return ret;
	if (!w->depth)
		return writer_fail(w, error__set(-EINVAL, "snapshot state file: end_record "
							  "without begin_record"));
	finish_header(w, w->record_start[--w->depth]);
	return 0;
}

static int put(struct snapshot_file_writer *w, uint64_t v, unsigned int n)
{
	int ret = check_state(w, true, "put");

	return ret ? ret : append_le(w, v, n);
}

int snapshot_file__put_u8(struct snapshot_file_writer *w, uint8_t v)
{
	return put(w, v, 1);
}

int snapshot_file__put_u16(struct snapshot_file_writer *w, uint16_t v)
{
	return put(w, v, 2);
}

int snapshot_file__put_u32(struct snapshot_file_writer *w, uint32_t v)
{
	return put(w, v, 4);
}

int snapshot_file__put_u64(struct snapshot_file_writer *w, uint64_t v)
{
	return put(w, v, 8);
}

int snapshot_file__put_bytes(struct snapshot_file_writer *w, const void *data, size_t len)
{
	int ret = check_state(w, true, "put_bytes");

	return ret ? ret : append(w, data, len);
}

int snapshot_file__put_str(struct snapshot_file_writer *w, const char *s)
{
	size_t len = strlen(s);

	if (len > UINT32_MAX)
		return writer_fail(w, error__set(-EINVAL, "snapshot state file: string too long"));
	snapshot_file__put_u32(w, (uint32_t)len);
	return snapshot_file__put_bytes(w, s, len);
}

int snapshot_file__finish(struct snapshot_file_writer *w, const uint8_t **data, size_t *len)
{
	int ret = check_state(w, false, "finish");

	if (ret)
		return ret;
	ret = reserve(w, SNAPSHOT_FILE_TRAILER_LEN);
	if (ret)
		return ret;
	store_le(w->buf + HDR_FILE_SIZE, w->len + SNAPSHOT_FILE_TRAILER_LEN, 8);
	append_le(w, snapshot_file__crc64(0, w->buf, w->len), 8);
	w->finished = true;
	if (data)
		*data = w->buf;
	if (len)
		*len = w->len;
	return 0;
}

/* ---- durable writes ---- */
static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, ret = 0;

	if (!slash)
		dir = strdup(".");
	else
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		ret = error__set(-errno, "syncing the directory %s: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

int snapshot_file__write(const char *path, const void *data, size_t len)
{
	char *tmp;
	int fd, ret;

	/* named by the pid, not mkostemp(): its random names come from getrandom(), which
	 * the VMM thread's seccomp filter does not allow */
	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
		return error__set(-ENOMEM, "%s: out of memory", path);
	unlink(tmp); /* one a killed Ember of the same pid left */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = error__set(-errno, "creating %s: %s", tmp, strerror(errno));
		goto err_free;
	}
	ret = write_all(fd, data, len);
	if (ret) {
		error__set(ret, "writing %s: %s", tmp, strerror(-ret));
		goto err_close;
	}
	if (fsync(fd)) {
		ret = error__set(-errno, "syncing %s: %s", tmp, strerror(errno));
		goto err_close;
	}
	if (close(fd)) {
		ret = error__set(-errno, "closing %s: %s", tmp, strerror(errno));
		goto err_unlink;
	}
	if (rename(tmp, path)) {
		ret = error__set(-errno, "renaming %s to %s: %s", tmp, path, strerror(errno));
		goto err_unlink;
	}
	free(tmp);
	return fsync_parent(path);
err_close:
	close(fd);
err_unlink:
	unlink(tmp);
err_free:
	free(tmp);
	return ret;
}

/* ---- reading ---- */
static int check_header(struct snapshot_file_reader *r)
{
	const uint8_t *d = r->data;
	uint64_t file_size, crc, stored;

	if (!r->size)
		return error__set(-EINVAL, "the snapshot state file is empty");
	if (r->size < SNAPSHOT_FILE_MAGIC_LEN && !memcmp(d, SNAPSHOT_FILE_MAGIC, r->size))
		return error__set(-EINVAL, "the snapshot state file is truncated: %zu bytes",
				  r->size);
	if (r->size < SNAPSHOT_FILE_MAGIC_LEN ||
	    memcmp(d, SNAPSHOT_FILE_MAGIC, SNAPSHOT_FILE_MAGIC_LEN))
		return error__set(-EINVAL, "not an Ember snapshot state file (bad magic)");
	if (r->size < HDR_HEADER_LEN)
		return error__set(-EINVAL, "the snapshot state file is truncated: %zu bytes",
				  r->size);
	r->major = le16(d + HDR_MAJOR);
	r->minor = le16(d + HDR_MINOR);
	if (r->major > SNAPSHOT_FILE_MAJOR)
		return error__set(-EINVAL,
				  "the snapshot state file has format version %u.%u, "
				  "newer than Ember " EMBER_VERSION " reads (%d.x): restore "
				  "it with a newer Ember",
				  r->major, r->minor, SNAPSHOT_FILE_MAJOR);
	if (r->major < SNAPSHOT_FILE_MAJOR)
		return error__set(-EINVAL,
				  "the snapshot state file has format version %u.%u, "
				  "which no Ember ever wrote (damaged?)",
				  r->major, r->minor);
	if (r->size < SNAPSHOT_FILE_HEADER_LEN + SNAPSHOT_FILE_TRAILER_LEN)
		return error__set(-EINVAL, "the snapshot state file is truncated: %zu bytes",
				  r->size);
	file_size = le64(d + HDR_FILE_SIZE);
	if (file_size > r->size)
		return error__set(-EINVAL,
				  "the snapshot state file is truncated: %zu bytes, its "
				  "header says %" PRIu64,
				  r->size, file_size);
	if (file_size < r->size)
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: %zu bytes, its "
				  "header says %" PRIu64 " (data after the end)",
				  r->size, file_size);
	r->sections_end = file_size - SNAPSHOT_FILE_TRAILER_LEN;
	crc = snapshot_file__crc64(0, d, r->sections_end);
	stored = le64(d + r->sections_end);
	if (crc != stored)
		return error__set(-EINVAL,
				  "the file is damaged: CRC64 of its contents is "
				  "%016" PRIx64 ", its trailer says %016" PRIx64,
				  crc, stored);
	return 0;
}

static int check_strings(struct snapshot_file_reader *r)
{
	const uint8_t *d = r->data;
	uint64_t vlen = le16(d + HDR_VERSION_LEN), clen = le16(d + HDR_CPU_LEN);
	uint64_t min_len = SNAPSHOT_FILE_HEADER_LEN + vlen + clen;

	r->header_len = le32(d + HDR_HEADER_LEN);
	if (r->header_len < min_len || r->header_len > r->sections_end)
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: its header length "
				  "%" PRIu64 " is out of range",
				  r->header_len);
	/* A newer minor may add header fields; this one knows every byte of its own. */
	r->header_extra = r->header_len - min_len;
	if (r->minor <= SNAPSHOT_FILE_MINOR && (r->header_extra || le32(d + HDR_RESERVED)))
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: header fields "
				  "format %u.%u does not have",
				  r->major, r->minor);
	if (!valid_string(d + SNAPSHOT_FILE_HEADER_LEN, vlen) ||
	    !valid_string(d + SNAPSHOT_FILE_HEADER_LEN + vlen, clen))
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: its Ember version "
				  "or CPU model is not 1 to %d printable bytes",
				  SNAPSHOT_FILE_STR_MAX);
	memcpy(r->ember_version, d + SNAPSHOT_FILE_HEADER_LEN, vlen);
	r->ember_version[vlen] = '\0';
	memcpy(r->cpu_model, d + SNAPSHOT_FILE_HEADER_LEN + vlen, clen);
	r->cpu_model[clen] = '\0';
	return 0;
}

/* One section header at off: bounds, flags, duplicates, must-understand. */
static int check_section(struct snapshot_file_reader *r, uint64_t off, uint64_t *once_seen,
			 uint64_t *next)
{
	const uint8_t *h = r->data + off;
	uint32_t id, flags;
	uint64_t len;
	char what[48];
	int i;

	if (r->sections_end - off < SNAPSHOT_FILE_SECTION_HEADER_LEN)
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: a section header "
				  "at offset %" PRIu64 " runs past the end of the sections "
				  "(%" PRIu64 ")",
				  off, r->sections_end);
	id = le32(h);
	flags = le32(h + 4);
	len = le64(h + 8);
	describe(id, what, sizeof(what));
	if (!id)
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: section id 0 at "
				  "offset %" PRIu64,
				  off);
	if (len > r->sections_end - off - SNAPSHOT_FILE_SECTION_HEADER_LEN)
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: the %s at offset "
				  "%" PRIu64 " is %" PRIu64 " bytes long, past the end of "
				  "the sections (%" PRIu64 ")",
				  what, off, len, r->sections_end);
	if (flags & SNAPSHOT_FILE_FLAGS_CRITICAL & ~SNAPSHOT_FILE_FLAGS_KNOWN)
		return error__set(-EINVAL,
				  "the %s at offset %" PRIu64 " has flags 0x%08" PRIx32
				  " that Ember " EMBER_VERSION " does not know: restore it "
				  "with a newer Ember (it was written by %s)",
				  what, off, flags, r->ember_version);
	i = section_index(id);
	if (i < 0 && (flags & SNAPSHOT_FILE_MUST_UNDERSTAND))
		return error__set(-EINVAL,
				  "the %s at offset %" PRIu64 " is unknown to Ember " EMBER_VERSION
				  " and marked must-understand: restore it "
				  "with a newer Ember (it was written by %s)",
				  what, off, r->ember_version);
	if (i >= 0 && !section_table[i].repeats && (*once_seen >> i & 1))
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: a second %s at "
				  "offset %" PRIu64 " (only one is allowed)",
				  what, off);
	if (i >= 0) {
		*once_seen |= 1ULL << i;
		r->nr_sections++;
	} else {
		r->nr_skipped++;
	}
	*next = off + SNAPSHOT_FILE_SECTION_HEADER_LEN + len;
	return 0;
}

int snapshot_file__open_buffer(struct snapshot_file_reader *r, const void *data, size_t size)
{
	uint64_t off, once_seen = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	r->data = data;
	r->size = size;
	ret = check_header(r);
	if (!ret)
		ret = check_strings(r);
	for (off = r->header_len; !ret && off < r->sections_end;)
		ret = check_section(r, off, &once_seen, &off);
	if (ret)
		memset(r, 0, sizeof(*r));
	return ret;
}

static int read_file(const char *path, uint8_t **out, size_t *size)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error__set(-errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = error__set(-errno, "%s: %s", path, strerror(errno));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SNAPSHOT_FILE_MAX_SIZE) {
		ret = error__set(-EINVAL, "%s: not a regular file of at most %llu bytes", path,
				 SNAPSHOT_FILE_MAX_SIZE);
		goto err_close;
	}
	/* One byte more than fstat said, to see a file that grew. */
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = error__set(-ENOMEM, "%s: out of memory", path);
		goto err_close;
	}
	while (got <= (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = error__set(-errno, "%s: read error: %s", path, strerror(errno));
			goto err_free;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)st.st_size) {
		ret = error__set(-EIO, "%s: changed while it was read", path);
		goto err_free;
	}
	close(fd);
	*out = buf;
	*size = got;
	return 0;
err_free:
	free(buf);
err_close:
	close(fd);
	return ret;
}

int snapshot_file__open_path(struct snapshot_file_reader *r, const char *path)
{
	uint8_t *buf = NULL;
	size_t size = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = read_file(path, &buf, &size);
	if (ret)
		return ret;
	ret = snapshot_file__open_buffer(r, buf, size);
	if (ret) {
		free(buf);
		return error__add_context(ret, "%s", path);
	}
	r->owned = buf;
	return 0;
}

void snapshot_file__close(struct snapshot_file_reader *r)
{
	free(r->owned);
	memset(r, 0, sizeof(*r));
}

bool snapshot_file__next(const struct snapshot_file_reader *r, uint64_t *pos,
			 struct snapshot_file_section *s)
{
	uint64_t off = *pos ? *pos : r->header_len;

	/* open_buffer() checked every header: no bounds can fail here. */
	while (r->data && off < r->sections_end) {
		const uint8_t *h = r->data + off;

		s->id = le32(h);
		s->flags = le32(h + 4);
		s->len = le64(h + 8);
		s->offset = off + SNAPSHOT_FILE_SECTION_HEADER_LEN;
		s->data = r->data + s->offset;
		s->newer_minor = r->minor > SNAPSHOT_FILE_MINOR;
		off = s->offset + s->len;
		if (section_index(s->id) >= 0) {
			*pos = off;
			return true;
		}
	}
	*pos = off;
	return false;
}

int snapshot_file__find(const struct snapshot_file_reader *r, uint32_t id,
			struct snapshot_file_section *s)
{
	uint64_t pos = 0;
	char what[48];

	while (snapshot_file__next(r, &pos, s))
		if (s->id == id)
			return 0;
	return error__set(-ENOENT, "the snapshot state file has no %s",
			  describe(id, what, sizeof(what)));
}

unsigned int snapshot_file__count(const struct snapshot_file_reader *r, uint32_t id)
{
	struct snapshot_file_section s;
	uint64_t pos = 0;
	unsigned int n = 0;

	while (snapshot_file__next(r, &pos, &s))
		n += s.id == id;
	return n;
}

/* ---- cursors ---- */
void snapshot_file__cursor(const struct snapshot_file_section *s, struct snapshot_file_cursor *c)
{
	c->data = s->data;
	c->len = s->len;
	c->pos = 0;
	c->id = s->id;
	c->base = s->offset;
	c->newer_minor = s->newer_minor;
}

static int overrun(const struct snapshot_file_cursor *c, uint64_t want)
{
	char what[48];

	error__set(-EINVAL,
		   "the snapshot state file is damaged: the %s at offset %" PRIu64
		   " ends after %" PRIu64 " bytes, reading %" PRIu64 " at %" PRIu64,
		   describe(c->id, what, sizeof(what)), c->base, c->len, want, c->pos);
	return -EINVAL; /* not error__set()'s value: the compiler sees p set on 0 */
}

int snapshot_file__get_ptr(struct snapshot_file_cursor *c, uint64_t len, const uint8_t **p)
{
	if (len > c->len - c->pos)
		return overrun(c, len);
	*p = c->data + c->pos;
	c->pos += len;
	return 0;
}

static int get_le(struct snapshot_file_cursor *c, unsigned int n, uint64_t *v)
{
	const uint8_t *p = NULL;
	int ret = snapshot_file__get_ptr(c, n, &p);

	if (ret)
		return ret;
	*v = 0;
	for (unsigned int i = 0; i < n; i++)
		*v |= (uint64_t)p[i] << (8 * i);
	return 0;
}

int snapshot_file__get_u8(struct snapshot_file_cursor *c, uint8_t *v)
{
	uint64_t x;
	int ret = get_le(c, 1, &x);

	if (!ret)
		*v = (uint8_t)x;
	return ret;
}

int snapshot_file__get_u16(struct snapshot_file_cursor *c, uint16_t *v)
{
	uint64_t x;
	int ret = get_le(c, 2, &x);

	if (!ret)
		*v = (uint16_t)x;
	return ret;
}

int snapshot_file__get_u32(struct snapshot_file_cursor *c, uint32_t *v)
{
	uint64_t x;
	int ret = get_le(c, 4, &x);

	if (!ret)
		*v = (uint32_t)x;
	return ret;
}

int snapshot_file__get_u64(struct snapshot_file_cursor *c, uint64_t *v)
{
	return get_le(c, 8, v);
}

int snapshot_file__get_bytes(struct snapshot_file_cursor *c, void *dst, uint64_t len)
{
	const uint8_t *p = NULL;
	int ret = snapshot_file__get_ptr(c, len, &p);

	if (!ret && len)
		memcpy(dst, p, len);
	return ret;
}

int snapshot_file__skip(struct snapshot_file_cursor *c, uint64_t len)
{
	const uint8_t *p = NULL;

	return snapshot_file__get_ptr(c, len, &p);
}

int snapshot_file__get_str(struct snapshot_file_cursor *c, char *buf, size_t size)
{
	uint64_t start = c->pos;
	const uint8_t *p = NULL;
	uint32_t len;
	char what[48];
	int ret;

	ret = snapshot_file__get_u32(c, &len);
	if (!ret)
		ret = snapshot_file__get_ptr(c, len, &p);
	if (ret) {
		c->pos = start;
		return ret;
	}
	if ((uint64_t)len >= size || memchr(p, '\0', len)) {
		c->pos = start;
		return error__set(-EINVAL,
				  "the snapshot state file is damaged: the %s at offset "
				  "%" PRIu64 " has a string of %" PRIu32 " bytes at %" PRIu64
				  " (at most %zu, no NUL)",
				  describe(c->id, what, sizeof(what)), c->base, len, start,
				  size ? size - 1 : 0);
	}
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

int snapshot_file__get_record(struct snapshot_file_cursor *c, uint32_t *tag, uint32_t *flags,
			      struct snapshot_file_cursor *sub)
{
	uint64_t start = c->pos, len;
	const uint8_t *h = NULL;
	int ret;

	ret = snapshot_file__get_ptr(c, SNAPSHOT_FILE_SECTION_HEADER_LEN, &h);
	if (ret)
		return ret;
	len = le64(h + 8);
	if (len > c->len - c->pos) {
		ret = overrun(c, len);
		c->pos = start;
		return ret;
	}
	*tag = le32(h);
	*flags = le32(h + 4);
	sub->data = c->data + c->pos;
	sub->len = len;
	sub->pos = 0;
	sub->id = c->id;
	sub->base = c->base + c->pos;
	sub->newer_minor = c->newer_minor;
	c->pos += len;
	return 0;
}

uint64_t snapshot_file__remaining(const struct snapshot_file_cursor *c)
{
	return c->len - c->pos;
}

int snapshot_file__expect_end(const struct snapshot_file_cursor *c)
{
	char what[48];

	/* A newer minor may append fields that this Ember does not know. */
	if (c->pos == c->len || c->newer_minor)
		return 0;
	return error__set(-EINVAL,
			  "the snapshot state file is damaged: the %s at offset %" PRIu64
			  " has %" PRIu64 " bytes left over after %" PRIu64,
			  describe(c->id, what, sizeof(what)), c->base, c->len - c->pos, c->pos);
}
