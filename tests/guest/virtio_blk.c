// SPDX-License-Identifier: Apache-2.0
/*
 * virtio_blk: drives every virtio-blk device Ember gives the guest. It reads the host's
 * pattern at sectors 0, 1 and the last one; on a writable drive it writes sectors 2-3
 * with the guest's pattern in one two-buffer request, flushes (if offered) and reads them
 * back; on a read-only one a write must fail. Reads past the end and an unknown request
 * type must fail too. Uses an indirect table and EVENT_IDX when offered, then checks the
 * plain interrupt flags after a re-initialisation without EVENT_IDX.
 */
#include "virtio.h"

#define MAX_DEVS VIRTIO_MMIO_SLOTS
#define WANTED                                                                                     \
	(VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |                     \
	 VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |                    \
	 VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_RO))
#define UNKNOWN_TYPE 0x7f

static struct virtio_dev devs[MAX_DEVS] NOINIT;
static uint8_t data[2 * VIRTIO_BLK_SECTOR] NOINIT __attribute__((aligned(64)));
static char id[VIRTIO_BLK_ID_BYTES] NOINIT;

/* One request: the status must be `want` and, unless quiet, it must have interrupted. */
struct io {
	const char *what;
	uint32_t type;
	uint64_t sector;
	unsigned int sectors; /* of data, in `data`: one buffer, or one per sector if split */
	bool split, indirect, quiet;
	int want; /* status byte */
};

static const char *run_io(struct virtio_dev *d, const struct io *io)
{
	struct virtio_buf bufs[2] = {
		{ data, io->sectors * VIRTIO_BLK_SECTOR, io->type != VIRTIO_BLK_T_OUT },
	};
	unsigned int n = io->sectors ? 1 : 0;
	uint32_t want_len = io->type == VIRTIO_BLK_T_IN ? io->sectors * VIRTIO_BLK_SECTOR : 0;
	struct virtio_done done;
	int status;

	if (io->split) {
		bufs[0].len = bufs[1].len = VIRTIO_BLK_SECTOR;
		bufs[1].addr = data + VIRTIO_BLK_SECTOR;
		bufs[1].write = bufs[0].write;
		n = 2;
	}
	status = virtio__blk_request(d, io->type, io->sector, bufs, n, io->indirect, io->quiet,
				     &done);
	if (status < 0)
		return fail("dev %u: %s: no answer from the device", d->slot, io->what);
	if (status != io->want)
		return fail("dev %u: %s: status %d, expected %d", d->slot, io->what, status,
			    io->want);
	if (status == VIRTIO_BLK_S_OK && done.len != want_len + 1)
		return fail("dev %u: %s: used len %u, expected %u", d->slot, io->what, done.len,
			    want_len + 1);
	if (!(done.isr & VIRTIO_INT_USED) != io->quiet)
		return fail("dev %u: %s: InterruptStatus 0x%x, but it asked for %s interrupt",
			    d->slot, io->what, done.isr, io->quiet ? "no" : "an");
	return NULL;
}

static const char *check_sectors(const struct virtio_dev *d, uint64_t first, unsigned int n,
				 unsigned int mul, unsigned int add)
{
	for (unsigned int i = 0; i < n; i++) {
		if (!virtio__pattern_check(data + i * VIRTIO_BLK_SECTOR, first + i, mul, add))
			return fail("dev %u: sector %llu does not hold the %s pattern", d->slot,
				    (unsigned long long)(first + i),
				    mul == 7 ? "host's" : "guest's");
	}
	return NULL;
}

static const char *get_id(struct virtio_dev *d)
{
	struct virtio_buf buf = { id, VIRTIO_BLK_ID_BYTES, true };
	struct virtio_done done;
	int status;

	memset(id, '?', sizeof(id));
	status = virtio__blk_request(d, VIRTIO_BLK_T_GET_ID, 0, &buf, 1, false, false, &done);
	if (status != VIRTIO_BLK_S_OK)
		return fail("dev %u: GET_ID: status %d", d->slot, status);
	if (!(done.isr & VIRTIO_INT_USED))
		return fail("dev %u: GET_ID: no interrupt (InterruptStatus 0x%x)", d->slot,
			    done.isr);
	return NULL;
}

/* Writes sectors 2-3 (two buffers), flushes if it can, reads them back. */
static const char *write_and_read_back(struct virtio_dev *d)
{
	const struct io wr = { .what = "write 2-3",
			       .type = VIRTIO_BLK_T_OUT,
			       .sector = 2,
			       .sectors = 2,
			       .split = true };
	const struct io flush = { .what = "flush", .type = VIRTIO_BLK_T_FLUSH };
	const struct io rd = {
		.what = "read 2-3", .type = VIRTIO_BLK_T_IN, .sector = 2, .sectors = 2
	};
	const char *why;

	virtio__pattern_fill(data, 2, BLK_PATTERN_GUEST);
	virtio__pattern_fill(data + VIRTIO_BLK_SECTOR, 3, BLK_PATTERN_GUEST);
	why = run_io(d, &wr);
	if (!why && virtio__has(d, VIRTIO_BLK_F_FLUSH))
		why = run_io(d, &flush);
	memset(data, 0, sizeof(data));
	if (!why)
		why = run_io(d, &rd);
	return why ? why : check_sectors(d, 2, 2, BLK_PATTERN_GUEST);
}

/* A write must fail and change nothing. */
static const char *write_read_only(struct virtio_dev *d)
{
	const struct io wr = { .what = "write to read-only",
			       .type = VIRTIO_BLK_T_OUT,
			       .sector = 2,
			       .sectors = 1,
			       .want = VIRTIO_BLK_S_IOERR };
	const struct io rd = {
		.what = "read 2", .type = VIRTIO_BLK_T_IN, .sector = 2, .sectors = 1
	};
	const char *why;

	virtio__pattern_fill(data, 2, BLK_PATTERN_GUEST);
	why = run_io(d, &wr);
	if (!why)
		why = run_io(d, &rd);
	return why ? why : check_sectors(d, 2, 1, BLK_PATTERN_HOST);
}

/* Requests that must fail; the first asks for no interrupt. */
static const char *bad_requests(struct virtio_dev *d, uint64_t cap)
{
	const struct io ios[] = {
		{ .what = "read at capacity",
		  .type = VIRTIO_BLK_T_IN,
		  .sector = cap,
		  .sectors = 1,
		  .quiet = true,
		  .want = VIRTIO_BLK_S_IOERR },
		{ .what = "read across the end",
		  .type = VIRTIO_BLK_T_IN,
		  .sector = cap - 1,
		  .sectors = 2,
		  .want = VIRTIO_BLK_S_IOERR },
		{ .what = "unknown type", .type = UNKNOWN_TYPE, .want = VIRTIO_BLK_S_UNSUPP },
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(ios); i++) {
		const char *why = run_io(d, &ios[i]);

		if (why)
			return why;
	}
	return NULL;
}

static const char *reads(struct virtio_dev *d, uint64_t cap)
{
	const struct io first = { .what = "read 0-1",
				  .type = VIRTIO_BLK_T_IN,
				  .sectors = 2,
				  .indirect = virtio__has(d, VIRTIO_F_INDIRECT_DESC) };
	const struct io last = {
		.what = "read last", .type = VIRTIO_BLK_T_IN, .sector = cap - 1, .sectors = 1
	};
	const char *why = run_io(d, &first);

	if (!why)
		why = check_sectors(d, 0, 2, BLK_PATTERN_HOST);
	if (!why)
		why = run_io(d, &last);
	return why ? why : check_sectors(d, cap - 1, 1, BLK_PATTERN_HOST);
}

/* Again without EVENT_IDX: avail->flags NO_INTERRUPT must hold the interrupt back. */
static const char *plain_interrupts(struct virtio_dev *d, uint64_t cap)
{
	const struct io loud = { .what = "read 0 (no EVENT_IDX)",
				 .type = VIRTIO_BLK_T_IN,
				 .sectors = 1 };
	const struct io quiet = { .what = "read last (NO_INTERRUPT)",
				  .type = VIRTIO_BLK_T_IN,
				  .sector = cap - 1,
				  .sectors = 1,
				  .quiet = true };
	const char *why = virtio__init(d, WANTED & ~VIRTIO_BIT(VIRTIO_F_EVENT_IDX));

	if (!why)
		why = run_io(d, &loud);
	if (!why)
		why = run_io(d, &quiet);
	return why ? why : check_sectors(d, cap - 1, 1, BLK_PATTERN_HOST);
}

static const char *test_device(struct virtio_dev *d)
{
	const char *why = virtio__init(d, WANTED);
	uint64_t cap;
	bool ro;

	if (why)
		return why;
	cap = virtio__config64(d, VIRTIO_BLK_CFG_CAPACITY);
	ro = virtio__has(d, VIRTIO_BLK_F_RO);
	why = get_id(d);
	if (why)
		return why;
	report("virtio-blk dev=%u capacity=%llu ro=%d id=%.*s", d->slot, (unsigned long long)cap,
	       ro, (int)strnlen(id, sizeof(id)), id);
	report("virtio-blk dev=%u features=0x%llx", d->slot, (unsigned long long)d->features);
	if (cap < 4)
		return fail("dev %u: capacity %llu: the test needs 4 sectors", d->slot,
			    (unsigned long long)cap);
	/* the write sends two data buffers */
	if (virtio__has(d, VIRTIO_BLK_F_SEG_MAX) && virtio__config32(d, VIRTIO_BLK_CFG_SEG_MAX) < 2)
		return fail("dev %u: seg_max %u < 2", d->slot,
			    virtio__config32(d, VIRTIO_BLK_CFG_SEG_MAX));
	why = reads(d, cap);
	if (!why)
		why = ro ? write_read_only(d) : write_and_read_back(d);
	if (!why)
		why = bad_requests(d, cap);
	if (!why)
		why = plain_interrupts(d, cap);
	return why;
}

const char *test_virtio_blk(void)
{
	unsigned int n = virtio__find(VIRTIO_ID_BLOCK, devs, MAX_DEVS);

	if (!n)
		return "no virtio-blk device";
	for (unsigned int i = 0; i < n; i++) {
		const char *why = test_device(&devs[i]);

		virtio__reset(&devs[i]);
		if (why)
			return why;
	}
	return NULL;
}
