// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for vm__build_cmdline (src/vmm/vm.c): the guest kernel command line is the
 * configured boot_args (or Firecracker's default) plus Ember's own parameters, which must
 * reach the kernel, not init: they go before the "--" that starts init's arguments.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/vm.h"
#include "vmm/vm_config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SUFFIX "reboot=panic_warm"

static char *build(const char *boot_args)
{
	struct vm_config cfg;
	char *s = NULL;

	memset(&cfg, 0, sizeof(cfg));
	cfg.boot.boot_args = (char *)boot_args;
	assert_int_equal(vm__build_cmdline(&cfg, &s), 0);
	assert_non_null(s);
	return s;
}

static void expect(const char *boot_args, const char *cmdline)
{
	char *s = build(boot_args);

	if (strcmp(s, cmdline))
		fail_msg("boot_args \"%s\": got \"%s\", expected \"%s\"",
			 boot_args ? boot_args : "(null)", s, cmdline);
	free(s);
}

static void default_args(void **state)
{
	(void)state;
	expect(NULL, VM_DEFAULT_BOOT_ARGS " " SUFFIX);
}

static void suffix_appended(void **state)
{
	static const struct {
		const char *args, *cmdline;
	} cases[] = {
		{ "console=ttyS0", "console=ttyS0 " SUFFIX },
		{ "", SUFFIX },
		{ "a b c", "a b c " SUFFIX },
		{ "reboot=k", "reboot=k " SUFFIX }, /* the last reboot= wins in Linux */
		{ "init=/bin/sh --verbose",
		  "init=/bin/sh --verbose " SUFFIX }, /* not a separator */
		{ "foo--bar", "foo--bar " SUFFIX },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect(cases[i].args, cases[i].cmdline);
}

static void suffix_before_init_args(void **state)
{
	static const struct {
		const char *args, *cmdline;
	} cases[] = {
		{ "console=ttyS0 -- single", "console=ttyS0 " SUFFIX " -- single" },
		{ "console=ttyS0 -- a -- b", "console=ttyS0 " SUFFIX " -- a -- b" },
		{ "quiet --  x", "quiet " SUFFIX " --  x" },
		{ "a -- ", "a " SUFFIX " -- " },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect(cases[i].args, cases[i].cmdline);
}

/*
 * Linux ends the kernel's parameters at any token that is exactly "--" (parse_args in
 * kernel/params.c), wherever it is and whatever whitespace is around it; inside quotes it
 * is not a token. vm__build_cmdline only looks for " -- ", so in these cases
 * reboot=panic_warm goes to init (or into a quoted value) instead of the kernel. FAILS.
 */
static void suffix_before_any_separator(void **state)
{
	static const struct {
		const char *args, *cmdline;
	} cases[] = {
		{ "-- single", SUFFIX " -- single" },
		{ "console=ttyS0 --", "console=ttyS0 " SUFFIX " --" },
		/* the blanks before "--" become one space; init's part is kept as it was */
		{ "console=ttyS0\t--\tsingle", "console=ttyS0 " SUFFIX " --\tsingle" },
		{ "dyndbg=\"file a.c -- p\" quiet", "dyndbg=\"file a.c -- p\" quiet " SUFFIX },
	};
	unsigned int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *s = build(cases[i].args);

		if (strcmp(s, cases[i].cmdline)) {
			print_error("boot_args \"%s\": got \"%s\", expected \"%s\"\n",
				    cases[i].args, s, cases[i].cmdline);
			bad++;
		}
		free(s);
	}
	if (bad)
		fail_msg("%u of %zu command lines misplace Ember's parameters", bad,
			 ARRAY_SIZE(cases));
}

static void long_args(void **state)
{
	char *args = malloc(8192), *s;

	(void)state;
	assert_non_null(args);
	memset(args, 'x', 8191);
	args[8191] = '\0';
	memcpy(args + 4000, " -- ", 4);
	s = build(args);
	assert_int_equal(strlen(s), 8191 + 1 + strlen(SUFFIX));
	assert_memory_equal(s, args, 4000);
	assert_memory_equal(s + 4000, " " SUFFIX " -- ", strlen(SUFFIX) + 5);
	free(s);
	free(args);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_args),
		cmocka_unit_test(suffix_appended),
		cmocka_unit_test(suffix_before_init_args),
		cmocka_unit_test(suffix_before_any_separator),
		cmocka_unit_test(long_args),
	};

	return cmocka_run_group_tests_name("cmdline", tests, NULL, NULL);
}
