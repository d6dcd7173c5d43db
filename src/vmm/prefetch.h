/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Working-set prefetch for restores from a memory file (docs/snapshot.md): record the pages
 * a restored VM touches in its first milliseconds, and on later restores of the same
 * snapshot read them in ahead of the guest. One short-lived thread per restore does either.
 *
 * - Recording samples /proc/self/pagemap every PREFETCH_SAMPLE_MS: a page of guest memory
 *   that is mapped (present or swapped) has been touched - by the guest through KVM, or by
 *   a device. Pages newly seen in a sample go after the ones seen before, so the file is in
 *   first-touch order to within a sample.
 * - Prefetching first asks the kernel to read every range ahead (MADV_WILLNEED: a
 *   memory file that is not in the page cache starts loading at once, asynchronously), then
 *   maps them in recorded order (MADV_POPULATE_READ), alongside the running guest: a page the
 *   guest reaches first simply faults as without prefetch.
 */
#ifndef EMBER_VMM_PREFETCH_H
#define EMBER_VMM_PREFETCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/working_set.h"

#define PREFETCH_SAMPLE_MS 10
#define PREFETCH_PATH_MAX 4096

struct prefetch {
	bool running;
	bool record; /* else prefetch */
	pthread_t thread;
	volatile bool stop;
	/* where each region is, in this process and in the memory file */
	unsigned int nr_regions;
	uint8_t *host[GMEM_MAX_REGIONS];
	uint64_t size[GMEM_MAX_REGIONS], file_off[GMEM_MAX_REGIONS];
	uint64_t memory_bytes;
	struct working_set ws; /* prefetch: what to read */
	int pagemap_fd;	       /* record: /proc/self/pagemap, opened before seccomp */
	uint32_t record_ms;
	char path[PREFETCH_PATH_MAX];
	/* results, read after prefetch__stop() */
	uint64_t pages;	   /* prefetched, or recorded */
	uint64_t took_us;  /* from the start to the last range mapped, or the file written */
	int error;	   /* 0, or -errno of the first failure (logged) */
};

/*
 * Loads the working set at path (made for this memory file: mem_bytes, regions at
 * file_off[i]), starts its read-ahead, and a thread to map it. 0, or -errno with
 * error__set() and nothing started.
 */
int prefetch__start(struct prefetch *p, const struct gmem *gm, const uint64_t *file_off,
		    uint64_t mem_bytes, const char *path);
/* Starts a thread that records the first record_ms of guest memory use into path. */
int prefetch__start_record(struct prefetch *p, const struct gmem *gm, const uint64_t *file_off,
			   uint64_t mem_bytes, const char *path, uint32_t record_ms);
/* Waits for the thread (asking a recording to finish now); nothing when none runs. */
void prefetch__stop(struct prefetch *p);

#endif
