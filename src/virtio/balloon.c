// SPDX-License-Identifier: Apache-2.0
#include "virtio/balloon.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define PAGE 4096ULL
#define HUGE (2ULL << 20)
#define PAGES_PER_HUGE (HUGE / PAGE)

METRICS_NAMES(balloon_metrics, BALLOON_METRICS);

enum queue_role { ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORT, ROLE_NONE };

static uint64_t balloon_features(void *dev)
{
	return ((struct virtio_balloon *)dev)->features;
}

/* ---- the config space: num_pages (read-only for the driver), actual ---- */

static void balloon_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_balloon *b = dev;
	uint32_t space[2] = { htole32(b->num_pages), htole32(b->actual) };

	memcpy(data, (uint8_t *)space + offset, len); /* the transport checked the bounds */
}

static void balloon_config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	struct virtio_balloon *b = dev;
	uint32_t actual = htole32(b->actual);

	/* bytes of num_pages are the device's: only those of actual change */
	for (uint32_t i = 0; i < len; i++) {
		if (offset + i >= 4)
			((uint8_t *)&actual)[offset + i - 4] = data[i];
	}
	b->actual = le32toh(actual);
}

/* ---- giving memory back ---- */

/* The region holding host, or -1. */
static int region_of(const struct gmem *gm, const uint8_t *host)
{
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct gmem_region *r = &gm->regions[i];

		if (r->host && host >= r->host && host < r->host + r->size)
			return (int)i;
	}
	return -1;
}

/*
 * Frees the whole pages (2 MiB ones with huge pages) inside [host, host + len): the guest
 * reads zeros there afterwards. A hugetlb memfd is shared, where only MADV_REMOVE frees;
 * a restore's private huge pages take MADV_DONTNEED (MADV_REMOVE is EINVAL there).
 */
static void discard(struct virtio_balloon *b, uint8_t *host, uint64_t len)
{
	const struct gmem *gm = b->t.gm;
	uint64_t align = gm->huge_2m ? HUGE : PAGE;
	uintptr_t start = ((uintptr_t)host + align - 1) & ~(uintptr_t)(align - 1);
	uintptr_t end = ((uintptr_t)host + len) & ~(uintptr_t)(align - 1);
	int ret;

	if (end <= start)
		return;
	ret = madvise((void *)start, end - start, gm->huge_2m ? MADV_REMOVE : MADV_DONTNEED);
	if (ret && gm->huge_2m && errno == EINVAL)
		ret = madvise((void *)start, end - start, MADV_DONTNEED);
	if (ret) {
		if (!b->m.discard_fails++)
			log_warn("balloon: cannot give %llu bytes back to the host: %s",
				 (unsigned long long)(end - start), strerror(errno));
		return;
	}
	b->discards++;
	b->m.discarded_bytes += end - start;
	gmem__mark_dirty(gm, (void *)start, end - start);
}

/* Huge pages: one more page of host's 2 MiB page is in the balloon; all 512 free it. */
static void huge_inflate(struct virtio_balloon *b, uint8_t *host)
{
	int i = region_of(b->t.gm, host);
	struct balloon_huge *h = i < 0 ? NULL : &b->huge[i];
	uint64_t off, pg, hp;

	if (!h || !h->bits)
		return;
	off = (uint64_t)(host - b->t.gm->regions[i].host);
	pg = off / PAGE;
	hp = off / HUGE;
	if (h->bits[pg / 64] & (1ULL << (pg % 64)))
		return;
	h->bits[pg / 64] |= 1ULL << (pg % 64);
	if (++h->count[hp] == PAGES_PER_HUGE)
		discard(b, b->t.gm->regions[i].host + hp * HUGE, HUGE);
}

static void huge_deflate(struct virtio_balloon *b, uint8_t *host)
{
	int i = region_of(b->t.gm, host);
	struct balloon_huge *h = i < 0 ? NULL : &b->huge[i];
	uint64_t off, pg;

	if (!h || !h->bits)
		return;
	off = (uint64_t)(host - b->t.gm->regions[i].host);
	pg = off / PAGE;
	if (!(h->bits[pg / 64] & (1ULL << (pg % 64))))
		return;
	h->bits[pg / 64] &= ~(1ULL << (pg % 64));
	h->count[off / HUGE]--;
}

static void huge_clear(struct virtio_balloon *b)
{
	const struct gmem *gm = b->t.gm;

	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		if (!b->huge[i].bits)
			continue;
		memset(b->huge[i].bits, 0, memory__bitmap_words(gm->regions[i].size) * 8);
		memset(b->huge[i].count, 0, gm->regions[i].size / HUGE * sizeof(uint16_t));
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The pfns, sorted: each page checked against guest RAM, runs of contiguous pages given
 * back with one madvise each (with huge pages, counted towards their 2 MiB page).
 */
static void inflate_pfns(struct virtio_balloon *b, uint32_t *pfns, unsigned int n)
{
	uint8_t *run = NULL;
	uint64_t run_len = 0;

	qsort(pfns, n, sizeof(*pfns), cmp_u32);
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *host;

		if (i && pfns[i] == pfns[i - 1])
			continue;
		host = gmem__ptr(b->t.gm, (uint64_t)pfns[i] << BALLOON_PFN_SHIFT, PAGE);
		if (!host) {
			b->m.bad_pfns++;
			continue;
		}
		b->m.inflated_pages++;
		if (b->t.gm->huge_2m) {
			huge_inflate(b, host);
		} else if (run && host == run + run_len) {
			run_len += PAGE;
		} else {
			if (run)
				discard(b, run, run_len);
			run = host;
			run_len = PAGE;
		}
	}
	if (run)
		discard(b, run, run_len);
}

static void deflate_pfns(struct virtio_balloon *b, const uint32_t *pfns, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *host = gmem__ptr(b->t.gm, (uint64_t)pfns[i] << BALLOON_PFN_SHIFT, PAGE);

		if (!host) {
			b->m.bad_pfns++;
			continue;
		}
		if (b->t.gm->huge_2m)
			huge_deflate(b, host);
	}
}

/*
 * One buffer of pfns, copied out of guest memory first (the driver may change it while we
 * look): 0 with *n, or -EINVAL for a buffer that breaks the rules (device-writable, not a
 * whole number of u32s, more than BALLOON_MAX_PFNS_PER_BUF of them): it is skipped.
 */
static int read_pfns(struct virtio_balloon *b, const struct vq_buf *buf, uint32_t *pfns,
		     unsigned int *n)
{
	if (buf->write || buf->len % 4 || buf->len / 4 > BALLOON_MAX_PFNS_PER_BUF)
		return -EINVAL;
	if (gmem__read(b->t.gm, buf->gpa, pfns, buf->len))
		return -EINVAL;
	*n = buf->len / 4;
	for (unsigned int i = 0; i < *n; i++)
		pfns[i] = le32toh(pfns[i]);
	return 0;
}

static void pfn_chain(struct virtio_balloon *b, const struct vq_chain *c, bool inflate)
{
	uint32_t pfns[BALLOON_MAX_PFNS_PER_BUF];
	unsigned int n;

	for (unsigned int i = 0; i < c->nr; i++) {
		if (read_pfns(b, &c->bufs[i], pfns, &n)) {
			if (!b->m.event_fails++)
				log_warn("balloon: a pfn buffer of %u bytes (%s) is skipped",
					 c->bufs[i].len,
					 c->bufs[i].write ? "device-writable" : "readable");
			continue;
		}
		if (inflate)
			inflate_pfns(b, pfns, n);
		else
			deflate_pfns(b, pfns, n);
	}
	if (inflate)
		b->m.inflate_count++;
	else
		b->m.deflate_count++;
}

/* Free page reporting: every buffer of the chain is free guest memory. */
static void report_chain(struct virtio_balloon *b, const struct vq_chain *c)
{
	for (unsigned int i = 0; i < c->nr; i++) {
		uint8_t *host = gmem__ptr(b->t.gm, c->bufs[i].gpa, c->bufs[i].len);

		if (host) /* virtq__pop() checked it */
			discard(b, host, c->bufs[i].len);
	}
	b->m.free_page_reports++;
}

/* ---- statistics ---- */

/* The chain's bytes, parsed; a malformed buffer is counted and kept all the same. */
static void parse_stats(struct virtio_balloon *b, const struct vq_chain *c)
{
	uint8_t buf[BALLOON_STATS_MAX_BYTES];
	uint64_t len = 0;
	int ret = c->writable || c->readable > sizeof(buf) ? -EINVAL : 0;

	for (unsigned int i = 0; !ret && i < c->nr; i++) {
		ret = gmem__read(b->t.gm, c->bufs[i].gpa, buf + len, c->bufs[i].len);
		len += c->bufs[i].len;
	}
	if (!ret)
		ret = balloon_stats__parse(&b->stats, buf, len) < 0 ? -EINVAL : 0;
	b->m.stats_updates_count++;
	if (ret && !b->m.stats_update_fails++)
		log_warn("balloon: a malformed statistics buffer (%llu bytes readable, %llu "
			 "writable)",
			 (unsigned long long)c->readable, (unsigned long long)c->writable);
}

/* Gives the stats buffer back, so that the driver refills it. */
static void return_stats(struct virtio_balloon *b)
{
	if (!b->holds_stats || b->q_stats < 0 ||
	    !virtio_mmio__queue_live(&b->t, (uint16_t)b->q_stats))
		return;
	b->holds_stats = false;
	if (virtq__push(&b->t.queues[b->q_stats], b->stats_head, 0)) {
		virtio_mmio__needs_reset(&b->t, "used ring outside guest RAM");
		return;
	}
	virtio_mmio__used(&b->t, (uint16_t)b->q_stats);
}

static void arm_stats_timer(struct virtio_balloon *b, bool on)
{
	struct itimerspec its = { 0 };

	if (b->stats_timer_fd < 0)
		return;
	if (on) {
		its.it_value.tv_sec = b->cfg.stats_polling_interval_s;
		its.it_interval.tv_sec = b->cfg.stats_polling_interval_s;
	}
	timerfd_settime(b->stats_timer_fd, 0, &its, NULL);
}

static void on_stats_timer(struct event_handler *h, uint32_t events)
{
	struct virtio_balloon *b = container_of(h, struct virtio_balloon, stats_h);
	uint64_t n;
	ssize_t r = read(h->fd, &n, sizeof(n));

	(void)r;
	(void)events;
	virtio_mmio__lock(&b->t);
	return_stats(b);
	virtio_mmio__unlock(&b->t);
}

/* ---- the queues ---- */

static enum queue_role role_of(const struct virtio_balloon *b, uint16_t q)
{
	if (q < 2)
		return q ? ROLE_DEFLATE : ROLE_INFLATE;
	if ((int)q == b->q_stats)
		return ROLE_STATS;
	return (int)q == b->q_report ? ROLE_REPORT : ROLE_NONE;
}

/* The next chain of queue q into b->chain: 1, or 0 for none (or a broken queue). */
static int next_chain(struct virtio_balloon *b, uint16_t q)
{
	struct virtq *vq = &b->t.queues[q];
	int ret;

	while ((ret = virtq__pop(vq, &b->chain)) == 0) {
		if (!virtq__arm_notify(vq))
			return 0;
	}
	if (ret < 0) {
		b->m.event_fails++;
		virtio_mmio__needs_reset(&b->t, "a malformed descriptor chain");
		return 0;
	}
	return 1;
}

/* A stats buffer: kept; one already in hand goes back (a driver should not send two). */
static bool take_stats(struct virtio_balloon *b, uint16_t q)
{
	bool used = false;

	if (b->holds_stats) {
		if (virtq__push(&b->t.queues[q], b->stats_head, 0)) {
			virtio_mmio__needs_reset(&b->t, "used ring outside guest RAM");
			return false;
		}
		used = true;
	}
	parse_stats(b, &b->chain);
	b->holds_stats = true;
	b->stats_head = b->chain.head;
	return used;
}

static void process(struct virtio_balloon *b, uint16_t q)
{
	enum queue_role role = role_of(b, q);
	bool used = false;

	while (role != ROLE_NONE && virtio_mmio__queue_live(&b->t, q) && next_chain(b, q)) {
		if (role == ROLE_STATS) {
			used |= take_stats(b, q);
			continue;
		}
		if (role == ROLE_REPORT)
			report_chain(b, &b->chain);
		else
			pfn_chain(b, &b->chain, role == ROLE_INFLATE);
		if (virtq__push(&b->t.queues[q], b->chain.head, 0)) {
			virtio_mmio__needs_reset(&b->t, "used ring outside guest RAM");
			break;
		}
		used = true;
	}
	if (used && virtio_mmio__queue_live(&b->t, q))
		virtio_mmio__used(&b->t, q);
}

static void balloon_notify(void *dev, uint16_t q)
{
	process(dev, q);
}

/*
 * DRIVER_OK: the queues' roles follow what the driver took; statistics start. The stats
 * buffer Linux gives before DRIVER_OK is served by the kick the transport replays then.
 */
static int balloon_activate(void *dev)
{
	struct virtio_balloon *b = dev;
	uint64_t f = b->t.driver_features;
	int next = 2;

	b->q_stats = f & (1ULL << VIRTIO_BALLOON_F_STATS_VQ) ? next++ : -1;
	b->q_report = f & (1ULL << VIRTIO_BALLOON_F_REPORTING) ? next++ : -1;
	arm_stats_timer(b, b->q_stats >= 0);
	return 0;
}

static void balloon_reset(void *dev)
{
	struct virtio_balloon *b = dev;

	arm_stats_timer(b, false);
	b->holds_stats = false;
	b->q_stats = b->q_report = -1;
	b->actual = 0;
	huge_clear(b);
}

#define BALLOON_OPS(n)                                                                             \
	{                                                                                          \
		.device_id = VIRTIO_ID_BALLOON, .name = "virtio-balloon", .nr_queues = (n),        \
		.features = balloon_features, .config_size = BALLOON_CONFIG_SIZE,                  \
		.config_read = balloon_config_read, .config_write = balloon_config_write,          \
		.activate = balloon_activate, .reset = balloon_reset, .notify = balloon_notify,    \
	}

/* By the number of queues: inflate and deflate, plus statsq and reporting_vq if offered. */
static const struct virtio_dev_ops balloon_ops[3] = { BALLOON_OPS(2), BALLOON_OPS(3),
						      BALLOON_OPS(4) };

/* ---- set-up ---- */

static int alloc_huge(struct virtio_balloon *b, const struct gmem *gm)
{
	for (unsigned int i = 0; gm->huge_2m && i < gm->nr_regions; i++) {
		b->huge[i].bits = calloc(memory__bitmap_words(gm->regions[i].size), 8);
		b->huge[i].count = calloc(gm->regions[i].size / HUGE + 1, sizeof(uint16_t));
		if (!b->huge[i].bits || !b->huge[i].count)
			return error__set(-ENOMEM, "balloon: out of memory");
	}
	return 0;
}

static int make_timer(struct virtio_balloon *b)
{
	if (!b->cfg.stats_polling_interval_s)
		return 0;
	b->stats_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->stats_timer_fd < 0)
		return error__set(-errno, "balloon: timerfd: %s", strerror(errno));
	b->stats_h = (struct event_handler){ b->stats_timer_fd, on_stats_timer };
	return 0;
}

static uint64_t features_of(const struct balloon_config *cfg)
{
	uint64_t f = 0;

	if (cfg->stats_polling_interval_s)
		f |= 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
	if (cfg->deflate_on_oom)
		f |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (cfg->free_page_reporting)
		f |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
	return f;
}

int virtio_balloon__create(struct virtio_balloon **out, const struct balloon_config *cfg, int vm_fd,
			   const struct gmem *gm, uint64_t base, uint32_t gsi)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	unsigned int extra;
	int ret;

	if (!b)
		return error__set(-ENOMEM, "balloon: out of memory");
	b->cfg = *cfg;
	b->features = features_of(cfg);
	b->num_pages = cfg->amount_mib * BALLOON_PAGES_PER_MIB;
	b->stats_timer_fd = -1;
	b->q_stats = b->q_report = -1;
	extra = !!cfg->stats_polling_interval_s + !!cfg->free_page_reporting;
	ret = make_timer(b);
	if (!ret)
		ret = alloc_huge(b, gm);
	if (!ret)
		ret = virtio_mmio__init(&b->t, vm_fd, gm, base, gsi, &balloon_ops[extra], b);
	if (ret) {
		virtio_balloon__destroy(b);
		return ret;
	}
	*out = b;
	return 0;
}

int virtio_balloon__watch(struct virtio_balloon *b, struct event_loop *loop)
{
	int ret = virtio_mmio__watch(&b->t, loop);

	if (!ret && b->stats_timer_fd >= 0)
		ret = event_loop__add(loop, &b->stats_h, EPOLLIN);
	return ret;
}

void virtio_balloon__destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	if (b->stats_timer_fd >= 0)
		close(b->stats_timer_fd);
	for (unsigned int i = 0; i < GMEM_MAX_REGIONS; i++) {
		free(b->huge[i].bits);
		free(b->huge[i].count);
	}
	if (b->t.ops)
		virtio_mmio__destroy(&b->t);
	free(b);
}

/* ---- the API ---- */

void virtio_balloon__set_target(struct virtio_balloon *b, uint32_t amount_mib)
{
	uint32_t pages = amount_mib * BALLOON_PAGES_PER_MIB;

	virtio_mmio__lock(&b->t);
	b->cfg.amount_mib = amount_mib;
	if (pages != b->num_pages) {
		b->num_pages = pages;
		virtio_mmio__config_changed(&b->t);
	}
	virtio_mmio__unlock(&b->t);
}

int virtio_balloon__set_stats_interval(struct virtio_balloon *b, uint32_t seconds)
{
	uint32_t cur;

	virtio_mmio__lock(&b->t);
	cur = b->cfg.stats_polling_interval_s;
	if (seconds != cur && (!cur || !seconds)) {
		virtio_mmio__unlock(&b->t);
		return error__set(-EINVAL,
				  "stats_polling_interval_s: the statistics cannot be "
				  "turned %s after the start (Firecracker's rule)",
				  cur ? "off" : "on");
	}
	if (seconds != cur) {
		b->cfg.stats_polling_interval_s = seconds;
		return_stats(b); /* the first update at once, as Firecracker does */
		arm_stats_timer(b, b->q_stats >= 0);
	}
	virtio_mmio__unlock(&b->t);
	return 0;
}

int virtio_balloon__get_stats(struct virtio_balloon *b, struct balloon_stats *out)
{
	if (!b->cfg.stats_polling_interval_s)
		return error__set(-EINVAL, "Statistics for the balloon device are not enabled "
					   "(stats_polling_interval_s was 0 at the start)");
	virtio_mmio__lock(&b->t);
	*out = b->stats;
	out->target_pages = b->num_pages;
	out->actual_pages = b->actual;
	virtio_mmio__unlock(&b->t);
	return 0;
}

/* ---- snapshots ---- */

int virtio_balloon__save(struct virtio_balloon *b, struct snapshot_file_writer *w)
{
	uint16_t back[VIRTIO_MMIO_MAX_QUEUES] = { 0 };
	int ret;

	virtio_mmio__lock(&b->t);
	if (b->holds_stats && b->q_stats >= 0)
		back[b->q_stats] = 1;
	virtio_mmio__save(&b->t, BALLOON_SNAPSHOT_ID, back, w); /* the first error sticks */
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_VIRTIO_BALLOON, 0);
	snapshot_file__put_str(w, BALLOON_SNAPSHOT_ID);
	snapshot_file__put_u32(w, b->num_pages);
	snapshot_file__put_u32(w, b->actual);
	snapshot_file__put_u32(w, b->cfg.stats_polling_interval_s);
	ret = snapshot_file__end_section(w);
	virtio_mmio__unlock(&b->t);
	if (ret)
		return error__set_default(ret, "balloon: cannot save its state");
	return 0;
}

/* The target, actual and interval the section holds, checked against this device. */
static int read_section(struct virtio_balloon *b, const struct snapshot_file_reader *r,
			uint32_t *pages, uint32_t *actual)
{
	struct snapshot_file_section s;
	struct snapshot_file_cursor c;
	char id[sizeof(BALLOON_SNAPSHOT_ID)];
	uint32_t interval = 0;
	int ret;

	if (snapshot_file__find(r, SNAPSHOT_SECTION_VIRTIO_BALLOON, &s))
		return error__set(-EINVAL, "balloon: the snapshot has no balloon section");
	snapshot_file__cursor(&s, &c);
	ret = snapshot_file__get_str(&c, id, sizeof(id));
	if (!ret)
		ret = snapshot_file__get_u32(&c, pages);
	if (!ret)
		ret = snapshot_file__get_u32(&c, actual);
	if (!ret)
		ret = snapshot_file__get_u32(&c, &interval);
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	if (ret || strcmp(id, BALLOON_SNAPSHOT_ID))
		return error__set_default(-EINVAL, "balloon: the snapshot's balloon section is "
						   "damaged");
	if (*pages / BALLOON_PAGES_PER_MIB > b->t.gm->ram_size >> 20 ||
	    !interval != !b->cfg.stats_polling_interval_s)
		return error__set(-EINVAL,
				  "balloon: the snapshot's balloon (target %u pages, "
				  "statistics every %u s) does not fit this one",
				  *pages, interval);
	b->cfg.stats_polling_interval_s = interval;
	return 0;
}

int virtio_balloon__restore(struct virtio_balloon *b, const struct snapshot_file_reader *r)
{
	uint32_t pages = 0, actual = 0;
	int ret = read_section(b, r, &pages, &actual);

	if (ret)
		return ret;
	virtio_mmio__lock(&b->t);
	ret = virtio_mmio__restore(&b->t, "balloon", BALLOON_SNAPSHOT_ID, r);
	if (!ret) {
		b->num_pages = pages;
		b->cfg.amount_mib = pages / BALLOON_PAGES_PER_MIB;
		b->actual = actual;
		/*
		 * The stats buffer the source held went back on its queue: taken again now, so
		 * that GET /balloon/statistics shows its numbers as soon as the load answers.
		 */
		if (b->q_stats >= 0)
			process(b, (uint16_t)b->q_stats);
	}
	virtio_mmio__unlock(&b->t);
	return ret;
}
