// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/virtio/queue.c, the device side of split virtqueues.
 *
 * A fake guest (2 GiB of MAP_NORESERVE memory, only the first MiB touched) and a tiny
 * driver that lays out rings and chains the way Linux's virtio_ring.c does: descriptors
 * taken in order and linked with next = i + 1, indirect tables of the same shape, avail
 * ring entries then avail->idx, and used_event / avail_event with VIRTIO_F_EVENT_IDX.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/queue.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include "fake_gmem.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MEM (2ULL << 30)
#define TOUCHED (1ULL << 20) /* cleared before each test */
#define DESC 0x1000ULL
#define AVAIL 0x2000ULL
#define USED 0x3000ULL
#define TABLE 0x4000ULL /* indirect tables, 0x1000 apart */
#define DATA 0x10000ULL /* buffers */
#define F_NEXT VIRTQ_DESC_F_NEXT
#define F_WRITE VIRTQ_DESC_F_WRITE
#define F_IND VIRTQ_DESC_F_INDIRECT

/* One buffer a test wants in a chain. */
struct tbuf {
	uint32_t len;
	bool write;
};

/* The fake driver. */
struct drv {
	struct fake_gmem fg;
	struct virtq q;
	uint16_t avail_idx; /* what the driver will write to avail->idx next */
	uint16_t next_desc; /* next free descriptor, taken in order */
	uint64_t data;	    /* next free data address */
	unsigned int nr;    /* the last chain added */
	uint64_t gpa[VIRTQ_CHAIN_MAX + 16];
};

static struct drv d;

/* ---- the fake guest ---- */

/* A queue of size entries whose indices all start at start, as after 'start' round trips. */
static void drv_init(uint16_t size, bool event_idx, uint16_t start)
{
	memset(d.fg.mem, 0, TOUCHED);
	memset(&d.q, 0, sizeof(d.q));
	d.q.gm = &d.fg.gm;
	d.q.size = size;
	d.q.desc_gpa = DESC;
	d.q.avail_gpa = AVAIL;
	d.q.used_gpa = USED;
	d.q.event_idx = event_idx;
	d.q.indirect = true;
	assert_int_equal(virtq__check(&d.q), 0);
	d.q.ready = true;
	d.q.last_avail = d.q.used_idx = start;
	fake_gmem__put16(&d.fg, AVAIL + 2, start);
	fake_gmem__put16(&d.fg, USED + 2, start);
	d.avail_idx = start;
	d.next_desc = 0;
	d.data = DATA;
}

static int setup(void **state)
{
	(void)state;
	return fake_gmem__create(&d.fg, MEM) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_gmem__destroy(&d.fg);
	return 0;
}

static int each(void **state)
{
	(void)state;
	drv_init(256, false, 0);
	return 0;
}

/* ---- the fake driver ---- */

static uint64_t alloc_data(uint32_t len)
{
	uint64_t gpa;

	if (d.data + len > TOUCHED)
		d.data = DATA;
	gpa = d.data;
	d.data += (len + 15) & ~15ULL;
	return gpa;
}

/* Fills entries [first, first + n) of a table with bufs, linked in order. */
static void fill_table(uint64_t table, unsigned int first, unsigned int mod, const struct tbuf *b,
		       unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		unsigned int i = (first + k) % mod;
		uint16_t flags = (b[k].write ? F_WRITE : 0) | (k + 1 < n ? F_NEXT : 0);

		d.gpa[d.nr] = alloc_data(b[k].len);
		fake_gmem__set_desc(&d.fg, table, i, d.gpa[d.nr++], b[k].len, flags,
				    (uint16_t)((i + 1) % mod));
	}
}

/* A chain of direct descriptors; returns its head. */
static uint16_t add_direct(const struct tbuf *b, unsigned int n)
{
	uint16_t head = d.next_desc;

	d.nr = 0;
	fill_table(DESC, head, d.q.size, b, n);
	d.next_desc = (uint16_t)((head + n) % d.q.size);
	return head;
}

/* nd direct descriptors, then one pointing at an indirect table holding ni more. */
static uint16_t add_mixed(const struct tbuf *b, unsigned int nd, unsigned int ni, uint64_t table)
{
	uint16_t head = d.next_desc, last;

	d.nr = 0;
	fill_table(DESC, head, d.q.size, b, nd);
	last = (uint16_t)((head + nd) % d.q.size);
	if (nd) /* the last direct one goes on to the indirect one */
		fake_gmem__put16(&d.fg, DESC + 16ULL * ((head + nd - 1) % d.q.size) + 12,
				 (b[nd - 1].write ? F_WRITE : 0) | F_NEXT);
	fill_table(table, 0, ni, b + nd, ni);
	fake_gmem__set_desc(&d.fg, DESC, last, table, 16 * ni, F_IND, 0);
	d.next_desc = (uint16_t)((last + 1) % d.q.size);
	return head;
}

static uint16_t add_indirect(const struct tbuf *b, unsigned int n, uint64_t table)
{
	return add_mixed(b, 0, n, table);
}

static void publish(uint16_t head)
{
	fake_gmem__put16(&d.fg, AVAIL + 4 + 2ULL * (d.avail_idx % d.q.size), head);
	d.avail_idx++;
	fake_gmem__put16(&d.fg, AVAIL + 2, d.avail_idx);
}

/* What the chain popped into c must be what the driver added last. */
static void expect_chain(const struct vq_chain *c, uint16_t head, const struct tbuf *b,
			 unsigned int n)
{
	uint64_t rd = 0, wr = 0;

	assert_int_equal(c->head, head);
	assert_int_equal(c->nr, n);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(c->bufs[i].gpa, d.gpa[i]);
		assert_int_equal(c->bufs[i].len, b[i].len);
		assert_int_equal(c->bufs[i].write, b[i].write);
		if (b[i].write)
			wr += b[i].len;
		else
			rd += b[i].len;
	}
	assert_int_equal(c->readable, rd);
	assert_int_equal(c->writable, wr);
}

static struct vq_chain chain;

/* The driver broke a rule: -EINVAL, and nothing taken. */
static void expect_einval(void)
{
	uint16_t last = d.q.last_avail;

	assert_int_equal(virtq__pop(&d.q, &chain), -EINVAL);
	assert_int_equal(d.q.last_avail, last);
}

static const struct tbuf blk_read[] = { { 16, false }, { 4096, true }, { 1, true } };

/* ---- virtq__check ---- */

static void check_sizes(void **state)
{
	(void)state;
	for (unsigned int size = 0; size <= VIRTQ_MAX_SIZE * 2; size++) {
		bool pow2 = size && !(size & (size - 1));

		d.q.size = (uint16_t)size;
		assert_int_equal(virtq__check(&d.q), pow2 && size <= VIRTQ_MAX_SIZE ? 0 : -EINVAL);
	}
	d.q.size = 0xffff;
	assert_int_equal(virtq__check(&d.q), -EINVAL);
	d.q.size = 256;
	d.q.gm = NULL;
	assert_int_equal(virtq__check(&d.q), -EINVAL);
}

static void check_alignment(void **state)
{
	static const struct {
		uint64_t desc, avail, used;
		int ret;
	} cases[] = {
		{ DESC, AVAIL, USED, 0 },	    { DESC + 8, AVAIL, USED, -EINVAL },
		{ DESC + 1, AVAIL, USED, -EINVAL }, { DESC + 16, AVAIL + 2, USED + 4, 0 },
		{ DESC, AVAIL + 1, USED, -EINVAL }, { DESC, AVAIL, USED + 2, -EINVAL },
		{ DESC, AVAIL, USED + 1, -EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		d.q.desc_gpa = cases[i].desc;
		d.q.avail_gpa = cases[i].avail;
		d.q.used_gpa = cases[i].used;
		assert_int_equal(virtq__check(&d.q), cases[i].ret);
	}
}

/* Rings must lie wholly in RAM, event fields included (6 + 2n and 6 + 8n bytes). */
static void check_outside_ram(void **state)
{
	static const struct {
		uint16_t size;
		uint64_t desc, avail, used;
		int ret;
	} cases[] = {
		{ 256, MEM - 4096, AVAIL, USED, 0 },
		{ 256, MEM - 4096 + 16, AVAIL, USED, -EINVAL },
		{ 256, MEM, AVAIL, USED, -EINVAL },
		{ 256, 0xfffffffffffffff0ULL, AVAIL, USED, -EINVAL },
		{ 1, DESC, MEM - 8, USED, 0 },
		{ 1, DESC, MEM - 6, USED, -EINVAL }, /* used_event outside */
		{ 1, DESC, AVAIL, MEM - 16, 0 },
		{ 1, DESC, AVAIL, MEM - 12, -EINVAL }, /* avail_event outside */
		{ 256, DESC, AVAIL, MEM - 2056, 0 },
		{ 256, DESC, AVAIL, MEM - 2052, -EINVAL },
		{ 256, DESC, 0xfffffffffffffffeULL, USED, -EINVAL },
		{ 256, DESC, AVAIL, 0xfffffffffffffffcULL, -EINVAL },
		{ 256, DESC, AVAIL, LAYOUT_MMIO_GAP_START, -EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		d.q.size = cases[i].size;
		d.q.desc_gpa = cases[i].desc;
		d.q.avail_gpa = cases[i].avail;
		d.q.used_gpa = cases[i].used;
		if (virtq__check(&d.q) != cases[i].ret)
			fail_msg("case %zu: expected %d", i, cases[i].ret);
	}
}

static void reset_keeps_gm(void **state)
{
	(void)state;
	d.q.last_avail = 7;
	d.q.signalled_used_valid = true;
	virtq__reset(&d.q);
	assert_ptr_equal(d.q.gm, &d.fg.gm);
	assert_false(d.q.ready);
	assert_false(d.q.event_idx);
	assert_false(d.q.indirect);
	assert_int_equal(d.q.size, 0);
	assert_int_equal(d.q.desc_gpa | d.q.avail_gpa | d.q.used_gpa, 0);
	assert_int_equal(d.q.last_avail | d.q.used_idx | d.q.signalled_used, 0);
	assert_false(d.q.signalled_used_valid);
	assert_int_equal(virtq__pop(&d.q, &chain), -EINVAL); /* not ready */
	assert_int_equal(virtq__push(&d.q, 0, 0), -EINVAL);
	assert_int_equal(virtq__pending(&d.q), 0);
	assert_false(virtq__should_signal(&d.q));
	assert_false(virtq__arm_notify(&d.q));
}

/* ---- good chains ---- */

static void pop_empty(void **state)
{
	(void)state;
	assert_int_equal(virtq__pop(&d.q, &chain), 0);
	assert_int_equal(virtq__pending(&d.q), 0);
	assert_int_equal(d.q.last_avail, 0);
}

static void pop_direct(void **state)
{
	static const struct tbuf one[] = { { 512, false } };
	static const struct tbuf two[] = { { 16, false }, { 1, true } };
	static const struct tbuf wr[] = { { 100, true } };
	const struct {
		const struct tbuf *b;
		unsigned int n;
	} chains[] = { { one, 1 }, { two, 2 }, { blk_read, 3 }, { wr, 1 } };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(chains); i++) {
		uint16_t head = add_direct(chains[i].b, chains[i].n);

		publish(head);
		assert_int_equal(virtq__pending(&d.q), 1);
		assert_int_equal(virtq__pop(&d.q, &chain), 1);
		expect_chain(&chain, head, chains[i].b, chains[i].n);
		assert_int_equal(virtq__pending(&d.q), 0);
		assert_int_equal(virtq__pop(&d.q, &chain), 0);
	}
}

/* As long as the queue: 256 descriptors, every one of the table. */
static void pop_long_direct(void **state)
{
	struct tbuf b[256];
	uint16_t head;

	(void)state;
	for (unsigned int i = 0; i < 256; i++)
		b[i] = (struct tbuf){ 512 + i, i >= 100 };
	d.next_desc = 77; /* wraps around the table */
	head = add_direct(b, 256);
	publish(head);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	expect_chain(&chain, head, b, 256);
}

static void pop_several(void **state)
{
	uint16_t heads[5];

	(void)state;
	for (unsigned int i = 0; i < 5; i++) {
		heads[i] = add_direct(blk_read, 3);
		publish(heads[i]);
	}
	assert_int_equal(virtq__pending(&d.q), 5);
	for (unsigned int i = 0; i < 5; i++) {
		assert_int_equal(virtq__pop(&d.q, &chain), 1);
		assert_int_equal(chain.head, heads[i]);
		assert_int_equal(virtq__pending(&d.q), 4 - i);
	}
	assert_int_equal(virtq__pop(&d.q, &chain), 0);
}

/* A full ring: avail->idx exactly size ahead. */
static void pop_full_ring(void **state)
{
	static const struct tbuf b[] = { { 8, false } };

	(void)state;
	drv_init(8, false, 0xfffc);
	for (unsigned int i = 0; i < 8; i++)
		publish(add_direct(b, 1));
	assert_int_equal(virtq__pending(&d.q), 8);
	for (unsigned int i = 0; i < 8; i++) {
		assert_int_equal(virtq__pop(&d.q, &chain), 1);
		assert_int_equal(chain.head, i);
	}
	assert_int_equal(virtq__pop(&d.q, &chain), 0);
	assert_int_equal(d.q.last_avail, 4);
}

static void pop_indirect(void **state)
{
	struct tbuf full[VIRTQ_CHAIN_MAX];
	uint16_t head;

	(void)state;
	head = add_indirect(blk_read, 3, TABLE);
	publish(head);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	expect_chain(&chain, head, blk_read, 3);

	/* what Linux's virtio-blk sends with seg_max = VIRTQ_CHAIN_MAX - 2 */
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX; i++)
		full[i] = (struct tbuf){ i ? 4096 : 16, i > 0 };
	full[VIRTQ_CHAIN_MAX - 1].len = 1;
	head = add_indirect(full, VIRTQ_CHAIN_MAX, TABLE);
	publish(head);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	expect_chain(&chain, head, full, VIRTQ_CHAIN_MAX);

	/* a table longer than a small queue is fine */
	drv_init(2, false, 0);
	head = add_indirect(full, 64, TABLE);
	publish(head);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	expect_chain(&chain, head, full, 64);
}

/* Normal descriptors followed by one indirect one (2.7.5.3.2). */
static void pop_mixed(void **state)
{
	static const struct tbuf b[] = {
		{ 16, false }, { 512, false }, { 512, true }, { 1, true }
	};
	struct tbuf many[VIRTQ_CHAIN_MAX];
	uint16_t head;

	(void)state;
	for (unsigned int nd = 1; nd < 4; nd++) {
		head = add_mixed(b, nd, 4 - nd, TABLE + 0x1000 * nd);
		publish(head);
		assert_int_equal(virtq__pop(&d.q, &chain), 1);
		expect_chain(&chain, head, b, 4);
	}
	/* exactly VIRTQ_CHAIN_MAX buffers over both */
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX; i++)
		many[i] = (struct tbuf){ 64, i >= 10 };
	head = add_mixed(many, 10, VIRTQ_CHAIN_MAX - 10, TABLE);
	publish(head);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	expect_chain(&chain, head, many, VIRTQ_CHAIN_MAX);
}

/* The indirect descriptor's own WRITE flag is ignored (2.7.5.3.2). */
static void pop_indirect_write_flag_ignored(void **state)
{
	uint16_t head;

	(void)state;
	head = add_indirect(blk_read, 3, TABLE);
	fake_gmem__put16(&d.fg, DESC + 16ULL * head + 12, F_IND | F_WRITE);
	publish(head);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	expect_chain(&chain, head, blk_read, 3);
}

/* The device works on its copy: later changes by the driver do not reach the chain. */
static void pop_copies_descriptors(void **state)
{
	uint16_t head;

	(void)state;
	head = add_direct(blk_read, 3);
	publish(head);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	fake_gmem__set_desc(&d.fg, DESC, head, 0xdead000, 0xffffffff, F_NEXT, 0);
	expect_chain(&chain, head, blk_read, 3);
}

/* Indices wrap at 2^16 on both rings. */
static void wrap_indices(void **state)
{
	static const struct tbuf b[] = { { 16, false }, { 1, true } };

	(void)state;
	drv_init(4, false, 65530);
	for (unsigned int round = 0; round < 20; round++) {
		uint16_t head = add_direct(b, 2), used_before = d.q.used_idx;
		uint64_t slot = used_before & 3;

		publish(head);
		if (round % 3 == 0)
			publish(add_direct(b, 2));
		while (virtq__pending(&d.q)) {
			assert_int_equal(virtq__pop(&d.q, &chain), 1);
			assert_int_equal(virtq__push(&d.q, chain.head, 7 + round), 0);
		}
		assert_int_equal(fake_gmem__get32(&d.fg, USED + 4 + 8 * slot), head);
		assert_int_equal(fake_gmem__get32(&d.fg, USED + 4 + 8 * slot + 4), 7 + round);
		assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), d.q.used_idx);
		assert_int_equal(d.q.used_idx, d.q.last_avail);
		assert_int_equal(d.q.last_avail, d.avail_idx);
	}
	assert_true(d.q.last_avail < 65530); /* it did wrap */
}

/* ---- rule breakers ---- */

static void einval_outside_ram(void **state)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{ MEM - 100, 200 }, /* past the end */
		{ MEM - 1, 2 },
		{ MEM, 1 },
		{ 0xffffffffffffff00ULL, 0x100 }, /* wraps to 0 */
		{ 0xfffffffffffffff0ULL, 0x20 },  /* wraps */
		{ 0xffffffffffffffffULL, 1 },
		{ LAYOUT_MMIO_GAP_START, 16 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint16_t head = add_direct(blk_read, 3);

		fake_gmem__set_desc(&d.fg, DESC, head + 1, bad[i].addr, bad[i].len,
				    F_WRITE | F_NEXT, head + 2);
		publish(head);
		expect_einval();
		drv_init(256, false, 0);
	}
	/* the last byte of RAM is fine */
	fake_gmem__set_desc(&d.fg, DESC, 0, MEM - 1, 1, 0, 0);
	publish(0);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	assert_int_equal(chain.bufs[0].gpa, MEM - 1);
}

/* Guest memory in two regions with the gap between: a buffer may not cross into the gap,
 * even where the host mappings happen to be contiguous. */
static void einval_across_regions(void **state)
{
	struct gmem two = { .nr_regions = 2, .ram_size = 0x90000 };
	const struct gmem *saved = d.q.gm;

	(void)state;
	two.regions[0] = (struct gmem_region){ .gpa = 0, .size = 0x80000, .host = d.fg.mem };
	two.regions[1] = (struct gmem_region){ .gpa = LAYOUT_MMIO_GAP_END, .size = 0x10000,
						.host = d.fg.mem + 0x80000 };
	d.q.gm = &two;
	fake_gmem__set_desc(&d.fg, DESC, 0, LAYOUT_MMIO_GAP_END + 0x100, 0x1000, 0, 0);
	publish(0);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	assert_int_equal(chain.bufs[0].gpa, LAYOUT_MMIO_GAP_END + 0x100);
	fake_gmem__set_desc(&d.fg, DESC, 1, 0x7ff00, 0x200, 0, 0);
	publish(1);
	expect_einval();
	fake_gmem__set_desc(&d.fg, DESC, 1, LAYOUT_MMIO_GAP_END + 0xff00, 0x200, 0, 0);
	expect_einval();
	d.q.gm = saved;
}

/* A chain may hold at most 2^32 bytes (2.7.5.2); buffers may overlap to get there. */
static void einval_total_bytes(void **state)
{
	const uint32_t gib = 1U << 30;

	(void)state;
	for (unsigned int i = 0; i < 4; i++)
		fake_gmem__set_desc(&d.fg, DESC, i, DATA, gib, (i >= 2 ? F_WRITE : 0) | F_NEXT,
				    i + 1);
	fake_gmem__set_desc(&d.fg, DESC, 3, DATA, gib, F_WRITE, 0);
	publish(0);
	assert_int_equal(virtq__pop(&d.q, &chain), 1);
	assert_int_equal(chain.readable + chain.writable, 1ULL << 32);

	fake_gmem__set_desc(&d.fg, DESC, 3, DATA, gib, F_WRITE | F_NEXT, 4);
	fake_gmem__set_desc(&d.fg, DESC, 4, DATA, 1, F_WRITE, 0);
	publish(0);
	expect_einval();
	fake_gmem__set_desc(&d.fg, DESC, 3, DATA, 0xffffffff, F_WRITE, 0);
	expect_einval();
}

static void einval_zero_length(void **state)
{
	uint16_t head;

	(void)state;
	head = add_direct(blk_read, 3);
	fake_gmem__put32(&d.fg, DESC + 16ULL * (head + 1) + 8, 0);
	publish(head);
	expect_einval();

	drv_init(256, false, 0);
	head = add_indirect(blk_read, 3, TABLE);
	fake_gmem__put32(&d.fg, TABLE + 16 * 2 + 8, 0);
	publish(head);
	expect_einval();
}

static void einval_loops(void **state)
{
	(void)state;
	/* to itself */
	fake_gmem__set_desc(&d.fg, DESC, 0, DATA, 16, F_NEXT, 0);
	publish(0);
	expect_einval();
	/* back to the head, after a few */
	drv_init(256, false, 0);
	for (unsigned int i = 0; i < 5; i++)
		fake_gmem__set_desc(&d.fg, DESC, i, DATA, 16, F_NEXT, (i + 1) % 5);
	publish(0);
	expect_einval();
	/* into a cycle that does not contain the head */
	drv_init(8, false, 0);
	fake_gmem__set_desc(&d.fg, DESC, 7, DATA, 16, F_NEXT, 3);
	for (unsigned int i = 3; i < 6; i++)
		fake_gmem__set_desc(&d.fg, DESC, i, DATA, 16, F_NEXT, i == 5 ? 3 : i + 1);
	publish(7);
	expect_einval();
	/* inside an indirect table */
	drv_init(256, false, 0);
	for (unsigned int i = 0; i < 4; i++)
		fake_gmem__set_desc(&d.fg, TABLE, i, DATA, 16, F_NEXT, i == 3 ? 1 : i + 1);
	fake_gmem__set_desc(&d.fg, DESC, 0, TABLE, 64, F_IND, 0);
	publish(0);
	expect_einval();
}

/* Over VIRTQ_CHAIN_MAX buffers, or an indirect table of more entries. */
static void einval_too_long(void **state)
{
	struct tbuf many[VIRTQ_CHAIN_MAX + 1];
	uint16_t head;

	(void)state;
	for (unsigned int i = 0; i <= VIRTQ_CHAIN_MAX; i++)
		many[i] = (struct tbuf){ 32, false };
	head = add_mixed(many, 10, VIRTQ_CHAIN_MAX - 9, TABLE);
	publish(head);
	expect_einval();

	drv_init(256, false, 0);
	head = add_indirect(many, VIRTQ_CHAIN_MAX + 1, TABLE);
	publish(head);
	expect_einval();
	/* the same table, its length still saying 257 but the chain ending early */
	fake_gmem__put16(&d.fg, TABLE + 16 * 3 + 12, 0);
	expect_einval();
}

static void einval_indices(void **state)
{
	(void)state;
	/* head out of range */
	drv_init(8, false, 0);
	publish(8);
	expect_einval();
	fake_gmem__put16(&d.fg, AVAIL + 4, 0xffff);
	expect_einval();
	/* next out of range */
	drv_init(8, false, 0);
	fake_gmem__set_desc(&d.fg, DESC, 0, DATA, 16, F_NEXT, 8);
	publish(0);
	expect_einval();
	/* next out of an indirect table */
	drv_init(8, false, 0);
	fake_gmem__set_desc(&d.fg, TABLE, 0, DATA, 16, F_NEXT, 1);
	fake_gmem__set_desc(&d.fg, TABLE, 1, DATA, 16, F_NEXT, 2); /* a table of 2 */
	fake_gmem__set_desc(&d.fg, TABLE, 2, DATA, 16, 0, 0);
	fake_gmem__set_desc(&d.fg, DESC, 0, TABLE, 32, F_IND, 0);
	publish(0);
	expect_einval();
}

/* avail->idx may run at most the queue size ahead of what we took. */
static void einval_avail_jump(void **state)
{
	static const uint16_t starts[] = { 0, 100, 65530 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(starts); i++) {
		drv_init(8, false, starts[i]);
		for (unsigned int k = 0; k < 8; k++)
			fake_gmem__set_desc(&d.fg, DESC, k, DATA, 16, 0, 0);
		fake_gmem__put16(&d.fg, AVAIL + 2, (uint16_t)(starts[i] + 9));
		expect_einval();
		assert_int_equal(virtq__pending(&d.q), 0);
		fake_gmem__put16(&d.fg, AVAIL + 2, (uint16_t)(starts[i] - 1)); /* backwards */
		expect_einval();
		assert_int_equal(virtq__pending(&d.q), 0);
		fake_gmem__put16(&d.fg, AVAIL + 2, (uint16_t)(starts[i] + 8));
		assert_int_equal(virtq__pending(&d.q), 8);
		assert_int_equal(virtq__pop(&d.q, &chain), 1);
	}
}

static void einval_indirect(void **state)
{
	static const uint32_t bad_len[] = { 0, 8, 24, 17, 16 * (VIRTQ_CHAIN_MAX + 1), 0xfffffff0 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad_len); i++) {
		drv_init(256, false, 0);
		add_indirect(blk_read, 3, TABLE);
		fake_gmem__put32(&d.fg, DESC + 8, bad_len[i]);
		publish(0);
		expect_einval();
	}
	/* table outside RAM, or wrapping */
	drv_init(256, false, 0);
	fake_gmem__set_desc(&d.fg, DESC, 0, MEM - 16, 32, F_IND, 0);
	publish(0);
	expect_einval();
	fake_gmem__set_desc(&d.fg, DESC, 0, 0xfffffffffffffff0ULL, 32, F_IND, 0);
	expect_einval();
	/* not negotiated */
	drv_init(256, false, 0);
	add_indirect(blk_read, 3, TABLE);
	publish(0);
	d.q.indirect = false;
	expect_einval();
	/* nested */
	drv_init(256, false, 0);
	add_indirect(blk_read, 3, TABLE);
	fake_gmem__set_desc(&d.fg, TABLE, 2, TABLE + 0x1000, 16, F_IND, 0);
	fake_gmem__set_desc(&d.fg, TABLE + 0x1000, 0, DATA, 1, F_WRITE, 0);
	publish(0);
	expect_einval();
	/* INDIRECT with NEXT */
	drv_init(256, false, 0);
	add_indirect(blk_read, 3, TABLE);
	fake_gmem__set_desc(&d.fg, DESC, 0, TABLE, 48, F_IND | F_NEXT, 1);
	fake_gmem__set_desc(&d.fg, DESC, 1, DATA, 1, F_WRITE, 0);
	publish(0);
	expect_einval();
}

static void einval_read_after_write(void **state)
{
	static const struct tbuf rwr[] = { { 16, false }, { 512, true }, { 1, false } };
	static const struct tbuf mixed[] = { { 16, false }, { 512, true }, { 1, false } };
	uint16_t head;

	(void)state;
	publish(add_direct(rwr, 3));
	expect_einval();
	drv_init(256, false, 0);
	publish(add_indirect(rwr, 3, TABLE));
	expect_einval();
	/* writable direct, then a readable one in the indirect table */
	drv_init(256, false, 0);
	head = add_mixed(mixed, 2, 1, TABLE);
	publish(head);
	expect_einval();
}

/* ---- the used ring ---- */

static void push_used(void **state)
{
	(void)state;
	drv_init(4, false, 0xfffe);
	for (unsigned int i = 0; i < 6; i++) {
		uint16_t idx = (uint16_t)(0xfffe + i);

		assert_int_equal(virtq__push(&d.q, (uint16_t)(3 - i % 4), 1000 + i), 0);
		assert_int_equal(fake_gmem__get32(&d.fg, USED + 4 + 8ULL * (idx & 3)), 3 - i % 4);
		assert_int_equal(fake_gmem__get32(&d.fg, USED + 8 + 8ULL * (idx & 3)), 1000 + i);
		assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), (uint16_t)(idx + 1));
	}
	assert_int_equal(virtq__push(&d.q, 4, 0), -EINVAL); /* not a head */
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 4);
}

/* The used element in slot (idx mod size) is head, len. */
static void expect_used(uint16_t idx, uint16_t head, uint32_t len)
{
	uint64_t at = USED + 4 + 8ULL * (idx & (d.q.size - 1));

	assert_int_equal(fake_gmem__get32(&d.fg, at), head);
	assert_int_equal(fake_gmem__get32(&d.fg, at + 4), len);
}

/* One chain through virtq__push_n() is what virtq__push() does; none is nothing. */
static void push_n_one(void **state)
{
	const struct vq_used u = { .head = 5, .len = 1234 };

	(void)state;
	drv_init(8, false, 100);
	assert_int_equal(virtq__push_n(&d.q, &u, 1), 0);
	expect_used(100, 5, 1234);
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 101);
	assert_int_equal(d.q.used_idx, 101);
	fake_gmem__put32(&d.fg, USED + 4 + 8 * (101 & 7), 0xdead);
	assert_int_equal(virtq__push_n(&d.q, NULL, 0), 0);
	assert_int_equal(fake_gmem__get32(&d.fg, USED + 4 + 8 * (101 & 7)), 0xdead);
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 101);
	assert_int_equal(d.q.used_idx, 101);
	d.q.ready = false;
	assert_int_equal(virtq__push_n(&d.q, &u, 1), -EINVAL);
	assert_int_equal(virtq__push_n(&d.q, NULL, 0), -EINVAL);
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 101);
}

/* Several chains, in order, under one used->idx; then the next batch follows on. */
static void push_n_several(void **state)
{
	const struct vq_used a[] = { { 3, 10 }, { 0, 0 }, { 7, 65562 }, { 1, 0xffffffff } };
	const struct vq_used b[] = { { 2, 1 }, { 6, 2 } };

	(void)state;
	drv_init(8, false, 0);
	assert_int_equal(virtq__push_n(&d.q, a, ARRAY_SIZE(a)), 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(a); i++)
		expect_used((uint16_t)i, a[i].head, a[i].len);
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 4);
	assert_int_equal(virtq__push_n(&d.q, b, ARRAY_SIZE(b)), 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(b); i++)
		expect_used((uint16_t)(4 + i), b[i].head, b[i].len);
	for (unsigned int i = 0; i < ARRAY_SIZE(a); i++) /* left alone */
		expect_used((uint16_t)i, a[i].head, a[i].len);
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 6);
	assert_int_equal(d.q.used_idx, 6);
}

/* Across the end of the ring and of the 16-bit index; a whole ring at once, not more. */
static void push_n_wrap(void **state)
{
	struct vq_used u[5];

	(void)state;
	drv_init(4, false, 0xfffe);
	for (unsigned int i = 0; i < ARRAY_SIZE(u); i++)
		u[i] = (struct vq_used){ (uint16_t)(3 - i % 4), 500 + i };
	assert_int_equal(virtq__push_n(&d.q, u, 3), 0); /* slots 2, 3, 0 */
	for (unsigned int i = 0; i < 3; i++)
		expect_used((uint16_t)(0xfffe + i), u[i].head, u[i].len);
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 1);
	assert_int_equal(d.q.used_idx, 1);
	assert_int_equal(virtq__push_n(&d.q, u, 5), -EINVAL); /* more than the ring holds */
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 1);
	assert_int_equal(virtq__push_n(&d.q, u + 1, 4), 0); /* slots 1, 2, 3, 0 */
	for (unsigned int i = 0; i < 4; i++)
		expect_used((uint16_t)(1 + i), u[1 + i].head, u[1 + i].len);
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 5);
	assert_int_equal(d.q.used_idx, 5);
}

/* A head out of range anywhere in the batch: -EINVAL, and nothing written at all. */
static void push_n_bad_head(void **state)
{
	struct vq_used u[] = { { 0, 1 }, { 1, 2 }, { 8, 3 }, { 2, 4 } };
	uint8_t before[4 + 8 * 8];

	(void)state;
	drv_init(8, false, 0xfffd);
	memcpy(before, d.fg.mem + USED, sizeof(before));
	assert_int_equal(virtq__push_n(&d.q, u, ARRAY_SIZE(u)), -EINVAL);
	u[2].head = 0xffff;
	assert_int_equal(virtq__push_n(&d.q, u, ARRAY_SIZE(u)), -EINVAL);
	u[2].head = 7;
	u[3].head = 8; /* the last one */
	assert_int_equal(virtq__push_n(&d.q, u, ARRAY_SIZE(u)), -EINVAL);
	assert_memory_equal(d.fg.mem + USED, before, sizeof(before));
	assert_int_equal(d.q.used_idx, 0xfffd);
	u[3].head = 3;
	assert_int_equal(virtq__push_n(&d.q, u, ARRAY_SIZE(u)), 0);
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 2), 1);
}

/*
 * signalled_used stops meaning anything once used->idx has come round to it again: exactly
 * when a batch's range (old, new] holds it, wherever in the batch.
 */
static void push_n_signalled_wrap(void **state)
{
	static const uint16_t starts[] = { 0, 1000, 65533 };
	const struct vq_used u[8] = { { 0, 1 } };

	(void)state;
	for (size_t s = 0; s < ARRAY_SIZE(starts); s++) {
		for (int off = -3; off < 12; off++) {
			for (unsigned int n = 1; n <= 8; n++) {
				uint16_t sig = (uint16_t)(starts[s] + off);
				bool in = off >= 1 && (unsigned int)off <= n;

				drv_init(8, true, starts[s]);
				d.q.signalled_used = sig;
				d.q.signalled_used_valid = true;
				assert_int_equal(virtq__push_n(&d.q, u, n), 0);
				if (d.q.signalled_used_valid == in)
					fail_msg("start %u off %d n %u", starts[s], off, n);
			}
		}
	}
}

/* 2^16 and a few used entries in batches without an interrupt: the driver still gets one. */
static void push_n_signal_lap(void **state)
{
	const struct vq_used u[7] = { { 0, 1 } };

	(void)state;
	drv_init(8, true, 0);
	assert_int_equal(virtq__push(&d.q, 0, 1), 0);
	assert_true(virtq__should_signal(&d.q));
	fake_gmem__put16(&d.fg, AVAIL + 4 + 2 * 8, 0x8000);
	for (unsigned int i = 0; i < 65534 / 7; i++) /* 1 -> 65535 */
		assert_int_equal(virtq__push_n(&d.q, u, 7), 0);
	assert_int_equal(d.q.used_idx, 65535);
	assert_true(d.q.signalled_used_valid);
	assert_int_equal(virtq__push_n(&d.q, u, 7), 0); /* -> 6: passes 1 */
	assert_false(d.q.signalled_used_valid);
	assert_true(virtq__should_signal(&d.q));
	/* and with event_idx, one decision covers a batch like the pushes it stands for */
	fake_gmem__put16(&d.fg, AVAIL + 4 + 2 * 8, 9);
	assert_int_equal(virtq__push_n(&d.q, u, 3), 0); /* 6 -> 9 */
	assert_false(virtq__should_signal(&d.q));
	assert_int_equal(virtq__push_n(&d.q, u, 2), 0); /* -> 11: passes 9 */
	assert_true(virtq__should_signal(&d.q));
}

/* ---- interrupts ---- */

static void signal_without_event_idx(void **state)
{
	(void)state;
	assert_int_equal(virtq__push(&d.q, 0, 1), 0);
	assert_true(virtq__should_signal(&d.q));
	assert_false(virtq__should_signal(&d.q)); /* nothing new */
	fake_gmem__put16(&d.fg, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(virtq__push(&d.q, 1, 1), 0);
	assert_false(virtq__should_signal(&d.q));
	fake_gmem__put16(&d.fg, AVAIL, 0); /* the driver wants them again */
	assert_true(virtq__should_signal(&d.q));
	/* used_event means nothing without the feature */
	fake_gmem__put16(&d.fg, AVAIL + 4 + 2 * 256, 0x1234);
	assert_int_equal(virtq__push(&d.q, 2, 1), 0);
	assert_true(virtq__should_signal(&d.q));
}

/* The spec's rule, written the long way: did used->idx pass used_event? */
static bool passed(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	for (uint16_t i = old_idx; i != new_idx; i++) {
		if (i == event)
			return true;
	}
	return false;
}

static void signal_event_idx(void **state)
{
	static const uint16_t starts[] = { 0, 1000, 65533 };

	(void)state;
	for (size_t s = 0; s < ARRAY_SIZE(starts); s++) {
		for (int ev = -3; ev < 12; ev++) {
			uint16_t old = starts[s], event = (uint16_t)(starts[s] + ev);

			drv_init(8, true, starts[s]);
			fake_gmem__put16(&d.fg, AVAIL + 4 + 2 * 8,
					 0x5555); /* used_event: the first one ignores it */
			assert_int_equal(virtq__push(&d.q, 0, 1), 0);
			assert_true(virtq__should_signal(&d.q));
			old = d.q.used_idx;
			fake_gmem__put16(&d.fg, AVAIL + 4 + 2 * 8, event);
			for (unsigned int n = 1; n <= 4; n++) {
				bool want;

				assert_int_equal(virtq__push(&d.q, 0, 1), 0);
				want = passed(event, d.q.used_idx, old);
				if (virtq__should_signal(&d.q) != want)
					fail_msg("start %u event %d push %u", starts[s], ev, n);
				old = d.q.used_idx; /* the next decision starts here */
			}
			/* NO_INTERRUPT is ignored with event_idx */
			fake_gmem__put16(&d.fg, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
			fake_gmem__put16(&d.fg, AVAIL + 4 + 2 * 8, d.q.used_idx);
			assert_int_equal(virtq__push(&d.q, 0, 1), 0);
			assert_true(virtq__should_signal(&d.q));
		}
	}
}

/* Several pushes, one decision: it covers every index they passed. */
static void signal_event_idx_batch(void **state)
{
	(void)state;
	drv_init(8, true, 65530);
	assert_int_equal(virtq__push(&d.q, 0, 1), 0);
	assert_true(virtq__should_signal(&d.q));
	fake_gmem__put16(&d.fg, AVAIL + 4 + 2 * 8, 65534);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(virtq__push(&d.q, 0, 1), 0); /* 65531 -> 65534 */
	assert_false(virtq__should_signal(&d.q));
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(virtq__push(&d.q, 0, 1), 0); /* -> 1: passes 65534 */
	assert_true(virtq__should_signal(&d.q));
	assert_false(virtq__should_signal(&d.q));
}

/* 2^16 pushes without an interrupt: the driver must still get one. */
static void signal_event_idx_lap(void **state)
{
	(void)state;
	drv_init(8, true, 0);
	assert_int_equal(virtq__push(&d.q, 0, 1), 0);
	assert_true(virtq__should_signal(&d.q));
	fake_gmem__put16(&d.fg, AVAIL + 4 + 2 * 8, 0x8000);
	for (unsigned int i = 0; i < 65536; i++)
		assert_int_equal(virtq__push(&d.q, 0, 1), 0);
	assert_int_equal(d.q.used_idx, d.q.signalled_used);
	assert_true(virtq__should_signal(&d.q));
}

/* The driver side of 2.7.10: would it kick after adding chains? */
static bool driver_kicks(uint16_t old_avail)
{
	uint16_t avail_event = fake_gmem__get16(&d.fg, USED + 4 + 8ULL * d.q.size);

	return passed(avail_event, d.avail_idx, old_avail);
}

static void arm_notify_event_idx(void **state)
{
	uint16_t old;

	(void)state;
	drv_init(16, true, 65534);
	fake_gmem__put16(&d.fg, USED + 4 + 8 * 16, 0x4444);
	for (unsigned int i = 0; i < 3; i++)
		publish(add_direct(blk_read, 3));
	while (virtq__pop(&d.q, &chain) == 1)
		;
	assert_false(virtq__arm_notify(&d.q));
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 4 + 8 * 16), d.q.last_avail);
	assert_int_equal(d.q.last_avail, 1);
	/* the next buffer makes the driver kick, and one more without a pop does not */
	old = d.avail_idx;
	publish(add_direct(blk_read, 3));
	assert_true(driver_kicks(old));
	old = d.avail_idx;
	publish(add_direct(blk_read, 3));
	assert_false(driver_kicks(old));
}

/* A buffer that arrives after pop saw an empty ring is not lost. */
static void arm_notify_race(void **state)
{
	static const bool event_idx[] = { false, true };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(event_idx); i++) {
		drv_init(8, event_idx[i], 100);
		assert_int_equal(virtq__pop(&d.q, &chain), 0);
		publish(add_direct(blk_read, 3)); /* the driver was quicker than arm_notify */
		assert_true(virtq__arm_notify(&d.q));
		assert_int_equal(virtq__pop(&d.q, &chain), 1);
		assert_int_equal(virtq__pop(&d.q, &chain), 0);
		assert_false(virtq__arm_notify(&d.q));
		/* a broken avail->idx: arm says look again, and pop reports it */
		fake_gmem__put16(&d.fg, AVAIL + 2, 5000);
		assert_true(virtq__arm_notify(&d.q));
		assert_int_equal(virtq__pop(&d.q, &chain), -EINVAL);
	}
}

/* Without event_idx, avail_event is left alone. */
static void arm_notify_no_event_idx(void **state)
{
	(void)state;
	fake_gmem__put16(&d.fg, USED + 4 + 8 * 256, 0x4444);
	assert_false(virtq__arm_notify(&d.q));
	assert_int_equal(fake_gmem__get16(&d.fg, USED + 4 + 8 * 256), 0x4444);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(check_sizes, each),
		cmocka_unit_test_setup(check_alignment, each),
		cmocka_unit_test_setup(check_outside_ram, each),
		cmocka_unit_test_setup(reset_keeps_gm, each),
		cmocka_unit_test_setup(pop_empty, each),
		cmocka_unit_test_setup(pop_direct, each),
		cmocka_unit_test_setup(pop_long_direct, each),
		cmocka_unit_test_setup(pop_several, each),
		cmocka_unit_test_setup(pop_full_ring, each),
		cmocka_unit_test_setup(pop_indirect, each),
		cmocka_unit_test_setup(pop_mixed, each),
		cmocka_unit_test_setup(pop_indirect_write_flag_ignored, each),
		cmocka_unit_test_setup(pop_copies_descriptors, each),
		cmocka_unit_test_setup(wrap_indices, each),
		cmocka_unit_test_setup(einval_outside_ram, each),
		cmocka_unit_test_setup(einval_across_regions, each),
		cmocka_unit_test_setup(einval_total_bytes, each),
		cmocka_unit_test_setup(einval_zero_length, each),
		cmocka_unit_test_setup(einval_loops, each),
		cmocka_unit_test_setup(einval_too_long, each),
		cmocka_unit_test_setup(einval_indices, each),
		cmocka_unit_test_setup(einval_avail_jump, each),
		cmocka_unit_test_setup(einval_indirect, each),
		cmocka_unit_test_setup(einval_read_after_write, each),
		cmocka_unit_test_setup(push_used, each),
		cmocka_unit_test_setup(push_n_one, each),
		cmocka_unit_test_setup(push_n_several, each),
		cmocka_unit_test_setup(push_n_wrap, each),
		cmocka_unit_test_setup(push_n_bad_head, each),
		cmocka_unit_test_setup(push_n_signalled_wrap, each),
		cmocka_unit_test_setup(push_n_signal_lap, each),
		cmocka_unit_test_setup(signal_without_event_idx, each),
		cmocka_unit_test_setup(signal_event_idx, each),
		cmocka_unit_test_setup(signal_event_idx_batch, each),
		cmocka_unit_test_setup(signal_event_idx_lap, each),
		cmocka_unit_test_setup(arm_notify_event_idx, each),
		cmocka_unit_test_setup(arm_notify_race, each),
		cmocka_unit_test_setup(arm_notify_no_event_idx, each),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
