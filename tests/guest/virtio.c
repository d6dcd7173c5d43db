// SPDX-License-Identifier: Apache-2.0
/*
 * The test guest's virtio-mmio driver (virtio.h). Written for a machine where each guest
 * instruction costs about a microsecond and each register access an exit: few register
 * accesses, no per-byte loops, waits bounded by the TSC.
 */
#include "virtio.h"

/* How long a wait may take, in TSC cycles: about a second. */
#define WAIT_TSC_CYCLES VIRTIO_WAIT_TSC
#define CONFIG_GEN_TRIES 4
#define BYTES_01 0x0101010101010101ULL
#define BYTES_7F 0x7f7f7f7f7f7f7f7fULL
#define BYTES_RAMP 0x0706050403020100ULL

/* One queue's rings, shared by all devices (one in use at a time). */
struct vq_rings {
	struct vq_desc desc[VQ_SIZE];
	struct vq_avail avail;
	struct vq_used used __attribute__((aligned(8)));
};

static struct vq_rings rings NOINIT __attribute__((aligned(4096)));
/* The rings of struct virtio_queue i. */
static struct vq_rings queue_rings[VIRTIO_QUEUES_MAX] NOINIT __attribute__((aligned(4096)));
static struct vq_desc queue_indirect[VIRTIO_CHAIN_MAX] NOINIT __attribute__((aligned(16)));
static struct vq_desc indirect_table[VIRTIO_CHAIN_MAX] NOINIT __attribute__((aligned(16)));
static struct virtio_blk_hdr blk_hdr NOINIT;
static uint8_t blk_status NOINIT;

/* What the one scan of the window found: DeviceID per slot, 0 for none. */
static uint32_t slot_ids[VIRTIO_MMIO_SLOTS];
static bool scanned;

static inline void barrier(void)
{
	__asm__ volatile("" : : : "memory");
}

static void scan(void)
{
	for (unsigned int i = 0; i < VIRTIO_MMIO_SLOTS; i++) {
		uint64_t base = VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_STRIDE;

		if (mmio_read32(base + VIRTIO_MMIO_MAGIC) != VIRTIO_MMIO_MAGIC_VALUE)
			continue;
		if (mmio_read32(base + VIRTIO_MMIO_VERSION) != 2) {
			report("warning: virtio slot %u is not version 2", i);
			continue;
		}
		slot_ids[i] = mmio_read32(base + VIRTIO_MMIO_DEVICE_ID);
	}
	scanned = true;
}

unsigned int virtio__find(uint32_t device_id, struct virtio_dev *devs, unsigned int max)
{
	unsigned int n = 0;

	if (!scanned)
		scan();
	for (unsigned int i = 0; i < VIRTIO_MMIO_SLOTS; i++) {
		if (slot_ids[i] != device_id || !device_id)
			continue;
		if (n < max) {
			memset(&devs[n], 0, sizeof(devs[n]));
			devs[n].base = VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_STRIDE;
			devs[n].slot = i;
		}
		n++;
	}
	return n;
}

uint32_t virtio__wait_status(const struct virtio_dev *d, uint32_t bit)
{
	uint64_t start = rdtsc();
	uint32_t s;

	while (!((s = virtio__read(d, VIRTIO_MMIO_STATUS)) & bit) &&
	       rdtsc() - start < WAIT_TSC_CYCLES)
		;
	return s;
}

int virtio__reset(struct virtio_dev *d)
{
	uint64_t start = rdtsc();

	virtio__write(d, VIRTIO_MMIO_STATUS, 0);
	while (virtio__read(d, VIRTIO_MMIO_STATUS)) {
		if (rdtsc() - start > WAIT_TSC_CYCLES)
			return -1;
	}
	return 0;
}

static uint64_t read_features(const struct virtio_dev *d)
{
	uint64_t lo, hi;

	virtio__write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = virtio__read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	virtio__write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = virtio__read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	return hi << 32 | lo;
}

static void write_features(const struct virtio_dev *d, uint64_t f)
{
	virtio__write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio__write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	virtio__write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio__write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

const char *virtio__init_features(struct virtio_dev *d, uint64_t wanted)
{
	const uint32_t ok =
		VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	uint32_t s;

	if (virtio__reset(d))
		return fail("slot %u: Status does not read 0 after a reset", d->slot);
	virtio__write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio__write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	d->offered = read_features(d);
	if (!(d->offered & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		return fail("slot %u: VERSION_1 not offered (0x%llx)", d->slot,
			    (unsigned long long)d->offered);
	d->features = d->offered & (wanted | VIRTIO_BIT(VIRTIO_F_VERSION_1));
	write_features(d, d->features);
	virtio__write(d, VIRTIO_MMIO_STATUS, ok);
	s = virtio__read(d, VIRTIO_MMIO_STATUS);
	if (s != ok)
		return fail("slot %u: status 0x%x after FEATURES_OK (features 0x%llx)", d->slot, s,
			    (unsigned long long)d->features);
	memset(&rings, 0, sizeof(rings));
	d->desc = rings.desc;
	d->avail = &rings.avail;
	d->used = &rings.used;
	d->avail_idx = d->used_idx = 0;
	return NULL;
}

static void write_addr(const struct virtio_dev *d, uint32_t reg, uint64_t addr)
{
	virtio__write(d, reg, (uint32_t)addr);
	virtio__write(d, reg + 4, (uint32_t)(addr >> 32));
}

void virtio__set_queue(struct virtio_dev *d, uint64_t desc, uint64_t avail, uint64_t used)
{
	virtio__write(d, VIRTIO_MMIO_QUEUE_NUM, VQ_SIZE);
	write_addr(d, VIRTIO_MMIO_QUEUE_DESC, desc);
	write_addr(d, VIRTIO_MMIO_QUEUE_DRIVER, avail);
	write_addr(d, VIRTIO_MMIO_QUEUE_DEVICE, used);
	virtio__write(d, VIRTIO_MMIO_QUEUE_READY, 1);
}

const char *virtio__init(struct virtio_dev *d, uint64_t wanted)
{
	const uint32_t ok = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	const char *why = virtio__init_features(d, wanted);
	uint32_t max, s;

	if (why)
		return why;
	virtio__write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
	if (virtio__read(d, VIRTIO_MMIO_QUEUE_READY))
		return fail("slot %u: queue 0 is ready after a reset", d->slot);
	max = virtio__read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max < VQ_SIZE)
		return fail("slot %u: QueueNumMax %u < %u", d->slot, max, VQ_SIZE);
	virtio__set_queue(d, (uintptr_t)d->desc, (uintptr_t)d->avail, (uintptr_t)d->used);
	virtio__write(d, VIRTIO_MMIO_STATUS, ok);
	s = virtio__read(d, VIRTIO_MMIO_STATUS);
	if (s != ok)
		return fail("slot %u: status 0x%x after DRIVER_OK", d->slot, s);
	return NULL;
}

uint32_t virtio__config32(const struct virtio_dev *d, uint32_t off)
{
	return virtio__read(d, VIRTIO_MMIO_CONFIG + off);
}

uint64_t virtio__config64(const struct virtio_dev *d, uint32_t off)
{
	uint64_t lo = 0, hi = 0;

	for (unsigned int i = 0; i < CONFIG_GEN_TRIES; i++) {
		uint32_t gen = virtio__read(d, VIRTIO_MMIO_CONFIG_GEN);

		lo = virtio__config32(d, off);
		hi = virtio__config32(d, off + 4);
		if (virtio__read(d, VIRTIO_MMIO_CONFIG_GEN) == gen)
			break;
	}
	return hi << 32 | lo;
}

void virtio__publish(struct virtio_dev *d, uint16_t head)
{
	d->avail->ring[d->avail_idx % VQ_SIZE] = head;
	barrier(); /* x86 keeps stores in order: the entry is visible before the index */
	d->avail_idx++;
	*(volatile uint16_t *)&d->avail->idx = d->avail_idx;
}

void virtio__kick(struct virtio_dev *d, bool force)
{
	if (!force && virtio__has(d, VIRTIO_F_EVENT_IDX)) {
		uint16_t event;

		/* the avail->idx store must be visible before avail_event is read */
		__asm__ volatile("mfence" : : : "memory");
		event = *(volatile uint16_t *)&d->used->avail_event;
		/* one buffer since the last kick: notify iff avail_event == the old idx */
		if (event != (uint16_t)(d->avail_idx - 1))
			return;
	}
	virtio__write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* Lays out bufs as descriptors t[first], t[first+1], ... (mod size), chained. */
static void fill_chain(struct vq_desc *t, unsigned int size, unsigned int first,
		       const struct virtio_buf *bufs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		unsigned int at = (first + i) % size, next = (first + i + 1) % size;

		t[at].addr = (uintptr_t)bufs[i].addr;
		t[at].len = bufs[i].len;
		t[at].flags = (uint16_t)((bufs[i].write ? VQ_DESC_F_WRITE : 0) |
					 (i + 1 < n ? VQ_DESC_F_NEXT : 0));
		t[at].next = (uint16_t)(i + 1 < n ? next : 0);
	}
}

static int wait_used(struct virtio_dev *d, uint16_t head, struct virtio_done *done)
{
	volatile uint16_t *idx = &d->used->idx;
	uint64_t start = rdtsc();
	struct vq_used_elem e;

	while (*idx == d->used_idx) {
		if (rdtsc() - start > WAIT_TSC_CYCLES)
			return -1;
	}
	barrier(); /* x86 keeps loads in order: the element is read after the index */
	e = *(volatile struct vq_used_elem *)&d->used->ring[d->used_idx % VQ_SIZE];
	d->used_idx++;
	done->len = e.len;
	done->isr = virtio__read(d, VIRTIO_MMIO_INT_STATUS);
	if (done->isr)
		virtio__write(d, VIRTIO_MMIO_INT_ACK, done->isr);
	return e.id == head ? 0 : -1;
}

int virtio__request(struct virtio_dev *d, const struct virtio_buf *bufs, unsigned int n,
		    bool indirect, bool quiet, struct virtio_done *done)
{
	/* one request at a time, so every descriptor is free: start where the last ended */
	uint16_t head = d->avail_idx % VQ_SIZE;

	if (!n || n > VIRTIO_CHAIN_MAX)
		return -1;
	if (indirect) {
		fill_chain(indirect_table, VIRTIO_CHAIN_MAX, 0, bufs, n);
		d->desc[head] = (struct vq_desc){ (uintptr_t)indirect_table,
						  (uint32_t)(n * sizeof(struct vq_desc)),
						  VQ_DESC_F_INDIRECT, 0 };
	} else {
		fill_chain(d->desc, VQ_SIZE, head, bufs, n);
	}
	if (virtio__has(d, VIRTIO_F_EVENT_IDX))
		d->avail->used_event = (uint16_t)(quiet ? d->used_idx + 0x8000 : d->used_idx);
	else
		d->avail->flags = quiet ? VQ_AVAIL_F_NO_INTERRUPT : 0;
	virtio__publish(d, head);
	virtio__kick(d, false);
	return wait_used(d, head, done);
}

/* ---- devices with several queues ---- */

const char *virtio__queue_setup(struct virtio_dev *d, struct virtio_queue *q, uint16_t index)
{
	struct vq_rings *r;
	uint32_t max;

	if (index >= VIRTIO_QUEUES_MAX)
		return fail("slot %u: queue %u: the driver has no rings for it", d->slot, index);
	r = &queue_rings[index];
	memset(r, 0, sizeof(*r));
	*q = (struct virtio_queue){ .index = index, .desc = r->desc, .avail = &r->avail,
				    .used = &r->used };
	/* a polling driver: no interrupts, either way */
	r->avail.flags = VQ_AVAIL_F_NO_INTERRUPT;
	r->avail.used_event = 0x8000;
	virtio__write(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (virtio__read(d, VIRTIO_MMIO_QUEUE_READY))
		return fail("slot %u: queue %u is ready after a reset", d->slot, index);
	max = virtio__read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max < VQ_SIZE)
		return fail("slot %u: queue %u: QueueNumMax %u < %u", d->slot, index, max, VQ_SIZE);
	virtio__set_queue(d, (uintptr_t)q->desc, (uintptr_t)q->avail, (uintptr_t)q->used);
	if (virtio__read(d, VIRTIO_MMIO_QUEUE_READY) != 1)
		return fail("slot %u: queue %u: QueueReady reads %u", d->slot, index,
			    virtio__read(d, VIRTIO_MMIO_QUEUE_READY));
	return NULL;
}

const char *virtio__driver_ok(struct virtio_dev *d)
{
	const uint32_t ok = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	uint32_t s;

	virtio__write(d, VIRTIO_MMIO_STATUS, ok);
	s = virtio__read(d, VIRTIO_MMIO_STATUS);
	if (s != ok)
		return fail("slot %u: status 0x%x after DRIVER_OK", d->slot, s);
	return NULL;
}

void virtio__queue_chain(struct virtio_queue *q, uint16_t head, const struct virtio_buf *bufs,
			 unsigned int n)
{
	fill_chain(q->desc, VQ_SIZE, head, bufs, n);
}

void virtio__queue_publish(struct virtio_queue *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % VQ_SIZE] = head;
	barrier();
	q->avail_idx++;
	*(volatile uint16_t *)&q->avail->idx = q->avail_idx;
}

/* vring_need_event() (2.7.10): has new_idx passed event since old? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* As Linux's virtqueue_kick_prepare(): only what the device asked for. */
void virtio__queue_kick(const struct virtio_dev *d, struct virtio_queue *q)
{
	uint16_t old = q->kicked_idx;
	bool kick;

	/* the avail->idx store must be visible before the device's fields are read */
	__asm__ volatile("mfence" : : : "memory");
	q->kicked_idx = q->avail_idx;
	if (virtio__has(d, VIRTIO_F_EVENT_IDX))
		kick = need_event(*(volatile uint16_t *)&q->used->avail_event, q->avail_idx, old);
	else
		kick = !(*(volatile uint16_t *)&q->used->flags & VQ_USED_F_NO_NOTIFY);
	if (kick)
		virtio__write(d, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

bool virtio__queue_take(struct virtio_queue *q, struct vq_used_elem *e)
{
	if (*(volatile uint16_t *)&q->used->idx == q->used_idx)
		return false;
	barrier(); /* x86 keeps loads in order: the element is read after the index */
	*e = *(volatile struct vq_used_elem *)&q->used->ring[q->used_idx % VQ_SIZE];
	q->used_idx++;
	return true;
}

int virtio__queue_wait(struct virtio_queue *q, struct vq_used_elem *e, uint64_t cycles)
{
	uint64_t start = rdtsc();

	while (!virtio__queue_take(q, e)) {
		if (rdtsc() - start > cycles)
			return -1;
		cpu_relax();
	}
	return 0;
}

static int send_wait(const struct virtio_dev *d, struct virtio_queue *q, uint16_t head,
		     uint32_t *len)
{
	struct vq_used_elem e;

	virtio__queue_publish(q, head);
	virtio__queue_kick(d, q);
	if (virtio__queue_wait(q, &e, WAIT_TSC_CYCLES) || e.id != head)
		return -1;
	*len = e.len;
	return 0;
}

int virtio__queue_send(const struct virtio_dev *d, struct virtio_queue *q,
		       const struct virtio_buf *bufs, unsigned int n, uint32_t *len)
{
	uint16_t head = q->avail_idx % VQ_SIZE;

	if (!n || n > VQ_SIZE)
		return -1;
	fill_chain(q->desc, VQ_SIZE, head, bufs, n);
	return send_wait(d, q, head, len);
}

uint16_t virtio__queue_post(const struct virtio_dev *d, struct virtio_queue *q,
			    const struct virtio_buf *bufs, unsigned int n)
{
	uint16_t head = q->avail_idx % VQ_SIZE;

	fill_chain(q->desc, VQ_SIZE, head, bufs, n);
	virtio__queue_publish(q, head);
	virtio__queue_notify(d, q);
	return head;
}

bool virtio__cmdline_uint(const char *key, uint64_t max, uint64_t *out)
{
	size_t klen = strlen(key);
	bool found = false;

	for (const char *s = boot_info.cmdline; *s;) {
		size_t len = 0;

		while (*s == ' ')
			s++;
		while (s[len] && s[len] != ' ')
			len++;
		if (len > klen && str_has_prefix(s, key))
			found = parse_uint(s + klen, len - klen, max, out);
		s += len;
	}
	return found;
}

int virtio__queue_send_indirect(const struct virtio_dev *d, struct virtio_queue *q,
				const struct virtio_buf *bufs, unsigned int n, uint32_t *len)
{
	uint16_t head = q->avail_idx % VQ_SIZE;

	if (!n || n > VIRTIO_CHAIN_MAX)
		return -1;
	fill_chain(queue_indirect, VIRTIO_CHAIN_MAX, 0, bufs, n);
	q->desc[head] = (struct vq_desc){ (uintptr_t)queue_indirect,
					  (uint32_t)(n * sizeof(struct vq_desc)),
					  VQ_DESC_F_INDIRECT, 0 };
	return send_wait(d, q, head, len);
}

uint64_t virtio__ram_top(void)
{
	uint64_t top = 0;

	for (unsigned int i = 0; i < boot_info.nr_regions; i++) {
		const struct mem_region *r = &boot_info.regions[i];

		if (r->type == E820_RAM && r->addr + r->size > top)
			top = r->addr + r->size;
	}
	return top;
}

void virtio__queue_notify(const struct virtio_dev *d, const struct virtio_queue *q)
{
	__asm__ volatile("mfence" : : : "memory");
	virtio__write(d, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

const char *virtio__expect_needs_reset(const struct virtio_dev *d, const char *what,
				       const char *name)
{
	uint32_t s = virtio__wait_status(d, VIRTIO_STATUS_NEEDS_RESET);
	uint32_t isr = virtio__read(d, VIRTIO_MMIO_INT_STATUS);

	report("%s %s status=0x%x isr=0x%x", what, name, s, isr);
	if (!(s & VIRTIO_STATUS_NEEDS_RESET))
		return fail("%s: no DEVICE_NEEDS_RESET (status 0x%x)", name, s);
	if (!(isr & VIRTIO_INT_CONFIG))
		return fail("%s: no config-change interrupt (InterruptStatus 0x%x)", name, isr);
	return NULL;
}

void virtio__net_mac(const struct virtio_dev *d, uint8_t mac[ETH_ALEN])
{
	uint32_t lo = virtio__config32(d, VIRTIO_NET_CFG_MAC);
	uint32_t hi = virtio__config32(d, VIRTIO_NET_CFG_MAC + 4);

	memcpy(mac, &lo, 4);
	memcpy(mac + 4, &hi, 2);
}

int virtio__rng_read(struct virtio_dev *d, void *buf, uint32_t len, uint32_t *got)
{
	struct virtio_buf b = { buf, len, true };
	struct virtio_done done;

	if (virtio__request(d, &b, 1, false, false, &done))
		return -1;
	*got = done.len;
	return 0;
}

void virtio__hex(char *out, const void *p, unsigned int n)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = p;

	for (unsigned int i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

int virtio__blk_request(struct virtio_dev *d, uint32_t type, uint64_t sector,
			const struct virtio_buf *data, unsigned int n, bool indirect, bool quiet,
			struct virtio_done *done)
{
	struct virtio_buf bufs[VIRTIO_CHAIN_MAX];

	if (n + 2 > VIRTIO_CHAIN_MAX)
		return -1;
	blk_hdr = (struct virtio_blk_hdr){ type, 0, sector };
	blk_status = 0xff;
	bufs[0] = (struct virtio_buf){ &blk_hdr, sizeof(blk_hdr), false };
	for (unsigned int i = 0; i < n; i++)
		bufs[i + 1] = data[i];
	bufs[n + 1] = (struct virtio_buf){ &blk_status, 1, true };
	if (virtio__request(d, bufs, n + 2, indirect, quiet, done))
		return -1;
	return *(volatile uint8_t *)&blk_status;
}

/* Adds y to x byte by byte, without carries between bytes. */
static uint64_t add_bytes(uint64_t x, uint64_t y)
{
	return ((x & BYTES_7F) + (y & BYTES_7F)) ^ ((x ^ y) & ~BYTES_7F);
}

/* The first 8 bytes of the pattern for this sector, as a little-endian word. */
static uint64_t pattern_start(uint64_t sector, unsigned int mul, unsigned int add)
{
	return add_bytes(BYTES_RAMP, (uint8_t)(sector * mul + add) * BYTES_01);
}

void virtio__pattern_fill(void *sector_buf, uint64_t sector, unsigned int mul, unsigned int add)
{
	typedef uint64_t __attribute__((may_alias)) word_t;
	word_t *p = sector_buf;
	uint64_t w = pattern_start(sector, mul, add);

	for (unsigned int i = 0; i < VIRTIO_BLK_SECTOR / 8; i++) {
		p[i] = w;
		w = add_bytes(w, 8 * BYTES_01);
	}
}

bool virtio__pattern_check(const void *sector_buf, uint64_t sector, unsigned int mul,
			   unsigned int add)
{
	typedef uint64_t __attribute__((may_alias)) word_t;
	const word_t *p = sector_buf;
	uint64_t w = pattern_start(sector, mul, add);

	for (unsigned int i = 0; i < VIRTIO_BLK_SECTOR / 8; i++) {
		if (p[i] != w)
			return false;
		w = add_bytes(w, 8 * BYTES_01);
	}
	return true;
}
