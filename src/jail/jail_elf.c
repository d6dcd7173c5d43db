// SPDX-License-Identifier: Apache-2.0
#include "jail/jail_elf.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/jail_error.h"

/* ld.so's own list on glibc (x86_64 Debian first), then the other usual ones. */
static const char *const system_dirs[] = {
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib",
	"/usr/lib",
};

struct elf_file {
	const unsigned char *p;
	size_t size;
	const Elf64_Phdr *ph;
	int phnum;
};

/* p[off, off + len) inside the file, or NULL. */
static const void *at(const struct elf_file *f, uint64_t off, uint64_t len)
{
	if (off > f->size || len > f->size - off)
		return NULL;
	return f->p + off;
}

static int elf_open(const char *path, struct elf_file *f)
{
	const Elf64_Ehdr *eh;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return jail_error__set(-errno, "opening %s", path);
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(*eh)) {
		close(fd);
		return jail_error__set(-ENOEXEC, "%s: not an ELF file", path);
	}
	f->size = (size_t)st.st_size;
	f->p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f->p == MAP_FAILED)
		return jail_error__set(-errno, "mapping %s", path);
	eh = (const Elf64_Ehdr *)f->p;
	f->ph = at(f, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr));
	f->phnum = eh->e_phnum;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || !f->ph) {
		munmap((void *)f->p, f->size);
		return jail_error__set(-ENOEXEC, "%s: not an ELF64 file", path);
	}
	return 0;
}

/* The file offset of a virtual address, through the PT_LOAD segments. */
static int vaddr_to_off(const struct elf_file *f, uint64_t va, uint64_t *off)
{
	for (int i = 0; i < f->phnum; i++) {
		const Elf64_Phdr *ph = &f->ph[i];

		if (ph->p_type == PT_LOAD && va >= ph->p_vaddr && va - ph->p_vaddr < ph->p_filesz) {
			*off = ph->p_offset + (va - ph->p_vaddr);
			return 0;
		}
	}
	return -ENOEXEC;
}

/* A NUL-terminated string at off, or NULL. */
static const char *str_at(const struct elf_file *f, uint64_t off)
{
	const char *s = at(f, off, 1);

	return s && memchr(s, '\0', f->size - off) ? s : NULL;
}

static bool listed(const struct jail_elf_deps *d, const char *path)
{
	for (int i = 0; i < d->n; i++) {
		if (!strcmp(d->path[i], path))
			return true;
	}
	return false;
}

static int add(struct jail_elf_deps *d, const char *path)
{
	if (listed(d, path))
		return 0;
	if (d->n == JAIL_ELF_MAX_DEPS)
		return jail_error__set(-E2BIG, "more than %d shared libraries", JAIL_ELF_MAX_DEPS);
	snprintf(d->path[d->n++], PATH_MAX, "%s", path);
	return 0;
}

static bool try_dir(const char *dir, const char *name, char *out)
{
	struct stat st;

	if (dir[0] != '/' || strchr(dir, '$'))
		return false; /* $ORIGIN and relative entries are not followed */
	if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return false;
	return !stat(out, &st) && S_ISREG(st.st_mode);
}

/* ld.so's search: DT_RUNPATH (a ':' list), then the system directories. */
static int find_lib(const char *name, const char *runpath, const char *needed_by, char *out)
{
	char dir[PATH_MAX];

	if (strchr(name, '/'))
		return try_dir("/", name, out) ? 0 : jail_error__set(-ENOENT, "%s", name);
	for (const char *s = runpath; s && *s;) {
		size_t n = strcspn(s, ":");

		if (n < sizeof(dir)) {
			memcpy(dir, s, n);
			dir[n] = '\0';
			if (try_dir(dir, name, out))
				return 0;
		}
		s += n + (s[n] == ':');
	}
	for (size_t i = 0; i < sizeof(system_dirs) / sizeof(system_dirs[0]); i++) {
		if (try_dir(system_dirs[i], name, out))
			return 0;
	}
	return jail_error__set(-ENOENT, "%s, needed by %s, is in none of the library directories",
			       name, needed_by);
}

struct dyn_info {
	uint64_t strtab, strsz, runpath;
	bool has_strtab, has_runpath;
};

static void scan_dynamic(const Elf64_Dyn *dyn, size_t n, struct dyn_info *di)
{
	for (size_t i = 0; i < n && dyn[i].d_tag != DT_NULL; i++) {
		if (dyn[i].d_tag == DT_STRTAB) {
			di->strtab = dyn[i].d_un.d_ptr;
			di->has_strtab = true;
		} else if (dyn[i].d_tag == DT_STRSZ) {
			di->strsz = dyn[i].d_un.d_val;
		} else if (dyn[i].d_tag == DT_RUNPATH || dyn[i].d_tag == DT_RPATH) {
			di->runpath = dyn[i].d_un.d_val;
			di->has_runpath = true;
		}
	}
}

/* Adds the DT_NEEDED libraries of one object, resolved, to deps. */
static int add_needed(const struct elf_file *f, const Elf64_Phdr *dph, const char *path,
		      struct jail_elf_deps *deps)
{
	size_t n = dph->p_filesz / sizeof(Elf64_Dyn);
	const Elf64_Dyn *dyn = at(f, dph->p_offset, n * sizeof(Elf64_Dyn));
	struct dyn_info di = { 0 };
	const char *runpath = NULL, *name;
	char found[PATH_MAX];
	uint64_t stroff;
	int ret;

	if (!dyn)
		return jail_error__set(-ENOEXEC, "%s: a bad PT_DYNAMIC", path);
	scan_dynamic(dyn, n, &di);
	if (!di.has_strtab || vaddr_to_off(f, di.strtab, &stroff))
		return jail_error__set(-ENOEXEC, "%s: no usable DT_STRTAB", path);
	if (di.has_runpath)
		runpath = str_at(f, stroff + di.runpath);
	for (size_t i = 0; i < n && dyn[i].d_tag != DT_NULL; i++) {
		if (dyn[i].d_tag != DT_NEEDED)
			continue;
		name = str_at(f, stroff + dyn[i].d_un.d_val);
		if (!name)
			return jail_error__set(-ENOEXEC, "%s: a bad DT_NEEDED", path);
		ret = find_lib(name, runpath, path, found);
		if (!ret)
			ret = add(deps, found);
		if (ret)
			return ret;
	}
	return 0;
}

/* The interpreter (main object only) and the needed libraries of one object. */
static int scan_object(const char *path, bool main_object, struct jail_elf_deps *deps)
{
	struct elf_file f;
	const char *interp;
	int ret = 0;

	ret = elf_open(path, &f);
	if (ret)
		return ret;
	for (int i = 0; i < f.phnum && !ret; i++) {
		const Elf64_Phdr *ph = &f.ph[i];

		if (ph->p_type == PT_INTERP && main_object) {
			interp = at(&f, ph->p_offset, ph->p_filesz);
			if (!interp || !ph->p_filesz || interp[ph->p_filesz - 1] || interp[0] != '/')
				ret = jail_error__set(-ENOEXEC, "%s: a bad PT_INTERP", path);
			else
				ret = add(deps, interp);
		} else if (ph->p_type == PT_DYNAMIC) {
			ret = add_needed(&f, ph, path, deps);
		}
	}
	munmap((void *)f.p, f.size);
	return ret;
}

int jail_elf__deps(const char *exec_file, struct jail_elf_deps *deps)
{
	int ret;

	deps->n = 0;
	ret = scan_object(exec_file, true, deps);
	/* deps grows as libraries name libraries; each is scanned once */
	for (int i = 0; !ret && i < deps->n; i++)
		ret = scan_object(deps->path[i], false, deps);
	return ret;
}
