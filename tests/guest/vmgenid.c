// SPDX-License-Identifier: Apache-2.0
/*
 * The VM generation ID page (docs/clone-safety.md), where the command line's
 * `ember.vmgenid=0x<address>` says it is.
 *
 * vmgenid: reads the page: the 128-bit ID (not all zero; the same through 1-, 2-, 4- and
 * 8-byte reads at every offset of it), the generation counter (0 after a boot), and the
 * rest of the page as 0; writes of every width must change nothing. Prints
 * "vmgenid addr=0x<address> id=<32 hex digits> counter=<n>".
 *
 * vmgenid_watch: never returns. Prints "vmgenid-watch gen=<counter> id=<hex> rng=<hex>"
 * at the start and each time the ID or counter changes (a restore of a snapshot), with 16
 * fresh bytes from the first virtio-rng device (rng=none without one). For
 * tests/api/test_clone_safety.py: each clone prints its new generation, and the entropy
 * device still answers after the restore.
 */
#include "virtio.h"

#define PAGE 4096
#define ID_BYTES 16
#define COUNTER_OFF 16
#define CMDLINE_KEY "ember.vmgenid="
#define WATCH_TSC (VIRTIO_WAIT_TSC / 10) /* about 100 ms between looks */

struct genid {
	uint8_t id[ID_BYTES];
	uint64_t counter;
};

static struct virtio_dev rng NOINIT;
static uint8_t rng_bytes[ID_BYTES] NOINIT __attribute__((aligned(16)));

/* The address the command line gives, or 0. */
static uint64_t page_address(void)
{
	const char *s = boot_info.cmdline;
	uint64_t addr = 0;

	while (*s) {
		size_t len = 0;

		while (*s == ' ')
			s++;
		while (s[len] && s[len] != ' ')
			len++;
		if (len > strlen(CMDLINE_KEY) && str_has_prefix(s, CMDLINE_KEY) &&
		    !parse_uint(s + strlen(CMDLINE_KEY), len - strlen(CMDLINE_KEY), UINT64_MAX,
				&addr))
			addr = 0;
		s += len;
	}
	return addr;
}

static uint64_t read_n(uint64_t addr, unsigned int width)
{
	switch (width) {
	case 1:
		return mmio_read8(addr);
	case 2:
		return *(volatile uint16_t *)(uintptr_t)addr;
	case 4:
		return mmio_read32(addr);
	default:
		return mmio_read64(addr);
	}
}

static void write_n(uint64_t addr, unsigned int width, uint64_t v)
{
	switch (width) {
	case 1:
		mmio_write8(addr, (uint8_t)v);
		break;
	case 2:
		*(volatile uint16_t *)(uintptr_t)addr = (uint16_t)v;
		break;
	case 4:
		mmio_write32(addr, (uint32_t)v);
		break;
	default:
		mmio_write64(addr, v);
	}
}

static void read_genid(uint64_t addr, struct genid *g)
{
	uint64_t lo = mmio_read64(addr), hi = mmio_read64(addr + 8);

	memcpy(g->id, &lo, 8);
	memcpy(g->id + 8, &hi, 8);
	g->counter = mmio_read64(addr + COUNTER_OFF);
}

/* Every width at every offset of the first 24 bytes agrees with the 8-byte view. */
static const char *check_widths(uint64_t addr, const struct genid *g)
{
	static const unsigned int widths[] = { 1, 2, 4, 8 };
	uint8_t image[COUNTER_OFF + 8 + 8] = { 0 };

	memcpy(image, g->id, ID_BYTES);
	memcpy(image + COUNTER_OFF, &g->counter, 8);
	for (unsigned int w = 0; w < ARRAY_SIZE(widths); w++) {
		for (unsigned int off = 0; off + widths[w] <= COUNTER_OFF + 8 + 8; off++) {
			uint64_t want = 0, got = read_n(addr + off, widths[w]);

			memcpy(&want, image + off, widths[w]);
			if (got != want)
				return fail("a %u-byte read at +%u gave 0x%llx, expected 0x%llx",
					    widths[w], off, (unsigned long long)got,
					    (unsigned long long)want);
		}
	}
	return NULL;
}

/* The rest of the page reads 0 (8 bytes at a time: one exit each). */
static const char *check_rest_zero(uint64_t addr)
{
	for (unsigned int off = COUNTER_OFF + 8; off < PAGE; off += 8) {
		uint64_t v = mmio_read64(addr + off);

		if (v)
			return fail("+%u reads 0x%llx, expected 0", off, (unsigned long long)v);
	}
	return NULL;
}

/* Writes of each width over the ID, the counter and beyond change nothing. */
static const char *check_writes_ignored(uint64_t addr, const struct genid *before)
{
	static const unsigned int widths[] = { 1, 2, 4, 8 };
	struct genid after;

	for (unsigned int w = 0; w < ARRAY_SIZE(widths); w++) {
		write_n(addr, widths[w], ~0ULL);
		write_n(addr + 9, widths[w], 0x1234);
		write_n(addr + COUNTER_OFF, widths[w], 77);
		write_n(addr + 100, widths[w], ~0ULL);
	}
	read_genid(addr, &after);
	if (memcmp(after.id, before->id, ID_BYTES) || after.counter != before->counter)
		return fail("writes changed the page (counter %llu -> %llu)",
			    (unsigned long long)before->counter, (unsigned long long)after.counter);
	if (mmio_read64(addr + 100))
		return fail("a write to +100 stuck");
	return NULL;
}

const char *test_vmgenid(void)
{
	uint64_t addr = page_address();
	char hex[2 * ID_BYTES + 1];
	struct genid g;
	const char *why;

	if (!addr)
		return fail("no %s0x<address> on the command line", CMDLINE_KEY);
	if (addr < MMIO_GAP_START || addr % PAGE)
		return fail("the page at 0x%llx is not a page in the MMIO gap",
			    (unsigned long long)addr);
	read_genid(addr, &g);
	virtio__hex(hex, g.id, ID_BYTES);
	report("vmgenid addr=0x%llx id=%s counter=%llu", (unsigned long long)addr, hex,
	       (unsigned long long)g.counter);
	if (g.counter)
		return fail("the counter is %llu after a boot, expected 0",
			    (unsigned long long)g.counter);
	if (!memcmp(g.id, (const uint8_t[ID_BYTES]){ 0 }, ID_BYTES))
		return fail("the ID is all zero");
	why = check_widths(addr, &g);
	if (!why)
		why = check_rest_zero(addr);
	return why ? why : check_writes_ignored(addr, &g);
}

/* ---- vmgenid_watch ---- */

static void report_generation(const struct genid *g, bool have_rng)
{
	char id[2 * ID_BYTES + 1], bytes[2 * ID_BYTES + 1] = "none";
	uint32_t got = 0;

	virtio__hex(id, g->id, ID_BYTES);
	if (have_rng) {
		memset(rng_bytes, 0, sizeof(rng_bytes));
		if (virtio__rng_read(&rng, rng_bytes, ID_BYTES, &got) || got != ID_BYTES)
			snformat(bytes, sizeof(bytes), "failed:%u", got);
		else
			virtio__hex(bytes, rng_bytes, ID_BYTES);
	}
	report("vmgenid-watch gen=%llu id=%s rng=%s", (unsigned long long)g->counter, id, bytes);
}

const char *test_vmgenid_watch(void)
{
	uint64_t addr = page_address();
	bool have_rng = virtio__find(VIRTIO_ID_RNG, &rng, 1) > 0;
	struct genid seen, now;

	if (!addr)
		return fail("no %s0x<address> on the command line", CMDLINE_KEY);
	if (have_rng) {
		const char *why = virtio__init(&rng, VIRTIO_BIT(VIRTIO_F_EVENT_IDX));

		if (why)
			return why;
	}
	read_genid(addr, &seen);
	report_generation(&seen, have_rng);
	for (;;) {
		uint64_t start = rdtsc();

		while (rdtsc() - start < WATCH_TSC)
			cpu_relax();
		read_genid(addr, &now);
		if (now.counter == seen.counter && !memcmp(now.id, seen.id, ID_BYTES))
			continue;
		seen = now;
		report_generation(&seen, have_rng);
	}
	return NULL;
}
