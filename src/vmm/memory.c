// SPDX-License-Identifier: Apache-2.0
#include "vmm/memory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/log.h"

void *gmem__ptr(const struct gmem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t last;

	if (!len || __builtin_add_overflow(gpa, len - 1, &last))
		return NULL;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct gmem_region *r = &gm->regions[i];

		if (!r->host || gpa < r->gpa || last > r->gpa + r->size - 1)
			continue;
		return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gmem__read(const struct gmem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gmem__ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gmem__write(const struct gmem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gmem__ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	gmem__mark_dirty(gm, p, len);
	return 0;
}

void gmem__mark_dirty(const struct gmem *gm, const void *host, uint64_t len)
{
	uintptr_t h = (uintptr_t)host;

	if (!len)
		return;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct gmem_region *r = &gm->regions[i];
		uint64_t first, last;

		if (!r->dirty || h < (uintptr_t)r->host || h - (uintptr_t)r->host >= r->size ||
		    len > r->size - (h - (uintptr_t)r->host))
			continue;
		first = (h - (uintptr_t)r->host) / 4096;
		last = (h - (uintptr_t)r->host + len - 1) / 4096;
		for (uint64_t pg = first; pg <= last; pg++)
			__atomic_fetch_or(&r->dirty[pg / 64], 1ULL << (pg % 64), __ATOMIC_RELAXED);
		return;
	}
}

void gmem__mark_dirty_iov(const struct gmem *gm, const struct iovec *iov, unsigned int n,
			  uint64_t len)
{
	for (unsigned int i = 0; i < n && len; i++) {
		uint64_t k = iov[i].iov_len < len ? iov[i].iov_len : len;

		gmem__mark_dirty(gm, iov[i].iov_base, k);
		len -= k;
	}
}

uint64_t gmem__low_end(const struct gmem *gm)
{
	return gm->nr_regions ? gm->regions[0].gpa + gm->regions[0].size : 0;
}

int memory__layout(struct gmem *gm, uint64_t mem_bytes)
{
	memset(gm, 0, sizeof(*gm));
	if (!mem_bytes || (mem_bytes & 0xfff))
		return -EINVAL;
	/* RAM above the gap must not wrap the address space */
	if (mem_bytes > LAYOUT_MMIO_GAP_START &&
	    mem_bytes - LAYOUT_MMIO_GAP_START > UINT64_MAX - LAYOUT_MMIO_GAP_END)
		return -EINVAL;
	gm->ram_size = mem_bytes;
	gm->regions[0].gpa = 0;
	if (mem_bytes <= LAYOUT_MMIO_GAP_START) {
		gm->regions[0].size = mem_bytes;
		gm->nr_regions = 1;
		return 0;
	}
	gm->regions[0].size = LAYOUT_MMIO_GAP_START;
	gm->regions[1].gpa = LAYOUT_MMIO_GAP_END;
	gm->regions[1].size = mem_bytes - LAYOUT_MMIO_GAP_START;
	gm->nr_regions = 2;
	return 0;
}

int memory__map(struct gmem *gm, uint64_t mem_bytes)
{
	return memory__map_backed(gm, mem_bytes, NULL, false);
}

/* Anonymous memory at a 2 MiB boundary, so that THP can back it with whole huge pages. */
static void *map_aligned(uint64_t size)
{
	uint64_t a = MEMORY_HUGE_2M_BYTES;
	uint8_t *p = mmap(NULL, size + a, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *q;

	if (p == MAP_FAILED)
		return p;
	q = (uint8_t *)(((uintptr_t)p + a - 1) & ~(uintptr_t)(a - 1));
	if (q > p)
		munmap(p, (size_t)(q - p));
	munmap(q + size, (size_t)(p + a - q));
	return q;
}

static long free_huge_pages(void)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "re");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static int huge_error(int err, uint64_t mem_bytes)
{
	long free_pages = free_huge_pages();

	if (err != -ENOMEM && err != -EINVAL)
		return error__set(err, "huge_pages 2M: cannot map %llu MiB of guest memory: %s",
				  (unsigned long long)(mem_bytes >> 20), strerror(-err));
	return error__set(-ENOMEM, "huge_pages 2M: the guest needs %llu huge pages of 2 MiB, "
			  "the host has %ld free (reserve them first: echo N > "
			  "/proc/sys/vm/nr_hugepages)",
			  (unsigned long long)(mem_bytes / MEMORY_HUGE_2M_BYTES),
			  free_pages < 0 ? 0 : free_pages);
}

/* The memfd of 2 MiB pages, reserved whole now: a shortage is an error here, not a SIGBUS. */
static int huge_memfd(uint64_t mem_bytes)
{
	int fd = memfd_create(MEMORY_GUEST_NAME, MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);

	if (fd < 0)
		return huge_error(-errno, mem_bytes);
	if (ftruncate(fd, (off_t)mem_bytes)) {
		int ret = huge_error(-errno, mem_bytes);

		close(fd);
		return ret;
	}
	return fd;
}

static void *map_region(const struct gmem_region *r, enum memory_huge huge, int memfd,
			uint64_t file_off, bool private)
{
	if (huge == MEMORY_HUGE_THP)
		return map_aligned(r->size);
	if (huge == MEMORY_HUGE_2M && private)
		return mmap(NULL, r->size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1,
			    0);
	if (huge == MEMORY_HUGE_2M)
		return mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
			    (off_t)file_off);
	return mmap(NULL, r->size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

/* Out of core files, and named where it is anonymous (both only advice: errors ignored). */
static void mark_guest(void *p, uint64_t size, bool anonymous)
{
	madvise(p, size, MADV_DONTDUMP);
	if (anonymous)
		prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, (unsigned long)size,
		      (unsigned long)MEMORY_GUEST_NAME);
}

int memory__map_backed(struct gmem *gm, uint64_t mem_bytes, const struct memory_backing *b,
		       bool private)
{
	enum memory_huge huge = b ? b->huge : MEMORY_HUGE_NONE;
	int ret = memory__layout(gm, mem_bytes), memfd = -1;
	uint64_t off = 0;

	if (ret)
		return error__set(ret, "guest memory size %llu bytes is invalid",
				  (unsigned long long)mem_bytes);
	if (huge == MEMORY_HUGE_2M && mem_bytes % MEMORY_HUGE_2M_BYTES)
		return error__set(-EINVAL, "huge_pages 2M: mem_size_mib must be a multiple of 2");
	if (huge == MEMORY_HUGE_2M && !private) {
		memfd = huge_memfd(mem_bytes);
		if (memfd < 0)
			return memfd;
	}
	gm->huge_2m = huge == MEMORY_HUGE_2M;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		struct gmem_region *r = &gm->regions[i];
		void *p = map_region(r, huge, memfd, off, private);

		if (p == MAP_FAILED) {
			ret = -errno;
			memory__unmap(gm);
			if (memfd >= 0)
				close(memfd);
			if (huge == MEMORY_HUGE_2M)
				return huge_error(ret, mem_bytes);
			return error__set(ret, "cannot map %llu MiB of guest memory: %s",
					  (unsigned long long)(mem_bytes >> 20), strerror(-ret));
		}
		r->host = p;
		off += r->size;
		mark_guest(p, r->size, memfd < 0);
		if (huge == MEMORY_HUGE_THP)
			madvise(p, r->size, MADV_HUGEPAGE); /* advice: THP may be off on the host */
	}
	if (memfd >= 0)
		close(memfd); /* the mappings keep it */
	ret = b ? memory__advise(gm, b) : 0;
	if (ret)
		memory__unmap(gm);
	return ret;
}

int memory__advise(struct gmem *gm, const struct memory_backing *b)
{
	for (unsigned int i = 0; b->ksm && i < gm->nr_regions; i++) {
		if (madvise(gm->regions[i].host, gm->regions[i].size, MADV_MERGEABLE))
			return error__set(-errno, "ksm: MADV_MERGEABLE: %s%s", strerror(errno),
					  errno == EINVAL ? " (the host kernel has no KSM)" : "");
	}
	return 0;
}

int memory__map_file(struct gmem *gm, uint64_t mem_bytes, int fd, const uint64_t *offsets)
{
	int ret = memory__layout(gm, mem_bytes);

	if (ret)
		return error__set(ret, "guest memory size %llu bytes is invalid",
				  (unsigned long long)mem_bytes);
	gm->lazy = true;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		struct gmem_region *r = &gm->regions[i];
		void *p;

		if (offsets[i] % 4096) {
			memory__unmap(gm);
			return error__set(-EINVAL, "memory file offset %llu is not page-aligned",
					  (unsigned long long)offsets[i]);
		}
		p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd,
			 (off_t)offsets[i]);
		if (p == MAP_FAILED) {
			ret = -errno;
			memory__unmap(gm);
			return error__set(ret, "cannot map %llu MiB of the memory file: %s",
					  (unsigned long long)(r->size >> 20), strerror(-ret));
		}
		r->host = p;
		mark_guest(p, r->size, false);
	}
	return 0;
}

int memory__track_dirty(struct gmem *gm)
{
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		struct gmem_region *r = &gm->regions[i];

		if (r->dirty)
			continue;
		r->dirty = calloc(memory__bitmap_words(r->size), sizeof(uint64_t));
		if (!r->dirty)
			return error__set(-ENOMEM, "out of memory for the dirty-page bitmap");
	}
	return 0;
}

void memory__take_dirty(struct gmem *gm, unsigned int region, uint64_t *bitmap)
{
	const struct gmem_region *r = &gm->regions[region];

	if (region >= gm->nr_regions || !r->dirty)
		return;
	for (uint64_t w = 0; w < memory__bitmap_words(r->size); w++)
		bitmap[w] |= __atomic_exchange_n(&r->dirty[w], 0, __ATOMIC_RELAXED);
}

void memory__unmap(struct gmem *gm)
{
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		if (gm->regions[i].host)
			munmap(gm->regions[i].host, gm->regions[i].size);
		gm->regions[i].host = NULL;
		free(gm->regions[i].dirty);
		gm->regions[i].dirty = NULL;
	}
	if (gm->has_uffd)
		close(gm->uffd);
	gm->has_uffd = false;
}
