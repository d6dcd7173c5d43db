// SPDX-License-Identifier: Apache-2.0
/* Unit tests for src/vmm/memstats.c: what counts as guest memory in an smaps text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/memstats.h"

#define KIB 1024ULL

static const char smaps[] =
	/* ordinary memory before the guest's: its flags end at its line */
	"55c000000000-55c000100000 rw-p 00000000 00:00 0\n"
	"Size:               1024 kB\n"
	"Rss:                1024 kB\n"
	"VmFlags: rd wr mr mw me ac\n"
	/* anonymous guest memory, named: counted */
	"7f0000000000-7f0004000000 rw-p 00000000 00:00 0                  [anon:ember-guest-ram]\n"
	"Size:              65536 kB\n"
	"Rss:                2048 kB\n"
	"Pss:                2048 kB\n"
	"Shared_Clean:          0 kB\n"
	"Shared_Dirty:          0 kB\n"
	"Private_Clean:       100 kB\n"
	"Private_Dirty:      1948 kB\n"
	"Swap:                 12 kB\n"
	"VmFlags: rd wr mr mw me ac sd dd \n"
	/* a restore's memory file, MADV_DONTDUMP: counted */
	"7f1000000000-7f1008000000 rw-p 00000000 08:01 1234                /srv/fn.mem\n"
	"Size:             131072 kB\n"
	"Rss:                4096 kB\n"
	"Pss:                1024 kB\n"
	"Shared_Clean:       4000 kB\n"
	"Shared_Dirty:          0 kB\n"
	"Private_Clean:         0 kB\n"
	"Private_Dirty:        96 kB\n"
	"VmFlags: rd wr mr mw me dd\n"
	/* the kernel's own, also dd: not guest memory */
	"7ffc00000000-7ffc00004000 r--p 00000000 00:00 0                  [vvar]\n"
	"Size:                 16 kB\n"
	"Rss:                   0 kB\n"
	"VmFlags: rd mr pf io de dd sd\n"
	/* ordinary memory (no dd; "add" is not "dd"): not counted */
	"55d000000000-55d000100000 rw-p 00000000 00:00 0                  [heap]\n"
	"Size:               1024 kB\n"
	"Rss:                1024 kB\n"
	"VmFlags: rd wr mr mw me ac\n"
	"7f2000000000-7f2000100000 rw-p 00000000 00:00 0\n"
	"Size:               1024 kB\n"
	"Rss:                1024 kB\n"
	"VmFlags: rd wr mr mw me ac add\n";

static void counts_guest_mappings(void **state)
{
	struct memstats m;

	(void)state;
	memstats__parse_smaps(smaps, &m);
	assert_int_equal(m.mappings, 2);
	assert_int_equal(m.named, 1);
	assert_int_equal(m.size, (65536 + 131072) * KIB);
	assert_int_equal(m.rss, (2048 + 4096) * KIB);
	assert_int_equal(m.pss, (2048 + 1024) * KIB);
	assert_int_equal(m.private_, (100 + 1948 + 96) * KIB);
	assert_int_equal(m.shared, 4000 * KIB);
	assert_int_equal(m.swap, 12 * KIB);
}

static void tolerates_junk(void **state)
{
	struct memstats m;

	(void)state;
	memstats__parse_smaps("", &m);
	assert_int_equal(m.mappings, 0);
	memstats__parse_smaps("Size: 5 kB\nnot a header\n-\n", &m);
	assert_int_equal(m.mappings, 0);
	memstats__parse_smaps("0-1 rw-p 0 0 0 [anon:ember-guest-ram]", &m); /* cut short */
	assert_int_equal(m.mappings, 1);
	assert_int_equal(m.size, 0);
}

static void this_process(void **state)
{
	struct memstats m;

	(void)state;
	assert_int_equal(memstats__of_process(getpid(), &m), 0);
	assert_int_equal(m.mappings, 0); /* a test binary has no guest memory */
	assert_int_not_equal(memstats__of_process(0x7ffffff0, &m), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counts_guest_mappings),
		cmocka_unit_test(tolerates_junk),
		cmocka_unit_test(this_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
