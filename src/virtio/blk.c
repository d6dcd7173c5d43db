// SPDX-License-Identifier: Apache-2.0
#include "virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/config.h"
#include "virtio/persist.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define BLK_CONFIG_SIZE 0x20
#define BLK_SEG_MAX (VIRTQ_CHAIN_MAX - 2) /* the header and the status take two */
#define BLK_RING_ENTRIES VIRTQ_MAX_SIZE

struct blk_slot {
	struct blk_request req;
	struct blk_slot *next; /* on the free list */
};

static void process(struct virtio_blk *b);

static struct blk_slot *get_slot(struct virtio_blk *b)
{
	struct blk_slot *s = b->free_slots;

	if (s) {
		b->free_slots = s->next;
		return s;
	}
	return malloc(sizeof(*s));
}

static void put_slot(struct virtio_blk *b, struct blk_slot *s)
{
	s->next = b->free_slots;
	b->free_slots = s;
}

static void free_slots(struct virtio_blk *b)
{
	while (b->free_slots) {
		struct blk_slot *s = b->free_slots;

		b->free_slots = s->next;
		free(s);
	}
}

/* ---- config space and features ---- */

static uint64_t blk_features(void *dev)
{
	struct virtio_blk *b = dev;
	uint64_t f = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_F_EVENT_IDX);

	if (b->read_only)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	if (b->writeback)
		f |= 1ULL << VIRTIO_BLK_F_FLUSH;
	return f;
}

static void put_le(uint8_t *cfg, uint32_t off, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		cfg[off + i] = (uint8_t)(v >> (8 * i));
}

static void blk_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = dev;
	uint8_t cfg[BLK_CONFIG_SIZE] = { 0 };

	put_le(cfg, 0x00, b->disk_bytes / VIRTIO_BLK_SECTOR, 8); /* capacity */
	put_le(cfg, 0x0c, BLK_SEG_MAX, 4);			 /* seg_max */
	put_le(cfg, 0x14, VIRTIO_BLK_SECTOR, 4);		 /* blk_size */
	memcpy(data, cfg + off, len);
}

/* ---- executing requests ---- */

static ssize_t run_iov(struct virtio_blk *b, struct blk_request *r, bool write)
{
	struct iovec *iov = r->iov;
	unsigned int n = r->niov;
	uint64_t done = 0;

	while (n) {
		ssize_t k = write ? pwritev(b->fd, iov, (int)n, (off_t)(r->offset + done)) :
				    preadv(b->fd, iov, (int)n, (off_t)(r->offset + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		done += (uint64_t)k;
		/* a short transfer: skip what is done and go on */
		while (n && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return (ssize_t)done;
}

static void copy_id(struct virtio_blk *b, struct blk_request *r)
{
	size_t left = VIRTIO_BLK_ID_BYTES, off = 0;

	for (unsigned int i = 0; i < r->niov && left; i++) {
		size_t n = r->iov[i].iov_len < left ? r->iov[i].iov_len : left;

		memset(r->iov[i].iov_base, 0, n);
		memcpy(r->iov[i].iov_base, b->id + off,
		       strnlen(b->id + off, n)); /* NUL-padded, not terminated */
		off += n;
		left -= n;
	}
}

/* The status and the number of bytes written into guest memory. */
static uint8_t execute(struct virtio_blk *b, struct blk_request *r, uint32_t *written)
{
	*written = 0;
	switch (r->kind) {
	case BLK_REQ_IN:
		if (run_iov(b, r, false) != (ssize_t)r->len)
			return VIRTIO_BLK_S_IOERR;
		*written = (uint32_t)r->len;
		return VIRTIO_BLK_S_OK;
	case BLK_REQ_OUT:
		return run_iov(b, r, true) == (ssize_t)r->len ? VIRTIO_BLK_S_OK :
								 VIRTIO_BLK_S_IOERR;
	case BLK_REQ_FLUSH:
		if (b->writeback && fdatasync(b->fd) < 0)
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case BLK_REQ_GET_ID:
		copy_id(b, r);
		*written = (uint32_t)(r->len < VIRTIO_BLK_ID_BYTES ? r->len : VIRTIO_BLK_ID_BYTES);
		return VIRTIO_BLK_S_OK;
	case BLK_REQ_UNSUPPORTED:
		return VIRTIO_BLK_S_UNSUPP;
	default:
		return VIRTIO_BLK_S_IOERR;
	}
}

static void count(struct virtio_blk *b, const struct blk_request *r, uint8_t status)
{
	if (status == VIRTIO_BLK_S_IOERR)
		b->m.execute_fails++;
	if (r->kind == BLK_REQ_BAD)
		b->m.invalid_reqs_count++;
	if (status != VIRTIO_BLK_S_OK)
		return;
	if (r->kind == BLK_REQ_IN) {
		b->m.read_count++;
		b->m.read_bytes += r->len;
	} else if (r->kind == BLK_REQ_OUT) {
		b->m.write_count++;
		b->m.write_bytes += r->len;
	} else if (r->kind == BLK_REQ_FLUSH) {
		b->m.flush_count++;
	}
}

/* Writes the status, gives the chain back and recycles the slot. */
static void complete(struct virtio_blk *b, struct blk_slot *s, uint8_t status, uint32_t written)
{
	*s->req.status = status;
	gmem__mark_dirty(b->t.gm, s->req.status, 1);
	count(b, &s->req, status);
	if (virtq__push(&b->t.queues[0], s->req.head, written + 1))
		virtio_mmio__needs_reset(&b->t, "used ring outside guest RAM");
	put_slot(b, s);
}

/* ---- io_uring ---- */

static bool is_io(const struct blk_request *r)
{
	return r->kind == BLK_REQ_IN || r->kind == BLK_REQ_OUT ||
	       (r->kind == BLK_REQ_FLUSH && r->len == 0);
}

/* Queues r on the ring; false if the ring is full (the caller runs it at once). */
static bool submit(struct virtio_blk *b, struct blk_slot *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	struct blk_request *r = &s->req;

	if (!sqe) {
		b->m.io_engine_throttled_events++;
		return false;
	}
	if (r->kind == BLK_REQ_IN) {
		io_uring_prep_readv(sqe, b->fd, r->iov, r->niov, r->offset);
	} else if (r->kind == BLK_REQ_OUT) {
		io_uring_prep_writev(sqe, b->fd, r->iov, r->niov, r->offset);
	} else if (b->writeback) {
		/* a flush waits for every write before it */
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		sqe->flags |= IOSQE_IO_DRAIN;
	} else {
		io_uring_prep_nop(sqe);
	}
	io_uring_sqe_set_data(sqe, s);
	b->inflight++;
	return true;
}

/* A read or write that io_uring did only in part: the rest, synchronously. */
static bool finish_short(struct virtio_blk *b, struct blk_request *r, uint64_t done)
{
	struct blk_request rest = *r;
	uint64_t skip = done;
	unsigned int i = 0;

	while (i < rest.niov && skip >= rest.iov[i].iov_len)
		skip -= rest.iov[i++].iov_len;
	rest.niov -= i;
	memmove(rest.iov, rest.iov + i, rest.niov * sizeof(rest.iov[0]));
	if (rest.niov) {
		rest.iov[0].iov_base = (uint8_t *)rest.iov[0].iov_base + skip;
		rest.iov[0].iov_len -= skip;
	}
	rest.offset += done;
	rest.len -= done;
	return run_iov(b, &rest, r->kind == BLK_REQ_OUT) == (ssize_t)rest.len;
}

static void reap(struct virtio_blk *b)
{
	struct io_uring_cqe *cqe;

	while (!io_uring_peek_cqe(&b->ring, &cqe)) {
		struct blk_slot *s = io_uring_cqe_get_data(cqe);
		struct blk_request *r = &s->req;
		int res = cqe->res;
		bool ok = res >= 0;

		io_uring_cqe_seen(&b->ring, cqe);
		b->inflight--;
		if (ok && r->kind != BLK_REQ_FLUSH && (uint64_t)res < r->len)
			ok = finish_short(b, r, (uint64_t)res); /* as the Sync engine would */
		complete(b, s, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR,
			 ok && r->kind == BLK_REQ_IN ? (uint32_t)r->len : 0);
	}
}

/* Waits for what is in flight, for a reset or a new backing file. */
static void drain(struct virtio_blk *b)
{
	struct io_uring_cqe *cqe;

	while (b->ring_ok && b->inflight) {
		if (io_uring_wait_cqe(&b->ring, &cqe))
			break;
		reap(b);
	}
}

static void on_ring(struct event_handler *h, uint32_t events)
{
	struct virtio_blk *b = container_of(h, struct virtio_blk, ring_h);
	uint64_t n;
	ssize_t r = read(h->fd, &n, sizeof(n));

	(void)r;
	(void)events;
	virtio_mmio__lock(&b->t);
	reap(b);
	if (virtio_mmio__queue_live(&b->t, 0)) {
		virtio_mmio__used(&b->t, 0);
		process(b); /* what the full ring held back */
	}
	virtio_mmio__unlock(&b->t);
}

/* ---- the queue ---- */

static uint64_t cost_bytes(const struct blk_request *r)
{
	return r->kind == BLK_REQ_IN || r->kind == BLK_REQ_OUT ? r->len : 0;
}

/* The next request: the parked one, or a new chain. NULL when there is none. */
static struct blk_slot *next_request(struct virtio_blk *b)
{
	struct virtq *q = &b->t.queues[0];
	struct vq_chain c;
	struct blk_slot *s;
	int ret;

	if (b->parked) {
		s = b->parked;
		b->parked = NULL;
		return s;
	}
	/* the slot first: a chain taken off the ring must always be answered */
	s = get_slot(b);
	if (!s)
		return NULL;
	while ((ret = virtq__pop(q, &c)) == 0) {
		if (!virtq__arm_notify(q)) {
			put_slot(b, s);
			return NULL;
		}
	}
	if (ret < 0) {
		put_slot(b, s);
		virtio_mmio__needs_reset(&b->t, "a malformed descriptor chain");
		return NULL;
	}
	if (blk_request__parse(b->t.gm, &c, b->disk_bytes, b->read_only, &s->req)) {
		b->m.invalid_reqs_count++;
		put_slot(b, s);
		virtio_mmio__needs_reset(&b->t, "a request without a status byte");
		return NULL;
	}
	return s;
}

/* Runs what the queue holds, until it is empty, throttled or broken. */
static void process(struct virtio_blk *b)
{
	bool used = false, queued = false;
	struct blk_slot *s;

	while (!b->rl.blocked && virtio_mmio__queue_live(&b->t, 0) && (s = next_request(b))) {
		uint32_t written;
		uint8_t status;

		if ((b->rl.bytes.enabled || b->rl.ops.enabled) &&
		    !rate_limiter__consume(&b->rl, cost_bytes(&s->req), rate_limiter__now_ns())) {
			b->m.rate_limiter_throttled_events++;
			b->parked = s;
			break;
		}
		if (b->ring_ok && is_io(&s->req) && submit(b, s)) {
			queued = true;
			continue;
		}
		status = execute(b, &s->req, &written);
		complete(b, s, status, written);
		used = true;
	}
	if (queued)
		io_uring_submit(&b->ring);
	if (used)
		virtio_mmio__used(&b->t, 0);
}

static void blk_notify(void *dev, uint16_t q)
{
	struct virtio_blk *b = dev;

	(void)q;
	b->m.queue_event_count++;
	process(b);
}

static void on_rate_limiter(struct event_handler *h, uint32_t events)
{
	struct virtio_blk *b = container_of(h, struct virtio_blk, rl_h);

	(void)events;
	virtio_mmio__lock(&b->t);
	rate_limiter__timer_fired(&b->rl);
	b->m.rate_limiter_event_count++;
	process(b);
	virtio_mmio__unlock(&b->t);
}

static int blk_activate(void *dev)
{
	(void)dev;
	return 0;
}

static void blk_reset(void *dev)
{
	struct virtio_blk *b = dev;

	drain(b);
	if (b->parked)
		put_slot(b, b->parked);
	b->parked = NULL;
}

static const struct virtio_dev_ops blk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.name = "virtio-blk",
	.nr_queues = 1,
	.features = blk_features,
	.config_size = BLK_CONFIG_SIZE,
	.config_read = blk_config_read,
	.activate = blk_activate,
	.reset = blk_reset,
	.notify = blk_notify,
};

/* ---- set-up ---- */

static int open_disk(const char *path, bool read_only, int *fd, uint64_t *bytes)
{
	struct stat st;
	int err;

	*fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (*fd < 0)
		return error__set(-errno, "drive %s: %s", path, strerror(errno));
	if (fstat(*fd, &st) < 0)
		goto err;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(*fd, BLKGETSIZE64, bytes) < 0)
			goto err;
	} else if (S_ISREG(st.st_mode)) {
		*bytes = (uint64_t)st.st_size;
	} else {
		close(*fd);
		return error__set(-EINVAL, "drive %s: not a regular file or a block device", path);
	}
	return 0;
err:
	err = errno;
	close(*fd);
	return error__set(-err, "drive %s: %s", path, strerror(err));
}

/*
 * The ring is made disabled, given its eventfd, then locked to the operations virtio-blk
 * submits (and no further io_uring_register() calls, no SQE flags) before it is enabled:
 * requests on a ring run in the kernel where seccomp does not look, so an attacker holding
 * the VMM thread must not be able to make it open files or sockets.
 */
static int setup_ring(struct virtio_blk *b)
{
	struct io_uring_restriction allow[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_NOP },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = IOSQE_IO_DRAIN },
	};
	int ret = io_uring_queue_init(BLK_RING_ENTRIES, &b->ring, IORING_SETUP_R_DISABLED);

	if (ret < 0)
		return error__set(ret, "drive %s: io_uring: %s", b->id, strerror(-ret));
	b->ring_ok = true;
	b->ring_h = (struct event_handler){ eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), on_ring };
	if (b->ring_h.fd < 0 || io_uring_register_eventfd(&b->ring, b->ring_h.fd) < 0)
		return error__set(-EIO, "drive %s: io_uring eventfd", b->id);
	/* (liburing 2.3 declares io_uring_register_restrictions() but does not export it) */
	ret = io_uring_register((unsigned int)b->ring.ring_fd, IORING_REGISTER_RESTRICTIONS, allow,
				sizeof(allow) / sizeof(allow[0]));
	if (!ret)
		ret = io_uring_register((unsigned int)b->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
					NULL, 0);
	if (ret < 0)
		return error__set(ret, "drive %s: io_uring restrictions: %s", b->id, strerror(-ret));
	return 0;
}

int virtio_blk__create(struct virtio_blk **out, const struct drive_config *cfg, int vm_fd,
		       const struct gmem *gm, uint64_t base, uint32_t gsi)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return -ENOMEM;
	b->fd = b->ring_h.fd = -1;
	b->rl.timer_fd = -1;
	snprintf(b->id, sizeof(b->id), "%s", cfg->drive_id);
	b->read_only = cfg->is_read_only;
	b->writeback = cfg->cache_type == DRIVE_CACHE_WRITEBACK;
	b->async = cfg->io_engine == DRIVE_IO_ASYNC;
	b->path = strdup(cfg->path_on_host);
	ret = b->path ? open_disk(cfg->path_on_host, b->read_only, &b->fd, &b->disk_bytes) :
			-ENOMEM;
	if (!ret)
		ret = rate_limiter__init(&b->rl, cfg->has_rate_limiter ? &cfg->rate_limiter : NULL,
					 rate_limiter__now_ns());
	if (!ret && b->async)
		ret = setup_ring(b);
	if (!ret)
		ret = virtio_mmio__init(&b->t, vm_fd, gm, base, gsi, &blk_ops, b);
	if (ret) {
		virtio_blk__destroy(b);
		return ret;
	}
	b->rl_h = (struct event_handler){ b->rl.timer_fd, on_rate_limiter };
	*out = b;
	return 0;
}

int virtio_blk__watch(struct virtio_blk *b, struct event_loop *loop)
{
	int ret = virtio_mmio__watch(&b->t, loop);

	b->loop = loop;
	if (!ret && b->rl.timer_fd >= 0)
		ret = event_loop__add(loop, &b->rl_h, EPOLLIN);
	if (!ret && b->ring_ok)
		ret = event_loop__add(loop, &b->ring_h, EPOLLIN);
	return ret;
}

/* Puts the already opened file in place of the old one; the guest hears of the size. */
static void swap_file(struct virtio_blk *b, int fd, uint64_t bytes, char *path)
{
	drain(b);
	close(b->fd);
	free(b->path);
	b->fd = fd;
	b->path = path;
	b->disk_bytes = bytes;
	virtio_mmio__config_changed(&b->t);
	log_info("drive %s: now backed by %s (%llu bytes)", b->id, path,
		 (unsigned long long)bytes);
}

static int update_limits(struct virtio_blk *b, const struct drive_config *cfg)
{
	int ret = rate_limiter__reconfigure(&b->rl, cfg->has_rate_limiter ? &cfg->rate_limiter : NULL,
					    rate_limiter__now_ns());

	/* a drive that had no limits has a timer now */
	if (!ret && b->rl.timer_fd >= 0 && b->rl_h.fd < 0 && b->loop) {
		b->rl_h.fd = b->rl.timer_fd;
		ret = event_loop__add(b->loop, &b->rl_h, EPOLLIN);
		if (ret)
			b->rl_h.fd = -1;
	}
	if (ret)
		error__set(ret, "drive %s: rate limiter: %s", b->id, strerror(-ret));
	return ret;
}

/*
 * The new file is opened first and the limits changed next, and only then is the file
 * swapped: a PATCH that fails changes nothing the API would not show.
 */
int virtio_blk__update(struct virtio_blk *b, const struct drive_config *cfg, unsigned int changed)
{
	char *path = NULL;
	uint64_t bytes = 0;
	int fd = -1, ret = 0;

	virtio_mmio__lock(&b->t);
	if (changed & CONFIG_CHANGED_PATH) {
		path = strdup(cfg->path_on_host);
		ret = path ? open_disk(cfg->path_on_host, b->read_only, &fd, &bytes) : -ENOMEM;
	}
	if (!ret && (changed & CONFIG_CHANGED_RATE_LIMITER))
		ret = update_limits(b, cfg);
	if (!ret && fd >= 0) {
		swap_file(b, fd, bytes, path);
		fd = -1;
		path = NULL;
	}
	if (fd >= 0)
		close(fd);
	free(path);
	if (ret)
		b->m.update_fails++;
	else
		b->m.update_count++;
	virtio_mmio__unlock(&b->t);
	return ret;
}

/* ---- snapshots ---- */

#define LABEL_MAX (VM_DEVICE_ID_MAX + 32)

/* What is in flight completes now, its interrupt raised; a parked request stays parked. */
static void finish_inflight(struct virtio_blk *b)
{
	uint16_t before = b->t.queues[0].used_idx;

	drain(b);
	if (b->t.queues[0].used_idx != before && virtio_mmio__queue_live(&b->t, 0))
		virtio_mmio__used(&b->t, 0);
}

int virtio_blk__save(struct virtio_blk *b, struct snapshot_file_writer *w)
{
	uint16_t back[1];
	int ret;

	virtio_mmio__lock(&b->t);
	finish_inflight(b);
	back[0] = b->parked ? 1 : 0;
	virtio_mmio__save(&b->t, b->id, back, w); /* the writer's first error sticks */
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_VIRTIO_BLK, SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_str(w, b->id);
	snapshot_file__put_u64(w, b->disk_bytes / VIRTIO_BLK_SECTOR);
	snapshot_file__put_u8(w, b->read_only);
	snapshot_file__put_u8(w, b->writeback);
	snapshot_file__put_str(w, b->path);
	snapshot_file__put_u16(w, back[0]);
	ret = snapshot_file__end_section(w);
	if (!ret)
		ret = rate_limiter__save(&b->rl, b->id, RATE_LIMITER_BLOCK, w);
	virtio_mmio__unlock(&b->t);
	if (ret)
		return error__set_default(ret, "drive %s: cannot save its state", b->id);
	return 0;
}

static const char *rw_name(bool read_only)
{
	return read_only ? "read-only" : "read-write";
}

static const char *cache_name(bool writeback)
{
	return writeback ? "Writeback" : "Unsafe";
}

/* The virtio-blk section: the same disk, as this device sees it. */
static int check_blk_section(struct virtio_blk *b, const char *label,
			     const struct snapshot_file_reader *r)
{
	struct snapshot_file_cursor c;
	char path[4097];
	uint64_t sectors;
	uint8_t ro, wb;
	uint16_t back;
	int ret = virtio_persist__find(r, SNAPSHOT_SECTION_VIRTIO_BLK, b->id, -1, false, label,
				       &c);

	if (!ret)
		ret = snapshot_file__get_u64(&c, &sectors);
	if (!ret)
		ret = snapshot_file__get_u8(&c, &ro);
	if (!ret)
		ret = snapshot_file__get_u8(&c, &wb);
	if (!ret)
		ret = snapshot_file__get_str(&c, path, sizeof(path));
	if (!ret)
		ret = snapshot_file__get_u16(&c, &back);
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	if (ret)
		return ret;
	if (sectors != b->disk_bytes / VIRTIO_BLK_SECTOR)
		return error__set(-EINVAL, "%s: the snapshot's disk had %llu sectors, this one (%s) "
				  "has %llu", label, (unsigned long long)sectors, b->path,
				  (unsigned long long)(b->disk_bytes / VIRTIO_BLK_SECTOR));
	if (ro > 1 || wb > 1 || back > 1)
		return error__set(-EINVAL, "%s: the snapshot's virtio-blk section has flags Ember "
				  "does not write", label);
	if (ro != b->read_only)
		return error__set(-EINVAL, "%s: the snapshot's drive was %s, this one is %s", label,
				  rw_name(ro), rw_name(b->read_only));
	if (wb != b->writeback)
		return error__set(-EINVAL, "%s: the snapshot's drive had cache_type %s, this one "
				  "has %s", label, cache_name(wb), cache_name(b->writeback));
	return 0;
}

int virtio_blk__restore(struct virtio_blk *b, const struct snapshot_file_reader *r)
{
	char label[LABEL_MAX], rl_label[LABEL_MAX + 16];
	int ret;

	snprintf(label, sizeof(label), "drive %s", b->id);
	snprintf(rl_label, sizeof(rl_label), "%s: rate_limiter", label);
	virtio_mmio__lock(&b->t);
	ret = check_blk_section(b, label, r);
	if (!ret)
		ret = rate_limiter__restore(&b->rl, rl_label, b->id, RATE_LIMITER_BLOCK, r);
	if (!ret)
		ret = virtio_mmio__restore(&b->t, label, b->id, r);
	virtio_mmio__unlock(&b->t);
	return ret;
}

void virtio_blk__destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	drain(b);
	if (b->parked)
		put_slot(b, b->parked);
	free_slots(b);
	if (b->ring_ok)
		io_uring_queue_exit(&b->ring);
	if (b->ring_h.fd >= 0)
		close(b->ring_h.fd);
	rate_limiter__destroy(&b->rl);
	if (b->fd >= 0)
		close(b->fd);
	if (b->t.ops)
		virtio_mmio__destroy(&b->t);
	free(b->path);
	free(b);
}
