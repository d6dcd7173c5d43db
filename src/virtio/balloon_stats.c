// SPDX-License-Identifier: Apache-2.0
#include "virtio/balloon_stats.h"

#include <errno.h>

#define BALLOON_STATS_NAME(name) #name,
const char *const balloon_stats__names[BALLOON_STATS_NR] = { BALLOON_STATS_TAGS(
	BALLOON_STATS_NAME) };
#undef BALLOON_STATS_NAME

static uint64_t le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int balloon_stats__parse(struct balloon_stats *s, const uint8_t *buf, size_t len)
{
	struct balloon_stats next = *s;
	size_t n = len / BALLOON_STAT_BYTES;

	if (len % BALLOON_STAT_BYTES || len > BALLOON_STATS_MAX_BYTES || (len && !buf))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = buf + i * BALLOON_STAT_BYTES;
		uint64_t tag = le(p, 2);

		if (tag >= BALLOON_STATS_NR)
			continue;
		next.value[tag] = le(p + 2, 8);
		next.present |= 1u << tag;
	}
	*s = next;
	return (int)n;
}
