/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny virtio-mmio (version 2) driver for the test guest: discovery in Ember's device
 * window, the initialisation sequence, one split virtqueue, a request helper that polls
 * the used ring, and virtio-blk requests; for devices with several queues (virtio-net,
 * virtio-vsock), up to VIRTIO_QUEUES_MAX queues driven as Linux drives them (struct
 * virtio_queue). From the virtio 1.2 spec: 2 (basic facilities, split rings), 4.2 (MMIO),
 * 5.1 (network), 5.2 (block), 5.4 (entropy), 5.5 (balloon), 5.10 (socket).
 * docs/test-guest.md describes it.
 *
 * The queues' memory is shared by every device: a test drives one device at a time and
 * resets it (virtio__reset) before it moves on to the next.
 */
#ifndef EMBER_GUEST_VIRTIO_H
#define EMBER_GUEST_VIRTIO_H

#include "guest.h"

/* Where Ember puts its devices: slot i at base + i * stride. */
#define VIRTIO_MMIO_BASE 0xd0001000ULL
#define VIRTIO_MMIO_STRIDE 0x1000ULL
#define VIRTIO_MMIO_SLOTS 32

/* Registers (4.2.2); all but the config space are 32-bit. */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INT_STATUS 0x060
#define VIRTIO_MMIO_INT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC 0x080   /* low; high at +4 */
#define VIRTIO_MMIO_QUEUE_DRIVER 0x090 /* the available ring */
#define VIRTIO_MMIO_QUEUE_DEVICE 0x0a0 /* the used ring */
#define VIRTIO_MMIO_CONFIG_GEN 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC_VALUE 0x74726976 /* "virt" */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* Device status (2.1) and InterruptStatus bits (4.2.2). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80
#define VIRTIO_INT_USED 0x1
#define VIRTIO_INT_CONFIG 0x2

/* Feature bits (6, 5.2.3). */
#define VIRTIO_BIT(n) (1ULL << (n))
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

/* The split virtqueue (2.7). The guest uses queue 0 with VQ_SIZE entries. */
#define VQ_SIZE 16
#define VQ_DESC_F_NEXT 1
#define VQ_DESC_F_WRITE 2
#define VQ_DESC_F_INDIRECT 4
#define VQ_AVAIL_F_NO_INTERRUPT 1
/* The longest chain virtio__request builds, directly or in an indirect table. */
#define VIRTIO_CHAIN_MAX VQ_SIZE

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VQ_SIZE];
	uint16_t used_event; /* read by the device with EVENT_IDX */
};

struct vq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vq_used {
	uint16_t flags;
	uint16_t idx;
	struct vq_used_elem ring[VQ_SIZE];
	uint16_t avail_event; /* written by the device with EVENT_IDX */
};

#define VQ_USED_F_NO_NOTIFY 1

struct virtio_dev {
	uint64_t base;
	unsigned int slot;
	uint64_t offered;  /* DeviceFeatures */
	uint64_t features; /* negotiated */
	struct vq_desc *desc;
	struct vq_avail *avail;
	struct vq_used *used;
	uint16_t avail_idx; /* the driver's copy of avail->idx */
	uint16_t used_idx;  /* used ring entries taken */
};

/* One buffer of a chain, in chain order. */
struct virtio_buf {
	const void *addr;
	uint32_t len;
	bool write; /* device-writable */
};

/* How a request ended. */
struct virtio_done {
	uint32_t len; /* bytes the device says it wrote (the used element's len) */
	uint32_t isr; /* InterruptStatus read once after completion, then ACKed */
};

static inline uint32_t virtio__read(const struct virtio_dev *d, uint32_t reg)
{
	return mmio_read32(d->base + reg);
}

static inline void virtio__write(const struct virtio_dev *d, uint32_t reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

static inline bool virtio__has(const struct virtio_dev *d, unsigned int bit)
{
	return d->features & VIRTIO_BIT(bit);
}

/*
 * The devices with this DeviceID (magic "virt", version 2) in the window, in slot order:
 * fills up to max entries of devs (base and slot) and returns how many there are. The
 * window is scanned once; later calls use what the first one found.
 */
unsigned int virtio__find(uint32_t device_id, struct virtio_dev *devs, unsigned int max);

/* Writes 0 to Status and waits (bounded) until it reads 0. 0, or -1 on a timeout. */
int virtio__reset(struct virtio_dev *d);

/*
 * Reset, ACKNOWLEDGE, DRIVER, the features (offered & wanted, with VERSION_1), FEATURES_OK
 * read back, the shared rings zeroed. NULL, or why it failed. The queue is not set up.
 */
const char *virtio__init_features(struct virtio_dev *d, uint64_t wanted);
/* Points queue 0 (VQ_SIZE entries) at these rings, unchecked, and sets QueueReady. */
void virtio__set_queue(struct virtio_dev *d, uint64_t desc, uint64_t avail, uint64_t used);
/* All of it: virtio__init_features, queue 0 on the shared rings, DRIVER_OK. */
const char *virtio__init(struct virtio_dev *d, uint64_t wanted);

/* Config space (4.2.2.2, 2.5.1): 32-bit reads; 64-bit fields under ConfigGeneration. */
uint32_t virtio__config32(const struct virtio_dev *d, uint32_t off);
uint64_t virtio__config64(const struct virtio_dev *d, uint32_t off);

/*
 * Sends n buffers as one chain, through an indirect table when `indirect` (the caller
 * checks it was negotiated), and waits (bounded) for the device to use it. `quiet` asks
 * for no interrupt (used_event behind us with EVENT_IDX, else VQ_AVAIL_F_NO_INTERRUPT);
 * otherwise this request asks for one. 0 with *done filled, or -1 on a timeout or when
 * the used element names another chain.
 */
int virtio__request(struct virtio_dev *d, const struct virtio_buf *bufs, unsigned int n,
		    bool indirect, bool quiet, struct virtio_done *done);

/* Low level, for hand-made chains in d->desc: put head on the avail ring. */
void virtio__publish(struct virtio_dev *d, uint16_t head);
/* Notifies queue 0; with EVENT_IDX only if avail_event asks for it, unless `force`. */
void virtio__kick(struct virtio_dev *d, bool force);
/* Waits (bounded) for a Status bit; returns the last value read. */
uint32_t virtio__wait_status(const struct virtio_dev *d, uint32_t bit);

/* ---- devices with several queues (virtio-net, virtio-vsock) ---- */

/* How long the waits below take at most, in TSC cycles: about a second. */
#define VIRTIO_WAIT_TSC 2000000000ULL
#define VIRTIO_QUEUES_MAX 4

/* One queue of VQ_SIZE entries on its own rings (queue i always uses the same memory). */
struct virtio_queue {
	uint16_t index;
	struct vq_desc *desc;
	struct vq_avail *avail;
	struct vq_used *used;
	uint16_t avail_idx;  /* the driver's copy of avail->idx */
	uint16_t used_idx;   /* used ring entries taken */
	uint16_t kicked_idx; /* avail_idx when the device was last considered for a kick */
};

/*
 * After virtio__init_features: sets queue `index` up on its rings (zeroed) as Linux does:
 * QueueSel, QueueReady must read 0, QueueNumMax >= VQ_SIZE, QueueNum, addresses, QueueReady.
 * With EVENT_IDX negotiated, the driver asks for no interrupts (used_event far behind);
 * without it, VQ_AVAIL_F_NO_INTERRUPT: this driver polls. NULL, or why it failed.
 */
const char *virtio__queue_setup(struct virtio_dev *d, struct virtio_queue *q, uint16_t index);
/* The end of the highest RAM region in the memory map: the first address past guest RAM. */
uint64_t virtio__ram_top(void);
/* Notifies queue q, whatever the device asked for. */
void virtio__queue_notify(const struct virtio_dev *d, const struct virtio_queue *q);
/*
 * After a hostile chain: waits (bounded) for DEVICE_NEEDS_RESET, reports
 * "<what> <name> status=0x.. isr=0x.." and checks that a config-change interrupt came.
 * NULL, or why not.
 */
const char *virtio__expect_needs_reset(const struct virtio_dev *d, const char *what,
				       const char *name);
/* Sets DRIVER_OK and checks Status reads back without NEEDS_RESET. NULL, or why not. */
const char *virtio__driver_ok(struct virtio_dev *d);
/* Lays bufs out as a chain at descriptors head, head+1, ... (mod VQ_SIZE), unpublished. */
void virtio__queue_chain(struct virtio_queue *q, uint16_t head, const struct virtio_buf *bufs,
			 unsigned int n);
/* Puts head on the avail ring. */
void virtio__queue_publish(struct virtio_queue *q, uint16_t head);
/* Notifies the queue if the device asked for it (avail_event, or VQ_USED_F_NO_NOTIFY). */
void virtio__queue_kick(const struct virtio_dev *d, struct virtio_queue *q);
/* Takes the next used element if there is one. */
bool virtio__queue_take(struct virtio_queue *q, struct vq_used_elem *e);
/* Waits up to `cycles` TSC cycles for the next used element. 0, or -1 on a timeout. */
int virtio__queue_wait(struct virtio_queue *q, struct vq_used_elem *e, uint64_t cycles);
/*
 * Sends bufs as one chain (at head avail_idx % VQ_SIZE: the queue must have no chain in
 * flight) and waits for the device to use it. 0 with *len the used length, or -1 on a
 * timeout or when the used element names another chain.
 */
int virtio__queue_send(const struct virtio_dev *d, struct virtio_queue *q,
		       const struct virtio_buf *bufs, unsigned int n, uint32_t *len);
/*
 * Lays bufs out as one chain (at head avail_idx % VQ_SIZE), publishes it and notifies the
 * queue, without waiting: returns the head (for a buffer the device keeps, like a balloon's
 * stats buffer, or one a hostile test watches).
 */
uint16_t virtio__queue_post(const struct virtio_dev *d, struct virtio_queue *q,
			    const struct virtio_buf *bufs, unsigned int n);
/* The value of `<key><unsigned>` on the command line (key ends with '='), if there. */
bool virtio__cmdline_uint(const char *key, uint64_t max, uint64_t *out);
/* The same through the indirect table (the caller checks INDIRECT_DESC was negotiated). */
int virtio__queue_send_indirect(const struct virtio_dev *d, struct virtio_queue *q,
				const struct virtio_buf *bufs, unsigned int n, uint32_t *len);

/* ---- virtio-net (5.1) ---- */
#define VIRTIO_NET_QUEUE_RX 0
#define VIRTIO_NET_QUEUE_TX 1
#define VIRTIO_NET_CFG_MAC 0x00
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define ETH_HDR_BYTES 14
#define ETH_ALEN 6

/* virtio_net_hdr_v1: 12 bytes with VERSION_1, num_buffers included. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

/* The MAC in the config space (VIRTIO_NET_F_MAC). */
void virtio__net_mac(const struct virtio_dev *d, uint8_t mac[ETH_ALEN]);

/* ---- virtio-vsock (5.10) ---- */
#define VIRTIO_VSOCK_QUEUE_RX 0
#define VIRTIO_VSOCK_QUEUE_TX 1
#define VIRTIO_VSOCK_QUEUE_EVENT 2
#define VIRTIO_VSOCK_CFG_CID 0x00
#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7
#define VSOCK_SHUTDOWN_RCV 1
#define VSOCK_SHUTDOWN_SEND 2

struct virtio_vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

/* ---- virtio-rng (5.4) ---- */

/* Ember's cap on one entropy request (src/virtio/rng.h). */
#define VIRTIO_RNG_MAX_REQUEST (64 * 1024)

/*
 * One entropy request on queue 0 (after virtio__init): len bytes at buf, one device-writable
 * buffer. 0 with *got the used length, or -1 (no answer, or another chain came back).
 */
int virtio__rng_read(struct virtio_dev *d, void *buf, uint32_t len, uint32_t *got);
/* n bytes at p as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void virtio__hex(char *out, const void *p, unsigned int n);

/* ---- virtio-balloon (5.5) ---- */
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_REPORTING 5
#define VIRTIO_BALLOON_CFG_NUM_PAGES 0x00
#define VIRTIO_BALLOON_CFG_ACTUAL 0x04
#define VIRTIO_BALLOON_S_MEMFREE 4
#define VIRTIO_BALLOON_S_MEMTOT 5

struct virtio_balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

/* ---- virtio-blk (5.2) ---- */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_CFG_CAPACITY 0x00
#define VIRTIO_BLK_CFG_SEG_MAX 0x0c

struct virtio_blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/*
 * One block request: the header, then the data buffers, then a status byte. Returns the
 * status byte the device wrote (0xff if it wrote none), or -1 (virtio__request failed).
 */
int virtio__blk_request(struct virtio_dev *d, uint32_t type, uint64_t sector,
			const struct virtio_buf *data, unsigned int n, bool indirect, bool quiet,
			struct virtio_done *done);

/*
 * The disk patterns (docs/test-guest.md): byte k of sector s is (s * mul + add + k) & 0xff.
 * The host writes mul 7, add 0 everywhere; virtio_blk writes mul 13, add 1.
 */
#define BLK_PATTERN_HOST 7, 0
#define BLK_PATTERN_GUEST 13, 1
void virtio__pattern_fill(void *sector_buf, uint64_t sector, unsigned int mul, unsigned int add);
bool virtio__pattern_check(const void *sector_buf, uint64_t sector, unsigned int mul,
			   unsigned int add);

#endif
