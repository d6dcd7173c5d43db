// SPDX-License-Identifier: Apache-2.0
#include "vmm/memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
	int ret = memory__layout(gm, mem_bytes);

	if (ret)
		return error__set(ret, "guest memory size %llu bytes is invalid",
				  (unsigned long long)mem_bytes);
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		struct gmem_region *r = &gm->regions[i];
		void *p = mmap(NULL, r->size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			ret = -errno;
			memory__unmap(gm);
			return error__set(ret, "cannot map %llu MiB of guest memory: %s",
					  (unsigned long long)(mem_bytes >> 20), strerror(-ret));
		}
		r->host = p;
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
