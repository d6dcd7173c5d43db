// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/virtio/rate_limiter.c: Firecracker's token buckets on a simulated
 * clock (explicit now_ns values), and one test on the real clock that the timerfd fires.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtio/rate_limiter.h"

#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull
#define HOUR (3600 * SEC)
#define T0 (1000 * SEC) /* an arbitrary start on the simulated clock */
#define P53 (1ull << 53)
#define P44 (1ull << 44)
/* Slack for the time between arming the timer and reading it back (valgrind is slow). */
#define SLACK (50 * MS)

static struct token_bucket_config tb(uint64_t size, uint64_t burst, uint64_t refill_ms)
{
	return (struct token_bucket_config){ size, burst, refill_ms };
}

/* NULL: that bucket is not given. */
static struct rate_limiter_config limits(const struct token_bucket_config *bytes,
					 const struct token_bucket_config *ops)
{
	struct rate_limiter_config c = { 0 };

	if (bytes) {
		c.has_bandwidth = true;
		c.bandwidth = *bytes;
	}
	if (ops) {
		c.has_ops = true;
		c.ops = *ops;
	}
	return c;
}

static void init_rl(struct rate_limiter *rl, const struct token_bucket_config *bytes,
		    const struct token_bucket_config *ops, uint64_t now_ns)
{
	struct rate_limiter_config c = limits(bytes, ops);

	assert_int_equal(rate_limiter__init(rl, &c, now_ns), 0);
}

/* What the timerfd has left to run. */
static uint64_t armed_ns(const struct rate_limiter *rl)
{
	struct itimerspec its;

	assert_int_equal(timerfd_gettime(rl->timer_fd, &its), 0);
	return (uint64_t)its.it_value.tv_sec * SEC + (uint64_t)its.it_value.tv_nsec;
}

static void assert_armed_about(const struct rate_limiter *rl, uint64_t ns)
{
	uint64_t left = armed_ns(rl);

	assert_true(left <= ns);
	assert_true(left + SLACK > ns);
}

static uint64_t max_wait(const struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns)
{
	uint64_t b = token_bucket__wait_ns(&rl->bytes, bytes, now_ns);
	uint64_t o = token_bucket__wait_ns(&rl->ops, 1, now_ns);

	return b > o ? b : o;
}

static uint64_t next_random(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

/* ---- no limits ---- */

static void unlimited(void **state)
{
	struct rate_limiter_config empty = { 0 };
	struct rate_limiter rl;
	int i;

	(void)state;
	assert_int_equal(rate_limiter__init(&rl, NULL, T0), 0);
	assert_int_equal(rl.timer_fd, -1);
	assert_false(rl.bytes.enabled);
	assert_false(rl.ops.enabled);
	for (i = 0; i < 1000; i++)
		assert_true(rate_limiter__consume(&rl, UINT64_MAX, T0));
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, UINT64_MAX, T0), 0);
	assert_int_equal(token_bucket__wait_ns(&rl.ops, UINT64_MAX, T0), 0);
	assert_false(rl.blocked);
	assert_int_equal(rl.m.throttled, 0);
	assert_int_equal(rl.m.bytes_charged, 0);
	assert_int_equal(rl.m.ops_charged, 0);
	rate_limiter__destroy(&rl);

	assert_int_equal(rate_limiter__init(&rl, &empty, T0), 0);
	assert_int_equal(rl.timer_fd, -1);
	assert_true(rate_limiter__consume(&rl, UINT64_MAX, 0));
	rate_limiter__destroy(&rl);
}

static void disabled_by_zero_size_or_refill_time(void **state)
{
	struct token_bucket_config no_size = tb(0, 100, 1000), no_time = tb(10, 100, 0);
	struct rate_limiter rl;
	int i;

	(void)state;
	init_rl(&rl, &no_size, &no_time, T0);
	assert_false(rl.bytes.enabled);
	assert_false(rl.ops.enabled);
	assert_int_equal(rl.timer_fd, -1);
	for (i = 0; i < 1000; i++)
		assert_true(rate_limiter__consume(&rl, 1ull << 40, T0));
	rate_limiter__destroy(&rl);

	init_rl(&rl, &no_time, &no_size, T0);
	assert_false(rl.bytes.enabled);
	assert_false(rl.ops.enabled);
	assert_int_equal(rl.timer_fd, -1);
	rate_limiter__destroy(&rl);
}

/* ---- one bucket ---- */

/* 10 ops per second: one op every 100 ms. */
static void ops_only(void **state)
{
	struct token_bucket_config ops = tb(10, 0, 1000);
	struct rate_limiter rl;
	int i;

	(void)state;
	init_rl(&rl, NULL, &ops, T0);
	assert_true(rl.timer_fd >= 0);
	assert_false(rl.bytes.enabled);
	for (i = 0; i < 10; i++)
		assert_true(rate_limiter__consume(&rl, UINT64_MAX, T0));
	assert_int_equal(rl.m.ops_charged, 10);
	assert_int_equal(rl.m.bytes_charged, 0);
	assert_int_equal(token_bucket__wait_ns(&rl.ops, 1, T0), 100 * MS);

	assert_false(rate_limiter__consume(&rl, 0, T0));
	assert_true(rl.blocked);
	assert_int_equal(rl.m.throttled, 1);
	assert_armed_about(&rl, 100 * MS);
	/* not expired yet: nothing to read, but the device may retry */
	rate_limiter__timer_fired(&rl);
	assert_false(rl.blocked);

	assert_false(rate_limiter__consume(&rl, 0, T0 + 100 * MS - 1));
	assert_int_equal(rl.m.throttled, 2);
	assert_armed_about(&rl, MS); /* 1 ns to go, but at least 1 ms */
	rate_limiter__timer_fired(&rl);
	assert_true(rate_limiter__consume(&rl, 0, T0 + 100 * MS));
	assert_int_equal(rl.m.ops_charged, 11);
	rate_limiter__destroy(&rl);
}

/* 1000 bytes per second: one byte every ms. */
static void bytes_only(void **state)
{
	struct token_bucket_config bytes = tb(1000, 0, 1000);
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_false(rl.ops.enabled);
	assert_true(rate_limiter__consume(&rl, 600, T0));
	assert_true(rate_limiter__consume(&rl, 400, T0));
	assert_true(rate_limiter__consume(&rl, 0, T0)); /* ops are not limited */
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1, T0), MS);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1000, T0), 1000 * MS);
	assert_false(rate_limiter__consume(&rl, 1, T0));
	rate_limiter__timer_fired(&rl);

	assert_false(rate_limiter__consume(&rl, 500, T0 + 500 * MS - 1));
	rate_limiter__timer_fired(&rl);
	assert_true(rate_limiter__consume(&rl, 500, T0 + 500 * MS));
	assert_int_equal(rl.bytes.budget, 0);
	assert_int_equal(rl.m.bytes_charged, 1500);
	assert_int_equal(rl.m.ops_charged, 0);
	assert_int_equal(rl.m.throttled, 2);
	rate_limiter__destroy(&rl);
}

static void one_time_burst_first_and_never_refilled(void **state)
{
	struct token_bucket_config bytes = tb(100, 50, 1000);
	struct token_bucket_config big_burst = tb(100, 500, 1000);
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, 30, T0));
	assert_int_equal(rl.bytes.one_time_burst, 20);
	assert_int_equal(rl.bytes.budget, 100);
	token_bucket__refill(&rl.bytes, T0 + 10 * SEC);
	assert_int_equal(rl.bytes.one_time_burst, 20);

	/* 20 from the burst, 100 from the budget */
	assert_true(rate_limiter__consume(&rl, 120, T0 + 10 * SEC));
	assert_int_equal(rl.bytes.one_time_burst, 0);
	assert_int_equal(rl.bytes.budget, 0);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1, T0 + 10 * SEC), 10 * MS);
	token_bucket__refill(&rl.bytes, T0 + 100 * SEC);
	assert_int_equal(rl.bytes.budget, 100);
	assert_int_equal(rl.bytes.one_time_burst, 0);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 101, T0 + 100 * SEC), 0);
	rate_limiter__destroy(&rl);

	/* a burst bigger than the bucket covers a request bigger than the bucket */
	init_rl(&rl, &big_burst, NULL, T0);
	assert_true(rate_limiter__consume(&rl, 450, T0));
	assert_int_equal(rl.bytes.one_time_burst, 50);
	assert_int_equal(rl.bytes.budget, 100);
	assert_true(rate_limiter__consume(&rl, 120, T0));
	assert_int_equal(rl.bytes.one_time_burst, 0);
	assert_int_equal(rl.bytes.budget, 30);
	rate_limiter__destroy(&rl);
}

/* ---- exact refills ---- */

/*
 * An hour of refills at random steps of 1 ns to 10 ms, taking the whole budget each time:
 * what was taken is rate * time, rounded down, to the token.
 */
static void exact_rate_over_an_hour(void **state)
{
	const uint64_t size = 1000003, refill_ms = 997;
	struct token_bucket_config bytes = tb(size, 0, refill_ms);
	struct rate_limiter rl;
	uint64_t now = T0, total = 0, seed = 1, got;
	unsigned __int128 earned_scaled;
	long steps = 0;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, size, T0));
	while (now < T0 + HOUR) {
		now += 1 + next_random(&seed) % (10 * MS);
		token_bucket__refill(&rl.bytes, now);
		got = rl.bytes.budget;
		assert_true(rate_limiter__consume(&rl, got, now));
		total += got;
		steps++;
	}
	assert_true(steps > 500000);
	/* total <= (now - T0) * rate < total + 1 */
	earned_scaled = (unsigned __int128)(now - T0) * size;
	assert_true((unsigned __int128)total * refill_ms * MS <= earned_scaled);
	assert_true((unsigned __int128)(total + 1) * refill_ms * MS > earned_scaled);
	assert_int_equal(rl.m.bytes_charged, size + total);
	rate_limiter__destroy(&rl);
}

/*
 * Random requests on both buckets, each made exactly when the limiter says it can pass:
 * it must pass then, and not 1 ns before. Most are small, one in 512 is up to twice the
 * bytes bucket (and goes into debt), so that each bucket is the one to wait for at times.
 * Over 10 simulated minutes, neither bucket lets through more than its size plus rate *
 * time, counting the time until any debt is paid.
 */
static void wait_is_exact(void **state)
{
	const uint64_t size = 1048573;
	struct token_bucket_config bytes = tb(size, 0, 997), ops = tb(3, 0, 7);
	uint64_t now = T0, seed = 7, r, n, wb, wo, total = 0, nops = 0, big = 0, end;
	uint64_t bytes_slower = 0, ops_slower = 0;
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, &ops, T0);
	while (now < T0 + 600 * SEC) {
		r = next_random(&seed);
		n = 1 + ((r % 512) ? r % 2048 : r % (2 * size));
		big += n > size;
		wb = token_bucket__wait_ns(&rl.bytes, n, now);
		wo = token_bucket__wait_ns(&rl.ops, 1, now);
		bytes_slower += wb > wo;
		ops_slower += wo > wb;
		if (wb > wo)
			wo = wb;
		if (wo) {
			assert_true(max_wait(&rl, n, now + wo - 1) > 0);
			now += wo;
		}
		assert_int_equal(max_wait(&rl, n, now), 0);
		assert_true(rate_limiter__consume(&rl, n, now));
		total += n;
		nops++;
	}
	assert_int_equal(rl.m.throttled, 0);
	assert_true(big > 100);
	assert_true(bytes_slower > 1000);
	assert_true(ops_slower > 1000);
	end = rl.bytes.last_ns > now ? rl.bytes.last_ns : now;
	assert_true((unsigned __int128)(total - size) * 997 * MS <=
		    (unsigned __int128)(end - T0) * size);
	assert_true((unsigned __int128)(nops - 3) * 7 * MS <= (unsigned __int128)(now - T0) * 3);
	rate_limiter__destroy(&rl);
}

/* ---- requests bigger than the bucket ---- */

static void oversized_from_full_bucket(void **state)
{
	struct token_bucket_config bytes = tb(1000, 0, 1000);
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, 2500, T0));
	assert_int_equal(rl.bytes.budget, 0);
	/* 1500 tokens of debt: nothing for 1500 ms, then 1 ms a byte */
	assert_int_equal(rl.bytes.last_ns, T0 + 1500 * MS);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1, T0), 1501 * MS);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 5000, T0), 2500 * MS);
	token_bucket__refill(&rl.bytes, T0 + 1500 * MS);
	assert_int_equal(rl.bytes.budget, 0);
	token_bucket__refill(&rl.bytes, T0 + 2500 * MS - 1);
	assert_int_equal(rl.bytes.budget, 999);
	/* full again when 2500 tokens' worth of time has passed */
	token_bucket__refill(&rl.bytes, T0 + 2500 * MS);
	assert_int_equal(rl.bytes.budget, 1000);
	rate_limiter__destroy(&rl);
}

static void oversized_waits_for_a_full_bucket(void **state)
{
	struct token_bucket_config bytes = tb(1000, 0, 1000);
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, 500, T0));
	assert_false(rate_limiter__consume(&rl, 2500, T0));
	assert_int_equal(rl.bytes.budget, 500);
	assert_armed_about(&rl, 500 * MS);
	rate_limiter__timer_fired(&rl);
	assert_false(rate_limiter__consume(&rl, 2500, T0 + 500 * MS - 1));
	rate_limiter__timer_fired(&rl);
	assert_true(rate_limiter__consume(&rl, 2500, T0 + 500 * MS));
	assert_int_equal(rl.bytes.last_ns, T0 + 2000 * MS);
	token_bucket__refill(&rl.bytes, T0 + 3000 * MS);
	assert_int_equal(rl.bytes.budget, 1000);
	rate_limiter__destroy(&rl);
}

/* 3 tokens per 10 ms: a debt of 1 token is 3333333.3 ns, and the third is not lost. */
static void oversized_debt_is_exact(void **state)
{
	struct token_bucket_config bytes = tb(3, 0, 10), fast = tb(3000000, 0, 1);
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, 4, T0));
	assert_int_equal(rl.bytes.last_ns, T0 + 3333334);
	assert_int_equal(rl.bytes.ns_carry, 2); /* 2/3 ns given back */
	/* 1 token of debt and 1 token: 20/3 ms, rounded up */
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1, T0), 6666667);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1, T0 + 6666666), 1);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 3, T0), 13333334);
	token_bucket__refill(&rl.bytes, T0 + 6666666);
	assert_int_equal(rl.bytes.budget, 0);
	token_bucket__refill(&rl.bytes, T0 + 6666667);
	assert_int_equal(rl.bytes.budget, 1);
	token_bucket__refill(&rl.bytes, T0 + 13333333);
	assert_int_equal(rl.bytes.budget, 2);
	token_bucket__refill(&rl.bytes, T0 + 13333334);
	assert_int_equal(rl.bytes.budget, 3);
	rate_limiter__destroy(&rl);

	/* 3 tokens a ns: a debt of 1 token ends 1/3 ns in, with 2 tokens already earned */
	init_rl(&rl, &fast, NULL, T0);
	assert_true(rate_limiter__consume(&rl, 3000001, T0));
	assert_int_equal(rl.bytes.last_ns, T0 + 1);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 2, T0 + 1), 0);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 3, T0 + 1), 1);
	assert_true(rate_limiter__consume(&rl, 2, T0 + 1));
	assert_int_equal(rl.bytes.budget, 0);
	assert_int_equal(rl.bytes.last_ns, T0 + 1);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 3, T0 + 1), 1);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 4, T0 + 1), 2);
	rate_limiter__destroy(&rl);
}

/* ---- both buckets ---- */

static void all_or_nothing(void **state)
{
	struct token_bucket_config bytes = tb(100, 0, 1000), ops = tb(2, 0, 2000);
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, &ops, T0);
	assert_true(rate_limiter__consume(&rl, 60, T0));
	assert_false(rate_limiter__consume(&rl, 60, T0)); /* bytes short */
	assert_int_equal(rl.ops.budget, 1);
	assert_int_equal(rl.bytes.budget, 40);
	assert_armed_about(&rl, 200 * MS);
	rate_limiter__timer_fired(&rl);
	assert_true(rate_limiter__consume(&rl, 10, T0));
	assert_false(rate_limiter__consume(&rl, 10, T0)); /* ops short */
	assert_int_equal(rl.bytes.budget, 30);
	assert_armed_about(&rl, 1000 * MS);
	rate_limiter__timer_fired(&rl);
	/* an over-sized request does not go into debt when the other bucket says no */
	assert_false(rate_limiter__consume(&rl, 5000, T0 + 700 * MS));
	assert_int_equal(rl.bytes.budget, 100);
	assert_int_equal(rl.bytes.last_ns, T0 + 700 * MS);
	assert_int_equal(rl.m.throttled, 3);
	assert_int_equal(rl.m.bytes_charged, 70);
	assert_int_equal(rl.m.ops_charged, 2);
	rate_limiter__destroy(&rl);
}

static void timer_waits_for_the_slower_bucket(void **state)
{
	struct token_bucket_config bytes = tb(1000, 0, 1000), ops = tb(10, 0, 1000);
	struct rate_limiter rl;
	int i;

	(void)state;
	init_rl(&rl, &bytes, &ops, T0);
	assert_true(rate_limiter__consume(&rl, 1000, T0));
	for (i = 0; i < 9; i++)
		assert_true(rate_limiter__consume(&rl, 0, T0));
	assert_int_equal(max_wait(&rl, 0, T0), 100 * MS);
	assert_int_equal(max_wait(&rl, 50, T0), 100 * MS);
	assert_int_equal(max_wait(&rl, 300, T0), 300 * MS);
	assert_false(rate_limiter__consume(&rl, 50, T0));
	assert_armed_about(&rl, 100 * MS);
	rate_limiter__timer_fired(&rl);
	assert_false(rate_limiter__consume(&rl, 300, T0));
	assert_armed_about(&rl, 300 * MS);
	rate_limiter__timer_fired(&rl);
	rate_limiter__destroy(&rl);
}

/* A wait of 10 ns arms the timer for 1 ms. */
static void timer_at_least_1ms(void **state)
{
	struct token_bucket_config bytes = tb(1000000, 0, 1); /* a byte a ns */
	struct rate_limiter rl;
	uint64_t before, after, left;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, 1000000, T0));
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 10, T0), 10);
	before = rate_limiter__now_ns();
	assert_false(rate_limiter__consume(&rl, 10, T0));
	left = armed_ns(&rl);
	after = rate_limiter__now_ns();
	assert_true(left <= MS);
	assert_true(left + (after - before) >= MS);
	rate_limiter__destroy(&rl);
}

/* While blocked, a request gets nothing, even if the buckets could serve it. */
static void blocked_takes_nothing(void **state)
{
	struct token_bucket_config bytes = tb(1000, 0, 1000);
	struct rate_limiter rl;
	struct token_bucket before;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, 1000, T0));
	assert_false(rate_limiter__consume(&rl, 10, T0));
	before = rl.bytes;
	assert_false(rate_limiter__consume(&rl, 0, T0 + 5 * SEC));
	assert_true(rl.blocked);
	assert_memory_equal(&rl.bytes, &before, sizeof(before));
	assert_true(armed_ns(&rl) <= 10 * MS); /* not re-armed */
	assert_int_equal(rl.m.throttled, 2);
	rate_limiter__timer_fired(&rl);
	assert_true(rate_limiter__consume(&rl, 1000, T0 + 5 * SEC));
	rate_limiter__destroy(&rl);
}

/* ---- PATCH ---- */

static void update_one_bucket_keeps_the_other(void **state)
{
	struct token_bucket_config bytes = tb(1000, 0, 1000), ops = tb(10, 0, 1000);
	struct token_bucket_config new_ops = tb(20, 5, 2000), new_bytes = tb(2000, 0, 500);
	struct token_bucket_config off = tb(0, 0, 1000), bad = tb(10, 0, UINT64_MAX);
	struct rate_limiter_config c;
	struct token_bucket keep;
	struct rate_limiter rl;
	int fd;

	(void)state;
	init_rl(&rl, &bytes, &ops, T0);
	fd = rl.timer_fd;
	assert_true(rate_limiter__consume(&rl, 700, T0));
	keep = rl.bytes;

	c = limits(NULL, &new_ops);
	assert_int_equal(rate_limiter__update(&rl, &c, T0 + MS), 0);
	assert_memory_equal(&rl.bytes, &keep, sizeof(keep));
	assert_true(rl.ops.enabled);
	assert_int_equal(rl.ops.size, 20);
	assert_int_equal(rl.ops.budget, 20);
	assert_int_equal(rl.ops.one_time_burst, 5);
	assert_int_equal(rl.ops.refill_ns, 2000 * MS);
	assert_int_equal(rl.ops.last_ns, T0 + MS);
	assert_int_equal(rl.timer_fd, fd);

	keep = rl.ops;
	c = limits(&new_bytes, NULL);
	assert_int_equal(rate_limiter__update(&rl, &c, T0 + 2 * MS), 0);
	assert_memory_equal(&rl.ops, &keep, sizeof(keep));
	assert_int_equal(rl.bytes.budget, 2000);
	assert_int_equal(rl.bytes.refill_ns, 500 * MS);

	/* nothing given, or a bad bucket: nothing changes */
	keep = rl.bytes;
	assert_int_equal(rate_limiter__update(&rl, NULL, T0 + 3 * MS), 0);
	c = limits(NULL, NULL);
	assert_int_equal(rate_limiter__update(&rl, &c, T0 + 3 * MS), 0);
	c = limits(&off, &bad);
	assert_int_equal(rate_limiter__update(&rl, &c, T0 + 3 * MS), -EINVAL);
	assert_memory_equal(&rl.bytes, &keep, sizeof(keep));
	assert_true(rl.ops.enabled);

	/* a bucket given with size 0 is disabled; the timerfd stays */
	c = limits(&off, NULL);
	assert_int_equal(rate_limiter__update(&rl, &c, T0 + 4 * MS), 0);
	assert_false(rl.bytes.enabled);
	assert_true(rl.ops.enabled);
	assert_true(rate_limiter__consume(&rl, UINT64_MAX, T0 + 4 * MS));
	assert_int_equal(rl.timer_fd, fd);
	rate_limiter__destroy(&rl);
}

static void update_creates_the_timer(void **state)
{
	struct token_bucket_config ops = tb(1, 0, 1000), off = tb(5, 0, 0);
	struct rate_limiter_config c = limits(&off, NULL);
	struct rate_limiter rl;

	(void)state;
	assert_int_equal(rate_limiter__init(&rl, NULL, T0), 0);
	assert_int_equal(rate_limiter__update(&rl, &c, T0), 0);
	assert_int_equal(rl.timer_fd, -1);
	c = limits(NULL, &ops);
	assert_int_equal(rate_limiter__update(&rl, &c, T0 + SEC), 0);
	assert_true(rl.timer_fd >= 0);
	assert_true(rate_limiter__consume(&rl, 0, T0 + SEC));
	assert_false(rate_limiter__consume(&rl, 0, T0 + SEC));
	assert_armed_about(&rl, SEC);
	rate_limiter__destroy(&rl);
	assert_int_equal(rl.timer_fd, -1);
}

/* ---- big numbers ---- */

/* size 2^53 over 2^44 ms: refill_ns is 2^44 * 10^6, close to 2^64. */
/* A whole new config (what PATCH /drives gives after merging): unchanged buckets keep their
 * state, changed ones start full, missing ones are disabled. */
static void reconfigure_to_exactly_the_config(void **state)
{
	struct token_bucket_config bytes = tb(1000, 0, 1000), ops = tb(10, 0, 1000);
	struct token_bucket_config bigger = tb(2000, 0, 1000);
	struct rate_limiter_config c;
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, &ops, 0);
	assert_true(rate_limiter__consume(&rl, 600, 0));
	c = limits(&bytes, &ops);
	assert_int_equal(rate_limiter__reconfigure(&rl, &c, 0), 0);
	assert_int_equal(rl.bytes.budget, 400); /* same bucket: its state is kept */
	assert_int_equal(rl.ops.budget, 9);
	c = limits(&bigger, &ops);
	assert_int_equal(rate_limiter__reconfigure(&rl, &c, 0), 0);
	assert_int_equal(rl.bytes.budget, 2000); /* changed: a new, full bucket */
	assert_int_equal(rl.ops.budget, 9);
	c = limits(NULL, &ops);
	assert_int_equal(rate_limiter__reconfigure(&rl, &c, 0), 0);
	assert_false(rl.bytes.enabled); /* missing: disabled */
	assert_true(rl.ops.enabled);
	assert_int_equal(rate_limiter__reconfigure(&rl, NULL, 0), 0);
	assert_false(rl.ops.enabled);
	assert_true(rate_limiter__consume(&rl, 1ULL << 40, 0));
	rate_limiter__destroy(&rl);
}

static void huge_bucket_and_refill_time(void **state)
{
	struct token_bucket_config bytes = tb(P53, P53, P44);
	const uint64_t refill_ns = P44 * MS;
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_int_equal(rl.bytes.refill_ns, refill_ns);
	assert_true(rate_limiter__consume(&rl, P53, T0)); /* the burst */
	assert_true(rate_limiter__consume(&rl, P53, T0)); /* the budget */
	assert_int_equal(rl.bytes.budget, 0);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, P53, T0), refill_ns);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1, T0), (refill_ns + P53 - 1) / P53);
	token_bucket__refill(&rl.bytes, T0 + refill_ns / 2);
	assert_int_equal(rl.bytes.budget, P53 / 2);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, P53, T0 + refill_ns / 2), refill_ns / 2);
	token_bucket__refill(&rl.bytes, T0 + refill_ns - 1);
	assert_int_equal(rl.bytes.budget, P53 - 1);
	token_bucket__refill(&rl.bytes, T0 + refill_ns);
	assert_int_equal(rl.bytes.budget, P53);
	/* the end of the clock */
	assert_true(rate_limiter__consume(&rl, P53, T0 + refill_ns));
	token_bucket__refill(&rl.bytes, UINT64_MAX);
	assert_int_equal(
		rl.bytes.budget,
		(uint64_t)((unsigned __int128)(UINT64_MAX - T0 - refill_ns) * P53 / refill_ns));
	rate_limiter__destroy(&rl);
}

/* 2^53 tokens per ms is 9007199254.74 a ns: a million 1 ns refills lose nothing. */
static void huge_rate_in_1ns_steps(void **state)
{
	struct token_bucket_config bytes = tb(P53, 0, 1);
	struct rate_limiter rl;
	uint64_t i;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, P53, T0));
	for (i = 1; i < MS; i++) {
		token_bucket__refill(&rl.bytes, T0 + i);
		if (i % 1000 == 1)
			assert_int_equal(rl.bytes.budget,
					 (uint64_t)((unsigned __int128)i * P53 / MS));
	}
	assert_int_equal(rl.bytes.budget, P53 - P53 / MS - 1);
	token_bucket__refill(&rl.bytes, T0 + MS);
	assert_int_equal(rl.bytes.budget, P53);
	/* a debt of 2^60 - 2^53 tokens is 127 ms exactly */
	assert_true(rate_limiter__consume(&rl, 1ull << 60, T0 + MS));
	assert_int_equal(rl.bytes.last_ns, T0 + 128 * MS);
	assert_int_equal(rl.bytes.ns_carry, 0);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1, T0 + MS), 127 * MS + 1);
	rate_limiter__destroy(&rl);
}

/*
 * A debt too long for the clock never ends, and the timer is armed for centuries (Linux
 * caps it at 2^63 ns, 292 years).
 */
static void endless_debt_saturates(void **state)
{
	struct token_bucket_config bytes = tb(1, 0, P44);
	struct rate_limiter rl;

	(void)state;
	init_rl(&rl, &bytes, NULL, T0);
	assert_true(rate_limiter__consume(&rl, UINT64_MAX, T0));
	assert_int_equal(rl.bytes.last_ns, UINT64_MAX);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, 1, T0), UINT64_MAX);
	assert_int_equal(token_bucket__wait_ns(&rl.bytes, UINT64_MAX, UINT64_MAX - 1),
			 1 + P44 * MS);
	assert_false(rate_limiter__consume(&rl, 1, T0));
	assert_true(armed_ns(&rl) > 100 * 365 * 24 * (uint64_t)HOUR);
	rate_limiter__destroy(&rl);
}

static void refill_time_too_long(void **state)
{
	struct token_bucket_config max_ok = tb(1, 0, UINT64_MAX / MS);
	struct token_bucket_config too_long = tb(1, 0, UINT64_MAX / MS + 1);
	struct rate_limiter_config c = limits(&too_long, NULL);
	struct rate_limiter rl;

	(void)state;
	assert_int_equal(rate_limiter__init(&rl, &c, T0), -EINVAL);
	assert_int_equal(rl.timer_fd, -1);
	rate_limiter__destroy(&rl);
	init_rl(&rl, &max_ok, NULL, T0);
	assert_true(rl.bytes.enabled);
	rate_limiter__destroy(&rl);
}

/* ---- the real clock ---- */

/* 10 bytes per 200 ms: 20 ms a byte. The timerfd fires, and then the request passes. */
static void timer_really_fires(void **state)
{
	struct token_bucket_config bytes = tb(10, 0, 200);
	struct rate_limiter rl;
	struct pollfd p;
	uint64_t start;

	(void)state;
	start = rate_limiter__now_ns();
	init_rl(&rl, &bytes, NULL, start);
	assert_true(rate_limiter__consume(&rl, 10, start));
	assert_false(rate_limiter__consume(&rl, 1, rate_limiter__now_ns()));
	p = (struct pollfd){ .fd = rl.timer_fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_true(p.revents & POLLIN);
	rate_limiter__timer_fired(&rl);
	assert_false(rl.blocked);
	assert_true(rate_limiter__now_ns() - start >= 20 * MS);
	assert_true(rate_limiter__consume(&rl, 1, rate_limiter__now_ns()));
	/* the expiration was read: nothing left to poll */
	assert_int_equal(poll(&p, 1, 0), 0);
	rate_limiter__destroy(&rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unlimited),
		cmocka_unit_test(disabled_by_zero_size_or_refill_time),
		cmocka_unit_test(ops_only),
		cmocka_unit_test(bytes_only),
		cmocka_unit_test(one_time_burst_first_and_never_refilled),
		cmocka_unit_test(exact_rate_over_an_hour),
		cmocka_unit_test(wait_is_exact),
		cmocka_unit_test(oversized_from_full_bucket),
		cmocka_unit_test(oversized_waits_for_a_full_bucket),
		cmocka_unit_test(oversized_debt_is_exact),
		cmocka_unit_test(all_or_nothing),
		cmocka_unit_test(timer_waits_for_the_slower_bucket),
		cmocka_unit_test(timer_at_least_1ms),
		cmocka_unit_test(blocked_takes_nothing),
		cmocka_unit_test(update_one_bucket_keeps_the_other),
		cmocka_unit_test(update_creates_the_timer),
		cmocka_unit_test(reconfigure_to_exactly_the_config),
		cmocka_unit_test(huge_bucket_and_refill_time),
		cmocka_unit_test(huge_rate_in_1ns_steps),
		cmocka_unit_test(endless_debt_saturates),
		cmocka_unit_test(refill_time_too_long),
		cmocka_unit_test(timer_really_fires),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
