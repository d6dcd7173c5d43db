/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Firecracker-compatible rate limiting: a token bucket for bytes and one for operations,
 * each with a size, a one-time burst and a refill time. Device-agnostic: block and net
 * both use it. When a request cannot get its tokens the device parks it and asks for a
 * timerfd to be armed; it is never busy-waited.
 */
#ifndef EMBER_VIRTIO_RATE_LIMITER_H
#define EMBER_VIRTIO_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm_config.h"

struct token_bucket {
	bool enabled;
	uint64_t size;		 /* tokens the bucket holds when full */
	uint64_t one_time_burst; /* extra tokens, spent first, never refilled */
	uint64_t refill_ns;	 /* time to refill from empty to size */
	uint64_t budget;	 /* tokens available now (not counting the burst) */
	uint64_t last_ns;	 /* when budget was last brought up to date; in debt: when
				    the bucket starts to earn tokens again (in the future) */
	uint64_t ns_carry;	 /* leftover time that did not make a whole token yet, in
				    units of 1/size ns so that refills are exact */
};

struct snapshot_file_writer;
struct snapshot_file_reader;

/* Which of its device's limiters a snapshot's rate-limiter section holds. */
enum rate_limiter_which {
	RATE_LIMITER_BLOCK = 0,
	RATE_LIMITER_NET_RX = 1,
	RATE_LIMITER_NET_TX = 2,
	RATE_LIMITER_ENTROPY = 3,
};

struct rate_limiter_metrics {
	uint64_t throttled;	/* requests that had to wait */
	uint64_t bytes_charged;
	uint64_t ops_charged;
};

struct rate_limiter {
	struct token_bucket bytes;
	struct token_bucket ops;
	int timer_fd;	/* timerfd armed while blocked; -1 without a limiter */
	bool blocked;	/* a request is parked, waiting for the timer */
	struct rate_limiter_metrics m;
};

/* Sets up from the config (NULL or empty: unlimited) at time now_ns; creates the timerfd. */
int rate_limiter__init(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
		       uint64_t now_ns);
/*
 * Replaces the buckets (PATCH), keeping the timerfd; buckets not given stay as they are. May
 * have to create the timerfd: 0 or -errno, and nothing changes on failure.
 */
int rate_limiter__update(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
			 uint64_t now_ns);
/*
 * Makes the limiter run exactly cfg (NULL: unlimited): a bucket that cfg leaves as it is
 * keeps its state, a changed one starts full, one cfg lacks is disabled. For a device
 * whose whole rate_limiter config was replaced (PATCH merges into the config first).
 */
int rate_limiter__reconfigure(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
			      uint64_t now_ns);
void rate_limiter__destroy(struct rate_limiter *rl);
/*
 * Takes 1 op and bytes bytes if both buckets have them at now_ns: true. Otherwise takes
 * nothing, arms the timerfd for when they will be there, sets blocked and returns false. A
 * request bigger than a bucket's size is let through once the bucket is full (it would
 * never fit otherwise); the bucket then stays empty until the excess is paid for in time
 * (rate_limiter.c). While blocked: false, nothing taken, the timer left as it is.
 */
bool rate_limiter__consume(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);
/* The timerfd fired: reads it and clears blocked; the device retries its parked request. */
void rate_limiter__timer_fired(struct rate_limiter *rl);
/*
 * Nanoseconds until a bucket holds n tokens (0 if it does now, or if it is disabled); for an
 * n bigger than the bucket, until the bucket is full.
 */
uint64_t token_bucket__wait_ns(const struct token_bucket *b, uint64_t n, uint64_t now_ns);
/* Brings the budget up to date at now_ns. */
void token_bucket__refill(struct token_bucket *b, uint64_t now_ns);
/*
 * Snapshots (docs/snapshot-format.md, the rate-limiter section): save writes one section
 * for the limiter `which` of device owner, enabled or not: each bucket's settings and what
 * it holds. restore finds that section and checks that this limiter has the same buckets
 * (-EINVAL with a message naming label otherwise: the config differs), then gives them the
 * saved tokens and burst. The time since the last refill is not carried: the buckets earn
 * again from the moment of the restore. 0 or -errno with error__set().
 */
int rate_limiter__save(const struct rate_limiter *rl, const char *owner,
		       enum rate_limiter_which which, struct snapshot_file_writer *w);
int rate_limiter__restore(struct rate_limiter *rl, const char *label, const char *owner,
			  enum rate_limiter_which which, const struct snapshot_file_reader *r);
/* A monotonic clock in ns, for callers. */
uint64_t rate_limiter__now_ns(void);

#endif
