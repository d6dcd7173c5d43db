/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What Ember and its anti-spoofing eBPF program (resources/bpf/antispoof.bpf.c) share: the
 * program's configuration, which Ember writes into its .rodata before loading it, and the
 * drop counters in its .bss, which Ember reads through libbpf's mapping of that map.
 * Built by clang -target bpf as well as by the host compiler: fixed-size types only.
 */
#ifndef EMBER_VIRTIO_NET_BPF_ABI_H
#define EMBER_VIRTIO_NET_BPF_ABI_H

#include <linux/types.h>

#define ANTISPOOF_IPV4_MAX 8
#define ANTISPOOF_IPV6_MAX 8

struct antispoof_rules {
	__u8 mac[6];	     /* the guest's MAC: every frame's source, and ARP's sender */
	__u8 nr_ipv4;	     /* how many of ipv4[] hold */
	__u8 nr_ipv6;	     /* how many of ipv6[] hold */
	__u8 ipv4[ANTISPOOF_IPV4_MAX][4];
	__u8 ipv6[ANTISPOOF_IPV6_MAX][16];
	__u8 link_local[16]; /* fe80::/64 with the EUI-64 of mac: always allowed */
};

/* Why a frame was dropped: indexes into struct antispoof_counts' drops[]; or that it was
 * not (antispoof_rules.h's verdict). */
enum antispoof_reason {
	ANTISPOOF_ALLOW = -1, /* not dropped: the frame may go */
	ANTISPOOF_DROP_MAC,   /* Ethernet source (or ARP sender hardware address) not the MAC */
	ANTISPOOF_DROP_IP,    /* IPv4/IPv6 source (or ARP sender address) not allowed */
	ANTISPOOF_DROP_OTHER, /* not ARP, IPv4 or IPv6, VLAN-tagged, or truncated headers */
	ANTISPOOF_REASONS,
};

struct antispoof_counts {
	__u64 drops[ANTISPOOF_REASONS];
};

#endif
