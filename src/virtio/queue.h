/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueues (virtio 1.x, 2.6): the device side. The rings live in guest memory,
 * which is hostile: every address, length and index is checked through gmem__ptr(), chains
 * are bounded and loops are caught. A queue that breaks the rules returns -EINVAL; the
 * transport then sets DEVICE_NEEDS_RESET and counts it.
 */
#ifndef EMBER_VIRTIO_QUEUE_H
#define EMBER_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"

#define VIRTQ_MAX_SIZE 256   /* the largest queue Ember offers (QueueNumMax) */
/*
 * Buffers in one chain, those in an indirect table included; the descriptor that points at
 * an indirect table is not a buffer and does not count (virtio-blk's seg_max of
 * VIRTQ_CHAIN_MAX - 2 makes Linux send tables of exactly VIRTQ_CHAIN_MAX entries).
 */
#define VIRTQ_CHAIN_MAX 256

/* Descriptor flags and ring flags, from the spec. */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq {
	/* set by the transport from the driver's registers */
	uint16_t size; /* a power of two, 1..VIRTQ_MAX_SIZE */
	uint64_t desc_gpa;
	uint64_t avail_gpa;
	uint64_t used_gpa;
	bool ready;
	bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_F_INDIRECT_DESC negotiated */
	const struct gmem *gm;

	/* device state */
	uint16_t last_avail; /* the next avail ring entry to take */
	uint16_t used_idx;   /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx when the driver was last interrupted (event_idx) */
	bool signalled_used_valid;
};

struct vq_buf {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

/* One descriptor chain, flattened (indirect tables expanded), in order. */
struct vq_chain {
	uint16_t head; /* what goes back in the used ring */
	unsigned int nr;
	struct vq_buf bufs[VIRTQ_CHAIN_MAX];
	uint64_t readable; /* total bytes of the device-readable buffers */
	uint64_t writable; /* total bytes of the device-writable buffers */
};

/* One chain given back: its head, and the bytes the device wrote into it. */
struct vq_used {
	uint16_t head;
	uint32_t len;
};

/*
 * Called when the driver sets QueueReady: checks the size and that the three rings are
 * aligned (desc 16, avail 2, used 4) and lie wholly in guest RAM. 0 or -EINVAL.
 */
int virtq__check(const struct virtq *q);
/* Back to the reset state (keeps gm). */
void virtq__reset(struct virtq *q);

/*
 * Takes the next available chain. 1 with *c filled, 0 when the ring is empty, -EINVAL when
 * the driver broke a rule (an avail index that moved by more than the queue size, a head
 * or next index out of range, a descriptor outside guest RAM or whose address + length
 * wraps, a chain longer than VIRTQ_CHAIN_MAX or the queue size, a loop, a nested or
 * empty-length or misaligned indirect table, an indirect descriptor with NEXT when that
 * is not allowed, a readable buffer after a writable one, a zero-length buffer,
 * more than 2^32 bytes in total (2.7.5.2)), and on a queue that is not ready. On -EINVAL
 * the queue must not be used until reset.
 */
int virtq__pop(struct virtq *q, struct vq_chain *c);
/*
 * Gives n chains back, published by one used->idx store (a frame over several chains): the
 * driver sees all n or none of them. 0, also for n == 0 (nothing is written), or -EINVAL
 * on a queue that is not ready, n > the queue size, or a head out of range; then nothing
 * is published.
 */
int virtq__push_n(struct virtq *q, const struct vq_used *u, unsigned int n);
/* Gives a chain back: one used ring entry with len bytes written. 0 or -EINVAL. */
int virtq__push(struct virtq *q, uint16_t head, uint32_t len);
/*
 * After pushes: does the driver want an interrupt? With event_idx, from used_event and the
 * last signalled index (and records that it is signalled); otherwise unless the driver set
 * VIRTQ_AVAIL_F_NO_INTERRUPT.
 */
bool virtq__should_signal(struct virtq *q);
/*
 * Before waiting for more: with event_idx, write avail_event (last_avail) so the driver
 * kicks for the next buffer; returns true if buffers arrived meanwhile (check again).
 */
bool virtq__arm_notify(struct virtq *q);
/* Number of chains the driver has made available and we have not taken (0 on a bad index). */
uint16_t virtq__pending(const struct virtq *q);

#endif
