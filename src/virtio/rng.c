// SPDX-License-Identifier: Apache-2.0
#include "virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "vmm/log.h"
#include "vmm/snapshot_file.h"


#define RNG_RATE_LIMITER RATE_LIMITER_ENTROPY

METRICS_NAMES(entropy_metrics, ENTROPY_METRICS);

static uint64_t rng_features(void *dev)
{
	(void)dev;
	return (1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_F_EVENT_IDX);
}

/* ---- requests ---- */

/* Only device-writable buffers, and some: anything else is a driver error. */
static bool well_formed(const struct vq_chain *c)
{
	return !c->readable && c->writable;
}

static uint32_t request_bytes(const struct vq_chain *c)
{
	return c->writable < RNG_MAX_REQUEST ? (uint32_t)c->writable : RNG_MAX_REQUEST;
}

/* n bytes of the host's randomness at p: 0 or -errno. */
static int host_random(uint8_t *p, uint32_t n)
{
	while (n) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		p += got;
		n -= (uint32_t)got;
	}
	return 0;
}

/* Fills the chain's buffers in order, request_bytes() in all; the used length (0: failed). */
static uint32_t fill(struct virtio_rng *r, const struct vq_chain *c)
{
	uint32_t want = request_bytes(c), done = 0;

	for (unsigned int i = 0; i < c->nr && done < want; i++) {
		uint32_t n = c->bufs[i].len < want - done ? c->bufs[i].len : want - done;
		uint8_t *p = gmem__ptr(r->t.gm, c->bufs[i].gpa, n); /* checked by virtq__pop() */
		int ret = p ? host_random(p, n) : -EFAULT;

		if (p)
			gmem__mark_dirty(r->t.gm, p, n);
		if (ret) {
			r->m.host_rng_fails += ret != -EFAULT;
			r->m.entropy_event_fails++;
			log_warn("entropy device: cannot fill a request: %s", strerror(-ret));
			return 0;
		}
		done += n;
	}
	r->m.entropy_bytes += done;
	return done;
}

/* The next chain into r->chain: the parked one, or one from the ring. 1, or 0 for none. */
static int next_chain(struct virtio_rng *r)
{
	struct virtq *q = &r->t.queues[0];
	int ret;

	if (r->has_parked) {
		r->has_parked = false;
		return 1;
	}
	while ((ret = virtq__pop(q, &r->chain)) == 0) {
		if (!virtq__arm_notify(q))
			return 0;
	}
	if (ret < 0) {
		r->m.entropy_event_fails++;
		virtio_mmio__needs_reset(&r->t, "a malformed descriptor chain");
		return 0;
	}
	r->m.entropy_event_count++;
	return 1;
}

/* False when the rate limiter holds the chain back (it is parked, the timer armed). */
static bool admitted(struct virtio_rng *r)
{
	if (!r->rl.bytes.enabled && !r->rl.ops.enabled)
		return true;
	if (rate_limiter__consume(&r->rl, request_bytes(&r->chain), rate_limiter__now_ns()))
		return true;
	r->m.entropy_rate_limiter_throttled++;
	r->has_parked = true;
	return false;
}

/* Serves what the queue holds, until it is empty, throttled or broken. */
static void process(struct virtio_rng *r)
{
	bool used = false;

	while (!r->rl.blocked && virtio_mmio__queue_live(&r->t, 0) && next_chain(r)) {
		uint32_t len = 0;

		if (!well_formed(&r->chain))
			r->m.entropy_event_fails++; /* given back empty */
		else if (!admitted(r))
			break;
		else
			len = fill(r, &r->chain);
		if (virtq__push(&r->t.queues[0], r->chain.head, len)) {
			virtio_mmio__needs_reset(&r->t, "used ring outside guest RAM");
			break;
		}
		used = true;
	}
	if (used)
		virtio_mmio__used(&r->t, 0);
}

static void rng_notify(void *dev, uint16_t q)
{
	(void)q;
	process(dev);
}

static void on_rate_limiter(struct event_handler *h, uint32_t events)
{
	struct virtio_rng *r = container_of(h, struct virtio_rng, rl_h);

	(void)events;
	virtio_mmio__lock(&r->t);
	rate_limiter__timer_fired(&r->rl);
	r->m.rate_limiter_event_count++;
	process(r);
	virtio_mmio__unlock(&r->t);
}

static int rng_activate(void *dev)
{
	(void)dev;
	return 0;
}

static void rng_reset(void *dev)
{
	struct virtio_rng *r = dev;

	r->has_parked = false;
}

static const struct virtio_dev_ops rng_ops = {
	.device_id = VIRTIO_ID_RNG,
	.name = "virtio-rng",
	.nr_queues = 1,
	.features = rng_features,
	.config_size = 0,
	.activate = rng_activate,
	.reset = rng_reset,
	.notify = rng_notify,
};

/* ---- set-up ---- */

int virtio_rng__create(struct virtio_rng **out, const struct entropy_config *cfg, int vm_fd,
		       const struct gmem *gm, uint64_t base, uint32_t gsi)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return error__set(-ENOMEM, "entropy device: out of memory");
	r->rl.timer_fd = -1;
	ret = rate_limiter__init(&r->rl, cfg->has_rate_limiter ? &cfg->rate_limiter : NULL,
				 rate_limiter__now_ns());
	if (ret)
		error__set_default(ret, "entropy device: rate_limiter: %s", strerror(-ret));
	else
		ret = virtio_mmio__init(&r->t, vm_fd, gm, base, gsi, &rng_ops, r);
	if (ret) {
		virtio_rng__destroy(r);
		return ret;
	}
	r->rl_h = (struct event_handler){ r->rl.timer_fd, on_rate_limiter };
	*out = r;
	return 0;
}

int virtio_rng__watch(struct virtio_rng *r, struct event_loop *loop)
{
	int ret = virtio_mmio__watch(&r->t, loop);

	if (!ret && r->rl.timer_fd >= 0)
		ret = event_loop__add(loop, &r->rl_h, EPOLLIN);
	return ret;
}

void virtio_rng__destroy(struct virtio_rng *r)
{
	if (!r)
		return;
	rate_limiter__destroy(&r->rl);
	if (r->t.ops)
		virtio_mmio__destroy(&r->t);
	free(r);
}

/* ---- snapshots ---- */

int virtio_rng__save(struct virtio_rng *r, struct snapshot_file_writer *w)
{
	uint16_t back[1];
	int ret;

	virtio_mmio__lock(&r->t);
	back[0] = r->has_parked ? 1 : 0;
	virtio_mmio__save(&r->t, RNG_SNAPSHOT_ID, back, w); /* the writer's first error sticks */
	ret = rate_limiter__save(&r->rl, RNG_SNAPSHOT_ID, RNG_RATE_LIMITER, w);
	virtio_mmio__unlock(&r->t);
	if (ret)
		return error__set_default(ret, "entropy device: cannot save its state");
	return 0;
}

int virtio_rng__restore(struct virtio_rng *r, const struct snapshot_file_reader *rd)
{
	int ret;

	virtio_mmio__lock(&r->t);
	ret = rate_limiter__restore(&r->rl, "entropy device: rate_limiter", RNG_SNAPSHOT_ID,
				    RNG_RATE_LIMITER, rd);
	if (!ret)
		ret = virtio_mmio__restore(&r->t, "entropy device", RNG_SNAPSHOT_ID, rd);
	virtio_mmio__unlock(&r->t);
	return ret;
}
