// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/jail/seccomp.c's reading of compiled filter files (seccomp_format.h):
 * the built-in file is whole and well-formed; every way a file can be wrong is refused with
 * a message that says how, and leaves nothing allocated.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jail/seccomp.h"
#include "vmm/log.h"

#define MAXFILE 4096

struct file {
	uint8_t b[MAXFILE];
	size_t len;
};

static void put(struct file *f, const void *p, size_t n)
{
	assert_true(f->len + n <= sizeof(f->b));
	memcpy(f->b + f->len, p, n);
	f->len += n;
}

static void put32(struct file *f, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	put(f, b, 4);
}

/* A filter of len instructions for thread name (RET ALLOW each). */
static void filter(struct file *f, const char *name, uint32_t len)
{
	char field[SECCOMP_FILE_NAME_LEN] = { 0 };
	const uint8_t ret_allow[8] = { 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f };

	memcpy(field, name, strlen(name));
	put(f, field, sizeof(field));
	put32(f, len);
	for (uint32_t i = 0; i < len; i++)
		put(f, ret_allow, sizeof(ret_allow));
}

static struct file header(uint32_t count)
{
	struct file f = { .len = 0 };

	put(&f, SECCOMP_FILE_MAGIC, SECCOMP_FILE_MAGIC_LEN);
	put32(&f, count);
	return f;
}

static struct file good(void)
{
	struct file f = header(3);

	filter(&f, "vcpu", 2);
	filter(&f, "api", 1);
	filter(&f, "vmm", 3);
	return f;
}

static void expect_refused(const struct file *f, const char *needle)
{
	struct seccomp_filters sf;

	assert_int_equal(seccomp__parse(&sf, f->b, f->len), -EINVAL);
	if (!strstr(error__get(), needle))
		fail_msg("\"%s\" does not say \"%s\"", error__get(), needle);
	for (int t = 0; t < SECCOMP_THREADS; t++)
		assert_null(sf.insns[t]);
}

static void test_builtin(void **state)
{
	struct seccomp_filters sf;
	size_t size;
	const void *b = seccomp__builtin(&size);

	(void)state;
	assert_int_equal(seccomp__parse(&sf, b, size), 0);
	for (int t = 0; t < SECCOMP_THREADS; t++) {
		assert_non_null(sf.insns[t]);
		/* libseccomp's programs start by loading the architecture */
		assert_true(sf.len[t] > 10);
		assert_int_equal(sf.insns[t][0].code, 0x20); /* BPF_LD | BPF_W | BPF_ABS */
		assert_int_equal(sf.insns[t][0].k, 4);	     /* offsetof(seccomp_data, arch) */
	}
	seccomp__free(&sf);
}

static void test_good(void **state)
{
	struct seccomp_filters sf;
	struct file f = good();

	(void)state;
	assert_int_equal(seccomp__parse(&sf, f.b, f.len), 0);
	assert_int_equal(sf.len[SECCOMP_THREAD_VCPU], 2);
	assert_int_equal(sf.len[SECCOMP_THREAD_API], 1);
	assert_int_equal(sf.len[SECCOMP_THREAD_VMM], 3);
	assert_int_equal(sf.insns[SECCOMP_THREAD_VMM][2].code, 6);
	assert_int_equal(sf.insns[SECCOMP_THREAD_VMM][2].k, 0x7fff0000);
	seccomp__free(&sf);
}

static void test_refused(void **state)
{
	struct file f;

	(void)state;
	f = good();
	f.b[0] = 'X';
	expect_refused(&f, "not a compiled seccomp filter file");
	f = good();
	f.len = 10;
	expect_refused(&f, "not a compiled seccomp filter file");
	f = header(9);
	expect_refused(&f, "9 filters: at most 8");
	f = header(3);
	filter(&f, "vcpu", 1);
	filter(&f, "api", 1);
	expect_refused(&f, "filter 2: cut short");
	f = good();
	f.len -= 1;
	expect_refused(&f, "filter for vmm: cut short");
	f = header(3);
	filter(&f, "vcpu", 1);
	filter(&f, "io", 1);
	filter(&f, "vmm", 1);
	expect_refused(&f, "filter 1: not a thread type");
	f = header(3);
	filter(&f, "vcpu", 1);
	filter(&f, "vcpu", 1);
	filter(&f, "vmm", 1);
	expect_refused(&f, "filter 1: a second filter for vcpu");
	f = header(3);
	filter(&f, "vcpu", 0);
	expect_refused(&f, "filter for vcpu: 0 instructions, must be 1 to 4096");
	f = header(1);
	filter(&f, "vcpu", 0);
	f.b[f.len - 4] = 0x01;
	f.b[f.len - 3] = 0x10; /* 4097 */
	expect_refused(&f, "4097 instructions");
	f = header(2);
	filter(&f, "vcpu", 1);
	filter(&f, "vmm", 1);
	expect_refused(&f, "no filter for the api thread");
	f = good();
	put(&f, "x", 1);
	expect_refused(&f, "1 bytes after the last filter");
	/* a name with bytes after its NUL, or no NUL at all */
	f = header(3);
	filter(&f, "vcpu", 1);
	f.b[12 + 6] = 'x';
	expect_refused(&f, "filter 0: not a thread type");
	f = header(1);
	filter(&f, "vcpuvcpuvcpuvcpu", 1);
	expect_refused(&f, "filter 0: not a thread type");
}

static void test_disabled_applies_nothing(void **state)
{
	(void)state;
	assert_int_equal(seccomp__init(true, NULL), 0);
	assert_int_equal(seccomp__apply(SECCOMP_THREAD_VCPU), 0);
	assert_int_equal(seccomp__init(true, "/nonexistent"), 0);
}

static void test_bad_files(void **state)
{
	(void)state;
	assert_int_equal(seccomp__init(false, "/nonexistent/filter.bpf"), -ENOENT);
	assert_non_null(strstr(error__get(), "--seccomp-filter /nonexistent/filter.bpf"));
	assert_int_equal(seccomp__init(false, "/dev/null"), -EINVAL);
	assert_non_null(strstr(error__get(), "not a regular file"));
	assert_int_equal(seccomp__init(false, "/proc/self/exe"), -EINVAL);
	assert_int_equal(seccomp__init(true, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_disabled_applies_nothing),
		cmocka_unit_test(test_bad_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
