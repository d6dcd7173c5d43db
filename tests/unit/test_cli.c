// SPDX-License-Identifier: Apache-2.0
/* Unit tests for src/vmm/cli.c: Ember's command line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/cli.h"
#include "vmm/log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_ARGS 16

/*
 * glibc's getopt keeps a pointer into the last argv it scanned, which only optind = 0
 * resets; cli__parse sets optind = 1 (see reparse_after_short_cluster). So that one case
 * cannot leak into the next, reset getopt here before each parse.
 */
static void reset_getopt(void)
{
	static char arg0[] = "ember";
	static char *argv[] = { arg0, NULL };

	optind = 0;
	assert_int_equal(getopt(1, argv, ""), -1);
}

/* Parses a NULL-terminated argument list after argv[0]; argv stays valid until the next call. */
static int parse_raw(struct cli_args *a, const char *const *args)
{
	static char store[MAX_ARGS][128];
	static char *argv[MAX_ARGS + 1];
	int argc = 0;

	snprintf(store[argc], sizeof(store[0]), "ember");
	argv[argc] = store[argc];
	for (argc = 1; args[argc - 1]; argc++) {
		assert_true(argc < MAX_ARGS);
		assert_true(strlen(args[argc - 1]) < sizeof(store[0]));
		snprintf(store[argc], sizeof(store[0]), "%s", args[argc - 1]);
		argv[argc] = store[argc];
	}
	argv[argc] = NULL;
	error__clear();
	return cli__parse(argc, argv, a);
}

static int parse(struct cli_args *a, const char *const *args)
{
	reset_getopt();
	return parse_raw(a, args);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void every_option(void **state)
{
	struct cli_args a;
	int ret;

	(void)state;
	ret = parse(&a, ARGS("--config-file", "/vm.json", "--no-api", "--boot-timer",
			     "--debug-exit", "--log-path", "/tmp/log", "--level", "Debug",
			     "--show-level", "--show-log-origin", "--id", "vm-01"));
	assert_int_equal(ret, 0);
	assert_int_equal(a.action, CLI_RUN);
	assert_string_equal(a.config_file, "/vm.json");
	assert_true(a.no_api);
	assert_true(a.boot_timer);
	assert_true(a.debug_exit);
	assert_string_equal(a.log_path, "/tmp/log");
	assert_true(a.level_set);
	assert_int_equal(a.level, LOG_LEVEL_DEBUG);
	assert_true(a.show_level);
	assert_true(a.show_log_origin);
	assert_string_equal(a.id, "vm-01");
	assert_null(a.api_sock);
}

static void api_options(void **state)
{
	struct cli_args a;

	(void)state;
	assert_int_equal(parse(&a, ARGS("--api-sock", "/run/ember.sock")), 0);
	assert_string_equal(a.api_sock, "/run/ember.sock");
	assert_null(a.config_file);
	assert_int_equal(a.max_payload, 0); /* the server's default */
	assert_int_equal(parse(&a, ARGS("--api-sock", "/s", "--config-file", "/vm.json",
					"--http-api-max-payload-size", "1048576")),
			 0);
	assert_string_equal(a.config_file, "/vm.json");
	assert_int_equal(a.max_payload, 1048576);
}

static void defaults(void **state)
{
	struct cli_args a;

	(void)state;
	assert_int_equal(parse(&a, ARGS("--config-file=/vm.json")), 0);
	assert_int_equal(a.action, CLI_RUN);
	assert_string_equal(a.config_file, "/vm.json");
	assert_false(a.no_api);
	assert_false(a.boot_timer);
	assert_false(a.debug_exit);
	assert_null(a.log_path);
	assert_false(a.level_set);
	assert_int_equal(a.level, LOG_LEVEL_INFO);
	assert_false(a.show_level);
	assert_false(a.show_log_origin);
	assert_null(a.id);
}

static void levels(void **state)
{
	static const struct {
		const char *name;
		enum log_level level;
	} cases[] = {
		{ "Off", LOG_LEVEL_OFF },	{ "Error", LOG_LEVEL_ERROR },
		{ "Warning", LOG_LEVEL_WARN },	{ "warn", LOG_LEVEL_WARN },
		{ "Info", LOG_LEVEL_INFO },	{ "DEBUG", LOG_LEVEL_DEBUG },
		{ "trace", LOG_LEVEL_TRACE },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cli_args a;

		assert_int_equal(parse(&a, ARGS("--level", cases[i].name, "--config-file", "x")),
				 0);
		assert_int_equal(a.level, cases[i].level);
	}
}

static void help_and_version(void **state)
{
	static const char *const documented[] = {
		"--config-file", "--no-api",	     "--boot-timer", "--debug-exit",
		"--log-path",	 "--level",	     "--show-level", "--show-log-origin",
		"--id",		 "--version",	     "--help",
	};
	struct cli_args a;

	(void)state;
	assert_int_equal(parse(&a, ARGS("--help")), 0); /* no --config-file needed */
	assert_int_equal(a.action, CLI_HELP);
	assert_int_equal(parse(&a, ARGS("--version")), 0);
	assert_int_equal(a.action, CLI_VERSION);
	assert_int_equal(parse(&a, ARGS("--config-file", "x", "--help")), 0);
	assert_int_equal(a.action, CLI_HELP);
	/* every option is documented */
	for (size_t i = 0; i < ARRAY_SIZE(documented); i++)
		assert_non_null(strstr(cli__usage, documented[i]));
}

static void rejected(void **state)
{
	const struct {
		const char *const *args;
		const char *msg;
	} cases[] = {
		{ ARGS("--no-api"), "--config-file or --api-sock is required" },
		{ ARGS("--api-sock", "/tmp/a.sock", "--no-api"), "contradict" },
		{ ARGS("--api-sock", "a", "--seccomp-filter", "f", "--no-seccomp"),
		  "--seccomp-filter and --no-seccomp contradict each other" },
		{ ARGS("--api-sock", "a", "--seccomp-filter", ""), "--seccomp-filter: the path is empty" },
		{ ARGS("--api-sock", "a", "--seccomp-filter"), "needs an argument" },
		{ ARGS("--api-sock", ""), "--api-sock: the path is empty" },
		{ ARGS("--api-sock", "a", "--http-api-max-payload-size", "0"),
		  "--http-api-max-payload-size" },
		{ ARGS("--api-sock", "a", "--http-api-max-payload-size", "-1"),
		  "--http-api-max-payload-size" },
		{ ARGS("--api-sock", "a", "--http-api-max-payload-size", "12k"),
		  "--http-api-max-payload-size" },
		{ ARGS("--api-sock", "a", "--http-api-max-payload-size", "16777217"),
		  "--http-api-max-payload-size" },
		{ ARGS("--config-file"), "'--config-file' needs an argument" },
		{ ARGS("--config-file", "x", "--level"), "'--level' needs an argument" },
		{ ARGS("--config-file", "x", "--id"), "'--id' needs an argument" },
		{ ARGS("--config-file", "x", "--log-path"), "'--log-path' needs an argument" },
		{ ARGS("--config-file", "x", "--bogus"), "unknown option '--bogus'" },
		{ ARGS("--config-file", "x", "-x"), "unknown option" },
		{ ARGS("--config-file", "x", "--no-api=yes"), "--no-api" },
		{ ARGS("--config-file", "x", "stray"), "unexpected argument 'stray'" },
		{ ARGS("--config-file", "x", "--", "stray"), "unexpected argument 'stray'" },
		{ ARGS("--config-file", "x", "--level", "loud"), "--level: unknown level 'loud'" },
		{ ARGS("--config-file", "x", "--level", ""), "--level: unknown level ''" },
		{ ARGS("--config-file", "x", "--level", "info "), "--level" },
		{ ARGS("--config-file", "x", "--id", ""), "--id: must be 1 to 64" },
		{ ARGS("--config-file", "x", "--id",
		       "a1234567890123456789012345678901234567890123456789012345678901234"),
		  "--id: must be 1 to 64" },
		{ ARGS("--config-file", "x", "--id", "my_vm"), "--id: only letters" },
		{ ARGS("--config-file", "x", "--id", "vm.1"), "--id: only letters" },
		{ ARGS("--config-file", "x", "--id", "vm 1"), "--id: only letters" },
		{ ARGS("--config-file", "x", "--id", "../etc"), "--id: only letters" },
		{ ARGS("--config-file", "x", "--id", "caf\xc3\xa9"), "--id: only letters" },
		{ ARGS("--api-sock"), "needs an argument" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cli_args a;
		int ret = parse(&a, cases[i].args);

		if (ret != -EINVAL || !strstr(error__get(), cases[i].msg))
			fail_msg("case %zu: expected -EINVAL \"...%s...\", got %d \"%s\"", i,
				 cases[i].msg, ret, error__get());
	}
}

static void id_limits(void **state)
{
	struct cli_args a;
	const char *id64 = "a12345678901234567890123456789012345678901234567890123456789-123";

	(void)state;
	assert_int_equal(strlen(id64), CLI_ID_MAX);
	assert_int_equal(parse(&a, ARGS("--config-file", "x", "--id", id64)), 0);
	assert_string_equal(a.id, id64);
	assert_int_equal(parse(&a, ARGS("--config-file", "x", "--id", "-")), 0);
	assert_int_equal(parse(&a, ARGS("--config-file", "x", "--id", "0")), 0);
}

/* The later of two repeated options wins; nothing leaks from the previous parse. */
static void repeated_and_reparsed(void **state)
{
	struct cli_args a;

	(void)state;
	assert_int_equal(parse(&a, ARGS("--config-file", "a", "--config-file", "b", "--level",
					 "error", "--level", "trace")),
			 0);
	assert_string_equal(a.config_file, "b");
	assert_int_equal(a.level, LOG_LEVEL_TRACE);
	assert_int_equal(parse(&a, ARGS("--config-file", "c")), 0);
	assert_false(a.level_set);
	assert_int_equal(a.level, LOG_LEVEL_INFO);
}

/*
 * After a parse that met a short option ("-x"), glibc's getopt keeps pointing into that
 * argv (__nextchar). cli__parse sets optind = 1, which does not reset that pointer (0
 * does), so the next cli__parse resumes scanning short options from the stale pointer: a
 * valid command line fails, and with the old argv freed it is a use after free. FAILS.
 */
static void reparse_after_short_option(void **state)
{
	struct cli_args a;

	(void)state;
	assert_int_equal(parse(&a, ARGS("--config-file", "x", "-x")), -EINVAL);
	if (parse_raw(&a, ARGS("--config-file", "y", "--no-api")))
		fail_msg("a valid command line fails after a failed one: \"%s\"", error__get());
	assert_string_equal(a.config_file, "y");
}

/*
 * The error names the argument that is wrong. FAILS for a short option that is not the
 * last of its cluster: optind has not moved past it yet, so argv[optind - 1] is the
 * argument before ("unknown option 'x'" for "--config-file x -ab").
 */
static void unknown_short_option_named(void **state)
{
	struct cli_args a;

	(void)state;
	assert_int_equal(parse(&a, ARGS("--config-file", "x", "-ab")), -EINVAL);
	if (!strstr(error__get(), "'-a"))
		fail_msg("\"%s\" does not name -ab", error__get());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_option),
		cmocka_unit_test(api_options),
		cmocka_unit_test(defaults),
		cmocka_unit_test(levels),
		cmocka_unit_test(help_and_version),
		cmocka_unit_test(rejected),
		cmocka_unit_test(id_limits),
		cmocka_unit_test(repeated_and_reparsed),
		cmocka_unit_test(reparse_after_short_option),
		cmocka_unit_test(unknown_short_option_named),
	};

	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
