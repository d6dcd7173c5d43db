// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the devices' half of snapshots: serial, i8042, the virtio-mmio transport
 * and its queues, virtio-blk, virtio-net, virtio-vsock and the rate limiters, without KVM.
 *
 * Each device is driven into the middle of its work by a fake driver (fake_virtio.h,
 * fake_vring.h) in a fake guest memory: queues set up, some buffers used, some available
 * and not yet taken, some taken and held (RX chains, a request parked by a rate limiter, a
 * request in flight on io_uring). Then it is saved, a fresh device is made from the same
 * config, restored, and must go on exactly: the next used entries are the right chains, at
 * the right indices, none lost and none done twice. Then hostile and mismatched state:
 * truncated sections, rings outside guest memory, sizes that are not powers of two, the
 * wrong device type, capacity or MAC, every byte of a section changed: each a clear
 * -EINVAL, never a crash.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/vsock.h"
#include "vmm/event_loop.h"
#include "vmm/i8042.h"
#include "vmm/log.h"
#include "vmm/serial.h"
#include "vmm/snapshot_file.h"

#include "fake_gmem.h"
#include "fake_virtio.h"
#include "fake_vring.h"
#include "virtio_mmio_regs.h"

#define MEM (16ULL << 20)
#define BASE 0xd0000000ULL
#define GSI 5
#define RING0 0x10000ULL
#define DATA 0x100000ULL
#define QSIZE 16
#define DISK_SECTORS 2048
#define F_V1 (1ULL << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ULL << VIRTIO_F_EVENT_IDX)

static struct {
	struct fake_gmem fg;
	struct event_loop loop;
	uint64_t data;
	char disk[64];
	char small_disk[64];
} g;

/* ---- helpers ---- */

static uint64_t alloc_data(uint32_t len)
{
	uint64_t gpa = g.data;

	g.data += (len + 63) & ~63ULL;
	return gpa;
}

static void pump(void)
{
	for (int i = 0; i < 10000 && event_loop__run_once(&g.loop, 0) > 0; i++)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop for ms, or until *ring has a used element past last_used. */
static void pump_for_used(const struct fake_vring *r, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end &&
	       fake_gmem__load16_acquire(r->mem, r->used + 2) == r->last_used)
		event_loop__run_once(&g.loop, 10);
}

static uint16_t used_idx(const struct fake_vring *r)
{
	return fake_gmem__get16(r->mem, r->used + 2);
}

/* A state file: what the devices wrote, and a reader over it. */
struct snap {
	struct snapshot_file_writer w;
	struct snapshot_file_reader r;
	bool open;
};

static void snap_init(struct snap *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(snapshot_file__writer_init(&s->w, "0.1.0", "test cpu"), 0);
}

static void snap_open(struct snap *s)
{
	const uint8_t *data;
	size_t len;

	assert_int_equal(snapshot_file__finish(&s->w, &data, &len), 0);
	assert_int_equal(snapshot_file__open_buffer(&s->r, data, len), 0);
	s->open = true;
}

static void snap_free(struct snap *s)
{
	if (s->open)
		snapshot_file__close(&s->r);
	snapshot_file__writer_free(&s->w);
}

/*
 * A copy of in, with the payload of the nth section of id section changed: byte off set to
 * the little-endian value of `bytes` bytes (bytes 0: nothing), cut to cut bytes (-1: not),
 * or the section dropped or written twice.
 */
struct patch {
	uint32_t section;
	uint64_t off;
	uint64_t value;
	unsigned int bytes;
	int64_t cut;
	bool drop, twice;
};

static void snap_patch(const struct snap *in, const struct patch *p, struct snap *out)
{
	struct snapshot_file_section s;
	uint64_t pos = 0;

	snap_init(out);
	while (snapshot_file__next(&in->r, &pos, &s)) {
		uint8_t *buf = malloc(s.len + 1);
		uint64_t len = s.len;

		memcpy(buf, s.data, s.len);
		if (s.id == p->section) {
			for (unsigned int i = 0; i < p->bytes; i++)
				buf[p->off + i] = (uint8_t)(p->value >> (8 * i));
			if (p->cut >= 0 && (uint64_t)p->cut < len)
				len = (uint64_t)p->cut;
		}
		for (int k = 0; k < (s.id == p->section ? (p->drop ? 0 : p->twice ? 2 : 1) : 1);
		     k++) {
			snapshot_file__begin_section(&out->w, s.id, s.flags);
			snapshot_file__put_bytes(&out->w, buf, len);
			assert_int_equal(snapshot_file__end_section(&out->w), 0);
		}
		free(buf);
	}
	snap_open(out);
}

static struct patch patch_at(uint32_t section, uint64_t off, uint64_t value, unsigned int bytes)
{
	return (struct patch){ .section = section, .off = off, .value = value, .bytes = bytes,
			       .cut = -1 };
}

/* Offsets in a virtio-mmio section's payload after its id string of idlen bytes. */
#define MMIO_TYPE(idlen) (4 + (idlen))
#define MMIO_STATUS(idlen) (MMIO_TYPE(idlen) + 16)
#define MMIO_NR(idlen) (MMIO_TYPE(idlen) + 56)
#define MMIO_Q0(idlen) (MMIO_NR(idlen) + 4 + 16) /* queue 0's record payload */
#define Q_STRIDE (16 + 36) /* from one queue's record payload to the next's */
#define Q_SIZE 2
#define Q_READY 4
#define Q_DESC 5
#define Q_USED 21
#define Q_LAST_AVAIL 29

static void assert_error(int ret, const char *needle)
{
	assert_int_equal(ret, -EINVAL);
	if (!strstr(error__get(), needle)) {
		fprintf(stderr, "message \"%s\" lacks \"%s\"\n", error__get(), needle);
		fail();
	}
}

/* ---- fixtures ---- */

static void make_disk(char *path, uint64_t sectors)
{
	int fd;

	snprintf(path, 64, "/tmp/ember-snap-disk-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(sectors * 512)), 0);
	close(fd);
}

static int group_setup(void **state)
{
	(void)state;
	log__set_level(LOG_LEVEL_ERROR);
	if (fake_gmem__create(&g.fg, MEM))
		return -1;
	make_disk(g.disk, DISK_SECTORS);
	make_disk(g.small_disk, DISK_SECTORS / 2);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	unlink(g.disk);
	unlink(g.small_disk);
	fake_gmem__destroy(&g.fg);
	return 0;
}

static int each(void **state)
{
	(void)state;
	memset(g.fg.mem, 0, 4 << 20);
	g.data = DATA;
	return event_loop__init(&g.loop) ? -1 : 0;
}

static int each_down(void **state)
{
	(void)state;
	event_loop__destroy(&g.loop);
	return 0;
}

/* ---- serial ---- */

static void serial_wr(struct serial *s, uint64_t reg, uint8_t v)
{
	serial__ops.write(s, reg, &v, 1);
}

static uint8_t serial_rd(struct serial *s, uint64_t reg)
{
	uint8_t v = 0;

	serial__ops.read(s, reg, &v, 1);
	return v;
}

static void serial_round_trip(void **state)
{
	struct serial a, b;
	struct snap sn;

	(void)state;
	serial__init(&a, -1, -1, -1);
	serial_wr(&a, 3, 0x83); /* DLAB */
	serial_wr(&a, 0, 0x01); /* 115200 */
	serial_wr(&a, 1, 0x00);
	serial_wr(&a, 3, 0x03); /* 8N1 */
	serial_wr(&a, 2, 0x07); /* FIFO on */
	serial_wr(&a, 1, 0x01); /* RDA interrupt */
	serial_wr(&a, 4, 0x0b);
	serial_wr(&a, 7, 0x5a);
	assert_int_equal(serial__input(&a, (const uint8_t *)"hello", 5), 5);
	assert_int_equal(serial_rd(&a, 0), 'h');
	snap_init(&sn);
	assert_int_equal(serial__save(&a, &sn.w), 0);
	snap_open(&sn);
	serial__init(&b, -1, -1, -1);
	assert_int_equal(serial__restore(&b, &sn.r), 0);
	assert_int_equal(serial_rd(&b, 1), 0x01);
	assert_int_equal(serial_rd(&b, 3), 0x03);
	assert_int_equal(serial_rd(&b, 4), 0x0b);
	assert_int_equal(serial_rd(&b, 7), 0x5a);
	assert_int_equal(serial_rd(&b, 2), 0xc4); /* FIFO, data ready */
	serial_wr(&b, 3, 0x83);
	assert_int_equal(serial_rd(&b, 0), 0x01);
	serial_wr(&b, 3, 0x03);
	for (const char *p = "ello"; *p; p++) {
		assert_true(serial_rd(&b, 5) & 0x01);
		assert_int_equal(serial_rd(&b, 0), *p);
	}
	assert_false(serial_rd(&b, 5) & 0x01);
	snap_free(&sn);
	serial__destroy(&a);
	serial__destroy(&b);
}

static void serial_hostile(void **state)
{
	struct serial a, b;
	struct snap sn, bad;
	struct patch p;

	(void)state;
	serial__init(&a, -1, -1, -1);
	serial__input(&a, (const uint8_t *)"xy", 2);
	snap_init(&sn);
	assert_int_equal(serial__save(&a, &sn.w), 0);
	snap_open(&sn);
	serial__init(&b, -1, -1, -1);
	p = patch_at(SNAPSHOT_SECTION_SERIAL, 0, 0x80, 1); /* IER with a reserved bit */
	snap_patch(&sn, &p, &bad);
	assert_error(serial__restore(&b, &bad.r), "IER");
	snap_free(&bad);
	p = patch_at(SNAPSHOT_SECTION_SERIAL, 9, 5000, 4); /* a FIFO bigger than the UART's */
	snap_patch(&sn, &p, &bad);
	assert_error(serial__restore(&b, &bad.r), "receive FIFO");
	snap_free(&bad);
	p = patch_at(SNAPSHOT_SECTION_SERIAL, 9, 3, 4); /* more bytes than the section holds */
	snap_patch(&sn, &p, &bad);
	assert_int_equal(serial__restore(&b, &bad.r), -EINVAL);
	snap_free(&bad);
	for (int64_t cut = 0; cut < 15; cut++) {
		p = (struct patch){ .section = SNAPSHOT_SECTION_SERIAL, .cut = cut };
		snap_patch(&sn, &p, &bad);
		assert_int_equal(serial__restore(&b, &bad.r), -EINVAL);
		snap_free(&bad);
	}
	assert_int_equal(b.rx_count, 0); /* nothing changed on a failure */
	p = (struct patch){ .section = SNAPSHOT_SECTION_SERIAL, .cut = -1, .drop = true };
	snap_patch(&sn, &p, &bad);
	assert_error(serial__restore(&b, &bad.r), "no serial section");
	snap_free(&bad);
	snap_free(&sn);
	serial__destroy(&a);
	serial__destroy(&b);
}

/* ---- i8042 ---- */

static void i8042_round_trip(void **state)
{
	struct i8042 a, b;
	struct snap sn;
	uint8_t v = 0;

	(void)state;
	i8042__init(&a, -1, NULL, NULL);
	v = 0x20; /* read the command byte: one byte of output */
	i8042__cmd_ops.write(&a, 0, &v, 1);
	v = 0x60; /* write the command byte: waits for its data byte */
	i8042__cmd_ops.write(&a, 0, &v, 1);
	snap_init(&sn);
	assert_int_equal(i8042__save(&a, &sn.w), 0);
	snap_open(&sn);
	i8042__init(&b, -1, NULL, NULL);
	assert_int_equal(i8042__restore(&b, &sn.r), 0);
	i8042__cmd_ops.read(&b, 0, &v, 1);
	assert_true(v & 0x01); /* output full */
	i8042__data_ops.read(&b, 0, &v, 1);
	assert_int_equal(v, a.ctrl);
	v = 0x47;
	i8042__data_ops.write(&b, 0, &v, 1);
	assert_int_equal(b.ctrl, 0x47);
	snap_free(&sn);
	i8042__destroy(&a);
	i8042__destroy(&b);
}

static void i8042_hostile(void **state)
{
	struct i8042 a, b;
	struct snap sn, bad;
	struct patch p;

	(void)state;
	i8042__init(&a, -1, NULL, NULL);
	snap_init(&sn);
	assert_int_equal(i8042__save(&a, &sn.w), 0);
	snap_open(&sn);
	i8042__init(&b, -1, NULL, NULL);
	p = patch_at(SNAPSHOT_SECTION_I8042, 3, 0x99, 1); /* not a command with a data byte */
	snap_patch(&sn, &p, &bad);
	assert_error(i8042__restore(&b, &bad.r), "data byte");
	snap_free(&bad);
	p = patch_at(SNAPSHOT_SECTION_I8042, 5, 200, 1);
	snap_patch(&sn, &p, &bad);
	assert_error(i8042__restore(&b, &bad.r), "output buffer");
	snap_free(&bad);
	p = patch_at(SNAPSHOT_SECTION_I8042, 5, 2, 1); /* two bytes announced, none there */
	snap_patch(&sn, &p, &bad);
	assert_int_equal(i8042__restore(&b, &bad.r), -EINVAL);
	snap_free(&bad);
	p = patch_at(SNAPSHOT_SECTION_I8042, 0, 0x15, 1); /* output full, with nothing in it */
	snap_patch(&sn, &p, &bad);
	assert_error(i8042__restore(&b, &bad.r), "status");
	snap_free(&bad);
	snap_free(&sn);
	i8042__destroy(&a);
	i8042__destroy(&b);
}

/* ---- virtio-blk ---- */

static struct drive_config drive_cfg(const char *path)
{
	return (struct drive_config){
		.drive_id = (char *)"rootfs",
		.path_on_host = (char *)path,
		.cache_type = DRIVE_CACHE_UNSAFE,
		.io_engine = DRIVE_IO_SYNC,
	};
}

static struct virtio_blk *blk_new(const struct drive_config *cfg)
{
	struct virtio_blk *b = NULL;

	assert_int_equal(virtio_blk__create(&b, cfg, -1, &g.fg.gm, BASE, GSI), 0);
	return b;
}

static void blk_start(struct virtio_blk *b, struct fake_vring *r)
{
	fake_vring__init(r, &g.fg, RING0, QSIZE, true);
	assert_int_equal(fake_virtio__start(&b->t, VIRTIO_ID_BLOCK, F_V1 | F_EVENT_IDX, r, 1), 0);
	assert_int_equal(virtio_blk__watch(b, &g.loop), 0);
}

/* A write of one sector: header, data, status. Published; returns its head. */
static uint16_t blk_write_req(struct fake_vring *r, uint64_t sector, uint8_t fill)
{
	uint64_t gpas[3] = { alloc_data(16), alloc_data(512), alloc_data(1) };
	uint32_t lens[3] = { 16, 512, 1 };
	const bool write[3] = { false, false, true };
	uint16_t head;

	fake_gmem__put32(&g.fg, gpas[0], VIRTIO_BLK_T_OUT);
	fake_gmem__put32(&g.fg, gpas[0] + 4, 0);
	fake_gmem__put64(&g.fg, gpas[0] + 8, sector);
	memset(fake_gmem__ptr(&g.fg, gpas[1], 512), fill, 512);
	fake_gmem__put32(&g.fg, gpas[2], 0xff);
	head = fake_vring__add_chain(r, gpas, lens, write, 3);
	fake_vring__publish(r);
	return head;
}

static void expect_used(struct fake_vring *r, uint16_t head, uint32_t len)
{
	uint32_t id = 0, l = 0;

	assert_true(fake_vring__next_used(r, &id, &l));
	assert_int_equal(id, head);
	assert_int_equal(l, len);
}

static void expect_no_used(struct fake_vring *r)
{
	uint32_t id, l;

	assert_false(fake_vring__next_used(r, &id, &l));
}

static void save_blk(struct virtio_blk *b, struct snap *sn)
{
	snap_init(sn);
	assert_int_equal(virtio_blk__save(b, &sn->w), 0);
	snap_open(sn);
}

static uint8_t disk_byte(uint64_t sector)
{
	uint8_t v = 0;
	int fd = open(g.disk, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &v, 1, (off_t)(sector * 512)), 1);
	close(fd);
	return v;
}

/* Three requests done, two available and not taken: the restored device does those two. */
static void blk_continues(void **state)
{
	struct drive_config cfg = drive_cfg(g.disk);
	struct virtio_blk *a = blk_new(&cfg), *b;
	struct fake_vring r;
	uint16_t heads[5];
	struct snap sn;

	(void)state;
	blk_start(a, &r);
	for (int i = 0; i < 3; i++)
		heads[i] = blk_write_req(&r, (uint64_t)i, (uint8_t)(0x10 + i));
	assert_int_equal(fake_virtio__kick(&a->t, 0), 0);
	pump();
	for (int i = 0; i < 3; i++)
		expect_used(&r, heads[i], 1);
	for (int i = 3; i < 5; i++)
		heads[i] = blk_write_req(&r, (uint64_t)i, (uint8_t)(0x10 + i));
	save_blk(a, &sn);
	assert_int_equal(a->m.write_count, 3);
	virtio_blk__destroy(a);

	b = blk_new(&cfg);
	assert_int_equal(virtio_blk__restore(b, &sn.r), 0);
	assert_int_equal(b->t.status, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(b->t.queues[0].last_avail, 3);
	assert_int_equal(b->t.queues[0].used_idx, 3);
	assert_true(b->t.queues[0].event_idx);
	assert_int_equal(virtio_blk__watch(b, &g.loop), 0);
	pump(); /* no kick from the driver: the restore's own */
	for (int i = 3; i < 5; i++)
		expect_used(&r, heads[i], 1);
	expect_no_used(&r);
	assert_int_equal(b->m.write_count, 2);
	for (int i = 0; i < 5; i++)
		assert_int_equal(disk_byte((uint64_t)i), 0x10 + i);
	/* and the driver's next request, with its kick, as usual */
	heads[0] = blk_write_req(&r, 7, 0x77);
	assert_int_equal(fake_virtio__kick(&b->t, 0), 0);
	pump();
	expect_used(&r, heads[0], 1);
	assert_int_equal(used_idx(&r), 6);
	snap_free(&sn);
	virtio_blk__destroy(b);
}

/* A request parked by the rate limiter is given back, and done once, after the restore. */
static void blk_parked_request(void **state)
{
	struct drive_config cfg = drive_cfg(g.disk);
	struct virtio_blk *a, *b;
	struct fake_vring r;
	uint16_t h1, h2;
	struct snap sn;

	(void)state;
	cfg.has_rate_limiter = true;
	cfg.rate_limiter.has_ops = true;
	cfg.rate_limiter.ops = (struct token_bucket_config){ .size = 1, .refill_time_ms = 100 };
	a = blk_new(&cfg);
	blk_start(a, &r);
	h1 = blk_write_req(&r, 0, 0x21);
	h2 = blk_write_req(&r, 1, 0x22);
	assert_int_equal(fake_virtio__kick(&a->t, 0), 0);
	pump();
	expect_used(&r, h1, 1);
	expect_no_used(&r);
	assert_non_null(a->parked);
	assert_int_equal(a->t.queues[0].last_avail, 2);
	save_blk(a, &sn);
	assert_non_null(a->parked); /* the running device keeps it */
	virtio_blk__destroy(a);

	b = blk_new(&cfg);
	assert_int_equal(virtio_blk__restore(b, &sn.r), 0);
	assert_int_equal(b->t.queues[0].last_avail, 1); /* given back */
	assert_int_equal(b->rl.ops.budget, 0);		 /* the bucket as it was */
	assert_int_equal(virtio_blk__watch(b, &g.loop), 0);
	pump_for_used(&r, 2000);
	expect_used(&r, h2, 1);
	pump();
	expect_no_used(&r);
	assert_int_equal(b->m.write_count, 1);
	assert_int_equal(disk_byte(1), 0x22);
	snap_free(&sn);
	virtio_blk__destroy(b);
}

/* io_uring: requests in flight at the save complete in it, before the state is written. */
static void blk_async_drained(void **state)
{
	struct drive_config cfg = drive_cfg(g.disk);
	struct virtio_blk *a = NULL, *b;
	struct fake_vring r;
	uint16_t heads[4];
	uint64_t irqs;
	struct snap sn;

	(void)state;
	cfg.io_engine = DRIVE_IO_ASYNC;
	if (virtio_blk__create(&a, &cfg, -1, &g.fg.gm, BASE, GSI)) {
		skip(); /* no io_uring here */
		return;
	}
	blk_start(a, &r);
	for (int i = 0; i < 4; i++)
		heads[i] = blk_write_req(&r, (uint64_t)(8 + i), (uint8_t)(0x30 + i));
	assert_int_equal(fake_virtio__kick(&a->t, 0), 0);
	/* the kick only: submitted, completions not reaped */
	while (!a->inflight)
		assert_true(event_loop__run_once(&g.loop, 100) > 0);
	assert_int_equal(a->inflight, 4);
	assert_int_equal(used_idx(&r), 0);
	irqs = a->t.m.interrupts;
	save_blk(a, &sn);
	assert_int_equal(a->inflight, 0);
	assert_int_equal(used_idx(&r), 4);
	assert_true(a->t.m.interrupts > irqs);
	for (int i = 0; i < 4; i++)
		expect_used(&r, heads[i], 1);
	virtio_blk__destroy(a);

	b = blk_new(&cfg);
	assert_int_equal(virtio_blk__restore(b, &sn.r), 0);
	assert_int_equal(b->t.queues[0].last_avail, 4);
	assert_int_equal(virtio_blk__watch(b, &g.loop), 0);
	pump();
	expect_no_used(&r);
	assert_int_equal(b->m.write_count, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(disk_byte((uint64_t)(8 + i)), 0x30 + i);
	snap_free(&sn);
	virtio_blk__destroy(b);
}

/* A saved started drive, for the hostile tests. */
static void blk_saved(struct snap *sn)
{
	struct drive_config cfg = drive_cfg(g.disk);
	struct virtio_blk *a = blk_new(&cfg);
	struct fake_vring r;

	blk_start(a, &r);
	blk_write_req(&r, 0, 1);
	assert_int_equal(fake_virtio__kick(&a->t, 0), 0);
	pump();
	save_blk(a, sn);
	virtio_blk__destroy(a);
}

static int blk_try(const struct snap *sn, const char *path)
{
	struct drive_config cfg = drive_cfg(path);
	struct virtio_blk *b = blk_new(&cfg);
	int ret;

	error__clear();
	ret = virtio_blk__restore(b, &sn->r);
	virtio_blk__destroy(b);
	return ret;
}

static int blk_try_patch(const struct snap *sn, struct patch p)
{
	struct snap bad;
	int ret;

	snap_patch(sn, &p, &bad);
	ret = blk_try(&bad, g.disk);
	snap_free(&bad);
	return ret;
}

#define ID6 6 /* strlen("rootfs") */

static void blk_hostile(void **state)
{
	struct snap sn;
	struct patch p;
	const uint32_t M = SNAPSHOT_SECTION_VIRTIO_MMIO;

	(void)state;
	blk_saved(&sn);
	assert_int_equal(blk_try(&sn, g.disk), 0);
	/* mismatches */
	assert_error(blk_try(&sn, g.small_disk),
		     "drive rootfs: the snapshot's disk had 2048 sectors, this one");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_TYPE(ID6), VIRTIO_ID_NET, 4)),
		     "virtio type 1");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_NR(ID6), 2, 4)), "2 queues");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_TYPE(ID6) + 4, BASE + 0x1000, 8)),
		     "was at 0xd0001000");
	/* rings */
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_Q0(ID6) + Q_SIZE, 3, 2)),
		     "not a power of two");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_Q0(ID6) + Q_SIZE, 512, 2)),
		     "not a power of two");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_Q0(ID6) + Q_DESC, MEM + 0x1000, 8)),
		     "not wholly in guest RAM");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_Q0(ID6) + Q_USED, MEM - 8, 8)),
		     "not wholly in guest RAM");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_Q0(ID6) + Q_DESC, ~0ULL - 7, 8)),
		     "not wholly in guest RAM");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_Q0(ID6) + Q_DESC, RING0 + 8, 8)),
		     "misaligned");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_Q0(ID6) + Q_READY, 2, 1)), "ready");
	/* status and features */
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_STATUS(ID6), 0x07, 4)), "status 0x7");
	assert_error(blk_try_patch(&sn, patch_at(M, MMIO_STATUS(ID6) + 12, 1ULL << 60, 8)),
		     "took features");
	/* truncated sections, missing and repeated ones */
	for (int64_t cut = 0; cut < MMIO_Q0(ID6) + 30; cut += 3) {
		p = (struct patch){ .section = M, .cut = cut };
		assert_int_equal(blk_try_patch(&sn, p), -EINVAL);
	}
	p = (struct patch){ .section = SNAPSHOT_SECTION_VIRTIO_BLK, .cut = 12 };
	assert_int_equal(blk_try_patch(&sn, p), -EINVAL);
	p = (struct patch){ .section = SNAPSHOT_SECTION_RATE_LIMITER, .cut = 30 };
	assert_int_equal(blk_try_patch(&sn, p), -EINVAL);
	p = (struct patch){ .section = SNAPSHOT_SECTION_VIRTIO_BLK, .cut = -1, .drop = true };
	assert_error(blk_try_patch(&sn, p), "drive rootfs: the snapshot has no virtio-blk section");
	p = (struct patch){ .section = M, .cut = -1, .twice = true };
	assert_error(blk_try_patch(&sn, p), "two virtio-mmio sections");
	p = (struct patch){ .section = SNAPSHOT_SECTION_RATE_LIMITER, .cut = -1, .drop = true };
	assert_error(blk_try_patch(&sn, p), "no rate-limiter section");
	snap_free(&sn);
}

/* Every byte of every section of a drive's state, set to 0xff or 0, or flipped: no crash. */
static void blk_every_byte(void **state)
{
	static const uint32_t ids[] = { SNAPSHOT_SECTION_VIRTIO_MMIO, SNAPSHOT_SECTION_VIRTIO_BLK,
					SNAPSHOT_SECTION_RATE_LIMITER };
	struct snapshot_file_section s;
	struct snap sn;

	(void)state;
	blk_saved(&sn);
	for (unsigned int k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
		assert_int_equal(snapshot_file__find(&sn.r, ids[k], &s), 0);
		for (uint64_t off = 0; off < s.len; off++) {
			uint64_t values[3] = { 0xff, 0, (uint8_t)~s.data[off] };

			for (int v = 0; v < 3; v++) {
				int ret = blk_try_patch(&sn, patch_at(ids[k], off, values[v], 1));

				assert_true(ret == 0 || ret == -EINVAL);
			}
		}
	}
	snap_free(&sn);
}

/* A device the driver has started cannot be restored over. */
static void blk_restore_started(void **state)
{
	struct drive_config cfg = drive_cfg(g.disk);
	struct virtio_blk *b;
	struct fake_vring r;
	struct snap sn;

	(void)state;
	blk_saved(&sn);
	b = blk_new(&cfg);
	blk_start(b, &r);
	assert_int_equal(virtio_blk__restore(b, &sn.r), -EBUSY);
	virtio_blk__destroy(b);
	snap_free(&sn);
}

/* ---- virtio-net ---- */

#define NQ_RX 0
#define NQ_TX 1
static const uint8_t mac[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };

static struct net_config net_cfg(void)
{
	struct net_config c = { .iface_id = (char *)"eth0", .host_dev_name = (char *)"pair0" };

	c.has_guest_mac = true;
	memcpy(c.guest_mac, mac, 6);
	return c;
}

static struct virtio_net *net_new(const struct net_config *cfg, int *peer)
{
	struct virtio_net *n = NULL;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	*peer = sv[1];
	assert_int_equal(virtio_net__create_detached(&n, cfg, sv[0], &g.fg.gm), 0);
	return n;
}

static void net_start(struct virtio_net *n, struct fake_vring *r)
{
	fake_vring__init(&r[0], &g.fg, RING0, QSIZE, true);
	fake_vring__init(&r[1], &g.fg, RING0 + FAKE_VRING_BYTES, QSIZE, true);
	assert_int_equal(fake_virtio__start(&n->t, VIRTIO_ID_NET,
					    F_V1 | F_EVENT_IDX | VIRTIO_NET_BIT(MRG_RXBUF), r, 2),
			 0);
	assert_int_equal(virtio_net__watch(n, &g.loop), 0);
}

static uint32_t make_frame(uint8_t *f, uint32_t len, uint8_t seed)
{
	memset(f, 0, NET_HDR_BYTES);
	memset(f + NET_HDR_BYTES, 0xff, 6);
	memcpy(f + NET_HDR_BYTES + 6, mac, 6);
	for (uint32_t i = NET_HDR_BYTES + 12; i < len; i++)
		f[i] = (uint8_t)(i + seed);
	return len;
}

static void save_net(struct virtio_net *n, struct snap *sn)
{
	snap_init(sn);
	assert_int_equal(virtio_net__save(n, &sn->w), 0);
	snap_open(sn);
}

/* RX chains held by the device are given back: the restored one uses the next in order. */
static void net_rx_chains_given_back(void **state)
{
	struct net_config cfg = net_cfg();
	struct fake_vring r[2];
	struct virtio_net *a, *b;
	uint16_t heads[8];
	uint64_t gpas[8];
	uint8_t f[200];
	uint32_t len = 1526;
	struct snap sn;
	int p1, p2;

	(void)state;
	a = net_new(&cfg, &p1);
	net_start(a, r);
	for (int i = 0; i < 8; i++) {
		gpas[i] = alloc_data(len);
		heads[i] = fake_vring__add(&r[NQ_RX], &gpas[i], &len, 1, true);
	}
	fake_vring__publish(&r[NQ_RX]);
	assert_int_equal(send(p1, f, make_frame(f, 100, 1), 0), 100);
	pump();
	expect_used(&r[NQ_RX], heads[0], 100);
	expect_no_used(&r[NQ_RX]);
	assert_int_equal(a->rx.nr, 7); /* taken, not used */
	save_net(a, &sn);
	assert_int_equal(a->rx.nr, 7); /* the running device keeps them */
	virtio_net__destroy(a);
	close(p1);

	b = net_new(&cfg, &p2);
	assert_int_equal(virtio_net__restore(b, &sn.r), 0);
	assert_int_equal(b->t.queues[NQ_RX].last_avail, 1);
	assert_int_equal(b->t.queues[NQ_RX].used_idx, 1);
	assert_true(b->active);
	assert_int_equal(virtio_net__watch(b, &g.loop), 0);
	pump();
	for (int i = 1; i < 4; i++) {
		assert_int_equal(send(p2, f, make_frame(f, 150, (uint8_t)i), 0), 150);
		pump();
		expect_used(&r[NQ_RX], heads[i], 150);
		assert_memory_equal(fake_gmem__ptr(&g.fg, gpas[i] + NET_HDR_BYTES, 150 - NET_HDR_BYTES),
				    f + NET_HDR_BYTES, 150 - NET_HDR_BYTES);
	}
	expect_no_used(&r[NQ_RX]);
	assert_int_equal(b->rx.nr, 4);
	snap_free(&sn);
	virtio_net__destroy(b);
	close(p2);
}

/* A TX frame waiting for tokens is given back, and sent once, by the restored device. */
static void net_tx_frame_given_back(void **state)
{
	struct net_config cfg = net_cfg();
	struct fake_vring r[2];
	struct virtio_net *a, *b;
	uint8_t f1[80], f2[90], got[256];
	uint16_t h1, h2;
	uint64_t gpa;
	uint32_t len;
	struct snap sn;
	int p1, p2;

	(void)state;
	cfg.has_tx_rate_limiter = true;
	cfg.tx_rate_limiter.has_ops = true;
	cfg.tx_rate_limiter.ops = (struct token_bucket_config){ .size = 1, .refill_time_ms = 100 };
	a = net_new(&cfg, &p1);
	net_start(a, r);
	len = make_frame(f1, sizeof(f1), 1);
	gpa = alloc_data(len);
	memcpy(fake_gmem__ptr(&g.fg, gpa, len), f1, len);
	h1 = fake_vring__add(&r[NQ_TX], &gpa, &len, 1, false);
	len = make_frame(f2, sizeof(f2), 2);
	gpa = alloc_data(len);
	memcpy(fake_gmem__ptr(&g.fg, gpa, len), f2, len);
	h2 = fake_vring__add(&r[NQ_TX], &gpa, &len, 1, false);
	fake_vring__publish(&r[NQ_TX]);
	assert_int_equal(fake_virtio__kick(&a->t, NQ_TX), 0);
	pump();
	expect_used(&r[NQ_TX], h1, 0);
	expect_no_used(&r[NQ_TX]);
	assert_true(a->tx_pending);
	save_net(a, &sn);
	virtio_net__destroy(a);
	assert_int_equal(recv(p1, got, sizeof(got), MSG_DONTWAIT), sizeof(f1));
	assert_memory_equal(got, f1, sizeof(f1));
	assert_int_equal(recv(p1, got, sizeof(got), MSG_DONTWAIT), 0); /* closed, nothing more */
	close(p1);

	b = net_new(&cfg, &p2);
	assert_int_equal(virtio_net__restore(b, &sn.r), 0);
	assert_int_equal(b->t.queues[NQ_TX].last_avail, 1);
	assert_int_equal(virtio_net__watch(b, &g.loop), 0);
	pump_for_used(&r[NQ_TX], 2000);
	expect_used(&r[NQ_TX], h2, 0);
	expect_no_used(&r[NQ_TX]);
	assert_int_equal(recv(p2, got, sizeof(got), MSG_DONTWAIT), sizeof(f2));
	assert_memory_equal(got, f2, sizeof(f2));
	assert_int_equal(recv(p2, got, sizeof(got), MSG_DONTWAIT), -1);
	snap_free(&sn);
	virtio_net__destroy(b);
	close(p2);
}

static void net_mismatch(void **state)
{
	struct net_config cfg = net_cfg(), other;
	struct fake_vring r[2];
	struct virtio_net *a, *b;
	struct snap sn, bad;
	struct patch p;
	int p1, p2;

	(void)state;
	a = net_new(&cfg, &p1);
	net_start(a, r);
	save_net(a, &sn);
	virtio_net__destroy(a);
	close(p1);

	other = cfg;
	other.guest_mac[5] = 0x99;
	b = net_new(&other, &p2);
	assert_error(virtio_net__restore(b, &sn.r),
		     "network interface eth0: the snapshot's guest MAC was 06:00:ac:10:00:02, "
		     "this one's is 06:00:ac:10:00:99");
	virtio_net__destroy(b);
	close(p2);

	other = cfg;
	other.has_rx_rate_limiter = true;
	other.rx_rate_limiter.has_bandwidth = true;
	other.rx_rate_limiter.bandwidth =
		(struct token_bucket_config){ .size = 1000, .refill_time_ms = 10 };
	b = net_new(&other, &p2);
	assert_error(virtio_net__restore(b, &sn.r), "rx_rate_limiter: the snapshot's bandwidth");
	virtio_net__destroy(b);
	close(p2);

	/* the TX queue's size */
	b = net_new(&cfg, &p2);
	p = patch_at(SNAPSHOT_SECTION_VIRTIO_MMIO, MMIO_Q0(4) + Q_STRIDE + Q_SIZE, 6, 2); /* TX queue */
	snap_patch(&sn, &p, &bad);
	assert_error(virtio_net__restore(b, &bad.r), "queue 1: the snapshot's size 6");
	snap_free(&bad);
	virtio_net__destroy(b);
	close(p2);
	snap_free(&sn);
}

/* A drive and an interface may share an id: each finds its own sections. */
static void shared_id(void **state)
{
	struct drive_config dcfg = drive_cfg(g.disk);
	struct net_config ncfg = net_cfg();
	struct fake_vring br, nr[2];
	struct virtio_blk *b;
	struct virtio_net *n;
	struct snap sn;
	int p1, p2;

	(void)state;
	dcfg.drive_id = (char *)"eth0";
	b = blk_new(&dcfg);
	blk_start(b, &br);
	n = net_new(&ncfg, &p1);
	fake_vring__init(&nr[0], &g.fg, RING0 + 2 * FAKE_VRING_BYTES, QSIZE, true);
	fake_vring__init(&nr[1], &g.fg, RING0 + 3 * FAKE_VRING_BYTES, QSIZE, true);
	assert_int_equal(fake_virtio__start(&n->t, VIRTIO_ID_NET, F_V1, nr, 2), 0);
	snap_init(&sn);
	assert_int_equal(virtio_blk__save(b, &sn.w), 0);
	assert_int_equal(virtio_net__save(n, &sn.w), 0);
	snap_open(&sn);
	virtio_blk__destroy(b);
	virtio_net__destroy(n);
	close(p1);
	b = blk_new(&dcfg);
	n = net_new(&ncfg, &p2);
	assert_int_equal(virtio_net__restore(n, &sn.r), 0);
	assert_int_equal(virtio_blk__restore(b, &sn.r), 0);
	assert_int_equal(b->t.queues[0].desc_gpa, RING0);
	assert_int_equal(n->t.queues[0].desc_gpa, RING0 + 2 * FAKE_VRING_BYTES);
	snap_free(&sn);
	virtio_blk__destroy(b);
	virtio_net__destroy(n);
	close(p2);
}

/* ---- virtio-vsock ---- */

static struct vsock_config vsock_cfg(char *path, size_t size, int n)
{
	snprintf(path, size, "/tmp/ember-snap-vsock-%d-%d.sock", (int)getpid(), n);
	unlink(path);
	return (struct vsock_config){ .guest_cid = 3, .uds_path = path };
}

static void vsock_reset_after_restore(void **state)
{
	char path1[64], path2[64];
	struct vsock_config c1 = vsock_cfg(path1, sizeof(path1), 1);
	struct vsock_config c2 = vsock_cfg(path2, sizeof(path2), 2);
	struct virtio_vsock *a = NULL, *b = NULL;
	struct fake_vring r[3];
	uint32_t len = 8, elen = 4;
	uint64_t gpa, ev;
	uint16_t evh;
	struct snap sn;

	(void)state;
	assert_int_equal(virtio_vsock__create(&a, &c1, -1, &g.fg.gm, BASE, GSI), 0);
	for (int i = 0; i < 3; i++)
		fake_vring__init(&r[i], &g.fg, RING0 + FAKE_VRING_BYTES * (uint64_t)i, QSIZE, false);
	assert_int_equal(fake_virtio__start(&a->t, VIRTIO_ID_VSOCK, F_V1, r, 3), 0);
	assert_int_equal(virtio_vsock__watch(a, &g.loop), 0);
	for (int i = 0; i < 4; i++) {
		len = 4096;
		gpa = alloc_data(len);
		fake_vring__add(&r[VSOCK_RXQ], &gpa, &len, 1, true);
	}
	fake_vring__publish(&r[VSOCK_RXQ]);
	ev = alloc_data(elen);
	fake_gmem__put32(&g.fg, ev, 0xffffffff);
	evh = fake_vring__add(&r[VSOCK_EVQ], &ev, &elen, 1, true);
	fake_vring__publish(&r[VSOCK_EVQ]);
	pump();
	expect_no_used(&r[VSOCK_EVQ]);
	snap_init(&sn);
	assert_int_equal(virtio_vsock__save(a, &sn.w), 0);
	snap_open(&sn);
	virtio_vsock__destroy(a);
	pump();

	/* a CID that is not the snapshot's */
	c2.guest_cid = 4;
	assert_int_equal(virtio_vsock__create(&b, &c2, -1, &g.fg.gm, BASE, GSI), 0);
	assert_error(virtio_vsock__restore(b, &sn.r), "guest CID was 3");
	virtio_vsock__destroy(b);

	c2.guest_cid = 3;
	assert_int_equal(virtio_vsock__create(&b, &c2, -1, &g.fg.gm, BASE, GSI), 0);
	assert_int_equal(virtio_vsock__restore(b, &sn.r), 0);
	expect_no_used(&r[VSOCK_EVQ]); /* not from the restore itself */
	assert_int_equal(virtio_vsock__watch(b, &g.loop), 0);
	pump();
	expect_used(&r[VSOCK_EVQ], evh, 4);
	assert_int_equal(fake_gmem__get32(&g.fg, ev), 0); /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
	assert_int_equal(b->m.transport_resets, 1);
	assert_true(b->t.m.interrupts > 0);
	pump();
	assert_int_equal(b->m.transport_resets, 1); /* once */
	expect_no_used(&r[VSOCK_RXQ]);
	snap_free(&sn);
	virtio_vsock__destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(serial_round_trip),
		cmocka_unit_test(serial_hostile),
		cmocka_unit_test(i8042_round_trip),
		cmocka_unit_test(i8042_hostile),
		cmocka_unit_test_setup_teardown(blk_continues, each, each_down),
		cmocka_unit_test_setup_teardown(blk_parked_request, each, each_down),
		cmocka_unit_test_setup_teardown(blk_async_drained, each, each_down),
		cmocka_unit_test_setup_teardown(blk_hostile, each, each_down),
		cmocka_unit_test_setup_teardown(blk_every_byte, each, each_down),
		cmocka_unit_test_setup_teardown(blk_restore_started, each, each_down),
		cmocka_unit_test_setup_teardown(net_rx_chains_given_back, each, each_down),
		cmocka_unit_test_setup_teardown(net_tx_frame_given_back, each, each_down),
		cmocka_unit_test_setup_teardown(net_mismatch, each, each_down),
		cmocka_unit_test_setup_teardown(shared_id, each, each_down),
		cmocka_unit_test_setup_teardown(vsock_reset_after_restore, each, each_down),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
