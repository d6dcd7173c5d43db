// SPDX-License-Identifier: Apache-2.0
/*
 * virtio_rng: drives every virtio-rng (entropy) device as a driver does: VERSION_1, and
 * INDIRECT_DESC and EVENT_IDX when offered, queue 0, DRIVER_OK. Then it asks for bytes:
 * ROUNDS requests of SMALL bytes (each filled: not all zero, no two alike, the used length
 * right, an interrupt), one chain of three buffers (each filled, the used length their sum),
 * one through an indirect table, and BIG bytes at once: the device gives its cap,
 * VIRTIO_RNG_MAX_REQUEST, and leaves the rest of the buffer alone. Prints
 * "virtio-rng dev=<slot> features=0x<negotiated> bytes=<the first request, hex>".
 *
 * virtio_rng_hostile: breaks the rules on the first virtio-rng device, one case at a time,
 * each printed as "virtio-rng-hostile <case>": chains the device gives back empty (readable
 * only, a readable buffer before the writable one) and chains that put it in
 * DEVICE_NEEDS_RESET (a buffer past the end of RAM, one in the MMIO gap, a loop, a
 * zero-length buffer). After each, the device must serve a request again (after a reset
 * and a new initialisation, for the second kind).
 */
#include "virtio.h"

#define WANTED (VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX))
#define ROUNDS 4
#define SMALL 64
#define PART 48
#define BIG (2 * VIRTIO_RNG_MAX_REQUEST)
#define MARK 0x5a5a5a5a5a5a5a5aULL

static struct virtio_dev devs[VIRTIO_MMIO_SLOTS] NOINIT;
static uint8_t small[ROUNDS][SMALL] NOINIT __attribute__((aligned(64)));
static uint8_t parts[3][PART] NOINIT __attribute__((aligned(64)));
static uint8_t big[BIG] NOINIT __attribute__((aligned(4096)));

static bool all_zero(const void *p, uint32_t n)
{
	const uint64_t *w = p;

	for (uint32_t i = 0; i < n / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* bufs as one chain; the device must use it with length want and interrupt. */
static const char *ask(struct virtio_dev *d, const struct virtio_buf *bufs, unsigned int n,
		       bool indirect, uint32_t want, const char *what)
{
	struct virtio_done done;

	if (virtio__request(d, bufs, n, indirect, false, &done))
		return fail("dev %u: %s: no answer from the device", d->slot, what);
	if (done.len != want)
		return fail("dev %u: %s: used len %u, expected %u", d->slot, what, done.len, want);
	if (!(done.isr & VIRTIO_INT_USED))
		return fail("dev %u: %s: no interrupt (InterruptStatus 0x%x)", d->slot, what,
			    done.isr);
	return NULL;
}

static const char *small_rounds(struct virtio_dev *d)
{
	const char *why = NULL;

	for (unsigned int i = 0; i < ROUNDS && !why; i++) {
		struct virtio_buf b = { small[i], SMALL, true };

		memset(small[i], 0, SMALL);
		why = ask(d, &b, 1, false, SMALL, "64 bytes");
		if (!why && all_zero(small[i], SMALL))
			why = fail("dev %u: request %u: all %u bytes are zero", d->slot, i, SMALL);
		for (unsigned int j = 0; !why && j < i; j++)
			if (!memcmp(small[i], small[j], SMALL))
				why = fail("dev %u: requests %u and %u got the same bytes", d->slot,
					   j, i);
	}
	return why;
}

static const char *chained_and_indirect(struct virtio_dev *d)
{
	struct virtio_buf b[3];
	const char *why;

	for (unsigned int i = 0; i < 3; i++) {
		memset(parts[i], 0, PART);
		b[i] = (struct virtio_buf){ parts[i], PART, true };
	}
	why = ask(d, b, 3, false, 3 * PART, "three buffers");
	for (unsigned int i = 0; !why && i < 3; i++)
		if (all_zero(parts[i], PART))
			why = fail("dev %u: buffer %u of three was not filled", d->slot, i);
	if (why || !virtio__has(d, VIRTIO_F_INDIRECT_DESC))
		return why;
	memset(parts[0], 0, PART);
	why = ask(d, b, 2, true, 2 * PART, "indirect");
	if (!why && all_zero(parts[0], PART))
		why = fail("dev %u: indirect: the buffer was not filled", d->slot);
	return why;
}

/* More than the cap: the cap comes back, and the bytes after it are not touched. */
static const char *over_the_cap(struct virtio_dev *d)
{
	typedef uint64_t __attribute__((may_alias)) word_t;
	word_t *w = (word_t *)big;
	struct virtio_buf b = { big, BIG, true };
	const uint32_t cap = VIRTIO_RNG_MAX_REQUEST;
	const char *why;

	w[0] = w[cap / 8 - 1] = w[cap / 8] = w[BIG / 8 - 1] = MARK;
	why = ask(d, &b, 1, false, cap, "128 KiB");
	if (why)
		return why;
	if (w[0] == MARK || w[cap / 8 - 1] == MARK)
		return fail("dev %u: 128 KiB: the first %u bytes were not all filled", d->slot,
			    cap);
	if (w[cap / 8] != MARK || w[BIG / 8 - 1] != MARK)
		return fail("dev %u: 128 KiB: bytes past the first %u were written", d->slot, cap);
	return NULL;
}

static const char *run_device(struct virtio_dev *d)
{
	char hex[2 * 16 + 1];
	const char *why = virtio__init(d, WANTED);

	if (!why)
		why = small_rounds(d);
	if (!why)
		why = chained_and_indirect(d);
	if (!why)
		why = over_the_cap(d);
	if (why)
		return why;
	virtio__hex(hex, small[0], 16);
	report("virtio-rng dev=%u features=0x%llx bytes=%s", d->slot,
	       (unsigned long long)d->features, hex);
	return virtio__reset(d) ? fail("dev %u: reset did not complete", d->slot) : NULL;
}

const char *test_virtio_rng(void)
{
	unsigned int n = virtio__find(VIRTIO_ID_RNG, devs, ARRAY_SIZE(devs));

	if (!n)
		return fail("no virtio-rng device");
	for (unsigned int i = 0; i < n; i++) {
		const char *why = run_device(&devs[i]);

		if (why)
			return why;
	}
	return NULL;
}

/* ---- virtio_rng_hostile ---- */

enum hostile_kind {
	H_EMPTY, /* given back with length 0, the device goes on */
	H_RESET, /* DEVICE_NEEDS_RESET */
};

struct hostile_case {
	const char *name;
	enum hostile_kind kind;
	void (*build)(struct virtio_dev *d, uint16_t head);
};

static uint64_t ram_top;

static void put_desc(struct virtio_dev *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags)
{
	d->desc[i % VQ_SIZE] = (struct vq_desc){ addr, len, flags, (uint16_t)((i + 1) % VQ_SIZE) };
}

static void readable_only(struct virtio_dev *d, uint16_t h)
{
	put_desc(d, h, (uintptr_t)small[0], SMALL, 0);
}

static void readable_first(struct virtio_dev *d, uint16_t h)
{
	put_desc(d, h, (uintptr_t)small[0], 16, VQ_DESC_F_NEXT);
	put_desc(d, h + 1, (uintptr_t)small[1], SMALL, VQ_DESC_F_WRITE);
}

static void past_ram(struct virtio_dev *d, uint16_t h)
{
	put_desc(d, h, ram_top - 16, SMALL, VQ_DESC_F_WRITE);
}

static void in_mmio_gap(struct virtio_dev *d, uint16_t h)
{
	put_desc(d, h, MMIO_GAP_START, SMALL, VQ_DESC_F_WRITE);
}

static void loop(struct virtio_dev *d, uint16_t h)
{
	put_desc(d, h, (uintptr_t)small[0], 16, VQ_DESC_F_WRITE | VQ_DESC_F_NEXT);
	d->desc[h % VQ_SIZE].next = (uint16_t)(h % VQ_SIZE);
}

static void zero_length(struct virtio_dev *d, uint16_t h)
{
	put_desc(d, h, (uintptr_t)small[0], 0, VQ_DESC_F_WRITE);
}

static const struct hostile_case cases[] = {
	{ "readable-only", H_EMPTY, readable_only },
	{ "readable-first", H_EMPTY, readable_first },
	{ "past-ram", H_RESET, past_ram },
	{ "mmio-gap", H_RESET, in_mmio_gap },
	{ "chain-loop", H_RESET, loop },
	{ "zero-length", H_RESET, zero_length },
};

/* A plain request works: the device is (again) in order. */
static const char *still_works(struct virtio_dev *d, const char *name)
{
	uint32_t got = 0;

	memset(small[2], 0, SMALL);
	if (virtio__rng_read(d, small[2], SMALL, &got) || got != SMALL || all_zero(small[2], SMALL))
		return fail("%s: the device does not serve a request afterwards (len %u)", name,
			    got);
	return NULL;
}

static const char *run_case(struct virtio_dev *d, const struct hostile_case *c)
{
	uint16_t head = d->avail_idx % VQ_SIZE;
	struct virtio_done done;
	const char *why = NULL;

	memset(small, 0x11, sizeof(small));
	c->build(d, head);
	virtio__publish(d, head);
	virtio__kick(d, true);
	report("virtio-rng-hostile %s", c->name);
	if (c->kind == H_RESET) {
		why = virtio__expect_needs_reset(d, "virtio-rng-hostile-status", c->name);
		if (!why)
			why = virtio__init(d, WANTED);
		return why ? why : still_works(d, c->name);
	}
	/* the used element, by hand: virtio__request's wait without a new chain */
	for (uint64_t start = rdtsc(); *(volatile uint16_t *)&d->used->idx == d->used_idx;)
		if (rdtsc() - start > VIRTIO_WAIT_TSC)
			return fail("%s: the chain was not given back", c->name);
	done.len = d->used->ring[d->used_idx % VQ_SIZE].len;
	d->used_idx++;
	if (done.len)
		why = fail("%s: used len %u, expected 0", c->name, done.len);
	else if (small[0][0] != 0x11 || small[1][0] != 0x11)
		why = fail("%s: the device wrote into the chain", c->name);
	else if (virtio__read(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET)
		why = fail("%s: the device needs a reset", c->name);
	return why ? why : still_works(d, c->name);
}

const char *test_virtio_rng_hostile(void)
{
	struct virtio_dev *d = &devs[0];
	const char *why;

	if (!virtio__find(VIRTIO_ID_RNG, devs, 1))
		return fail("no virtio-rng device");
	ram_top = virtio__ram_top();
	/* without EVENT_IDX: every kick reaches the device, and every use interrupts */
	why = virtio__init(d, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	for (unsigned int i = 0; !why && i < ARRAY_SIZE(cases); i++)
		why = run_case(d, &cases[i]);
	if (!why && virtio__reset(d))
		why = fail("reset did not complete");
	return why;
}
