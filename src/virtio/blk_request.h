/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk requests (virtio 1.x, 5.2.6): turning a descriptor chain into a request the
 * I/O engines can run, with every check a hostile driver needs. Pure: no I/O here.
 */
#ifndef EMBER_VIRTIO_BLK_REQUEST_H
#define EMBER_VIRTIO_BLK_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/queue.h"
#include "vmm/memory.h"

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_ID_BYTES 20
#define BLK_HDR_BYTES 16

enum blk_req_kind {
	BLK_REQ_IN,
	BLK_REQ_OUT,
	BLK_REQ_FLUSH,
	BLK_REQ_GET_ID,
	BLK_REQ_UNSUPPORTED, /* a type Ember does not know: answer UNSUPP */
	BLK_REQ_BAD,	     /* well-formed chain, bad request (range, size, direction): IOERR */
};

struct blk_request {
	enum blk_req_kind kind;
	uint16_t head;
	uint64_t offset;   /* bytes into the disk (sector * 512) */
	uint64_t len;	   /* data bytes */
	unsigned int niov; /* data buffers, host addresses, in order */
	struct iovec iov[VIRTQ_CHAIN_MAX];
	uint8_t *status;   /* the status byte, in guest memory */
};

/*
 * Parses a chain: header (16 readable bytes, possibly split over buffers), data buffers,
 * and a last writable buffer whose last byte is the status. disk_bytes is the disk's size
 * (requests past it are BLK_REQ_BAD), read_only makes OUT BLK_REQ_BAD; for GET_ID, iov
 * maps at most VIRTIO_BLK_ID_BYTES of the writable data. Returns 0 with *r filled (kind
 * may be BAD or UNSUPPORTED: still answered through r->status), or -EINVAL when the chain
 * is so malformed that no status can be written (no writable last byte, header missing or
 * unreadable): the transport then resets the device.
 */
int blk_request__parse(const struct gmem *gm, const struct vq_chain *c, uint64_t disk_bytes,
		       bool read_only, struct blk_request *r);

#endif
