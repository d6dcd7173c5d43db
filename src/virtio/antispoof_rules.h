/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Anti-spoofing's rules, written once for both of its enforcements: the tc classifier
 * resources/bpf/antispoof.bpf.c (built with clang -target bpf) and Ember's own check in the
 * virtio-net TX path (src/virtio/net.c), which takes over when the classifier cannot be
 * attached for lack of privilege (docs/network.md). antispoof_rules__verdict() looks at a
 * frame, Ethernet header first, and says whether it may go, or why not.
 *
 * What the BPF verifier needs, and the host compiler does not mind:
 *   - every read is checked first as `p + n > end` (the verifier follows such compares; it
 *     refuses arithmetic on end itself), and no pointer formed goes past
 *     p + ANTISPOOF_HDR_MAX, so a buffer of that size may hold a shorter frame;
 *   - every loop is bounded by a constant;
 *   - everything is inlined (BPF programs here make no calls);
 *   - the rules are `const volatile` in the BPF object (its .rodata, filled by libbpf before
 *     the load, which the verifier then reads as constants), plain `const` in Ember.
 * Fixed-size types only, and no libc or kernel header beyond linux/types.h.
 */
#ifndef EMBER_VIRTIO_ANTISPOOF_RULES_H
#define EMBER_VIRTIO_ANTISPOOF_RULES_H

#include "virtio/net_bpf_abi.h"

#ifdef __bpf__
#define ANTISPOOF_RULES_QUAL const volatile
#else
#define ANTISPOOF_RULES_QUAL const
#endif
#define ANTISPOOF_INLINE static inline __attribute__((__always_inline__))

#define ANTISPOOF_ETH_HLEN 14
#define ANTISPOOF_ARP_LEN 28 /* Ethernet/IPv4 ARP */
#define ANTISPOOF_IPV4_HLEN_MAX 60
#define ANTISPOOF_IPV6_HLEN 40
/* The most any check looks at: Ethernet + the longest IPv4 header + the UDP ports. */
#define ANTISPOOF_HDR_MAX (ANTISPOOF_ETH_HLEN + ANTISPOOF_IPV4_HLEN_MAX + 4)

#define ANTISPOOF_ETH_P_IP 0x0800
#define ANTISPOOF_ETH_P_ARP 0x0806
#define ANTISPOOF_ETH_P_IPV6 0x86dd
#define ANTISPOOF_IPPROTO_UDP 17
#define ANTISPOOF_NEXTHDR_ICMPV6 58

ANTISPOOF_INLINE int antispoof_same(const __u8 *a, ANTISPOOF_RULES_QUAL __u8 *b, int n)
{
	int diff = 0;

	for (int i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return !diff;
}

ANTISPOOF_INLINE int antispoof_is_zero(const __u8 *p, int n)
{
	int any = 0;

	for (int i = 0; i < n; i++)
		any |= p[i];
	return !any;
}

ANTISPOOF_INLINE int antispoof_ipv4_allowed(const __u8 *src,
					    ANTISPOOF_RULES_QUAL struct antispoof_rules *r)
{
	for (int i = 0; i < ANTISPOOF_IPV4_MAX; i++) {
		if (i >= r->nr_ipv4)
			break;
		if (antispoof_same(src, r->ipv4[i], 4))
			return 1;
	}
	return 0;
}

ANTISPOOF_INLINE int antispoof_ipv6_allowed(const __u8 *src,
					    ANTISPOOF_RULES_QUAL struct antispoof_rules *r)
{
	if (antispoof_same(src, r->link_local, 16))
		return 1;
	for (int i = 0; i < ANTISPOOF_IPV6_MAX; i++) {
		if (i >= r->nr_ipv6)
			break;
		if (antispoof_same(src, r->ipv6[i], 16))
			return 1;
	}
	return 0;
}

/* ARP for Ethernet/IPv4 from the MAC and an allowed address (or 0.0.0.0, a probe). */
ANTISPOOF_INLINE enum antispoof_reason antispoof_arp(const __u8 *p, const __u8 *end,
						     ANTISPOOF_RULES_QUAL struct antispoof_rules *r)
{
	const __u8 *a = p + ANTISPOOF_ETH_HLEN;

	if (p + ANTISPOOF_ETH_HLEN + ANTISPOOF_ARP_LEN > end)
		return ANTISPOOF_DROP_OTHER;
	/* htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4 */
	if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4)
		return ANTISPOOF_DROP_OTHER;
	if (!antispoof_same(a + 8, r->mac, 6))
		return ANTISPOOF_DROP_MAC;
	if (!antispoof_ipv4_allowed(a + 14, r) && !antispoof_is_zero(a + 14, 4))
		return ANTISPOOF_DROP_IP;
	return ANTISPOOF_ALLOW;
}

/* IPv4 from an allowed address, or DHCP from 0.0.0.0 (UDP 68 -> 67). */
ANTISPOOF_INLINE enum antispoof_reason
antispoof_ipv4(const __u8 *p, const __u8 *end, ANTISPOOF_RULES_QUAL struct antispoof_rules *r)
{
	const __u8 *ip = p + ANTISPOOF_ETH_HLEN, *udp;
	__u32 ihl;

	if (p + ANTISPOOF_ETH_HLEN + 20 > end || (ip[0] >> 4) != 4)
		return ANTISPOOF_DROP_OTHER;
	if (antispoof_ipv4_allowed(ip + 12, r))
		return ANTISPOOF_ALLOW;
	if (!antispoof_is_zero(ip + 12, 4) || ip[9] != ANTISPOOF_IPPROTO_UDP)
		return ANTISPOOF_DROP_IP;
	ihl = (__u32)(ip[0] & 0xf) * 4;
	if (ihl < 20 || p + ANTISPOOF_ETH_HLEN + ihl + 4 > end)
		return ANTISPOOF_DROP_OTHER;
	udp = ip + ihl;
	if (udp[0] == 0 && udp[1] == 68 && udp[2] == 0 && udp[3] == 67)
		return ANTISPOOF_ALLOW;
	return ANTISPOOF_DROP_IP;
}

/* IPv6 from an allowed address or the MAC's link-local one, or ICMPv6 from :: (DAD, MLD). */
ANTISPOOF_INLINE enum antispoof_reason
antispoof_ipv6(const __u8 *p, const __u8 *end, ANTISPOOF_RULES_QUAL struct antispoof_rules *r)
{
	const __u8 *ip6 = p + ANTISPOOF_ETH_HLEN;

	if (p + ANTISPOOF_ETH_HLEN + ANTISPOOF_IPV6_HLEN > end || (ip6[0] >> 4) != 6)
		return ANTISPOOF_DROP_OTHER;
	if (antispoof_ipv6_allowed(ip6 + 8, r))
		return ANTISPOOF_ALLOW;
	if (antispoof_is_zero(ip6 + 8, 16) && ip6[6] == ANTISPOOF_NEXTHDR_ICMPV6)
		return ANTISPOOF_ALLOW;
	return ANTISPOOF_DROP_IP;
}

/*
 * The frame in [p, end), from its Ethernet header on: ANTISPOOF_ALLOW, or why it must be
 * dropped. The caller checks what the frame's bytes cannot show (a VLAN tag the kernel
 * took out into skb->vlan_tci); a tag still in the frame is an EtherType like any other
 * that is not ARP, IPv4 or IPv6, and dropped.
 */
ANTISPOOF_INLINE enum antispoof_reason
antispoof_rules__verdict(const __u8 *p, const __u8 *end,
			 ANTISPOOF_RULES_QUAL struct antispoof_rules *r)
{
	__u16 proto;

	if (p + ANTISPOOF_ETH_HLEN > end)
		return ANTISPOOF_DROP_OTHER;
	if (!antispoof_same(p + 6, r->mac, 6))
		return ANTISPOOF_DROP_MAC;
	proto = (__u16)(p[12] << 8 | p[13]);
	if (proto == ANTISPOOF_ETH_P_ARP)
		return antispoof_arp(p, end, r);
	if (proto == ANTISPOOF_ETH_P_IP)
		return antispoof_ipv4(p, end, r);
	if (proto == ANTISPOOF_ETH_P_IPV6)
		return antispoof_ipv6(p, end, r);
	return ANTISPOOF_DROP_OTHER;
}

#endif
