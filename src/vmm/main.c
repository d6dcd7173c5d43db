// SPDX-License-Identifier: Apache-2.0
/*
 * ember: parse the command line and the config, start the API thread when asked, run the
 * VMM loop until the guest stops, and exit with a code that says why. Only main() exits.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "api/api.h"
#include "api/config.h"
#include "api/http.h"
#include "jail/seccomp.h"
#include "vmm/cli.h"
#include "vmm/log.h"
#include "vmm/memstats.h"
#include "vmm/vmm.h"

static int setup_logging(const struct cli_args *a, const struct vm_config *cfg)
{
	const char *path = a->log_path;
	enum log_level level = a->level;
	int ret;

	if (cfg->has_logger) {
		if (!path)
			path = cfg->logger.log_path;
		if (!a->level_set)
			level = cfg->logger.level;
	}
	log__set_level(level);
	log__set_options(a->show_level || (cfg->has_logger && cfg->logger.show_level),
			 a->show_log_origin || (cfg->has_logger && cfg->logger.show_log_origin));
	if (!path)
		return 0;
	ret = log__set_path(path);
	if (ret)
		return error__set(ret, "log file %s: %s", path, strerror(-ret));
	return 0;
}

static int fail(const char *what)
{
	const char *msg = error__get();

	fprintf(stderr, "ember: %s\n", msg[0] ? msg : what);
	return EMBER_EXIT_ERROR;
}

static int load_config(const struct cli_args *args, struct vm_config *cfg)
{
	config__init(cfg);
	if (args->config_file && config__load_file(cfg, args->config_file))
		return -EINVAL;
	return setup_logging(args, cfg);
}

/*
 * A VM's descriptors: vsock alone may hold 1024 connections (two fds each at the peak of a
 * connect), beyond the soft limit of 1024 that most systems start a process with. The hard
 * limit is the operator's (or the jailer's --resource-limit); Ember takes what it allows.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		log_warn("raising the open-file limit to %llu: %s",
			 (unsigned long long)rl.rlim_max, strerror(errno));
}

int main(int argc, char **argv)
{
	static struct vmm v;
	static struct api api;
	struct vm_options opts = { 0 };
	struct vm_config cfg;
	struct cli_args args;
	int code;

	log__mark_process_start();
	if (cli__parse(argc, argv, &args))
		return fail("bad arguments");
	if (args.action == CLI_MEMORY_STATS) {
		if (memstats__print_host(stdout, args.json))
			return fail("--print-memory-stats: cannot read /proc");
		return 0;
	}
	if (args.action != CLI_RUN) {
		if (args.action == CLI_HELP)
			fputs(cli__usage, stdout);
		else
			printf("ember %s\n", EMBER_VERSION);
		return 0;
	}
	log__init(args.id);
	raise_nofile();
	/*
	 * One malloc arena for every thread: a thread's own arena would be made (mmap,
	 * mprotect, /proc/sys/vm/overcommit_memory) after its seccomp filter is in place.
	 */
	mallopt(M_ARENA_MAX, 1);
	if (seccomp__init(args.no_seccomp, args.seccomp_filter))
		return fail("seccomp");
	if (load_config(&args, &cfg)) {
		config__free(&cfg);
		return fail("configuration failed");
	}
	opts.boot_timer = args.boot_timer;
	opts.debug_exit = args.debug_exit;
	if (vmm__init(&v, &cfg, &opts, args.api_sock != NULL))
		goto err;
	if (args.api_sock &&
	    api__start(&api, args.api_sock,
		       args.max_payload ? args.max_payload : HTTP_BODY_LIMIT_DEFAULT, &v, args.id))
		goto err;
	if (args.config_file && vmm__start_instance(&v))
		goto err;
	if (vmm__run(&v))
		goto err;
	code = vmm__exit_code(&v);
	log_info("VM stopped, exit code %d", code);
	api__stop(&api);
	vmm__destroy(&v, true);
	log__close();
	return code;
err:
	api__stop(&api);
	vmm__destroy(&v, false);
	return fail("the VM failed");
}
