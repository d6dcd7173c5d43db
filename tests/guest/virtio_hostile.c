// SPDX-License-Identifier: Apache-2.0
/*
 * virtio_hostile: breaks the virtqueue rules on the first virtio-blk device, one rule at a
 * time. Each case starts from a fresh initialisation, sends one bad chain (or bad ring
 * addresses), and expects Status to get DEVICE_NEEDS_RESET within a bounded wait, with a
 * config-change interrupt if the device was live. Then it resets the device and checks
 * that a normal read works again. Every read is of sector 0, device-writable only in
 * guest RAM the test owns.
 */
#include "virtio.h"

#define FEATURES VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)
#define WRAP_ADDR 0xffffffffffffff00ULL

static uint8_t data[VIRTIO_BLK_SECTOR] NOINIT __attribute__((aligned(64)));
static uint8_t extra[16] NOINIT;
static struct virtio_blk_hdr hdr NOINIT;
static uint8_t status NOINIT;
static struct vq_desc table[3] NOINIT __attribute__((aligned(16)));
static uint64_t ram_top; /* the end of the highest RAM region */

static struct vq_desc desc(const void *addr, uint32_t len, uint16_t flags, uint16_t next)
{
	return (struct vq_desc){ (uintptr_t)addr, len, flags, next };
}

/* The three descriptors of a read of sector 0 from t[0]: header, data, status. */
static void read_chain(struct vq_desc *t)
{
	hdr = (struct virtio_blk_hdr){ VIRTIO_BLK_T_IN, 0, 0 };
	t[0] = desc(&hdr, sizeof(hdr), VQ_DESC_F_NEXT, 1);
	t[1] = desc(data, sizeof(data), VQ_DESC_F_WRITE | VQ_DESC_F_NEXT, 2);
	t[2] = desc(&status, 1, VQ_DESC_F_WRITE, 0);
}

/* ---- the cases: each builds its chain in d->desc and publishes it ---- */

static void past_ram(struct virtio_dev *d)
{
	read_chain(d->desc);
	d->desc[1].addr = ram_top;
	virtio__publish(d, 0);
}

/* Starts in RAM and ends outside it: a device that checks only the start fails this. */
static void across_ram_end(struct virtio_dev *d)
{
	read_chain(d->desc);
	d->desc[1].addr = ram_top - VIRTIO_BLK_SECTOR / 2;
	virtio__publish(d, 0);
}

static void wrap(struct virtio_dev *d)
{
	read_chain(d->desc);
	d->desc[1].addr = WRAP_ADDR;
	virtio__publish(d, 0);
}

static void loop(struct virtio_dev *d)
{
	read_chain(d->desc);
	d->desc[1].next = 0; /* 0 -> 1 -> 0 -> ... */
	virtio__publish(d, 0);
}

static void next_out_of_range(struct virtio_dev *d)
{
	read_chain(d->desc);
	d->desc[1].next = VQ_SIZE;
	virtio__publish(d, 0);
}

static void zero_length(struct virtio_dev *d)
{
	read_chain(d->desc);
	d->desc[1].len = 0;
	virtio__publish(d, 0);
}

static void readable_after_writable(struct virtio_dev *d)
{
	read_chain(d->desc);
	d->desc[1].next = 3;
	d->desc[3] = desc(extra, sizeof(extra), VQ_DESC_F_NEXT, 2);
	virtio__publish(d, 0);
}

static void no_status(struct virtio_dev *d)
{
	read_chain(d->desc);
	d->desc[0].flags = 0;
	virtio__publish(d, 0);
}

static void avail_jump(struct virtio_dev *d)
{
	read_chain(d->desc);
	virtio__publish(d, 0);
	d->avail_idx += VQ_SIZE;
	*(volatile uint16_t *)&d->avail->idx = d->avail_idx; /* size + 1 ahead of the device */
}

/* An indirect table whose length is not a whole number of descriptors. */
static void indirect_partial(struct virtio_dev *d)
{
	read_chain(table);
	d->desc[0] = desc(table, 3 * sizeof(struct vq_desc) + 8, VQ_DESC_F_INDIRECT, 0);
	virtio__publish(d, 0);
}

static void nested_indirect(struct virtio_dev *d)
{
	read_chain(table);
	table[1] = desc(&table[2], sizeof(struct vq_desc), VQ_DESC_F_INDIRECT | VQ_DESC_F_NEXT, 2);
	d->desc[0] = desc(table, 3 * sizeof(struct vq_desc), VQ_DESC_F_INDIRECT, 0);
	virtio__publish(d, 0);
}

struct hostile_case {
	const char *name;
	void (*build)(struct virtio_dev *d); /* NULL: rings outside RAM at QueueReady */
	bool indirect;			     /* needs VIRTIO_F_INDIRECT_DESC */
};

static const struct hostile_case cases[] = {
	{ "desc-past-ram", past_ram, false },
	{ "desc-across-ram-end", across_ram_end, false },
	{ "desc-wraps", wrap, false },
	{ "chain-loop", loop, false },
	{ "next-out-of-range", next_out_of_range, false },
	{ "zero-length", zero_length, false },
	{ "readable-after-writable", readable_after_writable, false },
	{ "no-status", no_status, false },
	{ "avail-idx-jump", avail_jump, false },
	{ "ring-outside-ram", NULL, false },
	{ "indirect-partial", indirect_partial, true },
	{ "indirect-nested", nested_indirect, true },
};

/* The bad part: NULL once Status has NEEDS_RESET (and the interrupt, if it was live). */
static const char *provoke(struct virtio_dev *d, const struct hostile_case *c)
{
	const char *why;
	uint32_t s, isr;

	if (c->build) {
		why = virtio__init(d, FEATURES);
		if (why)
			return why;
		c->build(d);
		virtio__kick(d, true);
	} else {
		why = virtio__init_features(d, FEATURES);
		if (why)
			return why;
		virtio__write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
		virtio__set_queue(d, ram_top, (uintptr_t)d->avail, (uintptr_t)d->used);
	}
	s = virtio__wait_status(d, VIRTIO_STATUS_NEEDS_RESET);
	isr = virtio__read(d, VIRTIO_MMIO_INT_STATUS);
	report("virtio-hostile %s status=0x%x isr=0x%x", c->name, s, isr);
	if (!(s & VIRTIO_STATUS_NEEDS_RESET))
		return fail("%s: no DEVICE_NEEDS_RESET (status 0x%x)", c->name, s);
	if (c->build && !(isr & VIRTIO_INT_CONFIG))
		return fail("%s: no config-change interrupt (InterruptStatus 0x%x)", c->name, isr);
	return NULL;
}

/* After a reset the device works: sector 0 holds the host's pattern. */
static const char *recover(struct virtio_dev *d, const char *name)
{
	struct virtio_buf buf = { data, sizeof(data), true };
	struct virtio_done done;
	const char *why = virtio__init(d, FEATURES);
	int st;

	if (why) {
		report("virtio-hostile %s: cannot initialise the device again", name);
		return why; /* in fail()'s buffer already */
	}
	memset(data, 0, sizeof(data));
	st = virtio__blk_request(d, VIRTIO_BLK_T_IN, 0, &buf, 1, false, false, &done);
	if (st != VIRTIO_BLK_S_OK)
		return fail("%s: read after the reset: status %d", name, st);
	if (!virtio__pattern_check(data, 0, BLK_PATTERN_HOST))
		return fail("%s: read after the reset: sector 0 is wrong", name);
	if (!(done.isr & VIRTIO_INT_USED))
		return fail("%s: read after the reset: InterruptStatus 0x%x", name, done.isr);
	return NULL;
}

const char *test_virtio_hostile(void)
{
	struct virtio_dev d;
	const char *why = NULL;

	if (!virtio__find(VIRTIO_ID_BLOCK, &d, 1))
		return "no virtio-blk device";
	ram_top = virtio__ram_top();
	for (unsigned int i = 0; i < ARRAY_SIZE(cases) && !why; i++) {
		/* d.offered is known from the first case on: the indirect ones come last */
		if (cases[i].indirect && !(d.offered & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))) {
			report("virtio-hostile %s skipped: no INDIRECT_DESC", cases[i].name);
			continue;
		}
		why = provoke(&d, &cases[i]);
		if (!why)
			why = recover(&d, cases[i].name);
	}
	virtio__reset(&d);
	return why;
}
