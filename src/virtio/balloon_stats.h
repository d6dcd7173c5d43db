/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-balloon's memory statistics (virtio 1.2, 5.5.6.3): what the driver puts in its
 * stats buffer, an array of packed little-endian (u16 tag, u64 value) pairs, 10 bytes each.
 * The bytes come from guest memory and are untrusted: the parser takes whole pairs only,
 * ignores tags it does not know and changes nothing unless the whole buffer is good. The
 * names are Firecracker's, those of GET /balloon/statistics.
 */
#ifndef EMBER_VIRTIO_BALLOON_STATS_H
#define EMBER_VIRTIO_BALLOON_STATS_H

#include <stddef.h>
#include <stdint.h>

/* One pair in the buffer: a u16 tag, then a u64 value, packed. */
#define BALLOON_STAT_BYTES 10
/* The largest stats buffer taken (Linux sends 10 to 16 pairs); a larger one is malformed. */
#define BALLOON_STATS_MAX_BYTES 4096

/* The tags (VIRTIO_BALLOON_S_*) in order, with Firecracker's field names. */
/* clang-format off */
#define BALLOON_STATS_TAGS(X)                                                                      \
	X(swap_in) X(swap_out) X(major_faults) X(minor_faults) X(free_memory) X(total_memory)      \
	X(available_memory) X(disk_caches) X(hugetlb_allocations) X(hugetlb_failures)              \
	X(oom_kill) X(alloc_stall) X(async_scan) X(direct_scan) X(async_reclaim)                   \
	X(direct_reclaim)
/* clang-format on */
#define BALLOON_STATS_ENUM(name) BALLOON_STAT_##name,
enum balloon_stat_tag { BALLOON_STATS_TAGS(BALLOON_STATS_ENUM) BALLOON_STATS_NR };
#undef BALLOON_STATS_ENUM

extern const char *const balloon_stats__names[BALLOON_STATS_NR];

struct balloon_stats {
	/* the device's config space: its target and the driver's actual, in 4 KiB pages */
	uint32_t target_pages;
	uint32_t actual_pages;
	/* bit i: the driver has reported tag i (its latest value is value[i]) */
	uint32_t present;
	uint64_t value[BALLOON_STATS_NR];
};

/*
 * Parses len bytes of stats pairs from the driver into *s: each known tag's value replaces
 * the one before (tags reported earlier and not now keep theirs, as in Firecracker), unknown
 * tags are skipped. Returns the number of pairs, or -EINVAL (nothing changed) when len is
 * not a whole number of pairs or is over BALLOON_STATS_MAX_BYTES.
 */
int balloon_stats__parse(struct balloon_stats *s, const uint8_t *buf, size_t len);

#endif
