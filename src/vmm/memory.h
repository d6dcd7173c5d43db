/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest memory: the layout of RAM around the MMIO gap, its host mapping, and the single
 * bounds- and overflow-checked door through which Ember touches it.
 */
#ifndef EMBER_VMM_MEMORY_H
#define EMBER_VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 2

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host; /* NULL until mapped */
	/*
	 * With dirty-page tracking (memory__track_dirty()): a bit per 4 KiB page that Ember
	 * itself wrote (device DMA, used rings), which KVM's dirty log does not see. Set
	 * atomically from any thread; NULL when not tracking.
	 */
	uint64_t *dirty;
};

struct gmem {
	unsigned int nr_regions;
	struct gmem_region regions[GMEM_MAX_REGIONS];
	uint64_t ram_size; /* total bytes of RAM, over all regions */
	/*
	 * Restored: a page not yet mapped in this process holds the snapshot's data (from the
	 * memory file, or from the uffd handler), not zeros.
	 */
	bool lazy;
	/* 2 MiB huge pages (hugetlbfs through a memfd): shared, so freed with MADV_REMOVE */
	bool huge_2m;
	/* restored with the Uffd backend: the userfaultfd its handler fills pages through */
	bool has_uffd;
	int uffd;
};

/*
 * The one door into guest memory: a host pointer to [gpa, gpa + len), or NULL when the
 * range wraps, is not wholly inside one RAM region, or len is 0.
 */
void *gmem__ptr(const struct gmem *gm, uint64_t gpa, uint64_t len);
/* Copies; 0 or -EFAULT. */
int gmem__read(const struct gmem *gm, uint64_t gpa, void *dst, uint64_t len);
int gmem__write(const struct gmem *gm, uint64_t gpa, const void *src, uint64_t len);
/*
 * Records that Ember wrote [host, host + len) of guest memory (a pointer from gmem__ptr()),
 * for Diff snapshots; nothing when not tracking. Every device that writes guest memory
 * through a pointer calls it once the bytes are written (gmem__write() does it itself).
 */
void gmem__mark_dirty(const struct gmem *gm, const void *host, uint64_t len);
struct iovec;
void gmem__mark_dirty_iov(const struct gmem *gm, const struct iovec *iov, unsigned int n,
			  uint64_t len);
/* The end of the RAM region below the MMIO gap (the first region). */
uint64_t gmem__low_end(const struct gmem *gm);

/* How guest memory is backed (machine-config huge_pages and ksm). */
enum memory_huge {
	MEMORY_HUGE_NONE,
	MEMORY_HUGE_2M,	 /* hugetlbfs pages, from a memfd (MFD_HUGETLB): reserved up front */
	MEMORY_HUGE_THP, /* anonymous, 2 MiB aligned, MADV_HUGEPAGE */
};

struct memory_backing {
	enum memory_huge huge;
	bool ksm; /* MADV_MERGEABLE: the host's KSM may share identical pages */
};

#define MEMORY_HUGE_2M_BYTES (2ULL << 20)
/*
 * Guest memory is never in a core file (MADV_DONTDUMP, "dd" in smaps' VmFlags) and, where
 * the kernel names mappings, is called this: how memstats.h finds it in any Ember.
 */
#define MEMORY_GUEST_NAME "ember-guest-ram"

/*
 * Fills gm's regions for mem_bytes of RAM: one region from 0, split around the 32-bit MMIO
 * gap when RAM would reach into it. Maps nothing. -EINVAL for a size of 0 or not a
 * multiple of 4 KiB.
 */
int memory__layout(struct gmem *gm, uint64_t mem_bytes);
/* Lays out and maps anonymous, MAP_NORESERVE memory for each region. 0 or -errno. */
int memory__map(struct gmem *gm, uint64_t mem_bytes);
/*
 * The same, backed as b says (NULL: as memory__map()). 2M needs mem_bytes a multiple of
 * 2 MiB and enough free huge pages on the host (the error says how many). With private,
 * the 2 MiB pages are a private anonymous mapping (a restore's, filled through a uffd);
 * otherwise a memfd's, shared. 0 or -errno with error__set().
 */
int memory__map_backed(struct gmem *gm, uint64_t mem_bytes, const struct memory_backing *b,
		       bool private);
/* Applies b's advice that suits any mapping (ksm) to gm's regions; 0 or -errno. */
int memory__advise(struct gmem *gm, const struct memory_backing *b);
/*
 * The same layout, each region mapped MAP_PRIVATE from fd at offsets[i] (page-aligned): a
 * restore's memory file, read lazily and copied on write. 0 or -errno with error__set().
 */
int memory__map_file(struct gmem *gm, uint64_t mem_bytes, int fd, const uint64_t *offsets);
/* Starts tracking the pages Ember writes (gmem_region.dirty). 0 or -ENOMEM. */
int memory__track_dirty(struct gmem *gm);
/* ORs region's Ember-written pages into bitmap (a bit per page) and clears them. */
void memory__take_dirty(struct gmem *gm, unsigned int region, uint64_t *bitmap);
/* Words of a region's page bitmap. */
static inline uint64_t memory__bitmap_words(uint64_t region_size)
{
	return (region_size / 4096 + 63) / 64;
}
/* Unmaps every region and frees the dirty bitmaps. */
void memory__unmap(struct gmem *gm);

#endif
