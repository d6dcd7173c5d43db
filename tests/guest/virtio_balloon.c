// SPDX-License-Identifier: Apache-2.0
/*
 * virtio_balloon: drives the virtio-balloon device (docs/balloon.md) as Linux does: it
 * takes every feature offered (STATS_VQ, DEFLATE_ON_OOM, REPORTING), numbers the queues as
 * Linux does (inflateq 0, deflateq 1, then statsq and reporting_vq if negotiated, absent
 * ones left out), DRIVER_OK. Then:
 * - inflate: PAGES pages written with a pattern; six of them (four contiguous, two apart,
 *   in a scrambled order) go in one pfn array on the inflateq: those read as zero
 *   afterwards, the others keep the pattern; actual is written;
 * - deflate: the same pfns on the deflateq; the pages take a pattern again;
 * - statistics (if negotiated): a stats buffer (total and free memory, and a tag no one
 *   knows) must come back within the polling interval (the command line's
 *   balloon_stats_wait=<seconds>, default 3), and is sent again, refilled;
 * - reporting (if negotiated): a free 2 MiB-aligned region of 2 MiB with a pattern in
 *   every page, reported as one device-writable buffer, reads as zero afterwards.
 * With balloon_huge=1 on the command line (guest memory on 2 MiB huge pages), inflated
 * 4 KiB pages are not freed (their 2 MiB page is not whole in the balloon) and keep their
 * pattern; then all 512 pages of a 2 MiB-aligned region go in, in two arrays, and read as
 * zero afterwards (the whole huge page was freed), and are deflated.
 * Prints "virtio-balloon dev=<slot> features=0x<negotiated> num_pages=<n> queues=<n>" and
 * "virtio-balloon-<step> ..." lines.
 *
 * virtio_balloon_hostile: breaks the rules on the inflateq (and the statsq and
 * reporting_vq when there), one case at a time, "virtio-balloon-hostile <case>": pfns
 * outside RAM and in the MMIO gap next to a good one (the good page is freed, the bad
 * ones skipped), an array of more than 256 pfns, an odd-length array, a device-writable
 * array (each skipped, the page not freed), an array in the MMIO gap or past the end of
 * RAM (DEVICE_NEEDS_RESET), a stats buffer of 7 bytes (kept and returned all the same), a
 * report in the MMIO gap (DEVICE_NEEDS_RESET). After each the device inflates a page again
 * (after a reset and a new initialisation, for the second kind).
 *
 * virtio_balloon_watch: never returns. Sets the device up, offers a stats buffer (and
 * sends it again, refilled, each time it comes back), and prints
 * "virtio-balloon-watch num_pages=<n> isr=0x<InterruptStatus>" at the start and each time
 * num_pages changes, writing actual = num_pages (as a driver that reached its target).
 */
#include "virtio.h"

#define PAGE 4096
#define HUGE (2u << 20)
#define PAGES 8
#define PATTERN 0x5a5a5a5a5a5a5a5aULL
#define WANTED                                                                                     \
	(VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) | VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |     \
	 VIRTIO_BIT(VIRTIO_BALLOON_F_REPORTING))
#define Q_INFLATE 0
#define Q_DEFLATE 1
#define WATCH_TSC (VIRTIO_WAIT_TSC / 10)
#define STATS_WAIT_KEY "balloon_stats_wait="
#define HUGE_KEY "balloon_huge="
#define HOSTILE_PFNS 1025

typedef uint64_t __attribute__((may_alias)) word_t;

struct balloon {
	struct virtio_dev d;
	struct virtio_queue q[VIRTIO_QUEUES_MAX];
	unsigned int nr_queues;
	int q_stats, q_report; /* -1: not negotiated */
};

static struct balloon bl NOINIT;
static uint8_t pages[PAGES][PAGE] NOINIT __attribute__((aligned(PAGE)));
static uint32_t pfns[HOSTILE_PFNS] NOINIT __attribute__((aligned(64)));
static struct virtio_balloon_stat stats[3] NOINIT;
static uint8_t *report_region;

static uint32_t pfn_of(const void *p)
{
	return (uint32_t)((uintptr_t)p / PAGE);
}

static void fill_page(void *p)
{
	word_t *w = p;

	for (unsigned int i = 0; i < PAGE / 8; i++)
		w[i] = PATTERN;
}

/* The first, a middle and the last word of the page hold v. */
static bool page_is(const void *p, uint64_t v)
{
	const volatile word_t *w = p;

	return w[0] == v && w[PAGE / 16] == v && w[PAGE / 8 - 1] == v;
}

/* ---- set-up, as Linux's init_vqs() numbers the queues ---- */

static const char *setup(struct balloon *b)
{
	const char *why = virtio__init_features(&b->d, WANTED);
	unsigned int n = 2;

	if (why)
		return why;
	b->q_stats = virtio__has(&b->d, VIRTIO_BALLOON_F_STATS_VQ) ? (int)n++ : -1;
	b->q_report = virtio__has(&b->d, VIRTIO_BALLOON_F_REPORTING) ? (int)n++ : -1;
	b->nr_queues = n;
	for (unsigned int i = 0; i < n && !why; i++)
		why = virtio__queue_setup(&b->d, &b->q[i], (uint16_t)i);
	return why ? why : virtio__driver_ok(&b->d);
}

/* The first balloon, set up. */
static const char *find_and_setup(struct balloon *b)
{
	memset(b, 0, sizeof(*b));
	if (!virtio__find(VIRTIO_ID_BALLOON, &b->d, 1))
		return fail("no virtio-balloon device");
	return setup(b);
}

static uint32_t num_pages(const struct balloon *b)
{
	return virtio__config32(&b->d, VIRTIO_BALLOON_CFG_NUM_PAGES);
}

/* One buffer on queue q, and its use. */
static const char *send(struct balloon *b, unsigned int q, const void *addr, uint32_t len,
			bool write, const char *what)
{
	struct virtio_buf buf = { addr, len, write };
	uint32_t used = ~0u;

	if (virtio__queue_send(&b->d, &b->q[q], &buf, 1, &used))
		return fail("%s: the device did not give the buffer back", what);
	if (used)
		return fail("%s: used length %u, expected 0", what, used);
	return NULL;
}

/* ---- virtio_balloon ---- */

/* Guest memory on 2 MiB huge pages (the command line says so). */
static bool huge_pages(void)
{
	uint64_t v = 0;

	return virtio__cmdline_uint(HUGE_KEY, 1, &v) && v;
}

static const char *inflate_deflate(struct balloon *b)
{
	static const unsigned int in[] = { 3, 0, 7, 2, 5, 1 };
	bool huge = huge_pages();
	const char *why;

	for (unsigned int i = 0; i < PAGES; i++)
		fill_page(pages[i]);
	for (unsigned int i = 0; i < ARRAY_SIZE(in); i++)
		pfns[i] = pfn_of(pages[in[i]]);
	why = send(b, Q_INFLATE, pfns, sizeof(in) / sizeof(in[0]) * 4, false, "inflate");
	for (unsigned int i = 0; !why && i < PAGES; i++) {
		bool freed = i != 4 && i != 6 && !huge;

		if (!page_is(pages[i], freed ? 0 : PATTERN))
			why = fail("inflate: page %u (pfn 0x%x) %s", i, pfn_of(pages[i]),
				   freed ? "does not read as zero" : "lost its pattern");
	}
	if (why)
		return why;
	virtio__write(&b->d, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL, ARRAY_SIZE(in));
	report("virtio-balloon-inflate pages=%u actual=%u", (unsigned int)ARRAY_SIZE(in),
	       virtio__config32(&b->d, VIRTIO_BALLOON_CFG_ACTUAL));
	why = send(b, Q_DEFLATE, pfns, sizeof(in) / sizeof(in[0]) * 4, false, "deflate");
	for (unsigned int i = 0; !why && i < PAGES; i++) {
		fill_page(pages[i]);
		if (!page_is(pages[i], PATTERN))
			why = fail("deflate: page %u does not keep what is written", i);
	}
	virtio__write(&b->d, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL, 0);
	if (!why)
		report("virtio-balloon-deflate pages=%u", (unsigned int)ARRAY_SIZE(in));
	return why;
}

static void fill_stats(uint64_t round)
{
	stats[0] = (struct virtio_balloon_stat){ VIRTIO_BALLOON_S_MEMTOT, 128ULL << 20 };
	stats[1] = (struct virtio_balloon_stat){ VIRTIO_BALLOON_S_MEMFREE, (64ULL << 20) + round };
	stats[2] = (struct virtio_balloon_stat){ 0x7777, round };
}

/* Hands the stats buffer to the device (it keeps it until its timer fires). */
static void offer_stats(struct balloon *b, uint64_t round, uint32_t len)
{
	struct virtio_buf buf = { stats, len, false };

	fill_stats(round);
	virtio__queue_post(&b->d, &b->q[b->q_stats], &buf, 1);
}

/* The seconds the command line's balloon_stats_wait= gives, or 3. */
static uint64_t stats_wait_s(void)
{
	uint64_t v = 3;

	if (!virtio__cmdline_uint(STATS_WAIT_KEY, 600, &v))
		v = 3;
	return v;
}

/* The stats buffer must come back within the wait; it is then sent again. */
static const char *stats_round(struct balloon *b, uint32_t len, const char *what)
{
	struct vq_used_elem e;
	uint64_t start = rdtsc();

	offer_stats(b, 1, len);
	if (virtio__queue_wait(&b->q[b->q_stats], &e, stats_wait_s() * VIRTIO_WAIT_TSC))
		return fail("%s: the stats buffer did not come back", what);
	report("virtio-balloon-stats %s back_after_mcycles=%llu", what,
	       (unsigned long long)((rdtsc() - start) / 1000000));
	offer_stats(b, 2, len);
	return NULL;
}

/* A 2 MiB-aligned region of 2 MiB, a pattern word in each page. */
static uint8_t *huge_region(void)
{
	if (!report_region) {
		uint8_t *p = memory__alloc(2 * HUGE);

		if (!p)
			return NULL;
		report_region = (uint8_t *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	}
	for (unsigned int off = 0; off < HUGE; off += PAGE)
		*(volatile word_t *)(report_region + off) = PATTERN;
	return report_region;
}

static const char *region_zero(const uint8_t *region, const char *what)
{
	for (unsigned int off = 0; off < HUGE; off += PAGE)
		if (*(volatile const word_t *)(region + off))
			return fail("%s: +0x%x does not read as zero", what, off);
	return NULL;
}

static const char *reporting(struct balloon *b)
{
	uint8_t *region = huge_region();
	const char *why;

	if (!region)
		return fail("report: no memory for a 2 MiB region");
	why = send(b, b->q_report, region, HUGE, true, "report");
	if (!why)
		why = region_zero(region, "report");
	if (!why)
		report("virtio-balloon-report bytes=%u", HUGE);
	return why;
}

/* With huge pages: the 512 pages of one 2 MiB page, in two arrays, free it. */
static const char *inflate_huge_page(struct balloon *b)
{
	uint8_t *region = huge_region();
	const char *why = NULL;

	if (!region)
		return fail("huge: no memory for a 2 MiB region");
	for (unsigned int half = 0; half < 2 && !why; half++) {
		for (unsigned int i = 0; i < 256; i++)
			pfns[i] = pfn_of(region + (half * 256 + i) * PAGE);
		if (!half && !*(volatile word_t *)region)
			why = fail("huge: half the pages freed a 2 MiB page");
		if (!why)
			why = send(b, Q_INFLATE, pfns, 256 * 4, false, "huge inflate");
	}
	if (!why)
		why = region_zero(region, "huge inflate");
	for (unsigned int half = 0; half < 2 && !why; half++) {
		for (unsigned int i = 0; i < 256; i++)
			pfns[i] = pfn_of(region + (half * 256 + i) * PAGE);
		why = send(b, Q_DEFLATE, pfns, 256 * 4, false, "huge deflate");
	}
	if (!why)
		report("virtio-balloon-huge-inflate bytes=%u", HUGE);
	return why;
}

const char *test_virtio_balloon(void)
{
	struct balloon *b = &bl;
	const char *why;

	why = find_and_setup(b);
	if (why)
		return why;
	report("virtio-balloon dev=%u features=0x%llx num_pages=%u queues=%u", b->d.slot,
	       (unsigned long long)b->d.features, num_pages(b), b->nr_queues);
	why = inflate_deflate(b);
	if (!why && b->q_stats >= 0)
		why = stats_round(b, sizeof(stats), "round");
	if (!why && b->q_report >= 0)
		why = reporting(b);
	if (!why && huge_pages())
		why = inflate_huge_page(b);
	if (why)
		return why;
	return virtio__reset(&b->d) ? fail("reset did not complete") : NULL;
}

/* ---- virtio_balloon_hostile ---- */

enum hostile_kind {
	H_SKIPPED, /* given back, the page not freed, the device goes on */
	H_RESET,   /* DEVICE_NEEDS_RESET */
};

struct hostile_case {
	const char *name;
	enum hostile_kind kind;
	int queue; /* Q_INFLATE, or -1 stats, -2 reporting */
	const void *addr;
	uint32_t len;
	bool write;
};

/* A plain inflate of page 0 frees it, and a deflate gives it back. */
static const char *still_works(struct balloon *b, const char *name)
{
	const char *why;

	fill_page(pages[0]);
	pfns[0] = pfn_of(pages[0]);
	why = send(b, Q_INFLATE, pfns, 4, false, name);
	if (!why && !page_is(pages[0], 0))
		why = fail("%s: afterwards, an inflated page does not read as zero", name);
	if (!why)
		why = send(b, Q_DEFLATE, pfns, 4, false, name);
	return why;
}

static const char *run_case(struct balloon *b, const struct hostile_case *c)
{
	struct virtio_buf buf = { c->addr, c->len, c->write };
	int qi = c->queue == -1 ? b->q_stats : c->queue == -2 ? b->q_report : c->queue;
	struct virtio_queue *q;
	struct vq_used_elem e;
	uint16_t head;
	const char *why;

	if (qi < 0)
		return NULL; /* that queue was not negotiated */
	q = &b->q[qi];
	fill_page(pages[1]);
	head = virtio__queue_post(&b->d, q, &buf, 1);
	report("virtio-balloon-hostile %s", c->name);
	if (c->kind == H_RESET) {
		why = virtio__expect_needs_reset(&b->d, "virtio-balloon-hostile-status", c->name);
		if (!why)
			why = setup(b);
		return why ? why : still_works(b, c->name);
	}
	/* a stats buffer comes back at the next tick, the others at once */
	if (virtio__queue_wait(q, &e, (c->queue == -1 ? stats_wait_s() : 1) * VIRTIO_WAIT_TSC))
		return fail("%s: the buffer was not given back", c->name);
	if (e.id != head || e.len)
		return fail("%s: used id %u len %u, expected %u and 0", c->name, e.id, e.len, head);
	if (c->queue == Q_INFLATE && !page_is(pages[1], PATTERN))
		return fail("%s: a page named only by a skipped buffer was freed", c->name);
	if (virtio__read(&b->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET)
		return fail("%s: the device needs a reset", c->name);
	return still_works(b, c->name);
}

/* Page 2 is good, the others are outside RAM or in the MMIO gap. */
static const char *bad_pfns(struct balloon *b, uint64_t ram_top)
{
	const char *why;

	fill_page(pages[2]);
	pfns[0] = (uint32_t)(ram_top / PAGE) + 1;
	pfns[1] = MMIO_GAP_START / PAGE;
	pfns[2] = pfn_of(pages[2]);
	pfns[3] = 0xffffffffu;
	pfns[4] = (uint32_t)(ram_top / PAGE);
	report("virtio-balloon-hostile pfns-outside-ram");
	why = send(b, Q_INFLATE, pfns, 5 * 4, false, "pfns-outside-ram");
	if (!why && !page_is(pages[2], 0))
		why = fail("pfns-outside-ram: the good page was not freed");
	if (!why)
		why = send(b, Q_DEFLATE, pfns, 5 * 4, false, "pfns-outside-ram deflate");
	return why;
}

const char *test_virtio_balloon_hostile(void)
{
	struct balloon *b = &bl;
	uint64_t ram_top = virtio__ram_top();
	const void *gap = (const void *)(uintptr_t)MMIO_GAP_START;
	const void *past = (const void *)(uintptr_t)(ram_top - 8);
	const struct hostile_case cases[] = {
		{ "huge-array", H_SKIPPED, Q_INFLATE, pfns, HOSTILE_PFNS * 4, false },
		{ "odd-length", H_SKIPPED, Q_INFLATE, pfns, 6, false },
		{ "writable-array", H_SKIPPED, Q_INFLATE, pfns, 4, true },
		{ "stats-odd-length", H_SKIPPED, -1, stats, 7, false },
		{ "array-in-mmio-gap", H_RESET, Q_INFLATE, gap, 16, false },
		{ "array-past-ram", H_RESET, Q_INFLATE, past, 16, false },
		{ "report-in-mmio-gap", H_RESET, -2, gap, HUGE, true },
	};
	const char *why;

	why = find_and_setup(b);
	if (!why)
		why = bad_pfns(b, ram_top);
	for (unsigned int i = 0; i < HOSTILE_PFNS; i++)
		pfns[i] = pfn_of(pages[1]);
	for (unsigned int i = 0; !why && i < ARRAY_SIZE(cases); i++)
		why = run_case(b, &cases[i]);
	if (!why && virtio__reset(&b->d))
		why = fail("reset did not complete");
	return why;
}

/* ---- virtio_balloon_watch ---- */

const char *test_virtio_balloon_watch(void)
{
	struct balloon *b = &bl;
	uint32_t seen, now, isr;
	uint64_t round = 1;
	struct vq_used_elem e;
	const char *why;

	why = find_and_setup(b);
	if (why)
		return why;
	if (b->q_stats >= 0)
		offer_stats(b, round, sizeof(stats));
	seen = num_pages(b);
	virtio__write(&b->d, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL, seen);
	report("virtio-balloon-watch num_pages=%u isr=0x0", seen);
	for (;;) {
		uint64_t start = rdtsc();

		while (rdtsc() - start < WATCH_TSC)
			cpu_relax();
		if (b->q_stats >= 0 && virtio__queue_take(&b->q[b->q_stats], &e))
			offer_stats(b, ++round, sizeof(stats));
		now = num_pages(b);
		if (now == seen)
			continue;
		isr = virtio__read(&b->d, VIRTIO_MMIO_INT_STATUS);
		virtio__write(&b->d, VIRTIO_MMIO_INT_ACK, isr);
		virtio__write(&b->d, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL, now);
		report("virtio-balloon-watch num_pages=%u isr=0x%x", now, isr);
		seen = now;
	}
}
