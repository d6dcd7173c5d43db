/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ember's command line.
 */
#ifndef EMBER_VMM_CLI_H
#define EMBER_VMM_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/log.h"

#define EMBER_VERSION "0.1.0"
#define CLI_ID_MAX 64
#define CLI_MAX_PAYLOAD (16 * 1024 * 1024)

enum cli_action {
	CLI_RUN,
	CLI_HELP,
	CLI_VERSION,
	CLI_MEMORY_STATS, /* --print-memory-stats: the host's Embers' memory, then exit */
};

struct cli_args {
	enum cli_action action;
	const char *config_file;
	const char *api_sock;
	size_t max_payload; /* --http-api-max-payload-size */
	bool no_api;
	bool boot_timer;
	bool debug_exit;
	const char *log_path;
	bool level_set;
	enum log_level level;
	bool show_level;
	bool show_log_origin;
	const char *id;
	const char *seccomp_filter; /* a compiled filter file, for the built-in filters */
	bool no_seccomp;
	bool json; /* --json, with --print-memory-stats */
};

/* 0, or -EINVAL with error__set() naming the bad argument. */
int cli__parse(int argc, char **argv, struct cli_args *args);
extern const char cli__usage[];

#endif
