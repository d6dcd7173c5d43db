/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-balloon (virtio 1.2, 5.5), Firecracker's balloon device (docs/balloon.md).
 *
 * Queues, in the spec's order with the absent ones left out (as Linux numbers them): 0
 * inflateq, 1 deflateq, then statsq if VIRTIO_BALLOON_F_STATS_VQ was negotiated, then
 * reporting_vq if VIRTIO_BALLOON_F_REPORTING was. Config space: num_pages (the target, in
 * 4 KiB pages, set through the API; a change raises a config interrupt) and actual (written
 * by the driver).
 *
 * - Inflate: arrays of u32 page frame numbers (4 KiB pages). Each pfn is checked against
 *   guest RAM (a pfn outside it is skipped and counted, bad_pfns); the pages are sorted,
 *   runs of contiguous ones coalesced, and each run given back to the host with one
 *   madvise(MADV_DONTNEED) (it reads as zeros afterwards). With 2 MiB huge pages (a hugetlb
 *   memfd, shared: MADV_REMOVE) only whole huge pages can be freed: the device counts the
 *   balloon's pages in each huge page and frees one when all 512 of its pages are in.
 * - Deflate: nothing on the host (a page comes back when the guest touches it); counted.
 * - Free page reporting: buffers of free guest memory, given back the same way (whole
 *   4 KiB pages, whole 2 MiB pages with huge pages), then returned to the driver.
 * - Statistics: the device keeps the driver's stats buffer and returns it every
 *   stats_polling_interval_s (a timerfd), so that the driver refills it.
 *
 * Pages given back are marked dirty (gmem__mark_dirty()), so a Diff snapshot carries them.
 * Everything runs on the VMM thread under the transport's lock, except the config space
 * accesses (vCPU threads, same lock).
 */
#ifndef EMBER_VIRTIO_BALLOON_H
#define EMBER_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/balloon_stats.h"
#include "virtio/mmio.h"
#include "virtio/queue.h"
#include "vmm/event_loop.h"
#include "vmm/metrics.h"
#include "vmm/vm_config.h"

#define VIRTIO_ID_BALLOON 5
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_REPORTING 5
/* A pfn names a 4 KiB page, whatever the guest's page size. */
#define BALLOON_PFN_SHIFT 12
#define BALLOON_PAGES_PER_MIB 256
/* Pfns in one buffer at most (Linux sends up to 256, VIRTIO_BALLOON_ARRAY_PFNS_MAX). */
#define BALLOON_MAX_PFNS_PER_BUF 256
/* num_pages and actual, two le32 */
#define BALLOON_CONFIG_SIZE 8
/* The id of its snapshot sections: it has no device id of its own. */
#define BALLOON_SNAPSHOT_ID "balloon"
/* Its own state is SNAPSHOT_SECTION_VIRTIO_BALLOON (docs/snapshot-format.md). */

/*
 * Firecracker's "balloon": buffers taken from the inflate and deflate queues
 * (inflate_count, deflate_count), stats buffers taken and those that were malformed, chains
 * and buffers that broke the rules (event_fails); activate_fails stays 0. Ember's: pages
 * inflated, pfns outside guest RAM (bad_pfns), the bytes given back to the host (inflate
 * and reporting: discarded_bytes; madvise failures: discard_fails), free page reports.
 */
/* clang-format off */
#define BALLOON_METRICS(X)                                                                         \
	X(activate_fails) X(inflate_count) X(stats_updates_count) X(stats_update_fails)            \
	X(deflate_count) X(event_fails) X(inflated_pages) X(bad_pfns) X(discarded_bytes)           \
	X(discard_fails) X(free_page_reports)
/* clang-format on */
METRICS_STRUCT(balloon_metrics, BALLOON_METRICS);

/* With 2 MiB huge pages: which 4 KiB pages of a region are in the balloon, per huge page. */
struct balloon_huge {
	uint64_t *bits;	 /* a bit per 4 KiB page */
	uint16_t *count; /* balloon pages per 2 MiB page */
};

struct virtio_balloon {
	struct virtio_mmio t;
	struct balloon_config cfg;
	uint64_t features;
	uint32_t num_pages; /* the target */
	uint32_t actual;    /* the driver's */
	int stats_timer_fd; /* -1 without statistics */
	struct event_handler stats_h;
	bool holds_stats;      /* the driver's stats buffer is in hand */
	uint16_t stats_head;   /* its head */
	int q_stats, q_report; /* queue index of each, -1 when not negotiated */
	struct balloon_stats stats;
	struct balloon_huge huge[GMEM_MAX_REGIONS];
	struct vq_chain chain;
	struct balloon_metrics m;
	uint64_t discards; /* madvise calls that gave memory back (for tests: coalescing) */
};

/*
 * Sets up the device at base with interrupt gsi, as cfg says (its target must fit the
 * memory: the config checks it). The caller puts t on the MMIO bus and calls
 * virtio_balloon__watch(). 0 or -errno with error__set().
 */
int virtio_balloon__create(struct virtio_balloon **out, const struct balloon_config *cfg, int vm_fd,
			   const struct gmem *gm, uint64_t base, uint32_t gsi);
/* Registers the queue kicks and the statistics timer with the VMM loop. */
int virtio_balloon__watch(struct virtio_balloon *b, struct event_loop *loop);
void virtio_balloon__destroy(struct virtio_balloon *b);
/* PATCH /balloon: the new target; a config interrupt when it changed and the driver runs. */
void virtio_balloon__set_target(struct virtio_balloon *b, uint32_t amount_mib);
/*
 * PATCH /balloon/statistics: a new interval, the buffer returned at once (as Firecracker
 * does). Statistics cannot be turned on or off after the start: -EINVAL with a message.
 */
int virtio_balloon__set_stats_interval(struct virtio_balloon *b, uint32_t seconds);
/* GET /balloon/statistics: the latest; -EINVAL with a message when they are off. */
int virtio_balloon__get_stats(struct virtio_balloon *b, struct balloon_stats *out);
struct snapshot_file_writer;
struct snapshot_file_reader;
/*
 * Snapshots, with the VM paused, on the VMM thread: the virtio-mmio section under
 * BALLOON_SNAPSHOT_ID (the stats buffer in hand is given back: the restored device takes it
 * again from the ring, the running one keeps it) and the device's own section (target,
 * actual, statistics interval). restore: on a device just made from the snapshot's config,
 * before the vCPUs run. 0 or -errno with error__set().
 */
int virtio_balloon__save(struct virtio_balloon *b, struct snapshot_file_writer *w);
int virtio_balloon__restore(struct virtio_balloon *b, const struct snapshot_file_reader *r);

#endif
