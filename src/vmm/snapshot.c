// SPDX-License-Identifier: Apache-2.0
/*
 * Snapshots: writing a paused VM to a state file and a memory file, and making it again
 * from them. See snapshot.h; the state file's format is snapshot_file.h's, its sections
 * docs/snapshot-format.md's; the KVM side is snapshot_kvm.c, each device saves and
 * restores its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/config.h"
#include "vmm/log.h"
#include "vmm/prefetch.h"
#include "vmm/snapshot.h"
#include "vmm/snapshot_file.h"
#include "vmm/snapshot_kvm.h"
#include "vmm/snapshot_uffd.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MUST SNAPSHOT_FILE_MUST_UNDERSTAND
#define PAGE 4096ULL

/* ---- the memory file ---- */

static bool zero_page(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return !memcmp(p, zero, PAGE);
}

/* Which pages of each region go into the file: all but the zero ones (Full), or the dirty. */
struct page_plan {
	enum snapshot_type type;
	uint64_t *dirty[GMEM_MAX_REGIONS]; /* Diff: a bit per page, KVM's log and Ember's own */
	/* Full, on memory that was never restored: the pages ever mapped (others are zero) */
	uint64_t *mapped[GMEM_MAX_REGIONS];
};

static bool bit(const uint64_t *bm, uint64_t pg)
{
	return bm[pg / 64] & (1ULL << (pg % 64));
}

static bool take_page(const struct page_plan *plan, unsigned int region, const uint8_t *host,
		      uint64_t pg)
{
	if (plan->type == SNAPSHOT_TYPE_DIFF) /* a dirty zero page is data too: it was not zero */
		return bit(plan->dirty[region], pg);
	if (plan->mapped[region] && !bit(plan->mapped[region], pg))
		return false;
	return !zero_page(host + pg * PAGE);
}

#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_SWAPPED (1ULL << 62)

/*
 * Which pages of fresh anonymous guest memory were ever mapped (present or swapped out), from
 * /proc/self/pagemap: the others the guest never touched, so they are zero and need no
 * look - a 1 GiB guest that used 50 MiB is not read whole. Not for restored memory (lazy):
 * there an unmapped page is the snapshot's data. Without pagemap (no /proc in a jail) every
 * page is looked at, as before.
 */
static void find_mapped(const struct gmem *gm, struct page_plan *plan)
{
	uint64_t buf[4096];
	int fd;

	if (gm->lazy)
		return;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct gmem_region *r = &gm->regions[i];
		uint64_t pages = r->size / PAGE, base = (uint64_t)(uintptr_t)r->host / PAGE;
		uint64_t *bm = calloc(memory__bitmap_words(r->size), sizeof(uint64_t));

		for (uint64_t pg = 0; bm && pg < pages;) {
			uint64_t want = pages - pg < 4096 ? pages - pg : 4096;
			ssize_t got = pread(fd, buf, want * 8, (off_t)((base + pg) * 8));

			if (got <= 0 || got % 8) {
				free(bm);
				bm = NULL;
				break;
			}
			for (uint64_t k = 0; k < (uint64_t)got / 8; k++, pg++) {
				if (buf[k] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED))
					bm[pg / 64] |= 1ULL << (pg % 64);
			}
		}
		plan->mapped[i] = bm;
	}
	close(fd);
}

/* Region after region, the pages the plan takes; the others are holes (the file is sparse). */
static int write_memory(int fd, const struct gmem *gm, const struct page_plan *plan,
			const char *path)
{
	uint64_t off = 0;

	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct gmem_region *r = &gm->regions[i];
		uint64_t pages = r->size / PAGE;

		for (uint64_t pg = 0; pg < pages;) {
			uint64_t n = 0;
			ssize_t w;

			while (pg < pages && !take_page(plan, i, r->host, pg))
				pg++;
			while (pg + n < pages && n < (64ULL << 20) / PAGE &&
			       take_page(plan, i, r->host, pg + n))
				n++;
			if (!n)
				continue;
			w = pwrite(fd, r->host + pg * PAGE, n * PAGE, (off_t)(off + pg * PAGE));
			if (w != (ssize_t)(n * PAGE))
				return error__set(w < 0 ? -errno : -EIO, "memory file %s: %s", path,
						  w < 0 ? strerror(errno) : "short write");
			pg += n;
		}
		off += r->size;
	}
	if (ftruncate(fd, (off_t)off))
		return error__set(-errno, "memory file %s: %s", path, strerror(errno));
	return 0;
}

/* Durably: a temporary file beside path, fsync, rename, fsync of the directory. */
static int save_memory(const struct gmem *gm, const struct page_plan *plan, const char *path)
{
	char tmp[SNAPSHOT_PATH_MAX + 16], dir[SNAPSHOT_PATH_MAX];
	int fd, dfd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return error__set(-ENAMETOOLONG, "memory file %s: the path is too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return error__set(-errno, "memory file %s: %s", tmp, strerror(errno));
	ret = write_memory(fd, gm, plan, path);
	if (!ret && fsync(fd))
		ret = error__set(-errno, "memory file %s: fsync: %s", tmp, strerror(errno));
	close(fd);
	if (!ret && rename(tmp, path))
		ret = error__set(-errno, "memory file %s: %s", path, strerror(errno));
	if (ret) {
		unlink(tmp);
		return ret;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static void free_plan(struct page_plan *plan)
{
	for (unsigned int i = 0; i < GMEM_MAX_REGIONS; i++) {
		free(plan->dirty[i]);
		free(plan->mapped[i]);
		plan->dirty[i] = plan->mapped[i] = NULL;
	}
}

/*
 * With dirty-page tracking: every page written since the last snapshot (or the restore),
 * by the guest (KVM's log) or by Ember (memory.h), collected and cleared - for a Diff the
 * pages it holds, for a Full the start of the next Diff.
 */
static int collect_dirty(struct vm *vm, struct page_plan *plan)
{
	for (unsigned int i = 0; i < vm->gmem.nr_regions; i++) {
		int ret;

		plan->dirty[i] = calloc(memory__bitmap_words(vm->gmem.regions[i].size),
					sizeof(uint64_t));
		if (!plan->dirty[i])
			return error__set(-ENOMEM, "out of memory for the dirty-page bitmap");
		ret = vm__get_dirty_log(vm, i, plan->dirty[i]);
		memory__take_dirty(&vm->gmem, i, plan->dirty[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* A Diff that failed: its pages are dirty still, for the next one. */
static void give_back_dirty(struct vm *vm, const struct page_plan *plan)
{
	for (unsigned int i = 0; i < vm->gmem.nr_regions; i++) {
		const struct gmem_region *r = &vm->gmem.regions[i];

		for (uint64_t w = 0; plan->dirty[i] && r->dirty && w < memory__bitmap_words(r->size);
		     w++)
			__atomic_fetch_or(&r->dirty[w], plan->dirty[i][w], __ATOMIC_RELAXED);
	}
}

/* ---- the state file ---- */

static int save_layout(struct snapshot_file_writer *w, const struct gmem *gm,
		       enum snapshot_type type)
{
	uint64_t off = 0;

	snapshot_file__begin_section(w, SNAPSHOT_SECTION_MEMORY_LAYOUT, MUST);
	snapshot_file__put_u64(w, PAGE);
	snapshot_file__put_u8(w, (uint8_t)type);
	for (unsigned int i = 0; i < gm->nr_regions; i++)
		off += gm->regions[i].size;
	snapshot_file__put_u64(w, off);
	snapshot_file__put_u32(w, gm->nr_regions);
	off = 0;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		snapshot_file__put_u64(w, gm->regions[i].gpa);
		snapshot_file__put_u64(w, gm->regions[i].size);
		snapshot_file__put_u64(w, off);
		off += gm->regions[i].size;
	}
	return snapshot_file__end_section(w);
}

static int save_state(struct vm *vm, const struct vm_config *cfg, enum snapshot_type type,
		      struct snapshot_file_writer *w)
{
	char *json = config__to_json(cfg);
	int ret;

	if (!json)
		return error__set(-ENOMEM, "out of memory");
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_VM_CONFIG, MUST);
	snapshot_file__put_bytes(w, json, strlen(json));
	free(json);
	ret = snapshot_file__end_section(w);
	if (!ret)
		ret = save_layout(w, &vm->gmem, type);
	/* the devices first: virtio-blk completes its requests in flight, and the interrupts
	 * that raises are then in the irqchip state saved after it */
	if (!ret)
		ret = vm__save_devices(vm, w);
	if (!ret)
		ret = snapshot_kvm__save_vm(vm, w);
	for (uint32_t i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = snapshot_kvm__save_vcpu(&vm->vcpus[i], &vm->kvm, w);
	return ret;
}

int snapshot__create(struct vm *vm, const struct vm_config *cfg,
		     const struct snapshot_create_params *p, bool *has_base)
{
	struct page_plan plan = { .type = p->type };
	struct snapshot_file_writer w;
	char cpu[SNAPSHOT_FILE_STR_MAX + 1];
	const uint8_t *data;
	size_t len;
	int ret;

	if (p->type == SNAPSHOT_TYPE_DIFF && !cfg->machine.track_dirty_pages)
		return error__set(-EINVAL, "a Diff snapshot needs dirty-page tracking: set "
				  "track_dirty_pages in machine-config (or at snapshot/load)");
	if (p->type == SNAPSHOT_TYPE_DIFF && !*has_base)
		return error__set(-EINVAL, "a Diff snapshot holds the pages changed since the last "
				  "snapshot: take a Full one first (or load one with "
				  "track_dirty_pages)");
	snapshot_file__host_cpu_model(cpu, sizeof(cpu));
	ret = snapshot_file__writer_init(&w, NULL, cpu);
	if (ret)
		return ret;
	ret = save_state(vm, cfg, p->type, &w);
	if (!ret)
		ret = snapshot_file__finish(&w, &data, &len);
	/* after the devices' save: blk's requests in flight have landed in guest memory */
	if (!ret && cfg->machine.track_dirty_pages)
		ret = collect_dirty(vm, &plan);
	if (!ret && p->type == SNAPSHOT_TYPE_FULL)
		find_mapped(&vm->gmem, &plan);
	/* the memory first: a state file is never there without its memory */
	if (!ret)
		ret = save_memory(&vm->gmem, &plan, p->mem_file_path);
	if (!ret)
		ret = snapshot_file__write(p->snapshot_path, data, len);
	if (ret && p->type == SNAPSHOT_TYPE_DIFF)
		give_back_dirty(vm, &plan);
	if (!ret && cfg->machine.track_dirty_pages)
		*has_base = true;
	free_plan(&plan);
	snapshot_file__writer_free(&w);
	return ret;
}

/* ---- loading ---- */

struct layout {
	uint64_t total;
	uint32_t nr;
	uint64_t gpa[GMEM_MAX_REGIONS], size[GMEM_MAX_REGIONS], offset[GMEM_MAX_REGIONS];
};

static int read_layout(const struct snapshot_file_reader *r, struct layout *l)
{
	struct snapshot_file_section s;
	struct snapshot_file_cursor c;
	uint64_t page;
	uint8_t type;
	int ret = snapshot_file__find(r, SNAPSHOT_SECTION_MEMORY_LAYOUT, &s);

	if (ret)
		return ret;
	snapshot_file__cursor(&s, &c);
	ret = snapshot_file__get_u64(&c, &page);
	if (!ret)
		ret = snapshot_file__get_u8(&c, &type);
	if (!ret)
		ret = snapshot_file__get_u64(&c, &l->total);
	if (!ret)
		ret = snapshot_file__get_u32(&c, &l->nr);
	if (ret)
		return ret;
	if (page != PAGE || type > SNAPSHOT_TYPE_DIFF || !l->nr || l->nr > GMEM_MAX_REGIONS)
		return error__set(-EINVAL, "the snapshot's memory layout is not one this Ember "
				  "restores (page %llu, type %u, %u regions)",
				  (unsigned long long)page, type, l->nr);
	for (uint32_t i = 0; !ret && i < l->nr; i++) {
		ret = snapshot_file__get_u64(&c, &l->gpa[i]);
		if (!ret)
			ret = snapshot_file__get_u64(&c, &l->size[i]);
		if (!ret)
			ret = snapshot_file__get_u64(&c, &l->offset[i]);
	}
	return ret ? ret : snapshot_file__expect_end(&c);
}

static int read_config(const struct snapshot_file_reader *r, struct vm_config *cfg)
{
	struct snapshot_file_section s;
	char why[256];
	int ret = snapshot_file__find(r, SNAPSHOT_SECTION_VM_CONFIG, &s);

	if (ret)
		return ret;
	config__init(cfg);
	ret = config__parse(cfg, (const char *)s.data, s.len);
	if (ret) {
		snprintf(why, sizeof(why), "%s", error__get());
		return error__set(ret, "the snapshot's configuration: %s", why);
	}
	return 0;
}

static int apply_overrides(struct vm_config *cfg, const struct snapshot_load_params *p)
{
	for (unsigned int i = 0; i < p->nr_net_overrides; i++) {
		const struct snapshot_net_override *o = &p->net[i];
		unsigned int k;

		for (k = 0; k < cfg->nr_net; k++) {
			if (!strcmp(cfg->net[k].iface_id, o->iface_id))
				break;
		}
		if (k == cfg->nr_net)
			return error__set(-EINVAL, "network_overrides: the snapshot has no network "
					  "interface '%s'", o->iface_id);
		free(cfg->net[k].host_dev_name);
		cfg->net[k].host_dev_name = strdup(o->host_dev_name);
		if (!cfg->net[k].host_dev_name)
			return error__set(-ENOMEM, "out of memory");
	}
	if (p->has_vsock_override) {
		if (!cfg->has_vsock)
			return error__set(-EINVAL, "vsock_override: the snapshot has no vsock device");
		free(cfg->vsock.uds_path);
		cfg->vsock.uds_path = strdup(p->vsock_uds_path);
		if (!cfg->vsock.uds_path)
			return error__set(-ENOMEM, "out of memory");
	}
	cfg->machine.track_dirty_pages = p->track_dirty_pages;
	return 0;
}

/* The memory file, checked against the layout, mapped copy-on-write. */
static int map_file(const struct snapshot_load_params *p, const struct layout *l,
		    struct gmem *mem)
{
	struct stat st;
	uint64_t need = 0;
	int fd, ret;

	for (uint32_t i = 0; i < l->nr; i++) {
		if (l->offset[i] + l->size[i] > need)
			need = l->offset[i] + l->size[i];
	}
	fd = open(p->backend_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error__set(-errno, "memory file %s: %s", p->backend_path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != need)
		ret = error__set(-EINVAL, "memory file %s: %llu bytes, the snapshot's memory "
				 "is %llu", p->backend_path, (unsigned long long)st.st_size,
				 (unsigned long long)need);
	else
		ret = memory__map_file(mem, l->total, fd, l->offset);
	close(fd); /* the mappings keep the file */
	return ret;
}

/* Guest memory for the restore, from the memory file or through the uffd handler. */
static int map_memory(const struct snapshot_load_params *p, const struct layout *l,
		      const struct vm_config *cfg, struct gmem *mem)
{
	if (l->total != cfg->machine.mem_size_mib << 20)
		return error__set(-EINVAL, "the snapshot's memory is %llu bytes, its machine-config "
				  "says %llu MiB", (unsigned long long)l->total,
				  (unsigned long long)cfg->machine.mem_size_mib);
	struct memory_backing b;
	int ret;

	vm__memory_backing(cfg, &b);
	if (p->backend == SNAPSHOT_BACKEND_UFFD)
		return snapshot_uffd__map(mem, l->total, &b, l->offset, p->backend_path);
	/* a file's pages are 4 KiB page-cache pages: hugetlbfs memory cannot map them */
	if (b.huge == MEMORY_HUGE_2M)
		return error__set(-EINVAL, "the snapshot's memory is backed by 2 MiB huge pages "
				  "(huge_pages 2M): it restores through the Uffd backend only");
	ret = map_file(p, l, mem);
	if (ret)
		return ret;
	ret = memory__advise(mem, &b);
	if (ret)
		memory__unmap(mem);
	return ret;
}

/* The regions Ember lays out for cfg must be the snapshot's. */
static int check_regions(const struct vm *vm, const struct layout *l)
{
	if (vm->gmem.nr_regions != l->nr)
		return error__set(-EINVAL, "the snapshot's memory has %u regions, this Ember "
				  "lays out %u", l->nr, vm->gmem.nr_regions);
	for (uint32_t i = 0; i < l->nr; i++) {
		if (vm->gmem.regions[i].gpa != l->gpa[i] || vm->gmem.regions[i].size != l->size[i])
			return error__set(-EINVAL, "the snapshot's memory region %u differs from "
					  "this Ember's layout", i);
	}
	return 0;
}

#define SWAP(a, b)                                                                                 \
	do {                                                                                       \
		__typeof__(a) t_ = (a);                                                            \
		(a) = (b);                                                                         \
		(b) = t_;                                                                          \
	} while (0)

/*
 * The snapshot's config, with the running Ember's logger, metrics and serial output in
 * place of the snapshot's (they belong to this process, not to the guest), and p's
 * overrides. 0 or -errno; *out is the caller's to free.
 */
static int make_config(const struct snapshot_file_reader *r, const struct vm_config *current,
		       const struct snapshot_load_params *p, struct vm_config *out)
{
	struct vm_config cur;
	int ret = read_config(r, out);

	if (ret)
		return ret;
	if (config__copy(&cur, current)) {
		config__free(out);
		return error__set(-ENOMEM, "out of memory");
	}
	SWAP(out->has_logger, cur.has_logger);
	SWAP(out->logger, cur.logger);
	SWAP(out->has_metrics, cur.has_metrics);
	SWAP(out->metrics, cur.metrics);
	SWAP(out->serial, cur.serial);
	config__free(&cur);
	ret = apply_overrides(out, p);
	if (ret)
		config__free(out);
	return ret;
}

/* The load's prefetch or working-set recording (File backend), if it asked for one. */
static int start_working_set(struct vm *vm, const struct layout *l,
			     const struct snapshot_load_params *p, struct prefetch *pf)
{
	int ret = 0;

	pf->running = false;
	if (p->has_prefetch)
		ret = prefetch__start(pf, &vm->gmem, l->offset, l->total, p->prefetch_path);
	if (ret) {
		char why[256];

		snprintf(why, sizeof(why), "%s", error__get());
		return error__set(ret, "prefetch %s: %s", p->prefetch_path, why);
	}
	if (p->has_record && !p->has_prefetch)
		ret = prefetch__start_record(pf, &vm->gmem, l->offset, l->total, p->record_path,
					     p->record_ms);
	return ret;
}

int snapshot__load(struct vm *vm, struct vm_config *cfg, const struct vm_options *opts,
		   const struct snapshot_load_params *p, struct prefetch *pf)
{
	struct snapshot_file_reader r;
	struct vm_config before = *cfg;
	struct layout l;
	struct gmem mem;
	int ret;

	ret = snapshot_file__open_path(&r, p->snapshot_path);
	if (ret)
		return ret;
	ret = read_layout(&r, &l);
	if (!ret)
		ret = make_config(&r, &before, p, cfg);
	if (ret) {
		*cfg = before;
		goto out;
	}
	ret = map_memory(p, &l, cfg, &mem);
	if (!ret)
		ret = vm__create_restored(vm, cfg, opts, &mem);
	if (!ret) {
		ret = check_regions(vm, &l);
		if (!ret)
			ret = snapshot_kvm__restore_vm(vm, &r);
		for (uint32_t i = 0; !ret && i < vm->nr_vcpus; i++)
			ret = snapshot_kvm__restore_vcpu(&vm->vcpus[i], &vm->kvm, &r);
		if (!ret)
			ret = vm__restore_devices(vm, &r);
		if (!ret)
			ret = start_working_set(vm, &l, p, pf);
		if (ret)
			vm__destroy(vm);
	}
	if (ret) {
		config__free(cfg);
		*cfg = before;
	} else {
		config__free(&before);
	}
out:
	snapshot_file__close(&r);
	return ret;
}
