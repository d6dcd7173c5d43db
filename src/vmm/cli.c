// SPDX-License-Identifier: Apache-2.0
#include "vmm/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <string.h>

const char cli__usage[] =
	"Usage: ember --config-file FILE [options]\n"
	"\n"
	"Boots the microVM that FILE (Firecracker's JSON config schema) describes, and exits\n"
	"when the guest resets or powers off.\n"
	"\n"
	"  --config-file FILE   the VM's configuration (required)\n"
	"  --no-api             run without the API socket\n"
	"  --boot-timer         log the guest's boot-complete signal (byte 123 at 0xd0000000)\n"
	"  --debug-exit         let the guest end Ember with an exit code written to port 0xf4\n"
	"  --log-path PATH      append the log to PATH instead of stderr\n"
	"  --level LEVEL        Off, Error, Warning, Info (default), Debug or Trace\n"
	"  --show-level         put the level in each log line\n"
	"  --show-log-origin    put the source file and line in each log line\n"
	"  --id ID              the instance id in log lines (default anonymous-instance)\n"
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
	OPT_VERSION,
	OPT_HELP,
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
	{ "version", no_argument, NULL, OPT_VERSION },
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
			return error__set(-EINVAL,
					  "--id: only letters, digits and '-' are allowed, got '%s'",
					  id);
	}
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
		return error__set(-EINVAL, "--api-sock: the API server is not available yet; "
					   "use --config-file with --no-api");
	case OPT_VERSION:
		a->action = CLI_VERSION;
		return 0;
	case OPT_HELP:
		a->action = CLI_HELP;
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
			return error__set(-EINVAL, "unknown option, or one that takes no value: '%s'",
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
	if (args->action == CLI_RUN && !args->config_file)
		return error__set(-EINVAL, "--config-file is required (try --help)");
	return 0;
}
