// SPDX-License-Identifier: Apache-2.0
/*
 * bench/blk_harness: Ember's virtio-blk device model without a guest. The host plays the
 * driver, so the figures are the device model's own, not those of an emulated guest CPU.
 *
 * The device is set up as Ember sets it up (src/vmm/vm.c): a KVM VM with an irqchip, guest
 * RAM from memory__map() registered as memslots (tests/support/fake_vm.c),
 * virtio_blk__create() on the file, and the device's eventfds on an event loop that runs on
 * its own thread: the VMM thread. No vCPU exists. The main thread is the driver: it does the
 * virtio-mmio v2 init sequence through the transport's registers (virtio_mmio__bus_ops, what
 * a vCPU's MMIO exit reaches; tests/support/fake_virtio.c), writes requests into guest memory and
 * kicks by writing the queue's ioeventfd (the eventfd KVM signals when a guest writes QueueNotify).
 * KVM consumes the irqfd, so by default the driver polls used->idx (a polled-mode driver); --wait
 * irq takes the irqfd back from KVM and sleeps on it instead, like a halted vCPU.
 *
 * Prints one JSON object on stdout with the rates and CPU times of the measured window.
 *
 *   blk_harness --file PATH --engine Sync|Async --rw randread|read|write --bs BYTES
 *               [--iodepth N] [--runtime S] [--ramp S] [--event-idx 0|1]
 *               [--indirect 0|1] [--wait poll|irq] [--vmm-busy-poll] [--kvm-irqfd 0|1]
 *               [--verify N]
 *
 * --verify N compares every N-th block read with the file (a check, not for timing).
 *
 * Two experiments, not Ember: --vmm-busy-poll makes the VMM thread's loop poll epoll with a
 * zero timeout instead of sleeping (what do the sleep/wake-up hand-offs cost?), and
 * --kvm-irqfd 0 takes the irqfd from KVM while the driver still polls (what does KVM's
 * interrupt injection, a kworker per interrupt for a GSI on the IOAPIC, cost?).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "virtio/blk.h"
#include "vmm/bus.h"
#include "vmm/event_loop.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/memory.h"
#include "vmm/vm_config.h"

#include "fake_virtio.h"
#include "fake_vm.h"
#include "virtio_mmio_regs.h"

/* the features Linux's virtio_blk and virtio_ring take when offered */
#define BLK_F_SEG_MAX 2
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define LINUX_FEATURES                                                                             \
	((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | (1ULL << BLK_F_FLUSH) |              \
	 (1ULL << VIRTIO_F_VERSION_1))

/* Guest-physical layout: the rings, per-slot headers and indirect tables, then the data. */
#define QSIZE 256
#define MEM_BYTES (256ULL << 20)
#define DESC_GPA 0x10000ULL  /* the rings, as fake_vring lays them out */
#define HDR_GPA 0x20000ULL   /* 64 bytes a slot: header (16), status (1) */
#define TABLE_GPA 0x30000ULL /* 64 bytes a slot: an indirect table of 3 descriptors */
#define SLOT_STRIDE 64
#define DATA_GPA 0x100000ULL
#define MAX_DEPTH (QSIZE / 3) /* three ring descriptors a request without indirect */
#define DEV_BASE LAYOUT_VIRTIO_MMIO_START
#define DEV_GSI LAYOUT_VIRTIO_IRQ_FIRST
#define STALL_NS (10ULL * 1000000000ULL) /* no completion for this long: the device hangs */

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vavail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[QSIZE];
	uint16_t used_event;
};

struct vused {
	uint16_t flags;
	uint16_t idx;
	struct {
		uint32_t id;
		uint32_t len;
	} ring[QSIZE];
	uint16_t avail_event;
};

struct blk_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

enum workload { RW_RANDREAD, RW_READ, RW_WRITE };

struct opts {
	const char *file;
	bool async;
	enum workload rw;
	uint32_t bs;
	unsigned int depth;
	double ramp_s;
	double runtime_s;
	bool event_idx;
	bool indirect;
	bool wait_irq;
	bool vmm_busy_poll;  /* an experiment: the VMM loop never sleeps (epoll timeout 0) */
	bool kvm_irqfd;	     /* KVM keeps the irqfd (the default, as in Ember) */
	unsigned int verify; /* reads: compare every verify-th block with the file (0: never) */
};

/* What is counted at the start and the end of the measured window. */
struct sample {
	uint64_t ns;
	uint64_t ops;
	uint64_t vmm_cpu_ns;
	uint64_t proc_cpu_ns;
	uint64_t driver_cpu_ns;
	uint64_t kicks;
};

struct harness {
	struct opts o;
	struct fake_vm vm;
	struct virtio_blk *blk;

	/* the driver */
	struct vdesc *desc;
	struct vavail *avail;
	struct vused *used;
	uint16_t avail_idx;
	uint16_t last_used;
	bool event_idx;
	unsigned int inflight;
	unsigned int nr_free;
	uint16_t free_slots[MAX_DEPTH];
	bool busy[MAX_DEPTH];
	uint64_t slot_off[MAX_DEPTH];
	int verify_fd;
	uint8_t *verify_buf;
	uint64_t verified;
	uint64_t file_bytes;
	uint64_t next_off;
	uint64_t rng;
	uint64_t ops;
	uint64_t kicks;
	uint64_t errors;
	char first_error[160];
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *gpa_ptr(struct harness *h, uint64_t gpa, uint64_t len)
{
	return fake_gmem__ptr(&h->vm.mem, gpa, len);
}

static void fail_request(struct harness *h, const char *fmt, ...) LOG_PRINTF(2, 3);

static void fail_request(struct harness *h, const char *fmt, ...)
{
	va_list ap;

	if (!h->errors++) {
		va_start(ap, fmt);
		vsnprintf(h->first_error, sizeof(h->first_error), fmt, ap);
		va_end(ap);
	}
}

/* ---- the VM and the device, as vm.c sets them up ---- */

static int setup_device(struct harness *h)
{
	struct drive_config cfg = {
		.drive_id = (char *)"bench",
		.path_on_host = (char *)h->o.file,
		.cache_type = DRIVE_CACHE_WRITEBACK,
		.io_engine = h->o.async ? DRIVE_IO_ASYNC : DRIVE_IO_SYNC,
	};
	int ret;

	ret = fake_vm__create(&h->vm, MEM_BYTES);
	if (ret)
		return ret;
	h->vm.busy_poll = h->o.vmm_busy_poll;
	ret = virtio_blk__create(&h->blk, &cfg, h->vm.vm_fd, &h->vm.mem.gm, DEV_BASE, DEV_GSI);
	if (ret)
		return ret;
	h->file_bytes = h->blk->disk_bytes;
	ret = virtio_blk__watch(h->blk, &h->vm.loop);
	if (ret)
		return error__set(ret, "event loop: %s", strerror(-ret));
	return fake_vm__start(&h->vm);
}

static void teardown(struct harness *h)
{
	fake_vm__stop(&h->vm);
	if (h->blk)
		virtio_blk__destroy(h->blk);
	fake_vm__destroy(&h->vm);
	if (h->verify_fd >= 0)
		close(h->verify_fd);
	free(h->verify_buf);
}

/* ---- the driver: initialisation (virtio 1.2, 3.1.1 and 4.2.3) ---- */

static int init_device(struct harness *h)
{
	struct fake_vring ring; /* only where the rings are: the driver below fills them */
	uint64_t want = LINUX_FEATURES;

	if (h->o.event_idx)
		want |= 1ULL << VIRTIO_F_EVENT_IDX;
	if (h->o.indirect)
		want |= 1ULL << VIRTIO_F_INDIRECT_DESC;
	fake_vring__init(&ring, &h->vm.mem, DESC_GPA, QSIZE, h->o.event_idx);
	h->desc = gpa_ptr(h, DESC_GPA, sizeof(struct vdesc) * QSIZE);
	h->avail = gpa_ptr(h, ring.avail, sizeof(struct vavail));
	h->used = gpa_ptr(h, ring.used, sizeof(struct vused));
	h->event_idx = h->o.event_idx;
	return fake_virtio__start(&h->blk->t, VIRTIO_ID_BLOCK, want, &ring, 1);
}

/* ---- the driver: requests ---- */

static uint64_t data_stride(const struct harness *h)
{
	return ((uint64_t)h->o.bs + 4095) & ~4095ULL;
}

static uint64_t next_offset(struct harness *h)
{
	uint64_t blocks = h->file_bytes / h->o.bs, off;

	if (h->o.rw == RW_RANDREAD) {
		/* xorshift64* */
		h->rng ^= h->rng >> 12;
		h->rng ^= h->rng << 25;
		h->rng ^= h->rng >> 27;
		return ((h->rng * 0x2545f4914f6cdd1dULL) >> 11) % blocks * h->o.bs;
	}
	off = h->next_off;
	h->next_off += h->o.bs;
	if (h->next_off + h->o.bs > blocks * h->o.bs)
		h->next_off = 0;
	return off;
}

/* Writes slot s's request; returns the head for the avail ring. */
static uint16_t fill_slot(struct harness *h, uint16_t s)
{
	struct blk_hdr *hdr = gpa_ptr(h, HDR_GPA + (uint64_t)s * SLOT_STRIDE, sizeof(*hdr) + 1);
	uint8_t *status = (uint8_t *)hdr + sizeof(*hdr);
	bool is_write = h->o.rw == RW_WRITE;
	struct vdesc *d;
	uint16_t head;

	hdr->type = is_write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	hdr->ioprio = 0;
	h->slot_off[s] = next_offset(h);
	hdr->sector = h->slot_off[s] / VIRTIO_BLK_SECTOR;
	*status = 0xff;
	if (h->o.indirect) {
		d = gpa_ptr(h, TABLE_GPA + (uint64_t)s * SLOT_STRIDE, 3 * sizeof(*d));
		h->desc[s] = (struct vdesc){ TABLE_GPA + (uint64_t)s * SLOT_STRIDE, 3 * sizeof(*d),
					     VIRTQ_DESC_F_INDIRECT, 0 };
		head = s;
	} else {
		d = &h->desc[3 * s];
		head = (uint16_t)(3 * s);
	}
	d[0] = (struct vdesc){ HDR_GPA + (uint64_t)s * SLOT_STRIDE, sizeof(*hdr), VIRTQ_DESC_F_NEXT,
			       (uint16_t)(h->o.indirect ? 1 : head + 1) };
	d[1] = (struct vdesc){ DATA_GPA + s * data_stride(h), h->o.bs,
			       (uint16_t)(VIRTQ_DESC_F_NEXT | (is_write ? 0 : VIRTQ_DESC_F_WRITE)),
			       (uint16_t)(h->o.indirect ? 2 : head + 2) };
	d[2] = (struct vdesc){ HDR_GPA + (uint64_t)s * SLOT_STRIDE + sizeof(*hdr), 1,
			       VIRTQ_DESC_F_WRITE, 0 };
	return head;
}

/* vring_need_event() */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

static int kick(struct harness *h)
{
	uint64_t one = 1;

	h->kicks++;
	if (write(h->blk->t.kicks[0].h.fd, &one, sizeof(one)) != sizeof(one))
		return error__set(-errno, "kick: %s", strerror(errno));
	return 0;
}

/* Makes every free slot available, then kicks if the device asked for it (as Linux). */
static int submit(struct harness *h)
{
	uint16_t old = h->avail_idx, event;
	bool notify;

	if (!h->nr_free)
		return 0;
	while (h->nr_free) {
		uint16_t s = h->free_slots[--h->nr_free];

		h->avail->ring[h->avail_idx & (QSIZE - 1)] = fill_slot(h, s);
		h->avail_idx++;
		h->busy[s] = true;
		h->inflight++;
	}
	__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
	/* avail->idx is visible before we read what the device asked for */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (h->event_idx) {
		event = __atomic_load_n(&h->used->avail_event, __ATOMIC_RELAXED);
		notify = need_event(event, h->avail_idx, old);
	} else {
		notify = !(__atomic_load_n(&h->used->flags, __ATOMIC_RELAXED) &
			   VIRTQ_USED_F_NO_NOTIFY);
	}
	return notify ? kick(h) : 0;
}

/* The block the device read into slot s is what the file holds there. */
static void verify_read(struct harness *h, uint32_t s)
{
	const void *data = gpa_ptr(h, DATA_GPA + s * data_stride(h), h->o.bs);

	if (pread(h->verify_fd, h->verify_buf, h->o.bs, (off_t)h->slot_off[s]) != h->o.bs ||
	    memcmp(data, h->verify_buf, h->o.bs))
		fail_request(h, "slot %u: the data read differs from the file at %llu", s,
			     (unsigned long long)h->slot_off[s]);
	h->verified++;
}

static void complete_one(struct harness *h, uint32_t id, uint32_t len)
{
	uint32_t s = h->o.indirect ? id : id / 3;
	uint32_t want = h->o.rw == RW_WRITE ? 1 : h->o.bs + 1;
	uint8_t *status;

	if (s >= h->o.depth || (!h->o.indirect && id % 3) || !h->busy[s]) {
		fail_request(h, "used ring: unexpected id %u (len %u)", id, len);
		return;
	}
	status = gpa_ptr(h, HDR_GPA + (uint64_t)s * SLOT_STRIDE + sizeof(struct blk_hdr), 1);
	if (*status != VIRTIO_BLK_S_OK || len != want)
		fail_request(h, "request failed: status %u, used len %u", *status, len);
	else if (h->o.verify && h->o.rw != RW_WRITE && !(h->ops % h->o.verify))
		verify_read(h, s);
	h->busy[s] = false;
	h->free_slots[h->nr_free++] = (uint16_t)s;
	h->inflight--;
	h->ops++;
}

/* Takes what the device has used; returns how many. */
static unsigned int reap(struct harness *h)
{
	uint16_t idx = __atomic_load_n(&h->used->idx, __ATOMIC_ACQUIRE);
	unsigned int n = 0;

	while (h->last_used != idx) {
		unsigned int i = h->last_used & (QSIZE - 1);

		complete_one(h, h->used->ring[i].id, h->used->ring[i].len);
		h->last_used++;
		n++;
	}
	/* interrupts stay on, as Linux's virtblk_done() leaves them */
	if (h->event_idx)
		__atomic_store_n(&h->avail->used_event, h->last_used, __ATOMIC_RELAXED);
	return n;
}

static void wait_irq(struct harness *h)
{
	struct pollfd p = { .fd = h->blk->t.irq_fd, .events = POLLIN };
	uint64_t n;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&h->used->idx, __ATOMIC_ACQUIRE) != h->last_used)
		return;
	if (poll(&p, 1, 100) == 1 && read(p.fd, &n, sizeof(n)) < 0)
		return;
}

/* Waits for at least one completion, or until the device seems stuck. */
static int wait_used(struct harness *h)
{
	uint64_t since = clock_ns(CLOCK_MONOTONIC);

	for (unsigned int spins = 1;; spins++) {
		if (reap(h))
			return 0;
		if (h->o.wait_irq) {
			wait_irq(h);
		} else {
			__builtin_ia32_pause();
			if (!(spins & 63))
				sched_yield(); /* let the VMM thread or an io-wq worker run here */
		}
		if (!(spins & 1023) && clock_ns(CLOCK_MONOTONIC) - since > STALL_NS)
			return error__set(-ETIMEDOUT, "no completion for %llu s (%u in flight)",
					  STALL_NS / 1000000000ULL, h->inflight);
	}
}

static void take_sample(struct harness *h, struct sample *s, clockid_t vmm_clock)
{
	s->ns = clock_ns(CLOCK_MONOTONIC);
	s->ops = h->ops;
	s->kicks = h->kicks;
	s->vmm_cpu_ns = clock_ns(vmm_clock);
	s->proc_cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	s->driver_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static int run_workload(struct harness *h, struct sample *a, struct sample *b)
{
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	uint64_t start = t0 + (uint64_t)(h->o.ramp_s * 1e9);
	uint64_t end = start + (uint64_t)(h->o.runtime_s * 1e9);
	clockid_t vmm_clock;
	bool measuring = false;
	int ret;

	ret = fake_vm__vmm_clock(&h->vm, &vmm_clock);
	if (ret)
		return ret;
	for (uint16_t s = 0; s < h->o.depth; s++)
		h->free_slots[h->nr_free++] = (uint16_t)(h->o.depth - 1 - s);
	for (;;) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);

		if (!measuring && now >= start) {
			take_sample(h, a, vmm_clock);
			measuring = true;
		}
		if (now >= end)
			break;
		ret = submit(h);
		if (!ret)
			ret = wait_used(h);
		if (ret)
			return ret;
	}
	take_sample(h, b, vmm_clock);
	while (h->inflight) { /* drain, outside the window */
		ret = wait_used(h);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- options and output ---- */

static const char *const rw_names[] = { "randread", "read", "write" };

static int parse_rw(const char *s, enum workload *rw)
{
	for (unsigned int i = 0; i < sizeof(rw_names) / sizeof(rw_names[0]); i++) {
		if (!strcmp(s, rw_names[i])) {
			*rw = (enum workload)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int check_opts(const struct opts *o)
{
	if (!o->file)
		return error__set(-EINVAL, "--file is required");
	if (!o->bs || o->bs % VIRTIO_BLK_SECTOR || o->bs > (16U << 20))
		return error__set(-EINVAL, "--bs must be a multiple of 512, at most 16 MiB");
	if (!o->depth || o->depth > MAX_DEPTH)
		return error__set(-EINVAL, "--iodepth must be 1..%d", MAX_DEPTH);
	if (DATA_GPA + (uint64_t)o->depth * (((uint64_t)o->bs + 4095) & ~4095ULL) > MEM_BYTES)
		return error__set(-EINVAL, "--iodepth x --bs does not fit in %llu MiB",
				  MEM_BYTES >> 20);
	if (o->runtime_s <= 0 || o->ramp_s < 0)
		return error__set(-EINVAL, "--runtime must be > 0, --ramp >= 0");
	return 0;
}

static int parse_opt(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case 'f':
		o->file = arg;
		return 0;
	case 'e':
		o->async = !strcmp(arg, "Async");
		return o->async || !strcmp(arg, "Sync") ? 0 : -EINVAL;
	case 'r':
		return parse_rw(arg, &o->rw);
	case 'b':
		o->bs = (uint32_t)strtoul(arg, NULL, 0);
		return 0;
	case 'd':
		o->depth = (unsigned int)strtoul(arg, NULL, 0);
		return 0;
	case 't':
		o->runtime_s = strtod(arg, NULL);
		return 0;
	case 'p':
		o->ramp_s = strtod(arg, NULL);
		return 0;
	case 'x':
		o->event_idx = strtoul(arg, NULL, 0) != 0;
		return 0;
	case 'i':
		o->indirect = strtoul(arg, NULL, 0) != 0;
		return 0;
	case 'w':
		o->wait_irq = !strcmp(arg, "irq");
		return o->wait_irq || !strcmp(arg, "poll") ? 0 : -EINVAL;
	case 'P':
		o->vmm_busy_poll = true;
		return 0;
	case 'K':
		o->kvm_irqfd = strtoul(arg, NULL, 0) != 0;
		return 0;
	case 'v':
		o->verify = (unsigned int)strtoul(arg, NULL, 0);
		return 0;
	default:
		return -EINVAL;
	}
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "engine", required_argument, NULL, 'e' },
		{ "rw", required_argument, NULL, 'r' },
		{ "bs", required_argument, NULL, 'b' },
		{ "iodepth", required_argument, NULL, 'd' },
		{ "runtime", required_argument, NULL, 't' },
		{ "ramp", required_argument, NULL, 'p' },
		{ "event-idx", required_argument, NULL, 'x' },
		{ "indirect", required_argument, NULL, 'i' },
		{ "wait", required_argument, NULL, 'w' },
		{ "vmm-busy-poll", no_argument, NULL, 'P' },
		{ "kvm-irqfd", required_argument, NULL, 'K' },
		{ "verify", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .bs = 4096,
			    .depth = 1,
			    .runtime_s = 3,
			    .ramp_s = 0.5,
			    .event_idx = true,
			    .indirect = true,
			    .kvm_irqfd = true };
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (parse_opt(o, c, optarg))
			return error__set(-EINVAL, "bad option or value; usage: see the top of "
						   "bench/blk_harness.c");
	}
	return check_opts(o);
}

static void print_result(const struct harness *h, const struct sample *a, const struct sample *b)
{
	double secs = (double)(b->ns - a->ns) / 1e9;
	double ops = (double)(b->ops - a->ops), gib = ops * h->o.bs / (double)(1ULL << 30);
	double vmm = (double)(b->vmm_cpu_ns - a->vmm_cpu_ns) / 1e9;
	double driver = (double)(b->driver_cpu_ns - a->driver_cpu_ns) / 1e9;
	double device = (double)(b->proc_cpu_ns - a->proc_cpu_ns) / 1e9 - driver;
	const struct virtio_blk *blk = h->blk;

	printf("{\"engine\": \"%s\", \"rw\": \"%s\", \"bs\": %u, \"iodepth\": %u, "
	       "\"event_idx\": %s, \"indirect\": %s, \"wait\": \"%s\", \"kvm_irqfd\": %s, "
	       "\"vmm_busy_poll\": %s, \"seconds\": %.4f, "
	       "\"ops\": %.0f, \"bytes\": %.0f, \"iops\": %.1f, \"mib_s\": %.2f, "
	       "\"vmm_thread_cpu_s\": %.4f, \"device_cpu_s\": %.4f, \"driver_cpu_s\": %.4f, "
	       "\"device_cpu_s_per_gib\": %.4f, \"vmm_thread_cpu_s_per_gib\": %.4f, "
	       "\"kicks\": %llu, \"interrupts\": %llu, \"queue_notifies\": %llu, "
	       "\"io_engine_throttled\": %llu, \"verified\": %llu, \"errors\": %llu, "
	       "\"first_error\": \"%s\"}\n",
	       h->o.async ? "Async" : "Sync", rw_names[h->o.rw], h->o.bs, h->o.depth,
	       h->o.event_idx ? "true" : "false", h->o.indirect ? "true" : "false",
	       h->o.wait_irq ? "irq" : "poll", h->o.kvm_irqfd && !h->o.wait_irq ? "true" : "false",
	       h->o.vmm_busy_poll ? "true" : "false", secs, ops, ops * h->o.bs, ops / secs,
	       ops * h->o.bs / secs / (1 << 20), vmm, device, driver, gib > 0 ? device / gib : 0,
	       gib > 0 ? vmm / gib : 0, (unsigned long long)(b->kicks - a->kicks),
	       (unsigned long long)blk->t.m.interrupts, (unsigned long long)blk->t.m.queue_notifies,
	       (unsigned long long)blk->m.io_engine_throttled_events,
	       (unsigned long long)h->verified, (unsigned long long)h->errors, h->first_error);
}

static int prepare_data(struct harness *h)
{
	uint8_t *data = gpa_ptr(h, DATA_GPA, h->o.depth * data_stride(h));

	if (!data)
		return error__set(-EFAULT, "data buffers outside guest memory");
	/* touch every page, and give writes something that is not zeros */
	for (uint64_t i = 0; i < h->o.depth * data_stride(h); i += 8)
		memcpy(data + i, &i, sizeof(i));
	h->rng = 0x9e3779b97f4a7c15ULL;
	if (!h->o.verify)
		return 0;
	h->verify_fd = open(h->o.file, O_RDONLY | O_CLOEXEC);
	h->verify_buf = malloc(h->o.bs);
	if (h->verify_fd < 0 || !h->verify_buf)
		return error__set(-EIO, "--verify: cannot read %s", h->o.file);
	return 0;
}

int main(int argc, char **argv)
{
	struct harness h = { .vm = { .kvm_fd = -1, .vm_fd = -1, .stop_h.fd = -1, .loop.epfd = -1 },
			     .verify_fd = -1 };
	struct sample a = { 0 }, b = { 0 };
	int ret;

	log__set_level(LOG_LEVEL_WARN);
	ret = parse_opts(argc, argv, &h.o);
	if (!ret)
		ret = setup_device(&h);
	if (!ret && (h.o.wait_irq || !h.o.kvm_irqfd))
		ret = fake_vm__take_irqfd(&h.vm, h.blk->t.irq_fd, DEV_GSI);
	if (!ret)
		ret = prepare_data(&h);
	if (!ret)
		ret = init_device(&h);
	if (!ret)
		ret = run_workload(&h, &a, &b);
	if (!ret) {
		fake_virtio__write(&h.blk->t, R_STATUS, 0); /* reset: the device drops its queue */
		fake_vm__stop(&h.vm);
		print_result(&h, &a, &b);
	} else {
		fprintf(stderr, "blk_harness: %s\n", *error__get() ? error__get() : strerror(-ret));
	}
	teardown(&h);
	return ret || h.errors ? 1 : 0;
}
