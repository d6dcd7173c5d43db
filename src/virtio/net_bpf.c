// SPDX-License-Identifier: Apache-2.0
/*
 * Anti-spoofing: loading resources/bpf/antispoof.bpf.c with libbpf and attaching it to a
 * TAP's tc ingress. See net_bpf.h.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "virtio/net_bpf.h"
#include "virtio/net_bpf_abi.h"
#include "vmm/log.h"

_Static_assert(ANTISPOOF_IPV4_MAX == VM_ANTISPOOF_ADDRS_MAX, "the program's IPv4 table");
_Static_assert(ANTISPOOF_IPV6_MAX == VM_ANTISPOOF_ADDRS_MAX, "the program's IPv6 table");
_Static_assert(ANTISPOOF_REASONS == 3, "struct net_bpf_drops");

/* The object file, linked in by resources/bpf/bpf.mk */
extern const char ember_bpf_antispoof_start[];
extern const char ember_bpf_antispoof_end[];

/* Set while a call is made whose failure Ember expects and handles (the TAP has a clsact
 * qdisc already): libbpf's complaint about it would only mislead. */
static _Thread_local bool quiet;

/*
 * Set during net_bpf__attach(): libbpf's warnings wait in held (one a line, the first
 * ones that fit) until the outcome is known. A failure for lack of privilege is one the
 * caller gets around, and libbpf's words about it ("Couldn't load trivial BPF program")
 * would only mislead; any other failure shows them.
 */
static _Thread_local bool holding;
static _Thread_local char held[2048];

static void hold(const char *prefix, const char *line)
{
	size_t used = strlen(held), k = strlen(prefix), n = strlen(line);

	if (used + k + n + 2 <= sizeof(held)) {
		memcpy(held + used, prefix, k);
		memcpy(held + used + k, line, n);
		held[used + k + n] = '\n';
		held[used + k + n + 1] = 0;
	}
}

/* The held warnings as warnings (show) or as debug messages, and none held any more. */
static void release(bool show)
{
	char *line = held, *nl;

	while ((nl = strchr(line, '\n'))) {
		*nl = 0;
		log__msg(show ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, __FILE__, __LINE__, "%s", line);
		line = nl + 1;
	}
	held[0] = 0;
	holding = false;
}

/* libbpf's own messages go to Ember's log: warnings as warnings, the rest as debug. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	const char *prefix;
	char line[512];
	size_t n;

	if (quiet || (level == LIBBPF_DEBUG && log__level() < LOG_LEVEL_DEBUG))
		return 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(line, sizeof(line), fmt, ap);
#pragma GCC diagnostic pop
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = 0;
	prefix = strncmp(line, "libbpf: ", 8) ? "libbpf: " : "";
	if (holding && level == LIBBPF_WARN)
		hold(prefix, line);
	else
		log__msg(level == LIBBPF_WARN ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, __FILE__,
			 __LINE__, "%s%s", prefix, line);
	return 0;
}

/* fe80::/64 with the modified EUI-64 of mac (RFC 4291, appendix A). */
static void link_local(const uint8_t mac[6], uint8_t out[16])
{
	memset(out, 0, 16);
	out[0] = 0xfe;
	out[1] = 0x80;
	out[8] = mac[0] ^ 0x02;
	out[9] = mac[1];
	out[10] = mac[2];
	out[11] = 0xff;
	out[12] = 0xfe;
	out[13] = mac[3];
	out[14] = mac[4];
	out[15] = mac[5];
}

void net_bpf__rules(struct antispoof_rules *r, const uint8_t mac[6],
		    const struct antispoof_config *as)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->mac, mac, 6);
	r->nr_ipv4 = (uint8_t)as->nr_ipv4;
	memcpy(r->ipv4, as->ipv4, sizeof(r->ipv4));
	r->nr_ipv6 = (uint8_t)as->nr_ipv6;
	memcpy(r->ipv6, as->ipv6, sizeof(r->ipv6));
	link_local(mac, r->link_local);
}

static struct bpf_map *find_map(struct bpf_object *obj, const char *section)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj)
	{
		const char *name = bpf_map__name(m);
		size_t n = strlen(name), k = strlen(section);

		if (bpf_map__is_internal(m) && n >= k && !strcmp(name + n - k, section))
			return m;
	}
	return NULL;
}

int net_bpf__load(struct net_bpf *b, const char *id, const uint8_t mac[6],
		  const struct antispoof_config *as)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "ember_antispoof");
	struct antispoof_rules rules;
	struct bpf_map *rodata, *bss;
	size_t size;
	void *map;
	int ret;

	memset(b, 0, sizeof(*b));
	libbpf_set_print(libbpf_log);
	b->obj = bpf_object__open_mem(ember_bpf_antispoof_start,
				      (size_t)(ember_bpf_antispoof_end - ember_bpf_antispoof_start),
				      &oo);
	if (!b->obj) {
		ret = -errno;
		b->obj = NULL;
		return error__set(ret, "network interface %s: anti_spoofing: opening the program: %s",
				  id, strerror(-ret));
	}
	rodata = find_map(b->obj, ".rodata");
	bss = find_map(b->obj, ".bss");
	if (!rodata || !bss || bpf_map__value_size(rodata) != sizeof(rules))
		return error__set(-EINVAL, "network interface %s: anti_spoofing: the program does "
				  "not have the layout this Ember expects", id);
	net_bpf__rules(&rules, mac, as);
	ret = bpf_map__set_initial_value(rodata, &rules, sizeof(rules));
	if (!ret)
		ret = bpf_object__load(b->obj);
	if (ret)
		return error__set(ret, "network interface %s: anti_spoofing: loading the program: %s%s",
				  id, strerror(-ret),
				  ret == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN, or root)" : "");
	/* The kernel's own copy of .bss (libbpf's is only the initial image). */
	size = bpf_map__value_size(bss);
	if (size < sizeof(struct antispoof_counts))
		return error__set(-EINVAL, "network interface %s: anti_spoofing: the program's "
				  "counters are too small", id);
	b->drops_len = ((size_t)size + 4095) & ~(size_t)4095;
	map = mmap(NULL, b->drops_len, PROT_READ, MAP_SHARED, bpf_map__fd(bss), 0);
	if (map == MAP_FAILED) {
		ret = -errno;
		b->drops_len = 0;
		return error__set(ret, "network interface %s: anti_spoofing: mapping the "
				  "program's counters: %s", id, strerror(-ret));
	}
	b->drops = map;
	return 0;
}

static int attach(struct net_bpf *b, const char *id, const char *ifname)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = NET_BPF_TC_HANDLE, .priority = NET_BPF_TC_PRIORITY,
		    .flags = BPF_TC_F_REPLACE);
	int ret;

	b->ifindex = (int)if_nametoindex(ifname);
	if (!b->ifindex)
		return error__set(-errno, "network interface %s: anti_spoofing: tap %s: %s", id,
				  ifname, strerror(errno));
	hook.ifindex = b->ifindex;
	quiet = true;
	ret = bpf_tc_hook_create(&hook);
	quiet = false;
	if (ret && ret != -EEXIST)
		return error__set(ret, "network interface %s: anti_spoofing: tap %s: adding the "
				  "clsact qdisc: %s", id, ifname, strerror(-ret));
	b->made_qdisc = !ret;
	opts.prog_fd = net_bpf__prog_fd(b);
	ret = bpf_tc_attach(&hook, &opts);
	if (ret)
		return error__set(ret, "network interface %s: anti_spoofing: tap %s: attaching the "
				  "filter: %s", id, ifname, strerror(-ret));
	return 0;
}

int net_bpf__attach(struct net_bpf *b, const char *iface_id, const char *ifname,
		    const uint8_t mac[6], const struct antispoof_config *as)
{
	int ret;

	held[0] = 0;
	holding = true;
	ret = net_bpf__load(b, iface_id, mac, as);
	if (!ret)
		ret = attach(b, iface_id, ifname);
	release(ret && !net_bpf__unprivileged(ret));
	if (ret) {
		net_bpf__detach(b);
		return ret;
	}
	log_info("network interface %s: anti-spoofing enforced by a tc filter on tap %s: "
		 "%u IPv4 and %u IPv6 addresses",
		 iface_id, ifname, as->nr_ipv4, as->nr_ipv6);
	return 0;
}

int net_bpf__prog_fd(const struct net_bpf *b)
{
	struct bpf_program *prog =
		b->obj ? bpf_object__find_program_by_name(b->obj, "antispoof") : NULL;

	return prog ? bpf_program__fd(prog) : -ENOENT;
}

void net_bpf__drops(const struct net_bpf *b, struct net_bpf_drops *out)
{
	memset(out, 0, sizeof(*out));
	if (!b->obj || !b->drops)
		return;
	out->mac = b->drops[ANTISPOOF_DROP_MAC];
	out->ip = b->drops[ANTISPOOF_DROP_IP];
	out->other = b->drops[ANTISPOOF_DROP_OTHER];
}

void net_bpf__detach(struct net_bpf *b)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = NET_BPF_TC_HANDLE,
		    .priority = NET_BPF_TC_PRIORITY);

	if (b->ifindex > 0 && b->obj) {
		hook.ifindex = b->ifindex;
		/* Fails harmlessly when the TAP, and with it the filter, is gone already. */
		quiet = true;
		bpf_tc_detach(&hook, &opts);
		quiet = false;
		if (b->made_qdisc) {
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&hook);
		}
	}
	if (b->drops)
		munmap((void *)(uintptr_t)b->drops, b->drops_len);
	bpf_object__close(b->obj);
	memset(b, 0, sizeof(*b));
}
