// SPDX-License-Identifier: Apache-2.0
#include "vmm/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

const char cli__usage[] =
	"Usage: ember --api-sock PATH [--config-file FILE] [options]\n"
	"       ember --config-file FILE [--no-api] [options]\n"
	"\n"
	"Runs one microVM, configured through Firecracker's API on a Unix socket, or from FILE\n"
	"(Firecracker's JSON config schema) and started at once, and exits when the guest\n"
	"resets or powers off.\n"
	"\n"
	"  --api-sock PATH      serve the API on this Unix socket\n"
	"  --config-file FILE   the VM's configuration; the VM starts at once\n"
	"  --no-api             no API socket (the default without --api-sock)\n"
	"  --http-api-max-payload-size N   the largest request body, bytes (default 51200)\n"
	"  --boot-timer         log the guest's boot-complete signal (byte 123 at 0xd0000000)\n"
	"  --debug-exit         let the guest end Ember with an exit code written to port 0xf4\n"
	"  --log-path PATH      append the log to PATH instead of stderr\n"
	"  --level LEVEL        Off, Error, Warning, Info (default), Debug or Trace\n"
	"  --show-level         put the level in each log line\n"
	"  --show-log-origin    put the source file and line in each log line\n"
	"  --id ID              the instance id in log lines (default anonymous-instance)\n"
	"  --seccomp-filter FILE  per-thread seccomp filters compiled by ember-seccompiler,\n"
	"                       in place of the built-in ones (docs/seccomp.md)\n"
	"  --no-seccomp         no seccomp filters (not for untrusted guests)\n"
	"  --print-memory-stats [--json]\n"
	"                       print every Ember's guest memory on this host (given,\n"
	"                       resident, private, shared) and the overcommit, and exit\n"
	"  --version            print the version and exit\n"
	"  --help               print this help and exit\n"
	"\n"
	"Exit codes: 0 the guest reset or powered off; 1 an Ember error (bad arguments,\n"
	"config, kernel or KVM); 2 the guest panicked; 3 the guest faulted in a way KVM\n"
	"cannot run; 128+N stopped by signal N; with --debug-exit, the guest's own code.\n";

enum {
	OPT_CONFIG = 1,
	OPT_NO_API,
	OPT_BOOT_TIMER,
	OPT_DEBUG_EXIT,
	OPT_LOG_PATH,
	OPT_LEVEL,
	OPT_SHOW_LEVEL,
	OPT_SHOW_ORIGIN,
	OPT_ID,
	OPT_API_SOCK,
	OPT_MAX_PAYLOAD,
	OPT_SECCOMP_FILTER,
	OPT_NO_SECCOMP,
	OPT_VERSION,
	OPT_HELP,
	OPT_MEMORY_STATS,
	OPT_JSON,
};

static const struct option options[] = {
	{ "config-file", required_argument, NULL, OPT_CONFIG },
	{ "no-api", no_argument, NULL, OPT_NO_API },
	{ "boot-timer", no_argument, NULL, OPT_BOOT_TIMER },
	{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
	{ "log-path", required_argument, NULL, OPT_LOG_PATH },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "show-level", no_argument, NULL, OPT_SHOW_LEVEL },
	{ "show-log-origin", no_argument, NULL, OPT_SHOW_ORIGIN },
	{ "id", required_argument, NULL, OPT_ID },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "http-api-max-payload-size", required_argument, NULL, OPT_MAX_PAYLOAD },
	{ "seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER },
	{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "print-memory-stats", no_argument, NULL, OPT_MEMORY_STATS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Firecracker's rule: 1 to 64 characters, alphanumeric or '-'. */
static int check_id(const char *id)
{
	size_t n = strlen(id);

	if (!n || n > CLI_ID_MAX)
		return error__set(-EINVAL, "--id: must be 1 to %d characters", CLI_ID_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			return error__set(
				-EINVAL, "--id: only letters, digits and '-' are allowed, got '%s'",
				id);
	}
	return 0;
}

/* 1 byte to 16 MiB, plain decimal. */
static int parse_size(const char *arg, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (!isdigit((unsigned char)arg[0]) || *end || errno || !v || v > CLI_MAX_PAYLOAD)
		return error__set(
			-EINVAL,
			"--http-api-max-payload-size: must be a number of bytes from 1 to "
			"%d, got '%s'",
			CLI_MAX_PAYLOAD, arg);
	*out = (size_t)v;
	return 0;
}

static int handle(int opt, const char *arg, struct cli_args *a)
{
	switch (opt) {
	case OPT_CONFIG:
		a->config_file = arg;
		return 0;
	case OPT_NO_API:
		a->no_api = true;
		return 0;
	case OPT_BOOT_TIMER:
		a->boot_timer = true;
		return 0;
	case OPT_DEBUG_EXIT:
		a->debug_exit = true;
		return 0;
	case OPT_LOG_PATH:
		a->log_path = arg;
		return 0;
	case OPT_LEVEL:
		a->level_set = true;
		if (log__parse_level(arg, &a->level))
			return error__set(-EINVAL,
					  "--level: unknown level '%s' (Off, Error, Warning, Info, "
					  "Debug or Trace)",
					  arg);
		return 0;
	case OPT_SHOW_LEVEL:
		a->show_level = true;
		return 0;
	case OPT_SHOW_ORIGIN:
		a->show_log_origin = true;
		return 0;
	case OPT_ID:
		a->id = arg;
		return check_id(arg);
	case OPT_API_SOCK:
		if (!arg[0])
			return error__set(-EINVAL, "--api-sock: the path is empty");
		a->api_sock = arg;
		return 0;
	case OPT_MAX_PAYLOAD:
		return parse_size(arg, &a->max_payload);
	case OPT_SECCOMP_FILTER:
		if (!arg[0])
			return error__set(-EINVAL, "--seccomp-filter: the path is empty");
		a->seccomp_filter = arg;
		return 0;
	case OPT_NO_SECCOMP:
		a->no_seccomp = true;
		return 0;
	case OPT_VERSION:
		a->action = CLI_VERSION;
		return 0;
	case OPT_HELP:
		a->action = CLI_HELP;
		return 0;
	case OPT_MEMORY_STATS:
		a->action = CLI_MEMORY_STATS;
		return 0;
	case OPT_JSON:
		a->json = true;
		return 0;
	default:
		return error__set(-EINVAL, "unknown or incomplete option (try --help)");
	}
}

int cli__parse(int argc, char **argv, struct cli_args *args)
{
	int opt, ret;

	memset(args, 0, sizeof(*args));
	args->level = LOG_LEVEL_INFO;
	optind = 0; /* 0, not 1: makes glibc forget any earlier argv */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (opt == ':')
			return error__set(-EINVAL, "option '%s' needs an argument (try --help)",
					  argv[optind - 1]);
		/* a short option names itself in optopt; a long one only in argv */
		if (opt == '?' && isprint(optopt))
			return error__set(-EINVAL, "unknown option '-%c' (try --help)", optopt);
		if (opt == '?' && strchr(argv[optind - 1], '='))
			return error__set(-EINVAL,
					  "unknown option, or one that takes no value: '%s'",
					  argv[optind - 1]);
		if (opt == '?')
			return error__set(-EINVAL, "unknown option '%s' (try --help)",
					  argv[optind - 1]);
		ret = handle(opt, optarg, args);
		if (ret)
			return ret;
	}
	if (optind < argc)
		return error__set(-EINVAL, "unexpected argument '%s' (try --help)", argv[optind]);
	if (args->json && args->action != CLI_MEMORY_STATS)
		return error__set(-EINVAL, "--json goes with --print-memory-stats");
	if (args->action != CLI_RUN)
		return 0;
	if (!args->config_file && !args->api_sock)
		return error__set(-EINVAL, "--config-file or --api-sock is required (try --help)");
	if (args->api_sock && args->no_api)
		return error__set(-EINVAL, "--api-sock and --no-api contradict each other");
	if (args->seccomp_filter && args->no_seccomp)
		return error__set(-EINVAL, "--seccomp-filter and --no-seccomp contradict each other");
	return 0;
}
