// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio-balloon (src/virtio/balloon.c, balloon_stats.c; docs/balloon.md),
 * without KVM, through its transport with a fake guest memory and a fake driver: the
 * features and queues each config gives; the config space (num_pages from the API, actual
 * from the driver, a config interrupt on a new target); inflate on a real mapping (pages
 * the pattern was written into read as zero and are no longer resident, mincore(2); runs of
 * contiguous pfns coalesced into one madvise each; pages marked dirty); hostile pfns and
 * buffers (outside RAM, in the MMIO gap, too many, odd lengths, device-writable) skipped and
 * counted; deflate; free page reporting (whole pages only, 2 MiB ones with huge pages); 2 MiB
 * huge pages freed once all their 512 pages are in the balloon; the stats parser and the
 * stats buffer's round trip (kept, returned by the timer or a new interval, refilled);
 * statistics that cannot be turned on or off; snapshots keep the target, actual and the
 * stats buffer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtio/balloon.h"
#include "vmm/event_loop.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#include "fake_gmem.h"
#include "fake_virtio.h"
#include "fake_vring.h"
#include "virtio_mmio_regs.h"

#define MEM (32ULL << 20)
#define BASE 0xd0001000ULL
#define GSI 5
#define RING 0x10000ULL
#define PFNS 0x80000ULL	  /* where the driver's pfn arrays and stats buffers go */
#define DATA (8ULL << 20) /* the pages given to the balloon: 2 MiB-aligned */
#define QSIZE 16
#define PAGE 4096ULL
#define HUGE (2ULL << 20)
#define FILL 0xa5
#define F_V1 (1ULL << VIRTIO_F_VERSION_1)
#define F_STATS (1ULL << VIRTIO_BALLOON_F_STATS_VQ)
#define F_OOM (1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM)
#define F_REPORTING (1ULL << VIRTIO_BALLOON_F_REPORTING)
#define Q_INFLATE 0
#define Q_DEFLATE 1

static struct {
	struct fake_gmem fg;
	struct event_loop loop;
	struct fake_vring rings[4];
	unsigned int nr_rings;
	struct virtio_balloon *b;
	struct balloon_config cfg;
} g;

/* ---- helpers ---- */

static void pump(void)
{
	for (int i = 0; i < 1000 && event_loop__run_once(&g.loop, 0) > 0; i++)
		;
}

/* Used elements of r that the driver has not read yet. */
static uint16_t unread(const struct fake_vring *r)
{
	return (uint16_t)(fake_gmem__load16_acquire(&g.fg, r->used + 2) - r->last_used);
}

/* Runs the loop, 10 ms at a time, until r has `want` unread used elements or ms pass. */
static void pump_until_used(struct fake_vring *r, uint16_t want, unsigned int ms)
{
	for (unsigned int waited = 0; waited < ms && unread(r) < want; waited += 10)
		event_loop__run_once(&g.loop, 10);
}

/* A device of g.cfg on the loop; *out on success, the test failed otherwise. */
static void make_device(struct virtio_balloon **out)
{
	int ret;

	error__clear();
	ret = virtio_balloon__create(out, &g.cfg, -1, &g.fg.gm, BASE, GSI);
	if (!ret)
		ret = virtio_balloon__watch(*out, &g.loop);
	if (ret) {
		print_error("balloon: %s\n", error__get());
		fail();
	}
}

/* Negotiates want and sets nr queues up, as a driver would. */
static void start_n(uint64_t want, unsigned int nr)
{
	for (unsigned int i = 0; i < nr; i++)
		fake_vring__init(&g.rings[i], &g.fg, RING + i * FAKE_VRING_BYTES, QSIZE, false);
	g.nr_rings = nr;
	if (fake_virtio__start(&g.b->t, VIRTIO_ID_BALLOON, F_V1 | want, g.rings, nr)) {
		print_error("start: %s\n", error__get());
		fail();
	}
}

static void start(uint64_t want)
{
	start_n(want, 2 + !!(want & F_STATS) + !!(want & F_REPORTING));
}

/*
 * The loop, guest memory (2 MiB-aligned THP memory treated as 2 MiB huge pages, with
 * huge), and with started a device of every feature that a driver has set up.
 */
static int prepare(bool huge, bool started)
{
	struct memory_backing thp = { .huge = MEMORY_HUGE_THP };

	memset(&g, 0, sizeof(g));
	log__set_level(LOG_LEVEL_ERROR);
	g.cfg = (struct balloon_config){ .amount_mib = 4,
					 .deflate_on_oom = true,
					 .stats_polling_interval_s = 1,
					 .free_page_reporting = true };
	assert_int_equal(event_loop__init(&g.loop), 0);
	assert_int_equal(memory__map_backed(&g.fg.gm, MEM, huge ? &thp : NULL, false), 0);
	g.fg.mem = g.fg.gm.regions[0].host;
	g.fg.bytes = MEM;
	g.fg.gm.huge_2m = huge;
	if (started) {
		make_device(&g.b);
		start(F_STATS | F_OOM | F_REPORTING);
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return prepare(false, false);
}

static int setup_started(void **state)
{
	(void)state;
	return prepare(false, true);
}

static int setup_huge(void **state)
{
	(void)state;
	assert_int_equal(prepare(true, true), 0);
	assert_int_equal((uintptr_t)g.fg.mem % HUGE, 0);
	return 0;
}

/* In the reverse order of prepare(). */
static int teardown(void **state)
{
	(void)state;
	virtio_balloon__destroy(g.b);
	fake_gmem__destroy(&g.fg);
	event_loop__destroy(&g.loop);
	return 0;
}

static uint8_t *page(uint64_t pfn)
{
	return fake_gmem__ptr(&g.fg, pfn * PAGE, PAGE);
}

static uint64_t data_pfn(unsigned int i)
{
	return DATA / PAGE + i;
}

/* The data pages [first, first + n) take the pattern (and so are resident). */
static void fill(unsigned int first, unsigned int n)
{
	memset(page(data_pfn(first)), FILL, n * PAGE);
}

static bool resident(uint64_t pfn)
{
	unsigned char vec = 0;

	assert_int_equal(mincore(page(pfn), PAGE, &vec), 0);
	return vec & 1;
}

static bool all(uint64_t pfn, uint8_t v)
{
	const uint8_t *p = page(pfn);

	for (uint64_t i = 0; i < PAGE; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* A freed page: not resident (looked at first: reading it maps the zero page), zeros. */
static void expect_freed(uint64_t pfn, bool freed)
{
	if (freed) {
		assert_false(resident(pfn));
		assert_true(all(pfn, 0));
	} else {
		assert_true(all(pfn, FILL));
	}
}

/* One buffer on queue q; waits for it to be used (length 0). */
static void send(unsigned int q, uint64_t gpa, uint32_t len, bool write)
{
	struct fake_vring *r = &g.rings[q];
	uint32_t id, used;
	uint16_t head = fake_vring__add(r, &gpa, &len, 1, write);

	fake_vring__publish(r);
	assert_int_equal(fake_virtio__kick(&g.b->t, (uint16_t)q), 0);
	pump_until_used(r, 1, 2000);
	assert_true(fake_vring__next_used(r, &id, &used));
	assert_int_equal(id, head);
	assert_int_equal(used, 0);
}

/* The pfns as an array at PFNS, sent on queue q. */
static void send_pfns(unsigned int q, const uint32_t *pfns, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		fake_gmem__put32(&g.fg, PFNS + 4 * i, pfns[i]);
	send(q, PFNS, n * 4, false);
}

static uint32_t status(void)
{
	return fake_virtio__read(&g.b->t, R_STATUS);
}

/* ---- features, queues, config space ---- */

static void test_features_follow_the_config(void **state)
{
	static const struct {
		uint32_t interval;
		bool oom, reporting;
		uint64_t features;
		uint32_t queues;
	} cases[] = {
		{ 0, false, false, F_V1, 2 },
		{ 5, false, false, F_V1 | F_STATS, 3 },
		{ 0, true, true, F_V1 | F_OOM | F_REPORTING, 3 },
		{ 1, true, true, F_V1 | F_STATS | F_OOM | F_REPORTING, 4 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct virtio_balloon *b = NULL;

		g.cfg = (struct balloon_config){ .stats_polling_interval_s = cases[i].interval,
						 .deflate_on_oom = cases[i].oom,
						 .free_page_reporting = cases[i].reporting };
		make_device(&b);
		assert_int_equal(fake_virtio__read(&b->t, R_DEVICE_ID), VIRTIO_ID_BALLOON);
		assert_int_equal(fake_virtio__offered(&b->t), cases[i].features);
		assert_int_equal(b->t.ops->nr_queues, cases[i].queues);
		virtio_balloon__destroy(b);
	}
}

/* Linux's numbering: absent queues are left out, so reporting follows deflate directly. */
static void test_queue_roles_follow_negotiation(void **state)
{
	(void)state;
	/* both offered, only reporting taken: queue 2 is the reporting queue */
	start_n(F_REPORTING, 3);
	assert_int_equal(g.b->q_stats, -1);
	assert_int_equal(g.b->q_report, 2);
	fill(0, 2);
	send(2, DATA, 2 * PAGE, true);
	expect_freed(data_pfn(0), true);
	expect_freed(data_pfn(1), true);
	/* both taken */
	start(F_STATS | F_REPORTING);
	assert_int_equal(g.b->q_stats, 2);
	assert_int_equal(g.b->q_report, 3);
	/* none: queues 2 and 3 are nobody's, a kick there does nothing */
	start_n(0, 2);
	assert_int_equal(g.b->q_stats, -1);
	assert_int_equal(g.b->q_report, -1);
}

static void test_config_space(void **state)
{
	uint32_t gen;

	(void)state;
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG), 4 * 256);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG + 4), 0);
	/* the driver writes actual; num_pages is the device's */
	fake_virtio__write(&g.b->t, R_CONFIG + 4, 777);
	fake_virtio__write(&g.b->t, R_CONFIG, 5);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG), 1024);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG + 4), 777);
	assert_int_equal(g.b->actual, 777);
	/* a byte of actual */
	virtio_mmio__bus_ops.write(&g.b->t, R_CONFIG + 5, (const uint8_t[]){ 0x01 }, 1);
	assert_int_equal(g.b->actual, 777 % 256 + 256);
	/* past the config space: nothing */
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG + 8), 0);
	/* a new target: num_pages, a new generation and a config interrupt */
	gen = fake_virtio__read(&g.b->t, R_CONFIG_GENERATION);
	fake_virtio__write(&g.b->t, R_INTERRUPT_ACK, 3);
	virtio_balloon__set_target(g.b, 20);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG), 20 * 256);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG_GENERATION), gen + 1);
	assert_int_equal(fake_virtio__read(&g.b->t, R_INTERRUPT_STATUS), 2);
	/* the same target again: no interrupt */
	fake_virtio__write(&g.b->t, R_INTERRUPT_ACK, 3);
	virtio_balloon__set_target(g.b, 20);
	assert_int_equal(fake_virtio__read(&g.b->t, R_INTERRUPT_STATUS), 0);
	/* a reset clears actual */
	fake_virtio__write(&g.b->t, R_STATUS, 0);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG + 4), 0);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG), 20 * 256);
}

/* ---- inflate and deflate ---- */

static void test_inflate_frees_and_coalesces(void **state)
{
	/* runs: 0-3 (given out of order, one twice), 5, 8-9 */
	static const uint32_t order[] = { 3, 0, 9, 2, 5, 1, 8, 2 };
	uint32_t pfns[8];
	uint64_t *bitmap, words = memory__bitmap_words(g.fg.gm.regions[0].size);

	(void)state;
	assert_int_equal(memory__track_dirty(&g.fg.gm), 0);
	bitmap = calloc(words, sizeof(*bitmap));
	assert_non_null(bitmap);
	fill(0, 12);
	for (unsigned int i = 0; i < 12; i++)
		assert_true(resident(data_pfn(i)));
	memory__take_dirty(&g.fg.gm, 0, bitmap);
	memset(bitmap, 0, words * sizeof(*bitmap));
	for (unsigned int i = 0; i < 8; i++)
		pfns[i] = (uint32_t)data_pfn(order[i]);
	send_pfns(Q_INFLATE, pfns, 8);
	for (unsigned int i = 0; i < 12; i++) {
		bool freed = i <= 3 || i == 5 || i == 8 || i == 9;

		expect_freed(data_pfn(i), freed);
	}
	assert_int_equal(g.b->discards, 3);
	assert_int_equal(g.b->m.inflated_pages, 7);
	assert_int_equal(g.b->m.discarded_bytes, 7 * PAGE);
	assert_int_equal(g.b->m.inflate_count, 1);
	/* what was freed reads as zeros now: dirty for a Diff snapshot */
	memory__take_dirty(&g.fg.gm, 0, bitmap);
	for (unsigned int i = 0; i < 12; i++) {
		uint64_t pg = data_pfn(i);
		bool freed = i <= 3 || i == 5 || i == 8 || i == 9;

		assert_int_equal(!!(bitmap[pg / 64] & (1ULL << (pg % 64))), freed);
	}
	free(bitmap);
	/* deflate: counted; the pages are the guest's again */
	send_pfns(Q_DEFLATE, pfns, 8);
	assert_int_equal(g.b->m.deflate_count, 1);
	fill(0, 12);
	expect_freed(data_pfn(0), false);
	assert_int_equal(g.b->m.event_fails, 0);
	assert_int_equal(g.b->t.m.needs_reset, 0);
}

/* The largest array Linux sends: 256 pfns, all contiguous, one madvise. */
static void test_full_array_one_run(void **state)
{
	uint32_t pfns[BALLOON_MAX_PFNS_PER_BUF];

	(void)state;
	fill(0, BALLOON_MAX_PFNS_PER_BUF);
	for (unsigned int i = 0; i < BALLOON_MAX_PFNS_PER_BUF; i++)
		pfns[i] = (uint32_t)data_pfn(BALLOON_MAX_PFNS_PER_BUF - 1 - i);
	send_pfns(Q_INFLATE, pfns, BALLOON_MAX_PFNS_PER_BUF);
	assert_int_equal(g.b->discards, 1);
	expect_freed(data_pfn(0), true);
	expect_freed(data_pfn(BALLOON_MAX_PFNS_PER_BUF - 1), true);
}

static void test_hostile_pfns_skipped(void **state)
{
	uint32_t pfns[] = {
		(uint32_t)(MEM / PAGE),		   /* the first page past RAM */
		0xd0000,			   /* the MMIO gap */
		(uint32_t)data_pfn(1),		   /* a good one */
		0xffffffffu,			   /* far away */
		(uint32_t)(MEM / PAGE - 1),	   /* the last page of RAM: good */
		(uint32_t)(0x100000000ULL / PAGE), /* 4 GiB: no RAM above the gap here */
	};

	(void)state;
	fill(0, 4);
	memset(page(MEM / PAGE - 1), FILL, PAGE);
	send_pfns(Q_INFLATE, pfns, 6);
	assert_int_equal(g.b->m.bad_pfns, 4);
	assert_int_equal(g.b->m.inflated_pages, 2);
	expect_freed(data_pfn(1), true);
	expect_freed(MEM / PAGE - 1, true);
	expect_freed(data_pfn(0), false);
	send_pfns(Q_DEFLATE, pfns, 6);
	assert_int_equal(g.b->m.bad_pfns, 8);
	assert_false(status() & VIRTIO_STATUS_NEEDS_RESET);
}

/* Buffers that break the rules are skipped: nothing freed, the device goes on. */
static void test_bad_buffers_skipped(void **state)
{
	(void)state;
	fill(0, 4);
	for (unsigned int i = 0; i <= BALLOON_MAX_PFNS_PER_BUF; i++)
		fake_gmem__put32(&g.fg, PFNS + 4 * i, (uint32_t)data_pfn(0));
	/* one pfn too many */
	send(Q_INFLATE, PFNS, (BALLOON_MAX_PFNS_PER_BUF + 1) * 4, false);
	/* odd lengths */
	send(Q_INFLATE, PFNS, 6, false);
	send(Q_INFLATE, PFNS, 3, false);
	/* device-writable */
	send(Q_INFLATE, PFNS, 4, true);
	expect_freed(data_pfn(0), false);
	assert_int_equal(g.b->m.event_fails, 4);
	assert_int_equal(g.b->m.inflate_count, 4);
	assert_int_equal(g.b->m.inflated_pages, 0);
	assert_false(status() & VIRTIO_STATUS_NEEDS_RESET);
	/* and a good one still works */
	send(Q_INFLATE, PFNS, 4, false);
	expect_freed(data_pfn(0), true);
}

/* A pfn array the queue itself refuses (in the gap, past RAM): DEVICE_NEEDS_RESET. */
static void test_array_outside_ram_needs_reset(void **state)
{
	uint64_t gpas[] = { 0xd0000000ULL, MEM - 8 };

	(void)state;
	for (unsigned int i = 0; i < 2; i++) {
		uint64_t gpa = gpas[i];
		uint32_t len = 16;

		fake_vring__add(&g.rings[Q_INFLATE], &gpa, &len, 1, false);
		fake_vring__publish(&g.rings[Q_INFLATE]);
		assert_int_equal(fake_virtio__kick(&g.b->t, Q_INFLATE), 0);
		pump();
		assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
		start(F_STATS | F_OOM | F_REPORTING);
	}
	assert_int_equal(g.b->t.m.needs_reset, 2);
	assert_int_equal(g.b->m.event_fails, 2);
	fill(0, 1);
	send_pfns(Q_INFLATE, (uint32_t[]){ (uint32_t)data_pfn(0) }, 1);
	expect_freed(data_pfn(0), true);
}

/* ---- free page reporting ---- */

static void test_reporting_frees_whole_pages(void **state)
{
	(void)state;
	fill(0, 8);
	/* from the middle of page 0 to the middle of page 4: pages 1-3 only */
	send(3, DATA + PAGE / 2, 4 * PAGE, true);
	expect_freed(data_pfn(0), false);
	expect_freed(data_pfn(1), true);
	expect_freed(data_pfn(3), true);
	expect_freed(data_pfn(4), false);
	/* a device-readable buffer is taken too */
	send(3, DATA + 5 * PAGE, PAGE, false);
	expect_freed(data_pfn(5), true);
	assert_int_equal(g.b->m.free_page_reports, 2);
	assert_int_equal(g.b->m.discarded_bytes, 4 * PAGE);
}

/* ---- 2 MiB huge pages ---- */

static void test_huge_page_freed_when_whole(void **state)
{
	uint32_t pfns[BALLOON_MAX_PFNS_PER_BUF];

	(void)state;
	fill(0, 512);
	/* 511 of the 512 pages, in two arrays, one of them twice: nothing freed yet */
	for (unsigned int half = 0; half < 2; half++) {
		for (unsigned int i = 0; i < 256; i++)
			pfns[i] = (uint32_t)data_pfn(half * 256 + i);
		send_pfns(Q_INFLATE, pfns, half ? 255 : 256);
	}
	send_pfns(Q_INFLATE, pfns, 255);
	assert_int_equal(g.b->discards, 0);
	expect_freed(data_pfn(0), false);
	/* a deflated page leaves the count; the 512th and it again complete it */
	send_pfns(Q_DEFLATE, (uint32_t[]){ (uint32_t)data_pfn(7) }, 1);
	send_pfns(Q_INFLATE, (uint32_t[]){ (uint32_t)data_pfn(511) }, 1);
	assert_int_equal(g.b->discards, 0);
	send_pfns(Q_INFLATE, (uint32_t[]){ (uint32_t)data_pfn(7) }, 1);
	assert_int_equal(g.b->discards, 1);
	assert_int_equal(g.b->m.discarded_bytes, HUGE);
	/* residency first: reading maps THP's huge zero page over all 512 */
	assert_false(resident(data_pfn(0)) || resident(data_pfn(511)));
	expect_freed(data_pfn(0), true);
	/* reporting: only a whole huge page inside the range */
	fill(512, 1024);
	send(3, DATA + HUGE + PAGE, HUGE, true);
	expect_freed(data_pfn(512), false);
	expect_freed(data_pfn(1024), false);
	send(3, DATA + HUGE - PAGE, HUGE + 2 * PAGE, true);
	assert_false(resident(data_pfn(512)) || resident(data_pfn(1023)));
	expect_freed(data_pfn(512), true);
	expect_freed(data_pfn(1024), false);
	assert_int_equal(g.b->m.discarded_bytes, 2 * HUGE);
}

/* ---- statistics ---- */

static void put_stat(unsigned int i, uint16_t tag, uint64_t val)
{
	fake_gmem__put16(&g.fg, PFNS + 10 * i, tag);
	fake_gmem__put64(&g.fg, PFNS + 10 * i + 2, val);
}

static void test_stats_parser(void **state)
{
	struct balloon_stats s = { 0 };
	uint8_t buf[40] = { 0 };

	(void)state;
	/* total_memory 0x1122334455667788, an unknown tag, free_memory 5, oom_kill (tag 10) */
	buf[0] = 5;
	memcpy(buf + 2, (uint8_t[]){ 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 }, 8);
	buf[10] = 0x34;
	buf[11] = 0x12;
	buf[12] = 9;
	buf[20] = 4;
	buf[22] = 5;
	buf[30] = 10;
	buf[32] = 1;
	assert_int_equal(balloon_stats__parse(&s, buf, 40), 4);
	assert_int_equal(s.present, (1u << 5) | (1u << 4) | (1u << 10));
	assert_int_equal(s.value[BALLOON_STAT_total_memory], 0x1122334455667788ULL);
	assert_int_equal(s.value[BALLOON_STAT_free_memory], 5);
	assert_int_equal(s.value[BALLOON_STAT_oom_kill], 1);
	/* a later buffer replaces what it names and keeps the rest */
	assert_int_equal(balloon_stats__parse(&s, buf + 20, 10), 1);
	assert_int_equal(s.present, (1u << 5) | (1u << 4) | (1u << 10));
	/* half a pair, too long: nothing changes */
	buf[22] = 6;
	assert_int_equal(balloon_stats__parse(&s, buf + 20, 11), -EINVAL);
	assert_int_equal(balloon_stats__parse(&s, buf, 9), -EINVAL);
	assert_int_equal(s.value[BALLOON_STAT_free_memory], 5);
	assert_int_equal(balloon_stats__parse(&s, NULL, 0), 0);
	assert_int_equal(balloon_stats__parse(&s, buf, BALLOON_STATS_MAX_BYTES + 10), -EINVAL);
	assert_string_equal(balloon_stats__names[BALLOON_STAT_swap_in], "swap_in");
	assert_string_equal(balloon_stats__names[BALLOON_STAT_hugetlb_failures],
			    "hugetlb_failures");
	assert_string_equal(balloon_stats__names[BALLOON_STAT_direct_reclaim], "direct_reclaim");
}

/* The buffer is kept until the timer or a new interval returns it; the values arrive. */
static uint16_t offer_stats(uint64_t free_bytes, uint32_t len)
{
	struct fake_vring *r = &g.rings[2];
	uint64_t gpa = PFNS;
	uint16_t head;

	put_stat(0, 5, 128ULL << 20);
	put_stat(1, 4, free_bytes);
	put_stat(2, 999, 1);
	head = fake_vring__add(r, &gpa, &len, 1, false);
	fake_vring__publish(r);
	assert_int_equal(fake_virtio__kick(&g.b->t, 2), 0);
	pump();
	return head;
}

static void test_stats_round_trip(void **state)
{
	struct balloon_stats s;
	uint32_t id, len;
	uint16_t head;

	(void)state;
	head = offer_stats(64ULL << 20, 30);
	assert_true(g.b->holds_stats);
	assert_false(fake_vring__next_used(&g.rings[2], &id, &len));
	fake_virtio__write(&g.b->t, R_CONFIG + 4, 512);
	assert_int_equal(virtio_balloon__get_stats(g.b, &s), 0);
	assert_int_equal(s.target_pages, 1024);
	assert_int_equal(s.actual_pages, 512);
	assert_int_equal(s.present, (1u << 5) | (1u << 4));
	assert_int_equal(s.value[BALLOON_STAT_free_memory], 64ULL << 20);
	/* the timer (1 s) gives it back */
	pump_until_used(&g.rings[2], 1, 3000);
	assert_true(fake_vring__next_used(&g.rings[2], &id, &len));
	assert_int_equal(id, head);
	assert_false(g.b->holds_stats);
	/* refilled; a new interval returns it at once */
	head = offer_stats(32ULL << 20, 30);
	assert_int_equal(virtio_balloon__set_stats_interval(g.b, 7), 0);
	assert_true(fake_vring__next_used(&g.rings[2], &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(virtio_balloon__get_stats(g.b, &s), 0);
	assert_int_equal(s.value[BALLOON_STAT_free_memory], 32ULL << 20);
	/* statistics cannot be turned off */
	error__clear();
	assert_int_equal(virtio_balloon__set_stats_interval(g.b, 0), -EINVAL);
	assert_non_null(strstr(error__get(), "cannot be turned off"));
	assert_int_equal(virtio_balloon__set_stats_interval(g.b, 7), 0);
	/* two buffers: the first goes back, the second is kept; a malformed one is counted */
	head = offer_stats(1, 30);
	offer_stats(2, 25);
	assert_true(fake_vring__next_used(&g.rings[2], &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(g.b->m.stats_update_fails, 1);
	assert_int_equal(g.b->m.stats_updates_count, 4);
	assert_int_equal(virtio_balloon__get_stats(g.b, &s), 0);
	assert_int_equal(s.value[BALLOON_STAT_free_memory], 1);
	assert_false(status() & VIRTIO_STATUS_NEEDS_RESET);
}

/*
 * Linux gives its stats buffer and kicks before DRIVER_OK (a kick the transport drops then):
 * the buffer is taken once the driver sets DRIVER_OK (the transport replays the kick).
 */
static void test_buffer_given_before_driver_ok(void **state)
{
	struct fake_vring *r = &g.rings[2];
	uint64_t gpa = PFNS;
	uint32_t len = 20;

	(void)state;
	for (unsigned int q = 0; q < 3; q++)
		fake_vring__init(&g.rings[q], &g.fg, RING + q * FAKE_VRING_BYTES, QSIZE, false);
	assert_int_equal(fake_virtio__configure(&g.b->t, VIRTIO_ID_BALLOON, F_STATS | F_V1,
						g.rings, 3),
			 0);
	put_stat(0, 5, 12345);
	put_stat(1, 4, 678);
	fake_vring__add(r, &gpa, &len, 1, false);
	fake_vring__publish(r);
	assert_int_equal(fake_virtio__kick(&g.b->t, 2), 0);
	pump();
	assert_false(g.b->holds_stats);
	fake_virtio__write(&g.b->t, R_STATUS,
			   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	pump();
	assert_true(g.b->holds_stats);
	assert_int_equal(g.b->stats.value[BALLOON_STAT_total_memory], 12345);
}

static void test_stats_off(void **state)
{
	struct balloon_stats s;

	(void)state;
	g.cfg.stats_polling_interval_s = 0;
	make_device(&g.b);
	start(F_REPORTING);
	error__clear();
	assert_int_equal(virtio_balloon__get_stats(g.b, &s), -EINVAL);
	assert_non_null(strstr(error__get(), "not enabled"));
	assert_int_equal(virtio_balloon__set_stats_interval(g.b, 1), -EINVAL);
	assert_non_null(strstr(error__get(), "cannot be turned on"));
	assert_int_equal(virtio_balloon__set_stats_interval(g.b, 0), 0);
	assert_int_equal(g.b->stats_timer_fd, -1);
}

/* ---- snapshots ---- */

static void test_snapshot_keeps_target_actual_and_stats_buffer(void **state)
{
	struct snapshot_file_writer w;
	struct snapshot_file_reader rd;
	struct virtio_balloon *copy = NULL;
	struct balloon_stats s;
	const uint8_t *data;
	uint32_t id, len;
	uint16_t head;
	size_t size;

	(void)state;
	virtio_balloon__set_target(g.b, 9);
	fake_virtio__write(&g.b->t, R_CONFIG + 4, 2000);
	head = offer_stats(77, 30);
	assert_int_equal(snapshot_file__writer_init(&w, "0.1.0", "test cpu"), 0);
	assert_int_equal(virtio_balloon__save(g.b, &w), 0);
	assert_int_equal(snapshot_file__finish(&w, &data, &size), 0);
	assert_int_equal(snapshot_file__open_buffer(&rd, data, size), 0);
	/* the running device keeps the buffer */
	assert_true(g.b->holds_stats);
	virtio_balloon__destroy(g.b);
	g.b = NULL;
	/* made from the config (target 4 MiB), restored: 9 MiB, actual, the buffer again */
	make_device(&copy);
	error__clear();
	assert_int_equal(virtio_balloon__restore(copy, &rd), 0);
	g.b = copy;
	assert_true(status() & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG), 9 * 256);
	assert_int_equal(fake_virtio__read(&g.b->t, R_CONFIG + 4), 2000);
	/* the statistics are there when the restore returns, before the loop has run */
	assert_true(g.b->holds_stats);
	assert_int_equal(g.b->stats_head, head);
	assert_int_equal(virtio_balloon__get_stats(g.b, &s), 0);
	assert_int_equal(s.value[BALLOON_STAT_free_memory], 77);
	assert_int_equal(s.target_pages, 9 * 256);
	pump();
	assert_true(g.b->holds_stats);
	/* and the restored device's timer returns it */
	pump_until_used(&g.rings[2], 1, 3000);
	assert_true(fake_vring__next_used(&g.rings[2], &id, &len));
	assert_int_equal(id, head);
	/* a device without statistics does not take this snapshot */
	g.cfg.stats_polling_interval_s = 0;
	copy = NULL;
	make_device(&copy);
	error__clear();
	assert_int_equal(virtio_balloon__restore(copy, &rd), -EINVAL);
	virtio_balloon__destroy(copy);
	snapshot_file__close(&rd);
	snapshot_file__writer_free(&w);
}

/* A test with its fixture: prepared as setup_fn says, torn down by teardown(). */
#define WITH(test, setup_fn) cmocka_unit_test_setup_teardown(test, setup_fn, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		WITH(test_features_follow_the_config, setup),
		WITH(test_queue_roles_follow_negotiation, setup_started),
		WITH(test_config_space, setup_started),
		WITH(test_inflate_frees_and_coalesces, setup_started),
		WITH(test_full_array_one_run, setup_started),
		WITH(test_hostile_pfns_skipped, setup_started),
		WITH(test_bad_buffers_skipped, setup_started),
		WITH(test_array_outside_ram_needs_reset, setup_started),
		WITH(test_reporting_frees_whole_pages, setup_started),
		WITH(test_huge_page_freed_when_whole, setup_huge),
		cmocka_unit_test(test_stats_parser),
		WITH(test_stats_round_trip, setup_started),
		WITH(test_buffer_given_before_driver_ok, setup_started),
		WITH(test_stats_off, setup),
		WITH(test_snapshot_keeps_target_actual_and_stats_buffer, setup_started),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
