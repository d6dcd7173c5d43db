/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-rng (virtio 1.2, 5.4), Firecracker's "entropy" device: one queue of device-writable
 * buffers that the device fills with bytes from the host's getrandom(). A request is capped
 * at RNG_MAX_REQUEST bytes (the used length says how many came); a chain that has a
 * device-readable buffer is a driver error and is given back with length 0. Token buckets
 * from the entropy config's rate_limiter (bytes and requests) park a chain until a timerfd
 * says it may go. Everything runs on the VMM thread, under the transport's lock.
 */
#ifndef EMBER_VIRTIO_RNG_H
#define EMBER_VIRTIO_RNG_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/mmio.h"
#include "virtio/queue.h"
#include "virtio/rate_limiter.h"
#include "vmm/event_loop.h"
#include "vmm/metrics.h"
#include "vmm/vm_config.h"

#define VIRTIO_ID_RNG 4
/* The most bytes one request gets (Linux asks for at most a page at a time). */
#define RNG_MAX_REQUEST (64 * 1024)
/* The id of its snapshot sections (virtio-mmio, rate-limiter): it has no drive_id. */
#define RNG_SNAPSHOT_ID "entropy"

/*
 * Firecracker's "entropy": requests taken from the queue (entropy_event_count), chains that
 * broke the rules or could not be filled (entropy_event_fails), bytes given, getrandom()
 * failures, requests held back by the rate limiter and its timer's wake-ups;
 * activate_fails stays 0 (activation cannot fail).
 */
/* clang-format off */
#define ENTROPY_METRICS(X)                                                                         \
	X(activate_fails) X(entropy_event_fails) X(entropy_event_count) X(entropy_bytes)           \
	X(host_rng_fails) X(entropy_rate_limiter_throttled) X(rate_limiter_event_count)
/* clang-format on */
METRICS_STRUCT(entropy_metrics, ENTROPY_METRICS);

struct virtio_rng {
	struct virtio_mmio t;
	struct rate_limiter rl;
	struct event_handler rl_h;
	struct vq_chain chain; /* the chain in hand */
	bool has_parked;       /* chain was taken and waits for the rate limiter's tokens */
	struct entropy_metrics m;
};

/*
 * Sets up the device at base with interrupt gsi (cfg: its rate limiter). The caller puts t
 * on the MMIO bus (virtio_mmio__bus_ops, &r->t) and calls virtio_rng__watch(). 0 or -errno
 * with error__set().
 */
int virtio_rng__create(struct virtio_rng **out, const struct entropy_config *cfg, int vm_fd,
		       const struct gmem *gm, uint64_t base, uint32_t gsi);
/* Registers the queue kick and the rate limiter's timer with the VMM loop. */
int virtio_rng__watch(struct virtio_rng *r, struct event_loop *loop);
struct snapshot_file_writer;
struct snapshot_file_reader;
/*
 * Snapshots, with the VM paused, on the VMM thread: its virtio-mmio and rate-limiter
 * sections under the id RNG_SNAPSHOT_ID (docs/snapshot-format.md). A chain parked by the
 * rate limiter is given back (the queue's next available index is saved before it), so the
 * restored device takes it again; it stays parked in the running device.
 *
 * restore: on a device just created from the same entropy config (before the vCPUs run):
 * the rate limiter's buckets must be the snapshot's (-EINVAL with a message otherwise), then
 * the transport and queue are as they were. 0 or -errno with error__set().
 */
int virtio_rng__save(struct virtio_rng *r, struct snapshot_file_writer *w);
int virtio_rng__restore(struct virtio_rng *r, const struct snapshot_file_reader *rd);
void virtio_rng__destroy(struct virtio_rng *r);

#endif
