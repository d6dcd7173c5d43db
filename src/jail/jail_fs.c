// SPDX-License-Identifier: Apache-2.0
#include "jail/jail_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "jail/jail_elf.h"
#include "jail/jail_error.h"
#include "jail/jail_path.h"

/* mkdir -p, remembering each directory it made (for jail_fs__remove()). */
static int make_dirs(struct jail_fs *fs, const char *path, bool remember)
{
	char p[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(p))
		return jail_error__set(-ENAMETOOLONG, "%s", path);
	memcpy(p, path, n + 1);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;

		*s = '\0';
		if (!mkdir(p, 0755)) {
			if (remember && fs->n_made < JAIL_FS_MAX_MADE)
				snprintf(fs->made[fs->n_made++], PATH_MAX, "%s", p);
		} else if (errno != EEXIST) {
			return jail_error__set(-errno, "creating %s", p);
		}
		if (!c)
			return 0;
		*s = c;
	}
}

static int copy_data(int in, int out)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n > 0)
			continue;
		if (n == 0)
			return 0;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t done = 0, w; done < n; done += w) {
			w = write(out, buf + done, (size_t)(n - done));
			if (w < 0)
				return -errno;
		}
	}
	return n < 0 ? -errno : 0;
}

/* Copies a host file to dst (which must not exist), mode 0755, owned by root. */
static int copy_file(const char *src, const char *dst)
{
	int in, out, ret;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return jail_error__set(-errno, "opening %s", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	if (out < 0) {
		ret = jail_error__set(-errno, "creating %s", dst);
		goto out_in;
	}
	ret = copy_data(in, out);
	if (ret)
		jail_error__set(ret, "copying %s to %s", src, dst);
	else if (fchmod(out, 0755))
		ret = jail_error__set(-errno, "chmod %s", dst);
	close(out);
out_in:
	close(in);
	return ret;
}

/* The loader and libraries go to the same paths inside the jail. */
static int copy_deps(struct jail_fs *fs, const struct jail_elf_deps *deps)
{
	char dst[PATH_MAX];
	int ret;

	for (int i = 0; i < deps->n; i++) {
		ret = jail_path__fmt(dst, sizeof(dst), "%s%s", fs->root, deps->path[i]);
		if (ret)
			return ret;
		*strrchr(dst, '/') = '\0';
		ret = make_dirs(fs, dst, false);
		if (ret)
			return ret;
		dst[strlen(dst)] = '/';
		ret = copy_file(deps->path[i], dst);
		if (ret)
			return ret;
	}
	return 0;
}

/* The host's device numbers, read before the host's /dev is out of sight. */
static int stat_devices(struct jail_fs *fs)
{
	static const struct jail_dev devs[] = {
		{ .path = "/dev/kvm" },
		{ .path = "/dev/net/tun" },
		{ .path = "/dev/userfaultfd", .optional = true },
	};
	struct stat st;

	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		fs->devs[i] = devs[i];
		if (!stat(devs[i].path, &st) && S_ISCHR(st.st_mode)) {
			fs->devs[i].present = true;
			fs->devs[i].rdev = st.st_rdev;
		} else if (!devs[i].optional) {
			return jail_error__set(errno ? -errno : -ENODEV, "%s on the host",
					       devs[i].path);
		}
	}
	return 0;
}

static int check_exec_file(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return jail_error__set(-errno, "--exec-file %s", path);
	if (!S_ISREG(st.st_mode))
		return jail_error__set(-EINVAL, "--exec-file %s: not a regular file", path);
	return 0;
}

static int make_id_dir(struct jail_fs *fs, const struct jail_args *a)
{
	int ret = make_dirs(fs, fs->exec_dir, true);

	if (ret)
		return ret;
	fs->exec_dir_fd = open(fs->exec_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->exec_dir_fd < 0)
		return jail_error__set(-errno, "opening %s", fs->exec_dir);
	if (mkdirat(fs->exec_dir_fd, a->id, 0755)) {
		if (errno == EEXIST)
			return jail_error__set(-EEXIST,
					       "%s/%s exists: a jail with id %s was made there "
					       "already (ids must be unique; remove it first)",
					       fs->exec_dir, a->id, a->id);
		return jail_error__set(-errno, "creating %s/%s", fs->exec_dir, a->id);
	}
	fs->made_id_dir = true;
	if (mkdir(fs->root, 0755))
		return jail_error__set(-errno, "creating %s", fs->root);
	return 0;
}

int jail_fs__create(struct jail_fs *fs, const struct jail_args *a)
{
	static struct jail_elf_deps deps;
	char path[PATH_MAX];
	int ret;

	memset(fs, 0, sizeof(*fs));
	fs->exec_dir_fd = -1;
	fs->host_root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->host_root_fd < 0)
		return jail_error__set(-errno, "opening /");
	fs->id = a->id;
	ret = jail_path__fmt(fs->exec_dir, sizeof(fs->exec_dir), "%s/%s", a->chroot_base,
			     a->exec_name);
	if (!ret)
		ret = jail_path__fmt(fs->root, sizeof(fs->root), "%s/%s/root", fs->exec_dir, a->id);
	/* everything that can be checked is checked before anything is made */
	if (!ret)
		ret = check_exec_file(a->exec_file);
	if (!ret)
		ret = jail_elf__deps(a->exec_file, &deps);
	if (!ret)
		ret = stat_devices(fs);
	if (!ret)
		ret = make_id_dir(fs, a);
	if (ret)
		return ret;
	ret = jail_path__fmt(path, sizeof(path), "%s/%s", fs->root, a->exec_name);
	if (!ret)
		ret = copy_file(a->exec_file, path);
	if (!ret)
		ret = copy_deps(fs, &deps);
	if (!ret)
		ret = jail_path__fmt(path, sizeof(path), "%s/run", fs->root);
	if (!ret && mkdir(path, 0755))
		ret = jail_error__set(-errno, "creating %s", path);
	return ret;
}

/* rm -rf name, below dirfd; does not follow symbolic links. */
static int remove_tree(int dirfd, const char *name)
{
	struct dirent *e;
	DIR *d;
	int fd;

	if (!unlinkat(dirfd, name, 0) || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			remove_tree(fd, e->d_name);
	}
	closedir(d);
	return unlinkat(dirfd, name, AT_REMOVEDIR) ? -errno : 0;
}

void jail_fs__remove(struct jail_fs *fs)
{
	if (fs->made_id_dir && fs->exec_dir_fd >= 0)
		remove_tree(fs->exec_dir_fd, fs->id);
	fs->made_id_dir = false;
	if (fs->exec_dir_fd >= 0)
		close(fs->exec_dir_fd);
	fs->exec_dir_fd = -1;
	/* shared with other jails: removed only while empty; through the host's root, which
	 * may be out of sight already */
	while (fs->n_made > 0 && fs->host_root_fd >= 0)
		unlinkat(fs->host_root_fd, fs->made[--fs->n_made] + 1, AT_REMOVEDIR);
	if (fs->host_root_fd >= 0)
		close(fs->host_root_fd);
	fs->host_root_fd = -1;
}

/* The statvfs() flags a bind remount must repeat so as not to drop them. */
static unsigned long mount_flags(unsigned long st)
{
	static const struct {
		unsigned long st, ms;
	} map[] = {
		{ ST_RDONLY, MS_RDONLY },     { ST_NODEV, MS_NODEV },
		{ ST_NOEXEC, MS_NOEXEC },     { ST_NOATIME, MS_NOATIME },
		{ ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
	};
	unsigned long ms = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		ms |= st & map[i].st ? map[i].ms : 0;
	return ms;
}

int jail_fs__enter(struct jail_fs *fs)
{
	struct statvfs sv;

	if (unshare(CLONE_NEWNS))
		return jail_error__set(-errno, "unshare(CLONE_NEWNS)");
	/* nothing done below may reach the host's mount namespace */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return jail_error__set(-errno, "making / private");
	if (mount(fs->root, fs->root, NULL, MS_BIND, NULL))
		return jail_error__set(-errno, "bind-mounting %s", fs->root);
	/* a bind takes its flags from a remount: nosuid, and the file system's own kept */
	if (statvfs(fs->root, &sv))
		return jail_error__set(-errno, "statvfs %s", fs->root);
	if (mount(NULL, fs->root, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | mount_flags(sv.f_flag),
		  NULL))
		return jail_error__set(-errno, "remounting %s nosuid", fs->root);
	if (chdir(fs->root))
		return jail_error__set(-errno, "chdir %s", fs->root);
	/* pivot_root(2): the old root is stacked on "." and detached just after */
	if (syscall(SYS_pivot_root, ".", "."))
		return jail_error__set(-errno, "pivot_root to %s", fs->root);
	if (umount2(".", MNT_DETACH))
		return jail_error__set(-errno, "detaching the old root");
	if (chroot(".") || chdir("/"))
		return jail_error__set(-errno, "chroot %s", fs->root);
	return 0;
}

int jail_fs__make_devices(struct jail_fs *fs, uid_t uid, gid_t gid)
{
	static const char *const dirs[] = { "/dev", "/dev/net" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (mkdir(dirs[i], 0755) && errno != EEXIST)
			return jail_error__set(-errno, "creating %s in the jail", dirs[i]);
	}
	for (size_t i = 0; i < sizeof(fs->devs) / sizeof(fs->devs[0]); i++) {
		const struct jail_dev *d = &fs->devs[i];

		if (!d->present)
			continue;
		if (mknod(d->path, S_IFCHR | 0600, d->rdev))
			return jail_error__set(-errno, "mknod %s (%u:%u) in the jail", d->path,
					       major(d->rdev), minor(d->rdev));
		if (chown(d->path, uid, gid))
			return jail_error__set(-errno, "chown %s in the jail", d->path);
	}
	/* Ember makes its API socket, logs and metrics in the jail */
	if (chown("/", uid, gid) || chown("/run", uid, gid))
		return jail_error__set(-errno, "chown of the jail's / and /run to %u:%u", uid, gid);
	return 0;
}

int jail_fs__write_pid(const char *exec_name, pid_t pid)
{
	char path[PATH_MAX], line[32];
	int fd, n, ret = 0;

	ret = jail_path__fmt(path, sizeof(path), "/%s.pid", exec_name);
	if (ret)
		return ret;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return jail_error__set(-errno, "creating %s in the jail", path);
	n = snprintf(line, sizeof(line), "%d\n", (int)pid);
	if (write(fd, line, (size_t)n) != n)
		ret = jail_error__set(-EIO, "writing %s in the jail", path);
	close(fd);
	return ret;
}
