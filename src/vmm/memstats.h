/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Overcommit accounting (docs/memory.md): how much memory the Ember processes on this host
 * gave their guests, against how much of it is resident, private and shared.
 * `ember --print-memory-stats [--json]` prints it for every Ember on the host.
 *
 * Guest memory is what an Ember maps with MADV_DONTDUMP (never in a core file; VmFlags
 * "dd" in /proc/PID/smaps; the kernel's own [vvar] and the like are left out): anonymous
 * memory is also named "ember-guest-ram" where the kernel can name mappings, a 2M guest's
 * memfd has that name, and a restore's memory file mapping has its path. A process counts
 * as an Ember when its name (comm) is "ember" or it has named guest memory.
 */
#ifndef EMBER_VMM_MEMSTATS_H
#define EMBER_VMM_MEMSTATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "vmm/memory.h"

#define MEMSTATS_GUEST_NAME MEMORY_GUEST_NAME

/* Bytes, over a process's guest-memory mappings. */
struct memstats {
	uint64_t size;	   /* mapped: the memory the guest was given */
	uint64_t rss;	   /* resident */
	uint64_t pss;	   /* resident, shared pages split among their sharers */
	uint64_t private_; /* resident in this process only (Private_Clean + Private_Dirty) */
	/* resident and mapped by other processes too (Shared_Clean + Shared_Dirty): clones'
	 * common memory file pages, KSM-merged pages */
	uint64_t shared;
	uint64_t swap;
	unsigned int mappings;
	unsigned int named; /* of them, named MEMSTATS_GUEST_NAME: surely an Ember's */
};

/*
 * Adds up the guest-memory mappings of an smaps text (/proc/PID/smaps's format) into *out.
 * Never fails: what it cannot read it leaves out.
 */
void memstats__parse_smaps(const char *text, struct memstats *out);
/* The same for a running process; 0 or -errno (the process is gone, no permission). */
int memstats__of_process(pid_t pid, struct memstats *out);
/*
 * Every Ember process on the host (those with guest-memory mappings) and the totals, as a
 * table or as JSON, against the host's MemTotal. 0 or -errno.
 */
int memstats__print_host(FILE *out, bool json);

#endif
