// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for anti-spoofing (src/virtio/net_bpf.c, resources/bpf/antispoof.bpf.c and
 * src/virtio/antispoof_rules.h): the program Ember carries, loaded with rules into the
 * running kernel and run on frames with BPF_PROG_TEST_RUN, without a TAP. Each frame must
 * get the verdict the rules in docs/network.md give it, and each drop must be counted under
 * its reason; and every frame also goes through the same rules as Ember runs them itself
 * (antispoof_rules__verdict(), when it cannot attach the program), which must say the same.
 * Needs root (CAP_BPF), as `make test` has.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/antispoof_rules.h"
#include "virtio/net_bpf.h"
#include "vmm/log.h"

static const uint8_t MAC[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };
static const uint8_t OTHER_MAC[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x09 };
static const uint8_t PEER_MAC[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };

#define FRAME_MAX 256

struct frame {
	uint8_t b[FRAME_MAX];
	size_t len;
};

static void put(struct frame *f, const void *p, size_t n)
{
	assert_true(f->len + n <= sizeof(f->b));
	memcpy(f->b + f->len, p, n);
	f->len += n;
}

static void put8(struct frame *f, uint8_t v)
{
	put(f, &v, 1);
}

static void put16(struct frame *f, uint16_t v)
{
	uint16_t be = htons(v);

	put(f, &be, 2);
}

static void addr(int family, const char *s, uint8_t *out)
{
	assert_int_equal(inet_pton(family, s, out), 1);
}

static void eth(struct frame *f, const uint8_t src[6], uint16_t type)
{
	f->len = 0;
	put(f, PEER_MAC, 6);
	put(f, src, 6);
	put16(f, type);
}

static struct frame arp(const uint8_t src[6], const uint8_t sha[6], const char *spa)
{
	struct frame f;
	uint8_t ip[4], tpa[4];

	eth(&f, src, 0x0806);
	put16(&f, 1);
	put16(&f, 0x0800);
	put8(&f, 6);
	put8(&f, 4);
	put16(&f, 1); /* request */
	put(&f, sha, 6);
	addr(AF_INET, spa, ip);
	put(&f, ip, 4);
	put(&f, (uint8_t[6]){ 0 }, 6);
	addr(AF_INET, "172.16.0.1", tpa);
	put(&f, tpa, 4);
	return f;
}

/* IPv4 with ihl words of header, then UDP sport -> dport and 8 bytes of payload. */
static struct frame udp4(const uint8_t src[6], const char *saddr, unsigned int ihl,
			 uint16_t sport, uint16_t dport)
{
	struct frame f;
	uint8_t s[4], d[4];

	eth(&f, src, 0x0800);
	put8(&f, (uint8_t)(0x40 | ihl));
	put8(&f, 0);
	put16(&f, (uint16_t)(ihl * 4 + 16));
	put16(&f, 0);
	put16(&f, 0);
	put8(&f, 64);
	put8(&f, 17);
	put16(&f, 0);
	addr(AF_INET, saddr, s);
	put(&f, s, 4);
	addr(AF_INET, "172.16.0.1", d);
	put(&f, d, 4);
	for (unsigned int i = 5; i < ihl; i++)
		put(&f, (uint8_t[4]){ 1, 1, 1, 1 }, 4); /* NOP options */
	put16(&f, sport);
	put16(&f, dport);
	put16(&f, 16);
	put16(&f, 0);
	put(&f, "payload!", 8);
	return f;
}

static struct frame ip6(const uint8_t src[6], const char *saddr, uint8_t next)
{
	struct frame f;
	uint8_t s[16], d[16];

	eth(&f, src, 0x86dd);
	put(&f, (uint8_t[4]){ 0x60, 0, 0, 0 }, 4);
	put16(&f, 8);
	put8(&f, next);
	put8(&f, 255);
	addr(AF_INET6, saddr, s);
	put(&f, s, 16);
	addr(AF_INET6, "ff02::1", d);
	put(&f, d, 16);
	put(&f, (uint8_t[8]){ 135, 0 }, 8);
	return f;
}

struct state {
	struct net_bpf b;
	struct antispoof_rules rules; /* the same, for antispoof_rules__verdict() */
};

static int setup(void **st)
{
	static struct state s;
	struct antispoof_config as = { 0 };

	addr(AF_INET, "172.16.0.2", as.ipv4[0]);
	addr(AF_INET, "10.0.0.2", as.ipv4[1]);
	as.nr_ipv4 = 2;
	addr(AF_INET6, "fd00::2", as.ipv6[0]);
	as.nr_ipv6 = 1;
	if (net_bpf__load(&s.b, "eth0", MAC, &as)) {
		fprintf(stderr, "net_bpf__load: %s\n", error__get());
		return -1;
	}
	net_bpf__rules(&s.rules, MAC, &as);
	*st = &s;
	return 0;
}

static int teardown(void **st)
{
	struct state *s = *st;

	net_bpf__detach(&s->b);
	return 0;
}

static int verdict(struct state *s, const struct frame *f)
{
	uint8_t out[FRAME_MAX + 64];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->b, .data_size_in = (uint32_t)f->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	if (bpf_prog_test_run_opts(net_bpf__prog_fd(&s->b), &o))
		fail_msg("test run of a %zu-byte frame: %s", f->len, strerror(errno));
	return (int)o.retval;
}

/* The verdict of the rules as Ember runs them itself, on the same frame. */
static int user_verdict(const struct state *s, const struct frame *f)
{
	return antispoof_rules__verdict(f->b, f->b + f->len, &s->rules);
}

/* f must pass, or be dropped and counted under exactly that reason, in the kernel and in
 * Ember alike. */
static void expect(struct state *s, const struct frame *f, int reason)
{
	struct net_bpf_drops before, after;

	assert_int_equal(user_verdict(s, f), reason);
	net_bpf__drops(&s->b, &before);
	if (reason < 0) {
		assert_int_equal(verdict(s, f), TC_ACT_OK);
	} else {
		assert_int_equal(verdict(s, f), TC_ACT_SHOT);
	}
	net_bpf__drops(&s->b, &after);
	assert_int_equal(after.mac - before.mac, reason == 0);
	assert_int_equal(after.ip - before.ip, reason == 1);
	assert_int_equal(after.other - before.other, reason == 2);
}

#define PASS ANTISPOOF_ALLOW
#define MAC_ ANTISPOOF_DROP_MAC
#define IP_ ANTISPOOF_DROP_IP
#define OTHER_ ANTISPOOF_DROP_OTHER

static void test_arp(void **st)
{
	struct frame f;

	f = arp(MAC, MAC, "172.16.0.2");
	expect(*st, &f, PASS);
	f = arp(MAC, MAC, "10.0.0.2"); /* the second address */
	expect(*st, &f, PASS);
	f = arp(MAC, MAC, "0.0.0.0"); /* an RFC 5227 probe */
	expect(*st, &f, PASS);
	f = arp(MAC, MAC, "172.16.0.3"); /* claims a neighbour's address */
	expect(*st, &f, IP_);
	f = arp(MAC, OTHER_MAC, "172.16.0.2"); /* poisons with another MAC */
	expect(*st, &f, MAC_);
	f = arp(OTHER_MAC, MAC, "172.16.0.2");
	expect(*st, &f, MAC_);
	f = arp(MAC, MAC, "172.16.0.2");
	f.len = 14 + 20; /* cut short */
	expect(*st, &f, OTHER_);
	f = arp(MAC, MAC, "172.16.0.2");
	f.b[17] = 0xdd; /* ptype 0x86dd: not Ethernet/IPv4 */
	expect(*st, &f, OTHER_);
}

static void test_ipv4(void **st)
{
	struct frame f;

	f = udp4(MAC, "172.16.0.2", 5, 1000, 2000);
	expect(*st, &f, PASS);
	f = udp4(MAC, "10.0.0.2", 5, 1000, 2000);
	expect(*st, &f, PASS);
	f = udp4(MAC, "172.16.0.9", 5, 1000, 2000);
	expect(*st, &f, IP_);
	f = udp4(OTHER_MAC, "172.16.0.2", 5, 1000, 2000);
	expect(*st, &f, MAC_);
	f = udp4(MAC, "0.0.0.0", 5, 68, 67); /* DHCP discover */
	expect(*st, &f, PASS);
	f = udp4(MAC, "0.0.0.0", 7, 68, 67); /* with IP options */
	expect(*st, &f, PASS);
	f = udp4(MAC, "0.0.0.0", 5, 68, 53); /* not DHCP */
	expect(*st, &f, IP_);
	f = udp4(MAC, "0.0.0.0", 5, 68, 67);
	f.b[14 + 9] = 6; /* TCP */
	expect(*st, &f, IP_);
	f = udp4(MAC, "172.16.0.2", 5, 1000, 2000);
	f.b[14] = 0x65; /* version 6 in an IPv4 frame */
	expect(*st, &f, OTHER_);
	/* (A cut IPv4 header cannot be tried: BPF_PROG_TEST_RUN refuses it with EINVAL; see
	 * test_cut_headers.) */
}

static void test_ipv6(void **st)
{
	struct frame f;

	f = ip6(MAC, "fd00::2", 17);
	expect(*st, &f, PASS);
	f = ip6(MAC, "fe80::400:acff:fe10:2", 58); /* the MAC's EUI-64 link-local */
	expect(*st, &f, PASS);
	f = ip6(MAC, "fe80::400:acff:fe10:9", 58); /* someone else's */
	expect(*st, &f, IP_);
	f = ip6(MAC, "::", 58); /* duplicate address detection */
	expect(*st, &f, PASS);
	f = ip6(MAC, "::", 17);
	expect(*st, &f, IP_);
	f = ip6(MAC, "fd00::3", 17);
	expect(*st, &f, IP_);
	f = ip6(OTHER_MAC, "fd00::2", 17);
	expect(*st, &f, MAC_);
	/* (Nor a cut IPv6 header.) */
}

/*
 * Headers cut short, which only Ember's own check can be given (the kernel's test run
 * refuses such frames, and a TAP's frames reach the program whole): each is dropped as
 * OTHER, a byte short of what the rule needs; with that byte, the rule decides.
 */
static void test_cut_headers(void **st)
{
	struct state *s = *st;
	struct frame f;

	f = udp4(MAC, "172.16.0.2", 5, 1000, 2000);
	for (f.len = 0; f.len < 14 + 20; f.len++)
		assert_int_equal(user_verdict(s, &f), OTHER_);
	f.len = 14 + 20;
	assert_int_equal(user_verdict(s, &f), PASS);
	f.len = 13;
	f.b[6] ^= 1; /* not even the MAC is looked at without a whole Ethernet header */
	assert_int_equal(user_verdict(s, &f), OTHER_);
	/* DHCP from 0.0.0.0 with 60 bytes of IPv4 header: up to ANTISPOOF_HDR_MAX */
	f = udp4(MAC, "0.0.0.0", 15, 68, 67);
	f.len = ANTISPOOF_HDR_MAX - 1;
	assert_int_equal(user_verdict(s, &f), OTHER_);
	f.len = ANTISPOOF_HDR_MAX;
	assert_int_equal(user_verdict(s, &f), PASS);
	f.b[14] = 0x44; /* ihl 4: shorter than an IPv4 header can be */
	assert_int_equal(user_verdict(s, &f), OTHER_);
	f = ip6(MAC, "fd00::2", 17);
	f.len = 14 + 39;
	assert_int_equal(user_verdict(s, &f), OTHER_);
	f.len = 14 + 40;
	assert_int_equal(user_verdict(s, &f), PASS);
	f = arp(MAC, MAC, "172.16.0.2");
	f.len = 14 + 27;
	assert_int_equal(user_verdict(s, &f), OTHER_);
	f.len = 14 + 28;
	assert_int_equal(user_verdict(s, &f), PASS);
}

static void test_other(void **st)
{
	struct frame f;

	eth(&f, MAC, 0x8100); /* a VLAN tag in front of valid IPv4 */
	put(&f, (uint8_t[2]){ 0, 5 }, 2);
	put16(&f, 0x0800);
	put(&f, udp4(MAC, "172.16.0.2", 5, 1, 2).b + 14, 44);
	expect(*st, &f, OTHER_);
	eth(&f, MAC, 0x88cc); /* LLDP */
	put(&f, (uint8_t[46]){ 0 }, 46);
	expect(*st, &f, OTHER_);
	eth(&f, OTHER_MAC, 0x88cc); /* the MAC is checked first */
	put(&f, (uint8_t[46]){ 0 }, 46);
	expect(*st, &f, MAC_);
}

/* No addresses for a family: that family cannot send at all, ARP included. */
static void test_empty_lists(void **st)
{
	struct antispoof_config none = { 0 };
	struct net_bpf b;
	struct frame f;
	struct state s;

	(void)st;
	assert_int_equal(net_bpf__load(&b, "eth1", MAC, &none), 0);
	s.b = b;
	net_bpf__rules(&s.rules, MAC, &none);
	f = udp4(MAC, "172.16.0.2", 5, 1000, 2000);
	expect(&s, &f, IP_);
	f = arp(MAC, MAC, "172.16.0.2");
	expect(&s, &f, IP_);
	f = ip6(MAC, "fe80::400:acff:fe10:2", 58); /* link-local still works */
	expect(&s, &f, PASS);
	f = ip6(MAC, "fd00::2", 17);
	expect(&s, &f, IP_);
	net_bpf__detach(&s.b);
}

static void test_attach_needs_a_tap(void **st)
{
	struct antispoof_config none = { 0 };
	struct net_bpf b;

	(void)st;
	assert_int_equal(net_bpf__attach(&b, "eth2", "ember-no-such", MAC, &none), -ENODEV);
	assert_non_null(strstr(error__get(), "ember-no-such"));
	assert_null(b.obj);
}

/* ---- on a real TAP, in a network namespace of the test's own ---- */

static uint16_t ip_checksum(const uint8_t *h, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < n; i += 2)
		sum += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A UDP datagram from mac/saddr to the TAP's host side (dst_mac, 10.9.0.1:port). */
static struct frame udp_to_host(const uint8_t dst_mac[6], const uint8_t mac[6],
				const char *saddr, uint16_t port)
{
	struct frame f = udp4(mac, saddr, 5, 40000, port);
	uint16_t sum;

	memcpy(f.b, dst_mac, 6);
	addr(AF_INET, "10.9.0.1", f.b + 14 + 16);
	sum = ip_checksum(f.b + 14, 20);
	f.b[14 + 10] = (uint8_t)(sum >> 8);
	f.b[14 + 11] = (uint8_t)sum;
	return f;
}

/* Writes f into the TAP as a guest would (through Ember) and says whether a UDP socket
 * on the host side got it. */
static bool reaches_host(int tap, int sock, const struct frame *f)
{
	char buf[64];
	struct pollfd p = { .fd = sock, .events = POLLIN };

	assert_int_equal(write(tap, f->b, f->len), (ssize_t)f->len);
	if (poll(&p, 1, 500) != 1)
		return false;
	assert_int_equal(recv(sock, buf, sizeof(buf), 0), 8);
	return !memcmp(buf, "payload!", 8);
}

static void tc_query(int ifindex, int *prog_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = NET_BPF_TC_HANDLE,
		    .priority = NET_BPF_TC_PRIORITY);
	int ret = bpf_tc_query(&hook, &opts);

	*prog_id = ret ? ret : (int)opts.prog_id;
}

static void test_on_a_tap(void **st)
{
	struct antispoof_config as = { 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(7777) };
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	struct net_bpf b1, b2;
	uint8_t tap_mac[6];
	struct frame f;
	int tap, sock, id1, id2;

	(void)st;
	/* a namespace of our own: nothing here touches the host's network */
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	tap = open("/dev/net/tun", O_RDWR);
	assert_true(tap >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "ember-t0");
	assert_int_equal(ioctl(tap, TUNSETIFF, &ifr), 0);
	assert_int_equal(system("ip link set lo up && ip addr add 10.9.0.1/24 dev ember-t0 && "
				"ip link set ember-t0 up"),
			 0);
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(sock >= 0);
	assert_int_equal(bind(sock, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(ioctl(sock, SIOCGIFHWADDR, &ifr), 0);
	memcpy(tap_mac, ifr.ifr_hwaddr.sa_data, 6);

	/* open: both the guest's own and a spoofed datagram reach the host */
	f = udp_to_host(tap_mac, MAC, "10.9.0.2", 7777);
	assert_true(reaches_host(tap, sock, &f));
	f = udp_to_host(tap_mac, MAC, "10.9.0.9", 7777);
	assert_true(reaches_host(tap, sock, &f));

	/* fenced: only the configured source does */
	addr(AF_INET, "10.9.0.2", as.ipv4[0]);
	as.nr_ipv4 = 1;
	assert_int_equal(net_bpf__attach(&b1, "eth0", "ember-t0", MAC, &as), 0);
	tc_query(b1.ifindex, &id1);
	assert_true(id1 > 0);
	f = udp_to_host(tap_mac, MAC, "10.9.0.2", 7777);
	assert_true(reaches_host(tap, sock, &f));
	f = udp_to_host(tap_mac, MAC, "10.9.0.9", 7777);
	assert_false(reaches_host(tap, sock, &f));
	f = udp_to_host(tap_mac, OTHER_MAC, "10.9.0.2", 7777);
	assert_false(reaches_host(tap, sock, &f));
	{
		struct net_bpf_drops d;

		net_bpf__drops(&b1, &d);
		assert_int_equal(d.ip, 1);
		assert_int_equal(d.mac, 1);
	}

	/* a second Ember on the same TAP (the first was killed and left its filter): its
	 * filter replaces the old one, and then goes when it detaches */
	as.ipv4[0][3] = 9;
	assert_int_equal(net_bpf__attach(&b2, "eth0", "ember-t0", MAC, &as), 0);
	tc_query(b2.ifindex, &id2);
	assert_true(id2 > 0 && id2 != id1);
	f = udp_to_host(tap_mac, MAC, "10.9.0.9", 7777);
	assert_true(reaches_host(tap, sock, &f));
	f = udp_to_host(tap_mac, MAC, "10.9.0.2", 7777);
	assert_false(reaches_host(tap, sock, &f));
	net_bpf__detach(&b2);
	tc_query(b1.ifindex, &id2);
	assert_true(id2 == -ENOENT || id2 == -EINVAL); /* no filter; or no chain left */
	f = udp_to_host(tap_mac, MAC, "10.9.0.2", 7777);
	assert_true(reaches_host(tap, sock, &f));
	net_bpf__detach(&b1); /* its filter is gone already: harmless */
	close(sock);
	close(tap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_other),
		cmocka_unit_test(test_cut_headers),
		cmocka_unit_test(test_empty_lists),
		cmocka_unit_test(test_attach_needs_a_tap),
		cmocka_unit_test(test_on_a_tap),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
