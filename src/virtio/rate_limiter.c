// SPDX-License-Identifier: Apache-2.0
/*
 * Token buckets with Firecracker's semantics, in exact integer arithmetic.
 *
 * A bucket of `size` tokens earns size tokens every refill_ns, linearly, and never holds
 * more than size. The one-time burst is spent before the budget and never comes back. A
 * bucket with size 0 or refill time 0 is disabled: it limits nothing.
 *
 * Refills are exact. Time is counted in units of 1/size ns ("scaled ns"): t ns is
 * t * size scaled ns, and a token costs refill_ns of them. What is left after the whole
 * tokens (less than a token's worth, but see debts) stays in ns_carry, so refills at any
 * times earn floor(total time * size / refill_ns) tokens, the same as one refill over the
 * whole time, as long as the bucket does not fill up (a full bucket wastes the time it
 * spends full, leftover included). The products need 128 bits: elapsed < refill_ns < 2^64
 * and size < 2^64.
 *
 * A request of n tokens takes the burst first, then the budget. It passes when the budget
 * holds the rest, or, if the rest is more than size (it could never fit), when the budget
 * is full. The part of the rest beyond size is then a debt: the bucket is left empty and
 * earns nothing until the debt's worth of time has passed. last_ns moves into the future,
 * rounded up to a whole ns, and ns_carry gives back what the rounding earned (whole
 * tokens, even, when size > refill_ns). So n > size tokens taken from a full bucket at t
 * leave it empty until t + (n - size) * refill_ns / size, and full again at
 * t + n * refill_ns / size: the long-run rate stays size / refill_ns, as if the bucket had
 * been big enough.
 *
 * Firecracker's TokenBucket::reduce differs in two ways: it lets an over-sized request
 * through at any budget (even 0, ahead of smaller requests that must wait), and it blocks
 * the limiter for the debt with its timer while the bucket keeps earning during that
 * time, so that its long-run rate can exceed the limit.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "virtio/persist.h"
#include "virtio/rate_limiter.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/*
 * The timer never fires sooner than this after a failed consume, so that a limiter a few ns
 * short of a token does not spin the event loop (Firecracker always waits 100 ms).
 */
#define MIN_TIMER_NS NS_PER_MS

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* refill_ns must fit a uint64_t (the config parser has the same limit). */
static int check_bucket(bool given, const struct token_bucket_config *c)
{
	if (given && c->refill_time_ms > UINT64_MAX / NS_PER_MS)
		return -EINVAL;
	return 0;
}

static int check_config(const struct rate_limiter_config *cfg)
{
	int ret = check_bucket(cfg->has_bandwidth, &cfg->bandwidth);

	return ret ? ret : check_bucket(cfg->has_ops, &cfg->ops);
}

static bool enables(bool given, const struct token_bucket_config *c)
{
	return given && c->size && c->refill_time_ms;
}

/* A new bucket starts full, with its whole burst. */
static void set_bucket(struct token_bucket *b, const struct token_bucket_config *c, uint64_t now_ns)
{
	memset(b, 0, sizeof(*b));
	if (!enables(true, c))
		return;
	b->enabled = true;
	b->size = c->size;
	b->one_time_burst = c->one_time_burst;
	b->refill_ns = c->refill_time_ms * NS_PER_MS;
	b->budget = c->size;
	b->last_ns = now_ns;
}

static int create_timer(struct rate_limiter *rl)
{
	int fd;

	if (rl->timer_fd >= 0)
		return 0;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	rl->timer_fd = fd;
	return 0;
}

int rate_limiter__init(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
		       uint64_t now_ns)
{
	int ret;

	memset(rl, 0, sizeof(*rl));
	rl->timer_fd = -1;
	if (!cfg)
		return 0;
	ret = check_config(cfg);
	if (ret)
		return ret;
	if (!enables(cfg->has_bandwidth, &cfg->bandwidth) && !enables(cfg->has_ops, &cfg->ops))
		return 0;
	ret = create_timer(rl);
	if (ret)
		return ret;
	if (cfg->has_bandwidth)
		set_bucket(&rl->bytes, &cfg->bandwidth, now_ns);
	if (cfg->has_ops)
		set_bucket(&rl->ops, &cfg->ops, now_ns);
	return 0;
}

/* A bucket given with size 0 or refill time 0 is disabled, as Firecracker's PATCH does. */
int rate_limiter__update(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
			 uint64_t now_ns)
{
	int ret;

	if (!cfg)
		return 0;
	ret = check_config(cfg);
	if (ret)
		return ret;
	if (enables(cfg->has_bandwidth, &cfg->bandwidth) || enables(cfg->has_ops, &cfg->ops)) {
		ret = create_timer(rl);
		if (ret)
			return ret;
	}
	if (cfg->has_bandwidth)
		set_bucket(&rl->bytes, &cfg->bandwidth, now_ns);
	if (cfg->has_ops)
		set_bucket(&rl->ops, &cfg->ops, now_ns);
	return 0;
}

/* Does b already run with c (so a re-configuration keeps its state)? */
static bool same_bucket(const struct token_bucket *b, bool given, const struct token_bucket_config *c)
{
	if (!enables(given, c))
		return !b->enabled;
	return b->enabled && b->size == c->size && b->one_time_burst == c->one_time_burst &&
	       b->refill_ns == c->refill_time_ms * NS_PER_MS;
}

int rate_limiter__reconfigure(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
			      uint64_t now_ns)
{
	static const struct rate_limiter_config none;
	int ret;

	if (!cfg)
		cfg = &none;
	ret = check_config(cfg);
	if (!ret && (enables(cfg->has_bandwidth, &cfg->bandwidth) || enables(cfg->has_ops, &cfg->ops)))
		ret = create_timer(rl);
	if (ret)
		return ret;
	if (!same_bucket(&rl->bytes, cfg->has_bandwidth, &cfg->bandwidth))
		set_bucket(&rl->bytes, cfg->has_bandwidth ? &cfg->bandwidth : &none.bandwidth, now_ns);
	if (!same_bucket(&rl->ops, cfg->has_ops, &cfg->ops))
		set_bucket(&rl->ops, cfg->has_ops ? &cfg->ops : &none.ops, now_ns);
	return 0;
}

void rate_limiter__destroy(struct rate_limiter *rl)
{
	if (rl->timer_fd >= 0)
		close(rl->timer_fd);
	rl->timer_fd = -1;
	rl->blocked = false;
}

/*
 * Before last_ns (a debt being paid) the bucket earns nothing. A full bucket drops the time
 * it spends full, so ns_carry is 0 whenever budget == size.
 */
void token_bucket__refill(struct token_bucket *b, uint64_t now_ns)
{
	uint64_t elapsed, missing;
	unsigned __int128 total;

	if (!b->enabled || now_ns < b->last_ns)
		return;
	elapsed = now_ns - b->last_ns;
	b->last_ns = now_ns;
	missing = b->size - b->budget;
	if (missing && elapsed < b->refill_ns) {
		total = (unsigned __int128)elapsed * b->size + b->ns_carry;
		if (total / b->refill_ns < missing) {
			b->budget += (uint64_t)(total / b->refill_ns);
			b->ns_carry = (uint64_t)(total % b->refill_ns);
			return;
		}
	}
	b->budget = b->size;
	b->ns_carry = 0;
}

/* What the budget must hold for n to pass: the part the burst does not cover, at most size. */
static uint64_t budget_needed(const struct token_bucket *b, uint64_t n)
{
	uint64_t need = n > b->one_time_burst ? n - b->one_time_burst : 0;

	return need < b->size ? need : b->size;
}

/*
 * With m tokens missing and c scaled ns already earned, m more tokens take
 * ceil((m * refill_ns - c) / size) ns, which is at most refill_ns since m <= size; a debt adds
 * the time until last_ns. In a debt, c may be worth whole tokens already.
 */
uint64_t token_bucket__wait_ns(const struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
	struct token_bucket t;
	unsigned __int128 scaled;
	uint64_t need, delay, ns;

	if (!b->enabled)
		return 0;
	t = *b;
	token_bucket__refill(&t, now_ns);
	need = budget_needed(&t, n);
	if (t.budget >= need)
		return 0;
	delay = t.last_ns > now_ns ? t.last_ns - now_ns : 0;
	scaled = (unsigned __int128)(need - t.budget) * t.refill_ns;
	scaled = scaled > t.ns_carry ? scaled - t.ns_carry : 0;
	ns = (uint64_t)(scaled / t.size + (scaled % t.size != 0));
	return add_sat(delay, ns);
}

/*
 * The bucket is empty and last_ns is where the debt started. Earning `debt` tokens takes
 * debt * refill_ns scaled ns: round up to q whole ns for last_ns, and give back the part
 * of a ns rounded up as ns_carry, so that the debt costs exactly its time. A debt that
 * would end past the end of the clock never ends.
 */
static void go_into_debt(struct token_bucket *b, uint64_t debt)
{
	unsigned __int128 scaled = (unsigned __int128)debt * b->refill_ns;
	unsigned __int128 q = scaled / b->size + (scaled % b->size != 0);

	b->budget = 0;
	if (q > UINT64_MAX - b->last_ns) {
		b->last_ns = UINT64_MAX;
		b->ns_carry = 0;
		return;
	}
	b->last_ns += (uint64_t)q;
	b->ns_carry = (uint64_t)(q * b->size - scaled);
}

/* Only once token_bucket__wait_ns() said 0 at the time of the last refill. */
static void take(struct token_bucket *b, uint64_t n)
{
	uint64_t from_burst;

	if (!b->enabled)
		return;
	from_burst = n < b->one_time_burst ? n : b->one_time_burst;
	b->one_time_burst -= from_burst;
	n -= from_burst;
	if (n <= b->budget) {
		b->budget -= n;
		return;
	}
	/* n > size: the budget is full (so ns_carry is 0) and last_ns is now */
	go_into_debt(b, n - b->budget);
}

static void block(struct rate_limiter *rl, uint64_t wait_ns)
{
	struct itimerspec its = { 0 };

	if (wait_ns < MIN_TIMER_NS)
		wait_ns = MIN_TIMER_NS;
	its.it_value.tv_sec = (time_t)(wait_ns / NS_PER_S);
	its.it_value.tv_nsec = (long)(wait_ns % NS_PER_S);
	if (timerfd_settime(rl->timer_fd, 0, &its, NULL))
		log_error("rate limiter: cannot arm the timer: %s", strerror(errno));
	rl->blocked = true;
}

bool rate_limiter__consume(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns)
{
	uint64_t wait, ops_wait;

	if (!rl->blocked) {
		token_bucket__refill(&rl->bytes, now_ns);
		token_bucket__refill(&rl->ops, now_ns);
		wait = token_bucket__wait_ns(&rl->bytes, bytes, now_ns);
		ops_wait = token_bucket__wait_ns(&rl->ops, 1, now_ns);
		if (ops_wait > wait)
			wait = ops_wait;
		if (wait)
			block(rl, wait);
	}
	if (rl->blocked) {
		rl->m.throttled++;
		return false;
	}
	take(&rl->bytes, bytes);
	take(&rl->ops, 1);
	if (rl->bytes.enabled)
		rl->m.bytes_charged += bytes;
	if (rl->ops.enabled)
		rl->m.ops_charged++;
	return true;
}

/* A spurious wake-up (nothing to read) clears blocked too: the retry re-arms if need be. */
void rate_limiter__timer_fired(struct rate_limiter *rl)
{
	uint64_t expirations;

	if (rl->timer_fd >= 0 && read(rl->timer_fd, &expirations, sizeof(expirations)) < 0 &&
	    errno != EAGAIN)
		log_warn("rate limiter: cannot read the timer: %s", strerror(errno));
	rl->blocked = false;
}

uint64_t rate_limiter__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ---- snapshots ---- */

static void put_bucket(struct snapshot_file_writer *w, const struct token_bucket *b)
{
	snapshot_file__put_u8(w, b->enabled);
	snapshot_file__put_u64(w, b->size);
	snapshot_file__put_u64(w, b->refill_ns / NS_PER_MS);
	snapshot_file__put_u64(w, b->budget);
	snapshot_file__put_u64(w, b->one_time_burst);
}

int rate_limiter__save(const struct rate_limiter *rl, const char *owner,
		       enum rate_limiter_which which, struct snapshot_file_writer *w)
{
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_RATE_LIMITER,
				     SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_str(w, owner);
	snapshot_file__put_u8(w, (uint8_t)which);
	put_bucket(w, &rl->bytes);
	put_bucket(w, &rl->ops);
	return snapshot_file__end_section(w);
}

struct saved_bucket {
	uint8_t enabled;
	uint64_t size, refill_ms, budget, burst;
};

static int get_bucket(struct snapshot_file_cursor *c, struct saved_bucket *s)
{
	int ret = snapshot_file__get_u8(c, &s->enabled);

	if (!ret)
		ret = snapshot_file__get_u64(c, &s->size);
	if (!ret)
		ret = snapshot_file__get_u64(c, &s->refill_ms);
	if (!ret)
		ret = snapshot_file__get_u64(c, &s->budget);
	if (!ret)
		ret = snapshot_file__get_u64(c, &s->burst);
	return ret;
}

/* The saved bucket is this one's, and what it holds fits in it. */
static int check_saved_bucket(const struct token_bucket *b, const struct saved_bucket *s,
			      const char *label, const char *name)
{
	if (s->enabled > 1 || s->enabled != b->enabled ||
	    (b->enabled && (s->size != b->size || s->refill_ms != b->refill_ns / NS_PER_MS)))
		return error__set(-EINVAL,
				  "%s: the snapshot's %s bucket (%s, %llu tokens per %llu ms) is "
				  "not this one's (%s, %llu tokens per %llu ms)",
				  label, name, s->enabled ? "on" : "off",
				  (unsigned long long)s->size, (unsigned long long)s->refill_ms,
				  b->enabled ? "on" : "off", (unsigned long long)b->size,
				  (unsigned long long)(b->refill_ns / NS_PER_MS));
	if (b->enabled && (s->budget > b->size || s->burst > b->one_time_burst))
		return error__set(-EINVAL,
				  "%s: the snapshot's %s bucket holds %llu tokens and %llu of "
				  "one-time burst, more than its size %llu or burst %llu",
				  label, name, (unsigned long long)s->budget,
				  (unsigned long long)s->burst, (unsigned long long)b->size,
				  (unsigned long long)b->one_time_burst);
	return 0;
}

static void set_saved_bucket(struct token_bucket *b, const struct saved_bucket *s,
			     uint64_t now_ns)
{
	if (!b->enabled)
		return;
	b->budget = s->budget;
	b->one_time_burst = s->burst;
	b->last_ns = now_ns;
	b->ns_carry = 0;
}

int rate_limiter__restore(struct rate_limiter *rl, const char *label, const char *owner,
			  enum rate_limiter_which which, const struct snapshot_file_reader *r)
{
	struct snapshot_file_cursor c;
	struct saved_bucket bytes, ops;
	uint64_t now = rate_limiter__now_ns();
	int ret = virtio_persist__find(r, SNAPSHOT_SECTION_RATE_LIMITER, owner, which, false,
				       label, &c);

	if (!ret)
		ret = get_bucket(&c, &bytes);
	if (!ret)
		ret = get_bucket(&c, &ops);
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	if (!ret)
		ret = check_saved_bucket(&rl->bytes, &bytes, label, "bandwidth");
	if (!ret)
		ret = check_saved_bucket(&rl->ops, &ops, label, "ops");
	if (ret)
		return ret;
	set_saved_bucket(&rl->bytes, &bytes, now);
	set_saved_bucket(&rl->ops, &ops, now);
	return 0;
}
