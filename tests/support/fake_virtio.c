// SPDX-License-Identifier: Apache-2.0
#include "fake_virtio.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "virtio_mmio_regs.h"
#include "vmm/log.h"

uint32_t fake_virtio__read(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio__bus_ops.read(t, off, (uint8_t *)&v, 4);
	return v;
}

void fake_virtio__write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio__bus_ops.write(t, off, (const uint8_t *)&v, 4);
}

static void write64(struct virtio_mmio *t, uint64_t off, uint64_t v)
{
	fake_virtio__write(t, off, (uint32_t)v);
	fake_virtio__write(t, off + 4, (uint32_t)(v >> 32));
}

uint64_t fake_virtio__offered(struct virtio_mmio *t)
{
	uint64_t f;

	fake_virtio__write(t, R_DEV_FEATURES_SEL, 0);
	f = fake_virtio__read(t, R_DEV_FEATURES);
	fake_virtio__write(t, R_DEV_FEATURES_SEL, 1);
	return f | (uint64_t)fake_virtio__read(t, R_DEV_FEATURES) << 32;
}

static int setup_queue(struct virtio_mmio *t, uint32_t i, const struct fake_vring *r)
{
	fake_virtio__write(t, R_QUEUE_SEL, i);
	if (fake_virtio__read(t, R_QUEUE_READY) || fake_virtio__read(t, R_QUEUE_NUM_MAX) < r->size)
		return error__set(-EIO, "queue %u: busy, or smaller than %u", i, r->size);
	fake_virtio__write(t, R_QUEUE_NUM, r->size);
	write64(t, R_QUEUE_DESC, r->desc);
	write64(t, R_QUEUE_DRIVER, r->avail);
	write64(t, R_QUEUE_DEVICE, r->used);
	fake_virtio__write(t, R_QUEUE_READY, 1);
	if (!fake_virtio__read(t, R_QUEUE_READY))
		return error__set(-EIO, "queue %u refused", i);
	return 0;
}

int fake_virtio__configure(struct virtio_mmio *t, uint32_t device_id, uint64_t want,
			   const struct fake_vring *rings, unsigned int nr)
{
	uint32_t status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	uint64_t offered;
	int ret;

	if (fake_virtio__read(t, R_MAGIC) != VIRTIO_MMIO_MAGIC ||
	    fake_virtio__read(t, R_VERSION) != 2 || fake_virtio__read(t, R_DEVICE_ID) != device_id)
		return error__set(-ENODEV, "not a virtio-mmio v2 device of type %u", device_id);
	fake_virtio__write(t, R_STATUS, 0);
	fake_virtio__write(t, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	fake_virtio__write(t, R_STATUS, status);
	offered = fake_virtio__offered(t);
	if ((want & offered) != want)
		return error__set(-ENOTSUP, "the device offers features 0x%llx, we want 0x%llx",
				  (unsigned long long)offered, (unsigned long long)want);
	fake_virtio__write(t, R_DRV_FEATURES_SEL, 0);
	fake_virtio__write(t, R_DRV_FEATURES, (uint32_t)want);
	fake_virtio__write(t, R_DRV_FEATURES_SEL, 1);
	fake_virtio__write(t, R_DRV_FEATURES, (uint32_t)(want >> 32));
	status |= VIRTIO_STATUS_FEATURES_OK;
	fake_virtio__write(t, R_STATUS, status);
	if (!(fake_virtio__read(t, R_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		return error__set(-EIO, "FEATURES_OK refused");
	for (unsigned int i = 0; i < nr; i++) {
		ret = setup_queue(t, i, &rings[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int fake_virtio__start(struct virtio_mmio *t, uint32_t device_id, uint64_t want,
		       const struct fake_vring *rings, unsigned int nr)
{
	uint32_t status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	int ret = fake_virtio__configure(t, device_id, want, rings, nr);

	if (ret)
		return ret;
	fake_virtio__write(t, R_STATUS, status);
	if (fake_virtio__read(t, R_STATUS) != status)
		return error__set(-EIO, "status 0x%x after DRIVER_OK",
				  fake_virtio__read(t, R_STATUS));
	return 0;
}

int fake_virtio__kick(struct virtio_mmio *t, uint16_t q)
{
	uint64_t one = 1;

	if (write(t->kicks[q].h.fd, &one, sizeof(one)) != sizeof(one))
		return error__set(-errno, "kick queue %u: %s", q, strerror(errno));
	return 0;
}
