/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-block: one drive, on the virtio-mmio transport. Requests run on the VMM thread,
 * with preadv/pwritev (io_engine Sync) or io_uring (Async: submitted in batches,
 * completions reaped on the VMM loop, one interrupt per batch). A write is acknowledged
 * once it has completed; FLUSH is fdatasync() with cache_type Writeback (and FLUSH is then
 * offered), and with Unsafe it is not offered and does nothing. Read-only drives are
 * opened O_RDONLY and a write gets IOERR. Token buckets from the drive's rate_limiter park
 * requests until a timerfd says they may go.
 */
#ifndef EMBER_VIRTIO_BLK_H
#define EMBER_VIRTIO_BLK_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/blk_request.h"
#include "virtio/mmio.h"
#include "virtio/rate_limiter.h"
#include "vmm/metrics.h"
#include "vmm/vm_config.h"

#define VIRTIO_ID_BLOCK 2

struct blk_slot; /* a request and its buffers, pooled */
struct snapshot_file_writer;
struct snapshot_file_reader;

struct virtio_blk {
	struct virtio_mmio t;
	char id[VM_DEVICE_ID_MAX + 1]; /* the guest's GET_ID sees the first 20 bytes */
	char *path;
	int fd;
	uint64_t disk_bytes;
	bool read_only;
	bool writeback;
	bool async;

	struct rate_limiter rl;
	struct event_handler rl_h;
	struct blk_slot *parked; /* a request waiting for tokens */
	struct blk_slot *free_slots;

	struct io_uring ring;
	bool ring_ok;
	struct event_handler ring_h; /* an eventfd that io_uring signals on completions */
	unsigned int inflight;
	struct event_loop *loop;

	struct block_metrics m;
};

/*
 * Opens the drive's file and sets up the device at base with interrupt gsi. The caller
 * puts t on the MMIO bus (virtio_mmio__bus_ops, &b->t) and calls virtio_blk__watch().
 */
int virtio_blk__create(struct virtio_blk **out, const struct drive_config *cfg, int vm_fd,
		       const struct gmem *gm, uint64_t base, uint32_t gsi);
int virtio_blk__watch(struct virtio_blk *b, struct event_loop *loop);
/*
 * PATCH /drives/{id} at run time: a new backing file (the guest sees the new size through
 * a config-change interrupt) and/or new rate limits. changed holds CONFIG_CHANGED_* bits.
 */
int virtio_blk__update(struct virtio_blk *b, const struct drive_config *cfg, unsigned int changed);
/*
 * Snapshots, with the VM paused, on the VMM thread: its virtio-mmio, virtio-blk and
 * rate-limiter sections (docs/snapshot-format.md).
 *
 * save first waits for every request in flight (io_uring) and gives its chain back with
 * its status, interrupting the driver: the snapshot has no request in flight, and the
 * guest finds those completions in its memory after the restore. A request parked by the
 * rate limiter (taken from the ring, not started) is given back instead: the file holds
 * the queue's next available index before it, and the restored device takes it again. It
 * stays parked in the running device, which may resume. So every request completes
 * exactly once, before the snapshot or after the restore.
 *
 * restore: on a device just created from the same drive config (before the vCPUs run,
 * before or after virtio_blk__watch()): the disk's size in sectors, read-only and cache
 * type must be the snapshot's, and so must the rate limiter's buckets (-EINVAL with a
 * message otherwise); then the transport, queue and buckets are as they were. 0 or -errno
 * with error__set().
 */
int virtio_blk__save(struct virtio_blk *b, struct snapshot_file_writer *w);
int virtio_blk__restore(struct virtio_blk *b, const struct snapshot_file_reader *r);
void virtio_blk__destroy(struct virtio_blk *b);

#endif
