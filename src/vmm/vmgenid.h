/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VM generation ID (docs/clone-safety.md): VMGenID's meaning without ACPI. One
 * read-only 4 KiB MMIO page at LAYOUT_VMGENID_ADDR, always present, that tells a guest
 * whether it is a clone:
 *
 *   bytes 0-15    the 128-bit generation ID: random at VM creation, and a new random
 *                 value at every restore of a snapshot (two restores of one snapshot differ)
 *   bytes 16-23   the generation counter, a little-endian u64: 0 at boot, the snapshot's
 *                 value + 1 after a restore
 *   the rest      reads as 0
 *
 * Reads of 1, 2, 4 or 8 bytes at any offset work; writes are ignored. The guest learns the
 * address from the kernel command line, `ember.vmgenid=0x<address>` (vm.c adds it).
 *
 * The values change only before the vCPUs run (creation, restore), so the vCPU threads
 * read them without a lock.
 */
#ifndef EMBER_VMM_VMGENID_H
#define EMBER_VMM_VMGENID_H

#include <stdint.h>

#include "vmm/bus.h"

#define VMGENID_ID_BYTES 16
#define VMGENID_COUNTER_OFFSET 16
#define VMGENID_CMDLINE_PARAM "ember.vmgenid"
/*
 * Its snapshot section, SNAPSHOT_SECTION_VMGENID (docs/snapshot-format.md): u64 generation
 * counter, 16 bytes of ID (for messages). Optional: an Ember that does not know it skips
 * it, and a snapshot without it restores as generation 0 (the restored VM then has
 * generation 1).
 */

struct vmgenid {
	uint8_t id[VMGENID_ID_BYTES];
	uint64_t generation;
};

struct snapshot_file_writer;
struct snapshot_file_reader;

extern const struct bus_dev_ops vmgenid__ops;

/* A fresh VM's: a random ID (getrandom), generation 0. 0 or -errno with error__set(). */
int vmgenid__init(struct vmgenid *g);
/* Writes its section. 0 or -errno (the writer's sticky error). */
int vmgenid__save(const struct vmgenid *g, struct snapshot_file_writer *w);
/*
 * A restored VM's: a new random ID, and the saved generation + 1 (1 when the snapshot has no
 * section). -EINVAL with a message for a damaged section or a counter that cannot grow.
 */
int vmgenid__restore(struct vmgenid *g, const struct snapshot_file_reader *r);

#endif
