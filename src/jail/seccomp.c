// SPDX-License-Identifier: Apache-2.0
/*
 * Per-thread seccomp filters: reading the compiled file and installing a thread's
 * program. See seccomp.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail/seccomp.h"
#include "vmm/log.h"

/* The built-in filters, linked in by src/jail/seccomp.mk */
extern const char ember_seccomp_builtin_start[];
extern const char ember_seccomp_builtin_end[];

static const char *const thread_names[SECCOMP_THREADS] = SECCOMP_THREAD_NAMES;

/* The process's filters; all NULL when seccomp is off. */
static struct seccomp_filters filters;
static bool enabled;

const char *seccomp__thread_name(enum seccomp_thread t)
{
	return (unsigned int)t < SECCOMP_THREADS ? thread_names[t] : "?";
}

const void *seccomp__builtin(size_t *size)
{
	*size = (size_t)(ember_seccomp_builtin_end - ember_seccomp_builtin_start);
	return ember_seccomp_builtin_start;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void seccomp__free(struct seccomp_filters *f)
{
	for (unsigned int t = 0; t < SECCOMP_THREADS; t++)
		free(f->insns[t]);
	memset(f, 0, sizeof(*f));
}

/* The thread type a 16-byte name field names: NUL-padded, no bytes after the first NUL. */
static int thread_of(const uint8_t *name)
{
	size_t n = strnlen((const char *)name, SECCOMP_FILE_NAME_LEN);

	if (n == SECCOMP_FILE_NAME_LEN)
		return -1;
	for (size_t i = n; i < SECCOMP_FILE_NAME_LEN; i++) {
		if (name[i])
			return -1;
	}
	for (int t = 0; t < SECCOMP_THREADS; t++) {
		if (!strcmp((const char *)name, thread_names[t]))
			return t;
	}
	return -1;
}

static int parse(struct seccomp_filters *out, const uint8_t *p, size_t size)
{
	uint32_t count;
	size_t off;

	if (size < SECCOMP_FILE_MAGIC_LEN + 4 ||
	    memcmp(p, SECCOMP_FILE_MAGIC, SECCOMP_FILE_MAGIC_LEN))
		return error__set(-EINVAL, "not a compiled seccomp filter file (no %s header): "
				  "make one with ember-seccompiler", SECCOMP_FILE_MAGIC);
	count = le32(p + SECCOMP_FILE_MAGIC_LEN);
	if (count > SECCOMP_FILE_MAX_FILTERS)
		return error__set(-EINVAL, "%u filters: at most %d", count,
				  SECCOMP_FILE_MAX_FILTERS);
	off = SECCOMP_FILE_MAGIC_LEN + 4;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t len;
		int t;

		if (size - off < SECCOMP_FILE_NAME_LEN + 4)
			return error__set(-EINVAL, "filter %u: cut short", i);
		t = thread_of(p + off);
		if (t < 0)
			return error__set(-EINVAL, "filter %u: not a thread type (api, vmm, vcpu)", i);
		if (out->insns[t])
			return error__set(-EINVAL, "filter %u: a second filter for %s", i,
					  thread_names[t]);
		len = le32(p + off + SECCOMP_FILE_NAME_LEN);
		off += SECCOMP_FILE_NAME_LEN + 4;
		if (!len || len > SECCOMP_FILE_MAX_INSNS)
			return error__set(-EINVAL, "filter for %s: %u instructions, must be 1 to %d",
					  thread_names[t], len, SECCOMP_FILE_MAX_INSNS);
		if ((size - off) / SECCOMP_FILE_INSN_BYTES < len)
			return error__set(-EINVAL, "filter for %s: cut short", thread_names[t]);
		out->insns[t] = calloc(len, sizeof(struct sock_filter));
		if (!out->insns[t])
			return error__set(-ENOMEM, "out of memory");
		for (uint32_t k = 0; k < len; k++, off += SECCOMP_FILE_INSN_BYTES) {
			struct sock_filter *f = &out->insns[t][k];

			f->code = (uint16_t)(p[off] | p[off + 1] << 8);
			f->jt = p[off + 2];
			f->jf = p[off + 3];
			f->k = le32(p + off + 4);
		}
		out->len[t] = len;
	}
	if (off != size)
		return error__set(-EINVAL, "%zu bytes after the last filter", size - off);
	for (int t = 0; t < SECCOMP_THREADS; t++) {
		if (!out->insns[t])
			return error__set(-EINVAL, "no filter for the %s thread", thread_names[t]);
	}
	return 0;
}

int seccomp__parse(struct seccomp_filters *out, const void *data, size_t size)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse(out, data, size);
	if (ret)
		seccomp__free(out);
	return ret;
}

/* A compiled file: at most the largest one the format allows. */
#define FILE_MAX                                                                                   \
	(SECCOMP_FILE_MAGIC_LEN + 4 +                                                              \
	 SECCOMP_FILE_MAX_FILTERS * (SECCOMP_FILE_NAME_LEN + 4 +                                   \
				     SECCOMP_FILE_MAX_INSNS * SECCOMP_FILE_INSN_BYTES))

static int load_file(const char *path)
{
	uint8_t *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error__set(-errno, "--seccomp-filter %s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = error__set(-errno, "--seccomp-filter %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
		ret = error__set(-EINVAL, "--seccomp-filter %s: not a compiled filter file (%s)",
				 path, S_ISREG(st.st_mode) ? "too large" : "not a regular file");
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = error__set(-ENOMEM, "out of memory");
		goto out;
	}
	n = read(fd, buf, (size_t)st.st_size + 1);
	if (n != st.st_size) {
		ret = error__set(n < 0 ? -errno : -EIO, "--seccomp-filter %s: short read", path);
		goto out;
	}
	ret = seccomp__parse(&filters, buf, (size_t)n);
	if (ret) {
		char why[256];

		snprintf(why, sizeof(why), "%s", error__get());
		ret = error__set(ret, "--seccomp-filter %s: %s", path, why);
	}
out:
	free(buf);
	close(fd);
	return ret;
}

int seccomp__init(bool disabled, const char *path)
{
	size_t size;
	const void *builtin;
	int ret;

	seccomp__free(&filters);
	enabled = false;
	if (disabled) {
		log_warn("seccomp is off (--no-seccomp): a guest that escapes into Ember can make "
			 "any system call Ember's user can");
		return 0;
	}
	if (path) {
		ret = load_file(path);
	} else {
		builtin = seccomp__builtin(&size);
		ret = seccomp__parse(&filters, builtin, size);
		if (ret) {
			char why[256];

			snprintf(why, sizeof(why), "%s", error__get());
			ret = error__set(ret, "the built-in seccomp filters: %s", why);
		}
	}
	enabled = !ret;
	return ret;
}

int seccomp__apply(enum seccomp_thread t)
{
	struct sock_fprog prog;

	if (!enabled)
		return 0;
	if ((unsigned int)t >= SECCOMP_THREADS)
		return -EINVAL;
	prog.len = (unsigned short)filters.len[t];
	prog.filter = filters.insns[t];
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return error__set(-errno, "seccomp: no_new_privs: %s", strerror(errno));
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		return error__set(-errno, "seccomp: installing the %s thread's filter: %s",
				  thread_names[t], strerror(errno));
	return 0;
}
