// SPDX-License-Identifier: Apache-2.0
/*
 * Anti-spoofing: a tc classifier on the ingress of a VM's TAP device, which is where the
 * frames the guest sends enter the host. It lets a frame through only when:
 *   - it carries no VLAN tag, and its Ethernet source is the guest's MAC;
 *   - it is ARP (Ethernet/IPv4) whose sender is that MAC and an allowed IPv4 address, or
 *     0.0.0.0 (an RFC 5227 probe);
 *   - it is IPv4 from an allowed address, or from 0.0.0.0 to UDP port 67 from port 68 (a
 *     DHCP client without an address yet);
 *   - it is IPv6 from an allowed address, from the MAC's EUI-64 link-local address, or from
 *     :: carrying ICMPv6 (duplicate address detection, MLD).
 * Anything else is dropped and counted by reason. The rules themselves are
 * src/virtio/antispoof_rules.h, which Ember also runs itself when it cannot attach this
 * program; what is here is what only the kernel's side needs: the VLAN tag the kernel took
 * out of the frame, the headers pulled into the linear part, the counters. Ember fills
 * `rules` before it loads the program (src/virtio/net_bpf.c) and reads `counts` for its
 * metrics.
 *
 * It calls no GPL-only helper, so it carries the project's licence.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "virtio/antispoof_rules.h"
#include "virtio/net_bpf_abi.h"

const volatile struct antispoof_rules rules = {};
struct antispoof_counts counts = {};

char LICENSE[] SEC("license") = "Apache-2.0";

static __always_inline int drop(enum antispoof_reason why)
{
	if ((unsigned int)why >= ANTISPOOF_REASONS)
		why = ANTISPOOF_DROP_OTHER;
	__sync_fetch_and_add(&counts.drops[why], 1);
	return TC_ACT_SHOT;
}

SEC("tc")
int antispoof(struct __sk_buff *skb)
{
	__u32 want = skb->len < ANTISPOOF_HDR_MAX ? skb->len : ANTISPOOF_HDR_MAX;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	enum antispoof_reason why;

	if (skb->vlan_present)
		return drop(ANTISPOOF_DROP_OTHER);
	/* A large frame's headers may sit outside the linear part: bring them in. */
	if (data + want > end) {
		if (bpf_skb_pull_data(skb, want))
			return drop(ANTISPOOF_DROP_OTHER);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	why = antispoof_rules__verdict(data, end, &rules);
	if (why == ANTISPOOF_ALLOW)
		return TC_ACT_OK;
	return drop(why);
}
