/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Anti-spoofing for a network interface: the eBPF classifier resources/bpf/antispoof.bpf.c,
 * which the ember binary carries, loaded with libbpf and attached to the ingress of the
 * interface's TAP (tc clsact), where the guest's frames enter the host. It drops frames
 * whose source MAC is not guest_mac or whose IPv4/IPv6 source is not one the config
 * allows (docs/network.md has the rules), and counts them by reason.
 *
 * Attaching needs CAP_NET_ADMIN and CAP_BPF (or CAP_SYS_ADMIN). The filter replaces one a
 * killed Ember left on the same TAP (same handle and priority), and is removed again by
 * net_bpf__detach(); other filters on the TAP are left alone. Without the privilege (a
 * jailed Ember) the attach fails with -EPERM or -EACCES, and virtio-net then enforces the
 * same rules (antispoof_rules.h, made by net_bpf__rules()) itself.
 */
#ifndef EMBER_VIRTIO_NET_BPF_H
#define EMBER_VIRTIO_NET_BPF_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm_config.h"

struct antispoof_rules;
struct bpf_object;

/* The tc filter's handle and priority on the TAP's ingress: Ember's own. */
#define NET_BPF_TC_HANDLE 0xe5b
#define NET_BPF_TC_PRIORITY 1

struct net_bpf {
	struct bpf_object *obj; /* NULL: nothing attached */
	int ifindex;
	bool made_qdisc;			 /* we created the TAP's clsact qdisc */
	const volatile uint64_t *drops;		 /* the program's counters (mmap of its .bss) */
	size_t drops_len;
};

/* Drops by reason, in the order of enum antispoof_reason (net_bpf_abi.h). */
struct net_bpf_drops {
	uint64_t mac, ip, other;
};

/*
 * Loads the program with rules made of mac and as, and attaches it to the ingress of TAP
 * ifname. 0, or -errno with error__set("network interface <id>: anti_spoofing: ...").
 * libbpf's warnings about a failure for lack of privilege (net_bpf__unprivileged()) go to
 * the debug log only: the caller has a way around it.
 */
int net_bpf__attach(struct net_bpf *b, const char *iface_id, const char *ifname,
		    const uint8_t mac[6], const struct antispoof_config *as);
/*
 * The first half of net_bpf__attach(): the program loaded with its rules, attached
 * nowhere (the unit tests run it with BPF_PROG_TEST_RUN). 0 or -errno with error__set();
 * net_bpf__detach() unloads it.
 */
int net_bpf__load(struct net_bpf *b, const char *iface_id, const uint8_t mac[6],
		  const struct antispoof_config *as);
/* Whether net_bpf__attach() failed with ret for lack of privilege (CAP_BPF, CAP_NET_ADMIN). */
static inline bool net_bpf__unprivileged(int ret)
{
	return ret == -EPERM || ret == -EACCES;
}
/* The rules for mac and as, as the program gets them and antispoof_rules.h takes them. */
void net_bpf__rules(struct antispoof_rules *r, const uint8_t mac[6],
		    const struct antispoof_config *as);
/* The loaded program's fd, or -ENOENT. */
int net_bpf__prog_fd(const struct net_bpf *b);
/* The frames dropped so far; zeros when nothing is attached. */
void net_bpf__drops(const struct net_bpf *b, struct net_bpf_drops *out);
/* Takes the filter off the TAP (if the TAP is still there) and unloads the program. */
void net_bpf__detach(struct net_bpf *b);

#endif
