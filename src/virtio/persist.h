/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the virtio devices' snapshot code shares: finding a device's own section in a state
 * file (docs/snapshot-format.md), by the id string that starts its payload.
 */
#ifndef EMBER_VIRTIO_PERSIST_H
#define EMBER_VIRTIO_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snapshot_file.h"

/* The longest id string a device section holds (drive_id, iface_id: VM_DEVICE_ID_MAX). */
#define VIRTIO_PERSIST_ID_MAX 64

/*
 * The one section with this section id whose payload starts with the string id (and then,
 * if which >= 0, which as a u8 or, with which_u32, as a u32: a device type, so that a
 * drive and an interface may share an id): *c is a cursor on it, just past those. -EINVAL with a
 * message that names label (e.g. "drive rootfs") when there is none or more than one, or
 * when a section of that id is too damaged to tell whose it is.
 */
int virtio_persist__find(const struct snapshot_file_reader *r, uint32_t section, const char *id,
			 int64_t which, bool which_u32, const char *label,
			 struct snapshot_file_cursor *c);
/*
 * The next record of a section, skipping those this Ember may ignore: 1 with *tag and *sub,
 * 0 at the end of c, -EINVAL for a record it must understand but does not (a tag above
 * max_tag, or an unknown critical flag).
 */
int virtio_persist__next_record(struct snapshot_file_cursor *c, uint32_t max_tag, uint32_t *tag,
				struct snapshot_file_cursor *sub);

#endif
