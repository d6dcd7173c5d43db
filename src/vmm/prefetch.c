// SPDX-License-Identifier: Apache-2.0
/* Working-set prefetch and recording; see prefetch.h. */
#include "vmm/prefetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "jail/seccomp.h"
#include "vmm/log.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define PAGE 4096ULL
#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_SWAPPED (1ULL << 62)

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

static void copy_layout(struct prefetch *p, const struct gmem *gm, const uint64_t *file_off,
			uint64_t mem_bytes)
{
	memset(p, 0, sizeof(*p));
	p->pagemap_fd = -1;
	p->nr_regions = gm->nr_regions;
	p->memory_bytes = mem_bytes;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		p->host[i] = gm->regions[i].host;
		p->size[i] = gm->regions[i].size;
		p->file_off[i] = file_off[i];
	}
}

/*
 * Calls fn on the parts of the memory-file range [off, off + len) that are guest memory,
 * region by region (a range may cross from one region into the next).
 */
static int each_part(const struct prefetch *p, uint64_t off, uint64_t len,
		     int (*fn)(uint8_t *host, uint64_t len))
{
	int ret = 0;

	for (unsigned int i = 0; i < p->nr_regions && !ret; i++) {
		uint64_t a = off > p->file_off[i] ? off : p->file_off[i];
		uint64_t b = off + len < p->file_off[i] + p->size[i] ? off + len
									: p->file_off[i] + p->size[i];

		if (a < b)
			ret = fn(p->host[i] + (a - p->file_off[i]), b - a);
	}
	return ret;
}

static int will_need(uint8_t *host, uint64_t len)
{
	return madvise(host, len, MADV_WILLNEED) ? -errno : 0;
}

static int populate(uint8_t *host, uint64_t len)
{
	/* EFAULT, EINVAL: an old kernel or a hole past the file; the guest faults it itself */
	return madvise(host, len, MADV_POPULATE_READ) && errno == EINTR ? -EINTR : 0;
}

static void *prefetch_thread(void *arg)
{
	struct prefetch *p = arg;
	uint64_t t0 = now_us();

	if (seccomp__apply(SECCOMP_THREAD_VMM))
		p->error = -EPERM;
	for (uint32_t i = 0; !p->error && i < p->ws.nr && !p->stop; i++) {
		each_part(p, p->ws.ranges[i].offset, p->ws.ranges[i].length, populate);
		p->pages += p->ws.ranges[i].length / PAGE;
	}
	p->took_us = now_us() - t0;
	return NULL;
}

int prefetch__start(struct prefetch *p, const struct gmem *gm, const uint64_t *file_off,
		    uint64_t mem_bytes, const char *path)
{
	int ret;

	copy_layout(p, gm, file_off, mem_bytes);
	ret = working_set__load(path, mem_bytes, &p->ws);
	if (ret)
		return ret;
	/* the read-ahead before the guest runs: it only queues reads */
	for (uint32_t i = 0; i < p->ws.nr; i++)
		each_part(p, p->ws.ranges[i].offset, p->ws.ranges[i].length, will_need);
	ret = -pthread_create(&p->thread, NULL, prefetch_thread, p);
	if (ret) {
		working_set__free(&p->ws);
		return error__set(ret, "prefetch: cannot start a thread: %s", strerror(-ret));
	}
	p->running = true;
	return 0;
}

/* ---- recording ---- */

struct recorder {
	uint64_t *seen[GMEM_MAX_REGIONS]; /* a bit per page */
	uint64_t *order;		  /* memory-file offsets, first seen first */
	size_t n;
};

/* One pass over pagemap: the pages mapped now and not before go at the end of the order. */
static int sample(struct prefetch *p, struct recorder *r)
{
	uint64_t buf[4096];

	for (unsigned int i = 0; i < p->nr_regions; i++) {
		uint64_t pages = p->size[i] / PAGE, base = (uint64_t)(uintptr_t)p->host[i] / PAGE;

		for (uint64_t pg = 0; pg < pages;) {
			uint64_t want = pages - pg < 4096 ? pages - pg : 4096;
			ssize_t got = pread(p->pagemap_fd, buf, want * 8, (off_t)((base + pg) * 8));

			if (got <= 0 || got % 8)
				return got < 0 ? -errno : -EIO;
			for (uint64_t k = 0; k < (uint64_t)got / 8; k++, pg++) {
				if (!(buf[k] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) ||
				    (r->seen[i][pg / 64] & (1ULL << (pg % 64))))
					continue;
				r->seen[i][pg / 64] |= 1ULL << (pg % 64);
				r->order[r->n++] = p->file_off[i] + pg * PAGE;
			}
		}
	}
	return 0;
}

static int record(struct prefetch *p)
{
	struct recorder r = { 0 };
	struct working_set ws = { 0 };
	uint64_t t0 = now_us(), total = 0;
	int ret = 0;

	for (unsigned int i = 0; i < p->nr_regions; i++) {
		r.seen[i] = calloc(memory__bitmap_words(p->size[i]), sizeof(uint64_t));
		total += p->size[i] / PAGE;
		if (!r.seen[i])
			ret = -ENOMEM;
	}
	r.order = malloc(total * sizeof(*r.order));
	if (!r.order)
		ret = -ENOMEM;
	while (!ret && !p->stop && now_us() - t0 < (uint64_t)p->record_ms * 1000) {
		ret = sample(p, &r);
		poll(NULL, 0, PREFETCH_SAMPLE_MS); /* a sleep the VMM filter allows */
	}
	if (!ret)
		ret = sample(p, &r);
	if (!ret)
		ret = working_set__from_pages(r.order, r.n, p->memory_bytes, &ws);
	if (!ret)
		ret = working_set__save(p->path, &ws);
	p->pages = r.n;
	working_set__free(&ws);
	free(r.order);
	for (unsigned int i = 0; i < p->nr_regions; i++)
		free(r.seen[i]);
	return ret;
}

static void *record_thread(void *arg)
{
	struct prefetch *p = arg;
	uint64_t t0 = now_us();

	p->error = seccomp__apply(SECCOMP_THREAD_VMM) ? -EPERM : record(p);
	if (p->error)
		log_error("record_working_set %s: %s", p->path, strerror(-p->error));
	else
		log_info("record_working_set: %llu pages written to %s",
			 (unsigned long long)p->pages, p->path);
	p->took_us = now_us() - t0;
	return NULL;
}

int prefetch__start_record(struct prefetch *p, const struct gmem *gm, const uint64_t *file_off,
			   uint64_t mem_bytes, const char *path, uint32_t record_ms)
{
	int ret;

	copy_layout(p, gm, file_off, mem_bytes);
	p->record = true;
	p->record_ms = record_ms;
	if (strlen(path) >= sizeof(p->path))
		return error__set(-ENAMETOOLONG, "record_working_set: the path is too long");
	strcpy(p->path, path);
	p->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (p->pagemap_fd < 0)
		return error__set(-errno, "record_working_set: /proc/self/pagemap: %s",
				  strerror(errno));
	ret = -pthread_create(&p->thread, NULL, record_thread, p);
	if (ret) {
		close(p->pagemap_fd);
		p->pagemap_fd = -1;
		return error__set(ret, "record_working_set: cannot start a thread: %s",
				  strerror(-ret));
	}
	p->running = true;
	return 0;
}

void prefetch__stop(struct prefetch *p)
{
	if (!p->running)
		return;
	p->stop = true;
	pthread_join(p->thread, NULL);
	p->running = false;
	working_set__free(&p->ws);
	if (p->pagemap_fd >= 0)
		close(p->pagemap_fd);
	p->pagemap_fd = -1;
}
