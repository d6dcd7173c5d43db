// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net's snapshots: its virtio-mmio, virtio-net and rate-limiter sections. See
 * virtio_net__save() in net.h for what is given back and what is lost.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "virtio/net.h"
#include "virtio/persist.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define LABEL_MAX (VM_DEVICE_ID_MAX + 48)

int virtio_net__save(struct virtio_net *n, struct snapshot_file_writer *w)
{
	uint16_t back[NET_QUEUES];
	int ret;

	virtio_mmio__lock(&n->t);
	back[NET_QUEUE_RX] = (uint16_t)n->rx.nr;
	back[NET_QUEUE_TX] = n->tx_pending ? 1 : 0;
	virtio_mmio__save(&n->t, n->id, back, w); /* the writer's first error sticks */
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_VIRTIO_NET, SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_str(w, n->id);
	snapshot_file__put_u8(w, n->has_mac);
	snapshot_file__put_bytes(w, n->mac, sizeof(n->mac));
	snapshot_file__put_str(w, n->tap.name);
	snapshot_file__put_u16(w, back[NET_QUEUE_RX]);
	snapshot_file__put_u8(w, (uint8_t)back[NET_QUEUE_TX]);
	snapshot_file__put_u8(w, n->held != NET_RX_HELD_NONE);
	ret = snapshot_file__end_section(w);
	if (!ret)
		ret = rate_limiter__save(&n->rx_rl, n->id, RATE_LIMITER_NET_RX, w);
	if (!ret)
		ret = rate_limiter__save(&n->tx_rl, n->id, RATE_LIMITER_NET_TX, w);
	virtio_mmio__unlock(&n->t);
	if (ret)
		return error__set_default(ret, "network interface %s: cannot save its state", n->id);
	return 0;
}

static void format_mac(char *buf, size_t size, bool has, const uint8_t *mac)
{
	if (!has)
		snprintf(buf, size, "none");
	else
		snprintf(buf, size, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
			 mac[3], mac[4], mac[5]);
}

static int check_mac(const struct virtio_net *n, const char *label, uint8_t has,
		     const uint8_t *mac)
{
	char saved[24], ours[24];

	if (has > 1)
		return error__set(-EINVAL, "%s: the snapshot's MAC flag %u is not 0 or 1", label,
				  has);
	if (has == n->has_mac && (!has || !memcmp(mac, n->mac, sizeof(n->mac))))
		return 0;
	format_mac(saved, sizeof(saved), has, mac);
	format_mac(ours, sizeof(ours), n->has_mac, n->mac);
	return error__set(-EINVAL, "%s: the snapshot's guest MAC was %s, this one's is %s", label,
			  saved, ours);
}

/* The virtio-net section: the same interface, as the guest sees it. */
static int check_net_section(const struct virtio_net *n, const char *label,
			     const struct snapshot_file_reader *r)
{
	struct snapshot_file_cursor c;
	char tap[64];
	uint8_t has, mac[6], tx_back, dropped;
	uint16_t rx_back;
	int ret = virtio_persist__find(r, SNAPSHOT_SECTION_VIRTIO_NET, n->id, -1, false, label,
				       &c);

	if (!ret)
		ret = snapshot_file__get_u8(&c, &has);
	if (!ret)
		ret = snapshot_file__get_bytes(&c, mac, sizeof(mac));
	if (!ret)
		ret = snapshot_file__get_str(&c, tap, sizeof(tap));
	if (!ret)
		ret = snapshot_file__get_u16(&c, &rx_back);
	if (!ret)
		ret = snapshot_file__get_u8(&c, &tx_back);
	if (!ret)
		ret = snapshot_file__get_u8(&c, &dropped);
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	if (ret)
		return ret;
	if (rx_back > VIRTQ_MAX_SIZE || tx_back > 1 || dropped > 1)
		return error__set(-EINVAL, "%s: the snapshot's virtio-net section has counts Ember "
				  "does not write", label);
	return check_mac(n, label, has, mac);
}

int virtio_net__restore(struct virtio_net *n, const struct snapshot_file_reader *r)
{
	char label[LABEL_MAX], rx[LABEL_MAX + 24], tx[LABEL_MAX + 24];
	int ret;

	snprintf(label, sizeof(label), "network interface %s", n->id);
	snprintf(rx, sizeof(rx), "%s: rx_rate_limiter", label);
	snprintf(tx, sizeof(tx), "%s: tx_rate_limiter", label);
	virtio_mmio__lock(&n->t);
	ret = check_net_section(n, label, r);
	if (!ret)
		ret = rate_limiter__restore(&n->rx_rl, rx, n->id, RATE_LIMITER_NET_RX, r);
	if (!ret)
		ret = rate_limiter__restore(&n->tx_rl, tx, n->id, RATE_LIMITER_NET_TX, r);
	if (!ret)
		ret = virtio_mmio__restore(&n->t, label, n->id, r);
	virtio_mmio__unlock(&n->t);
	return ret;
}
