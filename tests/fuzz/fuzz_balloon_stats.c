// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for virtio-balloon's untrusted input (src/virtio/balloon_stats.c and
 * src/virtio/balloon.c).
 *
 * Input: one mode byte, then the rest.
 * - Mode bit 0 clear: the rest is a stats buffer for balloon_stats__parse(). Besides the
 *   sanitizers, the contract is checked: a buffer that is not whole pairs, or too long, is
 *   refused and changes nothing; an accepted one gives len / 10 pairs, marks only known tags
 *   present, and each known tag holds the last value the buffer gave it.
 * - Mode bit 0 set: the device, driven without KVM on 4 MiB of guest memory: bits 1-2 pick
 *   the queue (inflate, deflate, stats, reporting), bits 4-7 how many chains the driver
 *   makes available; the next 256 bytes are that queue's descriptor table (16 entries) and
 *   the rest lands at guest-physical 0x100000, where pfn arrays, stats and reports point
 *   when the fuzzer finds them. The device is reset and set up again for every input.
 *   Nothing may crash, and Ember's own memory outside the guest stays untouched (ASan).
 *
 * The seeds (tests/fuzz/corpus/balloon_stats/) are Linux's stats buffer, odd and unknown
 * tags, and one chain of each kind for the device.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio/balloon.h"
#include "vmm/event_loop.h"
#include "vmm/log.h"

#define MEM (4ULL << 20)
#define RINGS 0x10000ULL
#define RING_BYTES 0x3000ULL
#define PAYLOAD 0x100000ULL
#define QSIZE 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(ok, what)                                                                            \
	do {                                                                                       \
		if (!(ok)) {                                                                       \
			fprintf(stderr, "fuzz_balloon_stats:%d: %s\n", __LINE__, what);            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static uint64_t le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void fuzz_parser(const uint8_t *buf, size_t len)
{
	struct balloon_stats s, before;
	uint64_t want[BALLOON_STATS_NR];
	uint32_t present = 0;
	int n;

	memset(&s, 0x11, sizeof(s));
	s.present = 1u << BALLOON_STAT_swap_out;
	before = s;
	n = balloon_stats__parse(&s, buf, len);
	if (len % BALLOON_STAT_BYTES || len > BALLOON_STATS_MAX_BYTES) {
		check(n == -EINVAL && !memcmp(&s, &before, sizeof(s)),
		      "a bad buffer changed things");
		return;
	}
	check(n == (int)(len / BALLOON_STAT_BYTES), "pair count");
	memcpy(want, before.value, sizeof(want));
	for (size_t i = 0; i + BALLOON_STAT_BYTES <= len; i += BALLOON_STAT_BYTES) {
		uint64_t tag = le(buf + i, 2);

		if (tag < BALLOON_STATS_NR) {
			want[tag] = le(buf + i + 2, 8);
			present |= 1u << tag;
		}
	}
	check(s.present == (before.present | present), "present tags");
	check(!memcmp(s.value, want, sizeof(want)), "values");
}

/* ---- the device ---- */

static struct {
	bool ready;
	struct gmem gm;
	struct event_loop loop;
	struct virtio_balloon *b;
} dev;

static void reg_write(uint64_t off, uint32_t v)
{
	virtio_mmio__bus_ops.write(&dev.b->t, off, (const uint8_t *)&v, 4);
}

static void setup_once(void)
{
	struct balloon_config cfg = { .amount_mib = 1,
				      .deflate_on_oom = true,
				      .stats_polling_interval_s = 1,
				      .free_page_reporting = true };

	log__set_level(LOG_LEVEL_OFF);
	if (memory__map(&dev.gm, MEM) || event_loop__init(&dev.loop) ||
	    virtio_balloon__create(&dev.b, &cfg, -1, &dev.gm, 0xd0001000ULL, 5) ||
	    virtio_balloon__watch(dev.b, &dev.loop))
		abort();
	dev.ready = true;
}

/* Reset, every feature, four queues of QSIZE at RINGS, DRIVER_OK. */
static void start(void)
{
	reg_write(0x070, 0);
	reg_write(0x070, 1);
	reg_write(0x070, 3);
	reg_write(0x024, 0);
	reg_write(0x020, (1u << 1) | (1u << 2) | (1u << 5));
	reg_write(0x024, 1);
	reg_write(0x020, 1);
	reg_write(0x070, 11);
	for (uint32_t q = 0; q < 4; q++) {
		uint64_t base = RINGS + q * RING_BYTES;

		reg_write(0x030, q);
		reg_write(0x038, QSIZE);
		reg_write(0x080, (uint32_t)base);
		reg_write(0x090, (uint32_t)(base + 0x1000));
		reg_write(0x0a0, (uint32_t)(base + 0x2000));
		reg_write(0x044, 1);
	}
	reg_write(0x070, 15);
}

static void fuzz_device(uint8_t mode, const uint8_t *buf, size_t len)
{
	uint16_t q = (mode >> 1) & 3, n = (uint16_t)((mode >> 4) + 1), idx;
	uint64_t base = RINGS + q * RING_BYTES, one = 1;
	size_t table = len < QSIZE * 16 ? len : QSIZE * 16;
	ssize_t w;

	if (!dev.ready)
		setup_once();
	memset(gmem__ptr(&dev.gm, RINGS, 4 * RING_BYTES), 0, 4 * RING_BYTES);
	start();
	memcpy(gmem__ptr(&dev.gm, base, QSIZE * 16), buf, table);
	if (len > table) {
		size_t rest = len - table < MEM - PAYLOAD ? len - table : MEM - PAYLOAD;

		memcpy(gmem__ptr(&dev.gm, PAYLOAD, rest), buf + table, rest);
	}
	for (uint16_t i = 0; i < n; i++) {
		uint16_t head = htole16(i % QSIZE);

		memcpy(gmem__ptr(&dev.gm, base + 0x1000 + 4 + 2 * (i % QSIZE), 2), &head, 2);
	}
	idx = htole16(n);
	memcpy(gmem__ptr(&dev.gm, base + 0x1000 + 2, 2), &idx, 2);
	w = write(dev.b->t.kicks[q].h.fd, &one, sizeof(one));
	(void)w;
	for (int i = 0; i < 8 && event_loop__run_once(&dev.loop, 0) > 0; i++)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		fuzz_device(data[0], data + 1, size - 1);
	else
		fuzz_parser(data + 1, size - 1);
	return 0;
}
