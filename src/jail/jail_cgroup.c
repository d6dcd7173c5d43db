// SPDX-License-Identifier: Apache-2.0
#include "jail/jail_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/jail_error.h"
#include "jail/jail_path.h"

static int write_file(const char *path, const char *value)
{
	size_t n = strlen(value);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t w;

	if (fd < 0)
		return jail_error__set(-errno, "writing %s", path);
	w = write(fd, value, n);
	if (w < 0 || (size_t)w != n) {
		int err = w < 0 ? errno : EIO;

		close(fd);
		return jail_error__set(-err, "writing '%s' to %s", value, path);
	}
	close(fd);
	return 0;
}

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return jail_error__set(-errno, "reading %s", path);
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return jail_error__set(-errno, "reading %s", path);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* "cpu.shares" -> "cpu" */
static void controller_of(const char *file, char *out, size_t size)
{
	size_t n = strcspn(file, ".");

	snprintf(out, size, "%.*s", (int)n, file);
}

/* Is word one of the comma-separated words of list? */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *s = list; *s;) {
		size_t m = strcspn(s, ",");

		if (m == n && !strncmp(s, word, n))
			return true;
		s += m + (s[m] == ',');
	}
	return false;
}

/* The mount point of the v1 hierarchy with `controller`, or of the v2 hierarchy. */
static int find_mount(int version, const char *controller, char *out)
{
	FILE *f = setmntent("/proc/mounts", "re");
	struct mntent *m;
	int ret = -ENOENT;

	if (!f)
		return jail_error__set(-errno, "reading /proc/mounts");
	while ((m = getmntent(f))) {
		if (version == 1 && (strcmp(m->mnt_type, "cgroup") ||
				     !has_word(m->mnt_opts, controller)))
			continue;
		if (version == 2 && strcmp(m->mnt_type, "cgroup2"))
			continue;
		snprintf(out, PATH_MAX, "%s", m->mnt_dir);
		ret = 0;
		break;
	}
	endmntent(f);
	if (ret && version == 1)
		return jail_error__set(ret,
				       "no cgroup v1 hierarchy in /proc/mounts has the "
				       "controller '%s'",
				       controller);
	if (ret)
		return jail_error__set(ret, "no cgroup v2 hierarchy in /proc/mounts");
	return 0;
}

/* The hierarchy a --cgroup file lives in, added to cg if new. */
static int hier_for(struct jail_cgroups *cg, int version, const char *file,
		    struct jail_cgroup_hier **out)
{
	char ctrl[64], mnt[PATH_MAX];
	struct jail_cgroup_hier *h;
	int ret;

	controller_of(file, ctrl, sizeof(ctrl));
	ret = find_mount(version, ctrl, mnt);
	if (ret)
		return ret;
	for (int i = 0; i < cg->n; i++) {
		if (!strcmp(cg->hier[i].mnt, mnt)) {
			*out = &cg->hier[i];
			return 0;
		}
	}
	if (cg->n == JAIL_CGROUP_MAX_HIER)
		return jail_error__set(-E2BIG, "more than %d cgroup hierarchies",
				       JAIL_CGROUP_MAX_HIER);
	h = &cg->hier[cg->n++];
	memset(h, 0, sizeof(*h));
	snprintf(h->mnt, sizeof(h->mnt), "%s", mnt);
	h->mnt_fd = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
	h->cpuset = version == 1 && !strcmp(ctrl, "cpuset");
	if (h->mnt_fd < 0)
		return jail_error__set(-errno, "opening %s", mnt);
	*out = h;
	return 0;
}

/* v1 cpuset: a new cpuset has no cpus and no mems, and takes no task until given some. */
static int inherit_cpuset(const char *parent, const char *dir)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	char path[PATH_MAX], value[4096];
	int ret;

	for (size_t i = 0; i < 2; i++) {
		ret = jail_path__fmt(path, sizeof(path), "%s/%s", dir, files[i]);
		if (!ret)
			ret = read_file(path, value, sizeof(value));
		if (ret)
			return ret;
		if (value[0])
			continue;
		ret = jail_path__fmt(path, sizeof(path), "%s/%s", parent, files[i]);
		if (!ret)
			ret = read_file(path, value, sizeof(value));
		if (!ret)
			ret = jail_path__fmt(path, sizeof(path), "%s/%s", dir, files[i]);
		if (!ret)
			ret = write_file(path, value);
		if (ret)
			return ret;
	}
	return 0;
}

/* mkdir -p <mnt>/<parent>/<id>; the <id> cgroup may exist already, as with Firecracker. */
static int make_dirs(struct jail_cgroup_hier *h, const struct jail_args *a)
{
	char rel[PATH_MAX], parent[PATH_MAX], dir[PATH_MAX];
	int ret;

	ret = jail_path__fmt(rel, sizeof(rel), "%s/%s", a->parent_cgroup, a->id);
	if (!ret)
		ret = jail_path__fmt(h->dir, sizeof(h->dir), "%s/%s", h->mnt, rel);
	if (ret)
		return ret;
	for (char *s = rel;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;

		*s = '\0';
		ret = jail_path__fmt(dir, sizeof(dir), "%s/%s", h->mnt, rel);
		if (ret)
			return ret;
		if (!mkdir(dir, 0755)) {
			if (h->n_made < JAIL_CGROUP_MAX_DEPTH)
				snprintf(h->made[h->n_made++], PATH_MAX, "%s", rel);
			snprintf(parent, sizeof(parent), "%s", dir);
			*strrchr(parent, '/') = '\0';
			ret = h->cpuset ? inherit_cpuset(parent, dir) : 0;
			if (ret)
				return ret;
		} else if (errno != EEXIST) {
			return jail_error__set(-errno, "creating %s", dir);
		}
		if (!c)
			return 0;
		*s = c;
	}
}

/* v2: the controllers the files need are enabled from the root down to <parent>, so that
 * <id> has their files. */
static int enable_v2_controllers(struct jail_cgroup_hier *h, const struct jail_args *a)
{
	char ctrl[64], path[PATH_MAX], avail[4096], plus[80], rel[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", h->mnt);
	ret = read_file(path, avail, sizeof(avail));
	for (char *w = avail; *w; w++)
		*w = *w == ' ' ? ',' : *w;
	for (int i = 0; !ret && i < a->n_cgroups; i++) {
		controller_of(a->cgroups[i].file, ctrl, sizeof(ctrl));
		if (!strcmp(ctrl, "cgroup"))
			continue; /* cgroup.* files are the core's, in every cgroup */
		if (!has_word(avail, ctrl))
			return jail_error__set(-ENOENT,
					       "the controller '%s' (for %s) is not enabled in "
					       "the cgroup v2 hierarchy at %s (its cgroup.controllers: "
					       "'%s')",
					       ctrl, a->cgroups[i].file, h->mnt, avail);
		snprintf(plus, sizeof(plus), "+%s", ctrl);
		snprintf(rel, sizeof(rel), "%s", a->parent_cgroup);
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", h->mnt);
		ret = write_file(path, plus);
		for (char *s = rel; !ret && *s; s++) {
			if (s[1] && s[1] != '/')
				continue;
			char c = s[1];

			s[1] = '\0';
			ret = jail_path__fmt(path, sizeof(path), "%s/%s/cgroup.subtree_control",
					     h->mnt, rel);
			if (!ret)
				ret = write_file(path, plus);
			s[1] = c;
		}
	}
	return ret;
}

static int attach(struct jail_cgroup_hier *h)
{
	char path[PATH_MAX], pid[24];
	int ret;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	ret = jail_path__fmt(path, sizeof(path), "%s/cgroup.procs", h->dir);
	if (!ret)
		ret = write_file(path, pid);
	h->attached = !ret;
	return ret;
}

int jail_cgroup__setup(struct jail_cgroups *cg, const struct jail_args *a)
{
	struct jail_cgroup_hier *h;
	char path[PATH_MAX];
	int ret;

	/* the hierarchies, all of them found before any is touched */
	for (int i = 0; i < a->n_cgroups; i++) {
		ret = hier_for(cg, a->cgroup_version, a->cgroups[i].file, &h);
		if (ret)
			return ret;
	}
	for (int i = 0; i < cg->n; i++) {
		ret = make_dirs(&cg->hier[i], a);
		if (!ret && a->cgroup_version == 2)
			ret = enable_v2_controllers(&cg->hier[i], a);
		if (ret)
			return ret;
	}
	/* every value first, then the pid */
	for (int i = 0; i < a->n_cgroups; i++) {
		hier_for(cg, a->cgroup_version, a->cgroups[i].file, &h);
		ret = jail_path__fmt(path, sizeof(path), "%s/%s", h->dir, a->cgroups[i].file);
		if (!ret)
			ret = write_file(path, a->cgroups[i].value);
		if (ret)
			return ret;
	}
	for (int i = 0; i < cg->n; i++) {
		ret = attach(&cg->hier[i]);
		if (ret)
			return ret;
	}
	return 0;
}

void jail_cgroup__remove(struct jail_cgroups *cg)
{
	char pid[24];
	int fd;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	for (int i = 0; i < cg->n; i++) {
		struct jail_cgroup_hier *h = &cg->hier[i];

		if (h->mnt_fd < 0)
			continue;
		/* a cgroup with a process in it cannot be removed: back to the root */
		fd = h->attached ? openat(h->mnt_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC) : -1;
		if (fd >= 0) {
			if (write(fd, pid, strlen(pid)) < 0) {
				/* the rmdir below fails with EBUSY; nothing more to do */
			}
			close(fd);
		}
		while (h->n_made > 0)
			unlinkat(h->mnt_fd, h->made[--h->n_made], AT_REMOVEDIR);
		close(h->mnt_fd);
		h->mnt_fd = -1;
	}
	cg->n = 0;
}
