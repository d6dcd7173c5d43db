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
 * Anything else is dropped and counted by reason. Ember fills `rules` before it loads the
 * program (src/virtio/net_bpf.c) and reads `counts` for its metrics.
 *
 * It calls no GPL-only helper, so it carries the project's licence.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "virtio/net_bpf_abi.h"

#define ETH_HLEN_ 14
#define ARP_LEN 28		 /* Ethernet/IPv4 ARP */
#define IPV6_HLEN 40
#define NEXTHDR_ICMPV6 58
/* The most any check looks at: Ethernet + the longest IPv4 header + UDP ports. */
#define PULL_MAX (ETH_HLEN_ + 60 + 4)

const volatile struct antispoof_rules rules = {};
struct antispoof_counts counts = {};

char LICENSE[] SEC("license") = "Apache-2.0";

static __always_inline int drop(enum antispoof_reason why)
{
	__sync_fetch_and_add(&counts.drops[why], 1);
	return TC_ACT_SHOT;
}

static __always_inline int same(const __u8 *a, const volatile __u8 *b, int n)
{
	int diff = 0;

	for (int i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return !diff;
}

static __always_inline int ipv4_allowed(const __u8 *src)
{
	for (int i = 0; i < ANTISPOOF_IPV4_MAX; i++) {
		if (i >= rules.nr_ipv4)
			break;
		if (same(src, rules.ipv4[i], 4))
			return 1;
	}
	return 0;
}

static __always_inline int ipv6_allowed(const __u8 *src)
{
	if (same(src, rules.link_local, 16))
		return 1;
	for (int i = 0; i < ANTISPOOF_IPV6_MAX; i++) {
		if (i >= rules.nr_ipv6)
			break;
		if (same(src, rules.ipv6[i], 16))
			return 1;
	}
	return 0;
}

static __always_inline int is_zero(const __u8 *p, int n)
{
	int any = 0;

	for (int i = 0; i < n; i++)
		any |= p[i];
	return !any;
}

SEC("tc")
int antispoof(struct __sk_buff *skb)
{
	__u32 want = skb->len < PULL_MAX ? skb->len : PULL_MAX;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	const __u8 *p = data;
	__u16 proto;

	if (skb->vlan_present)
		return drop(ANTISPOOF_DROP_OTHER);
	/* A large frame's headers may sit outside the linear part: bring them in. */
	if (data + want > end) {
		if (bpf_skb_pull_data(skb, want))
			return drop(ANTISPOOF_DROP_OTHER);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		p = data;
	}
	if (data + ETH_HLEN_ > end)
		return drop(ANTISPOOF_DROP_OTHER);
	if (!same(p + 6, rules.mac, 6))
		return drop(ANTISPOOF_DROP_MAC);
	proto = (__u16)(p[12] << 8 | p[13]);

	if (proto == ETH_P_ARP) {
		const __u8 *a = p + ETH_HLEN_;

		if (data + ETH_HLEN_ + ARP_LEN > end)
			return drop(ANTISPOOF_DROP_OTHER);
		/* htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4 */
		if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4)
			return drop(ANTISPOOF_DROP_OTHER);
		if (!same(a + 8, rules.mac, 6))
			return drop(ANTISPOOF_DROP_MAC);
		if (!ipv4_allowed(a + 14) && !is_zero(a + 14, 4))
			return drop(ANTISPOOF_DROP_IP);
		return TC_ACT_OK;
	}

	if (proto == ETH_P_IP) {
		const __u8 *ip = p + ETH_HLEN_;
		__u32 ihl;

		if (data + ETH_HLEN_ + 20 > end || (ip[0] >> 4) != 4)
			return drop(ANTISPOOF_DROP_OTHER);
		if (ipv4_allowed(ip + 12))
			return TC_ACT_OK;
		if (!is_zero(ip + 12, 4) || ip[9] != IPPROTO_UDP)
			return drop(ANTISPOOF_DROP_IP);
		ihl = (__u32)(ip[0] & 0xf) * 4;
		if (ihl < 20 || data + ETH_HLEN_ + ihl + 4 > end)
			return drop(ANTISPOOF_DROP_OTHER);
		{
			const __u8 *udp = ip + ihl;

			if (udp[0] == 0 && udp[1] == 68 && udp[2] == 0 && udp[3] == 67)
				return TC_ACT_OK;
		}
		return drop(ANTISPOOF_DROP_IP);
	}

	if (proto == ETH_P_IPV6) {
		const __u8 *ip6 = p + ETH_HLEN_;

		if (data + ETH_HLEN_ + IPV6_HLEN > end || (ip6[0] >> 4) != 6)
			return drop(ANTISPOOF_DROP_OTHER);
		if (ipv6_allowed(ip6 + 8))
			return TC_ACT_OK;
		if (is_zero(ip6 + 8, 16) && ip6[6] == NEXTHDR_ICMPV6)
			return TC_ACT_OK;
		return drop(ANTISPOOF_DROP_IP);
	}

	return drop(ANTISPOOF_DROP_OTHER);
}
