// SPDX-License-Identifier: Apache-2.0
#include "jail/jail_args.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jail/jail_error.h"

const char jail_args__usage[] =
	"Usage: ember-jailer --id ID --exec-file PATH --uid UID --gid GID [options] [-- EMBER-ARGS]\n"
	"\n"
	"Builds a jail for one Ember process and execs Ember inside it, as Firecracker's\n"
	"jailer does: a chroot at <chroot-base-dir>/<exec-file name>/<id>/root holding a copy\n"
	"of the binary, its own mount namespace, cgroups, rlimits, an optional network and pid\n"
	"namespace, and no privileges (uid/gid, no capabilities, no_new_privs).\n"
	"\n"
	"  --id ID                   1 to 64 letters, digits or '-'; passed to Ember as --id\n"
	"  --exec-file PATH          the Ember binary to copy into the jail and run\n"
	"  --uid UID, --gid GID      who Ember runs as (not 0)\n"
	"  --chroot-base-dir DIR     where jails are built (default /srv/jailer)\n"
	"  --netns PATH              join this network namespace (/var/run/netns/NAME)\n"
	"  --daemonize               setsid() and stdin/stdout/stderr to /dev/null\n"
	"  --new-pid-ns              run Ember as pid 1 of a new pid namespace; its pid is\n"
	"                            written to <jail root>/<exec-file name>.pid\n"
	"  --cgroup-version 1|2      the cgroup hierarchy for --cgroup (default 1)\n"
	"  --cgroup FILE=VALUE       write VALUE to FILE of the jail's cgroup (repeatable)\n"
	"  --parent-cgroup PATH      the cgroup to create <id> under (default: exec-file name)\n"
	"  --resource-limit fsize=N|no-file=N   an rlimit for Ember (repeatable;\n"
	"                            default no-file=2048)\n"
	"  --version, --help         print and exit 0\n"
	"\n"
	"Arguments after `--` go to Ember, after `--id ID`. Exit code 1 and one line on\n"
	"stderr naming the step and the error if a step fails; nothing half-made is left.\n";

enum {
	OPT_ID = 1,
	OPT_EXEC,
	OPT_UID,
	OPT_GID,
	OPT_BASE,
	OPT_NETNS,
	OPT_DAEMONIZE,
	OPT_PIDNS,
	OPT_CGVER,
	OPT_CGROUP,
	OPT_PARENT,
	OPT_RLIMIT,
	OPT_VERSION,
	OPT_HELP,
};

static const struct option options[] = {
	{ "id", required_argument, NULL, OPT_ID },
	{ "exec-file", required_argument, NULL, OPT_EXEC },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "chroot-base-dir", required_argument, NULL, OPT_BASE },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "daemonize", no_argument, NULL, OPT_DAEMONIZE },
	{ "new-pid-ns", no_argument, NULL, OPT_PIDNS },
	{ "cgroup-version", required_argument, NULL, OPT_CGVER },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "parent-cgroup", required_argument, NULL, OPT_PARENT },
	{ "resource-limit", required_argument, NULL, OPT_RLIMIT },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

int jail_args__check_id(const char *id)
{
	size_t n = strlen(id);

	if (!n || n > JAIL_ID_MAX)
		return jail_error__set(-EINVAL, "--id '%s': must be 1 to %d characters", id,
				       JAIL_ID_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			return jail_error__set(
				-EINVAL, "--id '%s': only letters, digits and '-' are allowed", id);
	}
	return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)s[0]) || *end || errno || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Ember never runs as root: a jail whose process is uid 0 or gid 0 is no jail. */
static int parse_id_number(const char *opt, const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, UINT32_MAX - 1, &v))
		return jail_error__set(-EINVAL, "%s '%s': must be a number from 1 to %u", opt, s,
				       UINT32_MAX - 1);
	if (v == 0)
		return jail_error__set(-EINVAL,
				       "%s 0: refusing to run Ember as root; give an unprivileged "
				       "%s (not 0)",
				       opt, opt + 2);
	*out = (uint32_t)v;
	return 0;
}

/* "cpu.shares=512": a plain file name "<controller>.<name>", then any value. */
static int parse_cgroup(const char *arg, struct jail_args *a)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0;
	struct jail_cgroup_arg *c;

	if (a->n_cgroups == JAIL_MAX_CGROUPS)
		return jail_error__set(-EINVAL, "--cgroup: at most %d of them", JAIL_MAX_CGROUPS);
	if (!eq || !n || n >= sizeof(c->file) || !memchr(arg, '.', n) || arg[0] == '.')
		return jail_error__set(-EINVAL,
				       "--cgroup '%s': must be FILE=VALUE with FILE like "
				       "cpu.shares",
				       arg);
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)arg[i]) && !strchr("._-", arg[i]))
			return jail_error__set(-EINVAL, "--cgroup '%s': bad file name", arg);
	}
	if (strchr(eq + 1, '\n'))
		return jail_error__set(-EINVAL, "--cgroup '%s': a newline in the value", arg);
	c = &a->cgroups[a->n_cgroups++];
	memcpy(c->file, arg, n);
	c->file[n] = '\0';
	c->value = eq + 1;
	return 0;
}

static int parse_rlimit(const char *arg, struct jail_args *a)
{
	static const struct {
		const char *name;
		int resource;
	} known[] = { { "fsize", RLIMIT_FSIZE }, { "no-file", RLIMIT_NOFILE } };
	const char *eq = strchr(arg, '=');
	uint64_t v;

	if (a->n_rlimits == JAIL_MAX_RLIMITS)
		return jail_error__set(-EINVAL, "--resource-limit: at most %d of them",
				       JAIL_MAX_RLIMITS);
	for (size_t i = 0; eq && i < sizeof(known) / sizeof(known[0]); i++) {
		if (strlen(known[i].name) != (size_t)(eq - arg) ||
		    strncmp(arg, known[i].name, (size_t)(eq - arg)))
			continue;
		if (parse_u64(eq + 1, UINT64_MAX - 1, &v))
			return jail_error__set(-EINVAL, "--resource-limit '%s': not a number",
					       arg);
		a->rlimits[a->n_rlimits++] = (struct jail_rlimit){
			.resource = known[i].resource, .name = known[i].name, .value = v
		};
		return 0;
	}
	return jail_error__set(-EINVAL,
			       "--resource-limit '%s': must be fsize=N or no-file=N", arg);
}

/* A relative path of plain components: no "..", no "//", no leading '/'. */
static int check_relative(const char *opt, const char *p)
{
	const char *s = p;

	if (!p[0] || p[0] == '/')
		return jail_error__set(-EINVAL, "%s '%s': must be a relative path", opt, p);
	while (*s) {
		size_t n = strcspn(s, "/");

		if (!n || (n == 1 && s[0] == '.') || (n == 2 && !strncmp(s, "..", 2)))
			return jail_error__set(-EINVAL, "%s '%s': '.', '..' or an empty component",
					       opt, p);
		s += n;
		if (*s == '/')
			s++;
	}
	return 0;
}

static int handle(int opt, const char *arg, struct jail_args *a)
{
	switch (opt) {
	case OPT_ID:
		a->id = arg;
		return 0;
	case OPT_EXEC:
		a->exec_file = arg;
		return 0;
	case OPT_UID:
		return parse_id_number("--uid", arg, &a->uid);
	case OPT_GID:
		return parse_id_number("--gid", arg, &a->gid);
	case OPT_BASE:
		a->chroot_base = arg;
		if (arg[0] != '/')
			return jail_error__set(-EINVAL, "--chroot-base-dir '%s': must be absolute",
					       arg);
		return 0;
	case OPT_NETNS:
		a->netns = arg;
		return 0;
	case OPT_DAEMONIZE:
		a->daemonize = true;
		return 0;
	case OPT_PIDNS:
		a->new_pid_ns = true;
		return 0;
	case OPT_CGVER:
		if (strcmp(arg, "1") && strcmp(arg, "2"))
			return jail_error__set(-EINVAL, "--cgroup-version '%s': must be 1 or 2",
					       arg);
		a->cgroup_version = arg[0] - '0';
		return 0;
	case OPT_CGROUP:
		return parse_cgroup(arg, a);
	case OPT_PARENT:
		a->parent_cgroup = arg;
		return check_relative("--parent-cgroup", arg);
	case OPT_RLIMIT:
		return parse_rlimit(arg, a);
	case OPT_VERSION:
		a->action = JAIL_VERSION;
		return 0;
	case OPT_HELP:
		a->action = JAIL_HELP;
		return 0;
	default:
		return jail_error__set(-EINVAL, "unknown or incomplete option (try --help)");
	}
}

static int check_required(struct jail_args *a)
{
	const char *slash;

	if (!a->id || !a->exec_file || !a->uid || !a->gid)
		return jail_error__set(-EINVAL,
				       "--id, --exec-file, --uid and --gid are required (try "
				       "--help)");
	slash = strrchr(a->exec_file, '/');
	a->exec_name = slash ? slash + 1 : a->exec_file;
	if (!a->exec_name[0] || !strcmp(a->exec_name, ".") || !strcmp(a->exec_name, ".."))
		return jail_error__set(-EINVAL, "--exec-file '%s': names no file", a->exec_file);
	if (!a->parent_cgroup)
		a->parent_cgroup = a->exec_name;
	if (!a->chroot_base)
		a->chroot_base = JAIL_DEFAULT_BASE;
	return 0;
}

int jail_args__parse(int argc, char **argv, struct jail_args *a)
{
	int opt, ret;

	memset(a, 0, sizeof(*a));
	a->cgroup_version = 1;
	optind = 0;
	opterr = 0;
	/* '+': stop at the first non-option, so that Ember's arguments stay Ember's */
	while ((opt = getopt_long(argc, argv, "+:", options, NULL)) != -1) {
		if (opt == ':')
			return jail_error__set(-EINVAL, "option '%s' needs an argument",
					       argv[optind - 1]);
		if (opt == '?')
			return jail_error__set(-EINVAL, "unknown option '%s' (try --help)",
					       argv[optind - 1]);
		ret = handle(opt, optarg, a);
		if (ret)
			return ret;
	}
	if (optind < argc && strcmp(argv[optind - 1], "--"))
		return jail_error__set(-EINVAL, "unexpected argument '%s' (Ember's go after --)",
				       argv[optind]);
	a->exec_args = argv + optind;
	a->n_exec_args = argc - optind;
	if (a->action != JAIL_RUN)
		return 0;
	return check_required(a);
}
