// SPDX-License-Identifier: Apache-2.0
#include "virtio/mmio.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "virtio/persist.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_VENDOR_ID 0x00c
#define REG_DEV_FEATURES 0x010
#define REG_DEV_FEATURES_SEL 0x014
#define REG_DRV_FEATURES 0x020
#define REG_DRV_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INT_STATUS 0x060
#define REG_INT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DESC_HIGH 0x084
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DRIVER_HIGH 0x094
#define REG_QUEUE_DEVICE_LOW 0x0a0
#define REG_QUEUE_DEVICE_HIGH 0x0a4
#define REG_CONFIG_GEN 0x0fc
#define REG_CONFIG 0x100

#define MMIO_MAGIC 0x74726976 /* "virt" */
#define MMIO_VERSION 2
#define MMIO_VENDOR 0x52424d45 /* "EMBR" */
#define MMIO_WINDOW 0x1000

static void pulse(struct virtio_mmio *t, uint32_t isr_bit)
{
	uint64_t one = 1;
	ssize_t r;

	t->isr |= isr_bit;
	t->m.interrupts++;
	r = write(t->irq_fd, &one, sizeof(one));
	(void)r;
}

static struct virtq *selected(struct virtio_mmio *t)
{
	return t->queue_sel < t->ops->nr_queues ? &t->queues[t->queue_sel] : NULL;
}

bool virtio_mmio__queue_live(const struct virtio_mmio *t, uint16_t q)
{
	return q < t->ops->nr_queues && t->queues[q].ready &&
	       (t->status & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_NEEDS_RESET);
}

void virtio_mmio__used(struct virtio_mmio *t, uint16_t q)
{
	if (virtq__should_signal(&t->queues[q]))
		pulse(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio__config_changed(struct virtio_mmio *t)
{
	t->config_generation++;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		pulse(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio__needs_reset(struct virtio_mmio *t, const char *why)
{
	t->m.needs_reset++;
	if (t->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_warn("%s at 0x%llx: the driver broke a rule (%s): device needs a reset", t->ops->name,
		 (unsigned long long)t->base, why);
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		pulse(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio__lock(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
}

void virtio_mmio__unlock(struct virtio_mmio *t)
{
	pthread_mutex_unlock(&t->lock);
}

static uint64_t offered(const struct virtio_mmio *t)
{
	return t->ops->features(t->dev) | (1ULL << VIRTIO_F_VERSION_1);
}

static void reset(struct virtio_mmio *t)
{
	t->ops->reset(t->dev);
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		virtq__reset(&t->queues[i]);
	t->status = 0;
	t->driver_features = 0;
	t->dev_features_sel = t->drv_features_sel = t->queue_sel = 0;
	t->isr = 0;
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
	struct virtq *q = selected(t);
	uint64_t features = offered(t);

	switch (off) {
	case REG_MAGIC:
		return MMIO_MAGIC;
	case REG_VERSION:
		return MMIO_VERSION;
	case REG_DEVICE_ID:
		return t->ops->device_id;
	case REG_VENDOR_ID:
		return MMIO_VENDOR;
	case REG_DEV_FEATURES:
		return t->dev_features_sel > 1 ? 0 :
						 (uint32_t)(features >> (32 * t->dev_features_sel));
	case REG_QUEUE_NUM_MAX:
		return q ? VIRTQ_MAX_SIZE : 0;
	case REG_QUEUE_READY:
		return q ? q->ready : 0;
	case REG_INT_STATUS:
		return t->isr;
	case REG_STATUS:
		return t->status;
	case REG_CONFIG_GEN:
		return t->config_generation;
	default:
		t->m.bad_register_accesses++;
		return 0;
	}
}

/* FEATURES_OK only when the driver took nothing we did not offer, and VERSION_1. */
static bool features_ok(struct virtio_mmio *t)
{
	uint64_t f = t->driver_features;

	return !(f & ~offered(t)) && (f & (1ULL << VIRTIO_F_VERSION_1));
}

/*
 * Kicks, served by the VMM loop once it watches the eventfds (never on this vCPU thread). A
 * driver may make buffers available and notify before DRIVER_OK (Linux's init_vqs() runs
 * before virtio_device_ready()); on_kick() drops such a notification, so DRIVER_OK replays one
 * for each ready queue that holds buffers. A restore kicks every ready queue, and the first
 * kick raises again an interrupt the snapshot had not seen acknowledged.
 */
static void kick_ready(struct virtio_mmio *t, bool restored)
{
	uint64_t one = 1;
	ssize_t r;

	t->restored_irq = restored && t->isr != 0;
	for (uint16_t i = 0; i < t->ops->nr_queues; i++) {
		bool kick = restored ? t->queues[i].ready || (i == 0 && t->restored_irq)
				     : virtq__pending(&t->queues[i]) > 0;

		if (!kick || t->kicks[i].h.fd < 0)
			continue;
		r = write(t->kicks[i].h.fd, &one, sizeof(one));
		(void)r;
	}
}

static void activate(struct virtio_mmio *t)
{
	for (unsigned int i = 0; i < t->ops->nr_queues; i++) {
		t->queues[i].event_idx = t->driver_features & (1ULL << VIRTIO_F_EVENT_IDX);
		t->queues[i].indirect = t->driver_features & (1ULL << VIRTIO_F_INDIRECT_DESC);
	}
	if (t->ops->activate(t->dev)) {
		log_warn("%s at 0x%llx: cannot activate", t->ops->name, (unsigned long long)t->base);
		t->status |= VIRTIO_STATUS_NEEDS_RESET;
		return;
	}
	kick_ready(t, false);
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
	uint32_t added = v & ~t->status;

	if (!v) {
		reset(t);
		return;
	}
	/* a driver only adds bits; the device owns NEEDS_RESET */
	if ((t->status & ~v & ~VIRTIO_STATUS_NEEDS_RESET) || (v & VIRTIO_STATUS_NEEDS_RESET)) {
		t->m.bad_register_accesses++;
		return;
	}
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_ok(t))
		v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
		t->m.bad_register_accesses++;
		return;
	}
	t->status = v | (t->status & VIRTIO_STATUS_NEEDS_RESET);
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_NEEDS_RESET))
		activate(t);
}

static void set_half(uint64_t *v, bool high, uint32_t half)
{
	if (high)
		*v = (*v & 0xffffffffULL) | ((uint64_t)half << 32);
	else
		*v = (*v & ~0xffffffffULL) | half;
}

static void write_queue_ready(struct virtio_mmio *t, struct virtq *q, uint32_t v)
{
	if (!v) {
		q->ready = false;
		return;
	}
	if (virtq__check(q)) {
		virtio_mmio__needs_reset(t, "queue rings outside guest RAM or misaligned");
		return;
	}
	q->ready = true;
}

static bool is_queue_reg(uint64_t off)
{
	switch (off) {
	case REG_QUEUE_NUM:
	case REG_QUEUE_READY:
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		return true;
	default:
		return false;
	}
}

/* The queue registers, writable only while the queue is not ready. */
static bool write_queue_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtq *q = selected(t);

	if (!is_queue_reg(off))
		return false;
	/* a queue that does not exist, or a live one's layout: ignored */
	if (!q || (off != REG_QUEUE_READY && q->ready)) {
		t->m.bad_register_accesses++;
		return true;
	}
	switch (off) {
	case REG_QUEUE_NUM:
		q->size = v <= VIRTQ_MAX_SIZE ? (uint16_t)v : 0;
		return true;
	case REG_QUEUE_READY:
		write_queue_ready(t, q, v);
		return true;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		set_half(&q->desc_gpa, off == REG_QUEUE_DESC_HIGH, v);
		return true;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		set_half(&q->avail_gpa, off == REG_QUEUE_DRIVER_HIGH, v);
		return true;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		set_half(&q->used_gpa, off == REG_QUEUE_DEVICE_HIGH, v);
		return true;
	default:
		return false;
	}
}

static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	if (write_queue_reg(t, off, v))
		return;
	switch (off) {
	case REG_DEV_FEATURES_SEL:
		t->dev_features_sel = v;
		break;
	case REG_DRV_FEATURES:
		if (!(t->status & VIRTIO_STATUS_FEATURES_OK) && t->drv_features_sel <= 1)
			set_half(&t->driver_features, t->drv_features_sel == 1, v);
		break;
	case REG_DRV_FEATURES_SEL:
		t->drv_features_sel = v;
		break;
	case REG_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case REG_QUEUE_NOTIFY:
		/* a kick the ioeventfds did not take: a queue that does not exist */
		t->m.bad_register_accesses++;
		break;
	case REG_INT_ACK:
		t->isr &= ~v;
		break;
	case REG_STATUS:
		write_status(t, v);
		break;
	default:
		t->m.bad_register_accesses++;
		break;
	}
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	uint32_t v;

	memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (off >= REG_CONFIG) {
		if (off - REG_CONFIG + len <= t->ops->config_size)
			t->ops->config_read(t->dev, (uint32_t)(off - REG_CONFIG), data, len);
	} else if (len == 4 && !(off & 3)) {
		v = read_reg(t, off);
		memcpy(data, &v, 4);
	} else {
		t->m.bad_register_accesses++;
	}
	pthread_mutex_unlock(&t->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	uint32_t v;

	pthread_mutex_lock(&t->lock);
	if (off >= REG_CONFIG) {
		if (off - REG_CONFIG + len <= t->ops->config_size && t->ops->config_write)
			t->ops->config_write(t->dev, (uint32_t)(off - REG_CONFIG), data, len);
	} else if (len == 4 && !(off & 3)) {
		memcpy(&v, data, 4);
		write_reg(t, off, v);
	} else {
		t->m.bad_register_accesses++;
	}
	pthread_mutex_unlock(&t->lock);
}

const struct bus_dev_ops virtio_mmio__bus_ops = { .read = mmio_read, .write = mmio_write };

static void on_kick(struct event_handler *h, uint32_t events)
{
	struct virtio_mmio_kick *k = container_of(h, struct virtio_mmio_kick, h);
	struct virtio_mmio *t = k->t;
	uint64_t n;
	ssize_t r = read(h->fd, &n, sizeof(n));

	(void)r;
	(void)events;
	pthread_mutex_lock(&t->lock);
	if (t->restored_irq) { /* the interrupt the snapshot had not seen acknowledged */
		t->restored_irq = false;
		pulse(t, 0);
	}
	t->m.queue_notifies++;
	if (virtio_mmio__queue_live(t, k->queue))
		t->ops->notify(t->dev, k->queue);
	pthread_mutex_unlock(&t->lock);
}

/* Without KVM (vm_fd < 0), the kick eventfds are registered nowhere. */
static int ioeventfd(struct virtio_mmio *t, uint16_t q, int fd, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = q,
		.addr = t->base + REG_QUEUE_NOTIFY,
		.len = 4,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (t->vm_fd < 0)
		return 0;
	return ioctl(t->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

/* The interrupt's eventfd; without KVM (vm_fd < 0) it is routed nowhere. */
static int irqfd(struct virtio_mmio *t)
{
	struct kvm_irqfd f = { .gsi = t->gsi };

	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_fd < 0)
		return -errno;
	if (t->vm_fd < 0)
		return 0;
	f.fd = (uint32_t)t->irq_fd;
	return ioctl(t->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

int virtio_mmio__init(struct virtio_mmio *t, int vm_fd, const struct gmem *gm, uint64_t base,
		      uint32_t gsi, const struct virtio_dev_ops *ops, void *dev)
{
	int ret;

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->ops = ops;
	t->dev = dev;
	t->gm = gm;
	t->vm_fd = vm_fd;
	t->base = base;
	t->gsi = gsi;
	t->irq_fd = -1;
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		t->queues[i].gm = gm;
		t->kicks[i] = (struct virtio_mmio_kick){ { -1, on_kick }, t, (uint16_t)i };
	}
	ret = irqfd(t);
	if (ret)
		return error__set(ret, "%s: KVM_IRQFD for GSI %u: %s", ops->name, gsi,
				  strerror(-ret));
	for (uint16_t i = 0; i < ops->nr_queues; i++) {
		t->kicks[i].h.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->kicks[i].h.fd < 0)
			return error__set(-errno, "eventfd: %s", strerror(errno));
		ret = ioeventfd(t, i, t->kicks[i].h.fd, true);
		if (ret)
			return error__set(ret, "%s: KVM_IOEVENTFD at 0x%llx: %s", ops->name,
					  (unsigned long long)(base + REG_QUEUE_NOTIFY),
					  strerror(-ret));
	}
	return 0;
}

int virtio_mmio__watch(struct virtio_mmio *t, struct event_loop *loop)
{
	for (uint16_t i = 0; i < t->ops->nr_queues; i++) {
		int ret = event_loop__add(loop, &t->kicks[i].h, EPOLLIN);

		if (ret)
			return error__set(ret, "epoll_ctl: %s", strerror(-ret));
	}
	return 0;
}

void virtio_mmio__destroy(struct virtio_mmio *t)
{
	for (uint16_t i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		if (t->kicks[i].h.fd < 0)
			continue;
		ioeventfd(t, i, t->kicks[i].h.fd, false);
		close(t->kicks[i].h.fd);
		t->kicks[i].h.fd = -1;
	}
	if (t->irq_fd >= 0)
		close(t->irq_fd);
	t->irq_fd = -1;
	pthread_mutex_destroy(&t->lock);
}

/* ---- snapshots ---- */

#define QUEUE_RECORD 1
#define QF_EVENT_IDX 1
#define QF_INDIRECT 2
#define QF_SIGNALLED_VALID 4
#define STATUS_KNOWN                                                                               \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |              \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

/* The transport as a section holds it, checked before it replaces the live one. */
struct mmio_saved {
	uint32_t type, gsi, status, dev_sel, drv_sel, queue_sel, isr, generation, nr;
	uint64_t base, dev_features, drv_features;
	struct virtq q[VIRTIO_MMIO_MAX_QUEUES];
};

static void put_queue(struct snapshot_file_writer *w, const struct virtq *q, uint16_t back)
{
	uint8_t flags = (q->event_idx ? QF_EVENT_IDX : 0) | (q->indirect ? QF_INDIRECT : 0) |
			(q->signalled_used_valid ? QF_SIGNALLED_VALID : 0);

	snapshot_file__begin_record(w, QUEUE_RECORD, SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_u16(w, VIRTQ_MAX_SIZE);
	snapshot_file__put_u16(w, q->size);
	snapshot_file__put_u8(w, q->ready);
	snapshot_file__put_u64(w, q->desc_gpa);
	snapshot_file__put_u64(w, q->avail_gpa);
	snapshot_file__put_u64(w, q->used_gpa);
	snapshot_file__put_u16(w, (uint16_t)(q->last_avail - back));
	snapshot_file__put_u16(w, q->used_idx);
	snapshot_file__put_u16(w, q->signalled_used);
	snapshot_file__put_u8(w, flags);
	snapshot_file__end_record(w);
}

int virtio_mmio__save(struct virtio_mmio *t, const char *id, const uint16_t *given_back,
		      struct snapshot_file_writer *w)
{
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_VIRTIO_MMIO, SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_str(w, id);
	snapshot_file__put_u32(w, t->ops->device_id);
	snapshot_file__put_u64(w, t->base);
	snapshot_file__put_u32(w, t->gsi);
	snapshot_file__put_u32(w, t->status);
	snapshot_file__put_u64(w, offered(t));
	snapshot_file__put_u64(w, t->driver_features);
	snapshot_file__put_u32(w, t->dev_features_sel);
	snapshot_file__put_u32(w, t->drv_features_sel);
	snapshot_file__put_u32(w, t->queue_sel);
	snapshot_file__put_u32(w, t->isr);
	snapshot_file__put_u32(w, t->config_generation);
	snapshot_file__put_u32(w, t->ops->nr_queues);
	for (unsigned int i = 0; i < t->ops->nr_queues; i++)
		put_queue(w, &t->queues[i], given_back ? given_back[i] : 0);
	return snapshot_file__end_section(w);
}

static int get_queue(struct snapshot_file_cursor *c, const char *label, unsigned int i,
		     struct virtq *q)
{
	uint16_t max;
	uint8_t ready, flags = 0;
	int ret = snapshot_file__get_u16(c, &max);

	if (!ret)
		ret = snapshot_file__get_u16(c, &q->size);
	if (!ret)
		ret = snapshot_file__get_u8(c, &ready);
	if (!ret)
		ret = snapshot_file__get_u64(c, &q->desc_gpa);
	if (!ret)
		ret = snapshot_file__get_u64(c, &q->avail_gpa);
	if (!ret)
		ret = snapshot_file__get_u64(c, &q->used_gpa);
	if (!ret)
		ret = snapshot_file__get_u16(c, &q->last_avail);
	if (!ret)
		ret = snapshot_file__get_u16(c, &q->used_idx);
	if (!ret)
		ret = snapshot_file__get_u16(c, &q->signalled_used);
	if (!ret)
		ret = snapshot_file__get_u8(c, &flags);
	if (!ret)
		ret = snapshot_file__expect_end(c);
	if (ret)
		return ret;
	if (ready > 1 || (flags & ~(QF_EVENT_IDX | QF_INDIRECT | QF_SIGNALLED_VALID)))
		return error__set(-EINVAL, "%s: queue %u: the snapshot's ready byte %u or flags "
				  "0x%x are not ones Ember writes", label, i, ready, flags);
	q->ready = ready;
	q->event_idx = flags & QF_EVENT_IDX;
	q->indirect = flags & QF_INDIRECT;
	q->signalled_used_valid = flags & QF_SIGNALLED_VALID;
	return 0;
}

static int get_queues(struct snapshot_file_cursor *c, const char *label, struct mmio_saved *st)
{
	struct snapshot_file_cursor sub;
	unsigned int n = 0;
	uint32_t tag;
	int ret;

	while ((ret = virtio_persist__next_record(c, QUEUE_RECORD, &tag, &sub)) == 1) {
		if (n == st->nr)
			return error__set(-EINVAL, "%s: the snapshot has more queue records than "
					  "its %u queues", label, st->nr);
		ret = get_queue(&sub, label, n, &st->q[n]);
		if (ret)
			return ret;
		n++;
	}
	if (!ret && n != st->nr)
		return error__set(-EINVAL, "%s: the snapshot has %u queue records for %u queues",
				  label, n, st->nr);
	return ret;
}

/* What follows the id and the device type. */
static int get_registers(struct snapshot_file_cursor *c, struct mmio_saved *st)
{
	int ret = snapshot_file__get_u64(c, &st->base);

	if (!ret)
		ret = snapshot_file__get_u32(c, &st->gsi);
	if (!ret)
		ret = snapshot_file__get_u32(c, &st->status);
	if (!ret)
		ret = snapshot_file__get_u64(c, &st->dev_features);
	if (!ret)
		ret = snapshot_file__get_u64(c, &st->drv_features);
	if (!ret)
		ret = snapshot_file__get_u32(c, &st->dev_sel);
	if (!ret)
		ret = snapshot_file__get_u32(c, &st->drv_sel);
	if (!ret)
		ret = snapshot_file__get_u32(c, &st->queue_sel);
	if (!ret)
		ret = snapshot_file__get_u32(c, &st->isr);
	if (!ret)
		ret = snapshot_file__get_u32(c, &st->generation);
	if (!ret)
		ret = snapshot_file__get_u32(c, &st->nr);
	return ret;
}

static int check_queue(const struct virtio_mmio *t, const char *label, unsigned int i,
		       const struct virtq *q)
{
	uint16_t n = q->size;

	(void)t;
	if (n > VIRTQ_MAX_SIZE || (q->ready && (!n || (n & (n - 1)))))
		return error__set(-EINVAL, "%s: queue %u: the snapshot's size %u is not a power "
				  "of two from 1 to %u", label, i, n, VIRTQ_MAX_SIZE);
	if (q->ready && virtq__check(q))
		return error__set(-EINVAL, "%s: queue %u: the snapshot's rings (descriptors at "
				  "0x%llx, available at 0x%llx, used at 0x%llx, %u entries) are "
				  "misaligned or not wholly in guest RAM", label, i,
				  (unsigned long long)q->desc_gpa, (unsigned long long)q->avail_gpa,
				  (unsigned long long)q->used_gpa, n);
	return 0;
}

static int check_saved(const struct virtio_mmio *t, const char *label, const struct mmio_saved *st)
{
	if (st->type != t->ops->device_id)
		return error__set(-EINVAL, "%s: the snapshot's device has virtio type %u, this one "
				  "is a %s (type %u)", label, st->type, t->ops->name,
				  t->ops->device_id);
	if (st->base != t->base || st->gsi != t->gsi)
		return error__set(-EINVAL, "%s: the snapshot's device was at 0x%llx with IRQ %u, "
				  "this one is at 0x%llx with IRQ %u", label,
				  (unsigned long long)st->base, st->gsi,
				  (unsigned long long)t->base, t->gsi);
	if ((st->status & ~(uint32_t)STATUS_KNOWN) ||
	    ((st->status & VIRTIO_STATUS_DRIVER_OK) && !(st->status & VIRTIO_STATUS_FEATURES_OK)))
		return error__set(-EINVAL, "%s: the snapshot's device status 0x%x is not one the "
				  "transport allows", label, st->status);
	if ((st->status & VIRTIO_STATUS_FEATURES_OK) &&
	    ((st->drv_features & ~offered(t)) ||
	     !(st->drv_features & (1ULL << VIRTIO_F_VERSION_1))))
		return error__set(-EINVAL, "%s: the snapshot's driver took features 0x%llx; this "
				  "device offers 0x%llx", label,
				  (unsigned long long)st->drv_features,
				  (unsigned long long)offered(t));
	if (st->isr & ~(uint32_t)(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG))
		return error__set(-EINVAL, "%s: the snapshot's interrupt status 0x%x has unknown "
				  "bits", label, st->isr);
	for (unsigned int i = 0; i < st->nr; i++) {
		int ret = check_queue(t, label, i, &st->q[i]);

		if (ret)
			return ret;
	}
	return 0;
}

static int load_saved(const struct virtio_mmio *t, const char *label, const char *id,
		      const struct snapshot_file_reader *r, struct mmio_saved *st)
{
	struct snapshot_file_cursor c;
	int ret = virtio_persist__find(r, SNAPSHOT_SECTION_VIRTIO_MMIO, id, t->ops->device_id, true,
				       label, &c);

	/* none of this type: one of another type under this id is a clearer mismatch */
	if (!ret)
		st->type = t->ops->device_id;
	else if (!(ret = virtio_persist__find(r, SNAPSHOT_SECTION_VIRTIO_MMIO, id, -1, false,
					      label, &c)))
		ret = snapshot_file__get_u32(&c, &st->type);
	if (!ret)
		ret = get_registers(&c, st);
	if (ret)
		return ret;
	if (st->nr != t->ops->nr_queues)
		return error__set(-EINVAL, "%s: the snapshot's device has %u queues, this %s has %u",
				  label, st->nr, t->ops->name, t->ops->nr_queues);
	for (unsigned int i = 0; i < st->nr; i++)
		st->q[i].gm = t->gm;
	ret = get_queues(&c, label, st);
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	return ret ? ret : check_saved(t, label, st);
}

int virtio_mmio__restore(struct virtio_mmio *t, const char *label, const char *id,
			 const struct snapshot_file_reader *r)
{
	struct mmio_saved st = { 0 };
	int ret;

	if (t->status)
		return error__set(-EBUSY, "%s: cannot restore a device the driver has started",
				  label);
	ret = load_saved(t, label, id, r, &st);
	if (ret)
		return ret;
	t->status = st.status;
	t->driver_features = st.drv_features;
	t->dev_features_sel = st.dev_sel;
	t->drv_features_sel = st.drv_sel;
	t->queue_sel = st.queue_sel;
	t->isr = st.isr;
	t->config_generation = st.generation;
	for (unsigned int i = 0; i < st.nr; i++)
		t->queues[i] = st.q[i];
	if ((t->status & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_NEEDS_RESET)) {
		ret = t->ops->activate(t->dev);
		if (ret)
			return error__set(ret, "%s: cannot activate the restored %s: %s", label,
					  t->ops->name, strerror(-ret));
	}
	kick_ready(t, true);
	return 0;
}
