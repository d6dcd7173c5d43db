// SPDX-License-Identifier: Apache-2.0
#include "vmm/vmgenid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

/* The ID and the counter, as the page's first bytes hold them. */
#define IMAGE_BYTES (VMGENID_COUNTER_OFFSET + 8)

_Static_assert(LAYOUT_VMGENID_ADDR >= LAYOUT_VIRTIO_MMIO_START +
					      (LAYOUT_VIRTIO_IRQ_LAST - LAYOUT_VIRTIO_IRQ_FIRST +
					       1) * LAYOUT_VIRTIO_MMIO_SIZE,
	       "the VMGenID page overlaps the virtio-mmio windows");
_Static_assert(LAYOUT_VMGENID_ADDR + LAYOUT_VMGENID_SIZE <= LAYOUT_IOAPIC_ADDR,
	       "the VMGenID page overlaps the IOAPIC");

static int new_id(struct vmgenid *g)
{
	size_t got = 0;

	while (got < sizeof(g->id)) {
		ssize_t n = getrandom(g->id + got, sizeof(g->id) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return error__set(n < 0 ? -errno : -EIO, "VM generation ID: getrandom: %s",
					  n < 0 ? strerror(errno) : "no bytes");
		got += (size_t)n;
	}
	return 0;
}

int vmgenid__init(struct vmgenid *g)
{
	g->generation = 0;
	return new_id(g);
}

static void vmgenid_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	const struct vmgenid *g = opaque;
	uint8_t image[IMAGE_BYTES];

	memcpy(image, g->id, VMGENID_ID_BYTES);
	for (unsigned int i = 0; i < 8; i++)
		image[VMGENID_COUNTER_OFFSET + i] = (uint8_t)(g->generation >> (8 * i));
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < IMAGE_BYTES ? image[off + i] : 0;
}

static void vmgenid_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)off;
	(void)data;
	(void)len; /* read-only: ignored */
}

const struct bus_dev_ops vmgenid__ops = { .read = vmgenid_read, .write = vmgenid_write };

/* ---- snapshots ---- */

int vmgenid__save(const struct vmgenid *g, struct snapshot_file_writer *w)
{
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_VMGENID, 0);
	snapshot_file__put_u64(w, g->generation);
	snapshot_file__put_bytes(w, g->id, sizeof(g->id));
	return snapshot_file__end_section(w);
}

static int read_generation(const struct snapshot_file_reader *r, uint64_t *generation)
{
	struct snapshot_file_section s;
	struct snapshot_file_cursor c;
	int ret;

	*generation = 0;
	if (snapshot_file__find(r, SNAPSHOT_SECTION_VMGENID, &s))
		return 0; /* a snapshot from before VMGenID: generation 0 */
	snapshot_file__cursor(&s, &c);
	ret = snapshot_file__get_u64(&c, generation);
	if (!ret)
		ret = snapshot_file__skip(&c, VMGENID_ID_BYTES);
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	if (ret)
		return error__set_default(ret,
					  "the snapshot's VM generation ID section is damaged");
	if (*generation == UINT64_MAX)
		return error__set(-EINVAL,
				  "the snapshot's VM generation counter is at its maximum");
	return 0;
}

int vmgenid__restore(struct vmgenid *g, const struct snapshot_file_reader *r)
{
	uint64_t saved;
	int ret = read_generation(r, &saved);

	if (!ret)
		ret = new_id(g);
	if (ret)
		return ret;
	g->generation = saved + 1;
	log_info("VM generation %llu (restored from generation %llu)",
		 (unsigned long long)g->generation, (unsigned long long)saved);
	return 0;
}
