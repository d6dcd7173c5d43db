// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for src/api/config.c and config_devices.c.
 *
 * Input: one byte that picks the entry point (modulo 12; seeds use '0'..'9', ':' and ';'),
 * one byte that picks the path id of a device request (modulo 8; seeds use '0'..'7'), then
 * the JSON, which carries no NUL terminator.
 *   '0' config__parse            '1'..'7' config__apply_body, kinds 0..6
 *   '8' config__put_drive        '9' config__put_net
 *   ':' config__patch_drive      ';' config__patch_net
 * API requests apply to a config that already holds every section, two drives and two
 * interfaces. Besides the sanitizers, it checks the contract: a failure leaves the config
 * as it was (or, for config__parse, at the defaults) with a one-line message; a success
 * leaves a config whose invariants hold, that config__copy() copies exactly, and whose
 * config__to_json() parses back into a config that prints the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/config.h"
#include "vmm/log.h"

#define NR_OPS 12

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_json[] =
	"{\"boot-source\":{\"kernel_image_path\":\"/k\",\"initrd_path\":\"/i\"},"
	"\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":true},"
	"\"logger\":{\"log_path\":\"/l\"},\"serial\":{\"serial_out_path\":\"/s\"},"
	"\"metrics\":{\"metrics_path\":\"/m\"},\"vsock\":{\"guest_cid\":3,\"uds_path\":\"/v\"},"
	"\"drives\":[{\"drive_id\":\"rootfs\",\"path_on_host\":\"/r\",\"is_root_device\":true,"
	"\"rate_limiter\":{\"bandwidth\":{\"size\":100,\"refill_time\":10},"
	"\"ops\":{\"size\":5,\"one_time_burst\":7,\"refill_time\":20}}},"
	"{\"drive_id\":\"data\",\"path_on_host\":\"/d\",\"is_root_device\":false}],"
	"\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
	"\"guest_mac\":\"06:00:00:00:00:01\",\"rx_rate_limiter\":{\"ops\":{\"size\":1,"
	"\"refill_time\":1}}},{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\"}]}";

static const char *const ids[8] = {
	"rootfs", "data",
	"eth0",	  "eth1",
	"new",	  "",
	"a/b",	  "0123456789012345678901234567890123456789012345678901234567890123",
};

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: %s (error: \"%s\")\n", what, error__get());
		abort();
	}
}

static int run(struct vm_config *cfg, unsigned int op, const char *id, const char *json, size_t len)
{
	unsigned int changed = 0;
	int ret;

	switch (op) {
	case 0:
		return config__parse(cfg, json, len);
	case 8:
		return config__put_drive(cfg, id, json, len);
	case 9:
		return config__put_net(cfg, id, json, len);
	case 10:
		ret = config__patch_drive(cfg, id, json, len, &changed);
		break;
	case 11:
		ret = config__patch_net(cfg, id, json, len, &changed);
		break;
	default:
		return config__apply_body(cfg, (enum config_body)(op - 1), json, len);
	}
	check(!ret || !changed, "a failed PATCH reports a change");
	check(changed <= 0xf, "unknown CONFIG_CHANGED_ bits");
	return ret;
}

static void check_invariants(const struct vm_config *cfg)
{
	unsigned int roots = 0;

	check(cfg->nr_drives <= VM_MAX_DRIVES && cfg->nr_net <= VM_MAX_NET_IFACES, "too many");
	for (unsigned int i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];

		check(!config__check_id("drive_id", d->drive_id), "bad drive id kept");
		check(d->path_on_host && d->path_on_host[0], "drive without a path");
		check(!d->is_root_device || i == 0, "the root device is not first");
		roots += d->is_root_device;
		check(!d->has_rate_limiter || d->rate_limiter.has_bandwidth ||
			      d->rate_limiter.has_ops,
		      "a rate limiter with no bucket");
	}
	check(roots <= 1, "two root devices");
	for (unsigned int i = 0; i < cfg->nr_net; i++) {
		const struct net_config *n = &cfg->net[i];

		check(!config__check_id("iface_id", n->iface_id), "bad iface id kept");
		for (unsigned int j = 0; j < i; j++) {
			check(strcmp(n->iface_id, cfg->net[j].iface_id), "duplicate iface id");
			check(strcmp(n->host_dev_name, cfg->net[j].host_dev_name),
			      "duplicate host_dev_name");
		}
	}
}

/* to_json -> parse -> to_json is the identity, and a copy prints the same. */
static void check_round_trip(const struct vm_config *cfg)
{
	struct vm_config back, copy;
	char *one, *two, *three;

	one = config__to_json(cfg);
	check(one != NULL, "to_json failed");
	config__init(&back);
	check(!config__parse(&back, one, strlen(one)), "to_json output does not parse back");
	two = config__to_json(&back);
	check(two && !strcmp(one, two), "to_json -> parse -> to_json changed the config");
	check(!config__copy(&copy, cfg), "copy failed");
	three = config__to_json(&copy);
	check(three && !strcmp(one, three), "the copy differs");
	free(one);
	free(two);
	free(three);
	config__free(&back);
	config__free(&copy);
	config__free(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_config base;
	static int have_base;
	struct vm_config cfg;
	const char *id, *json = (const char *)data + 2;
	char *before, *after;
	unsigned int op;
	int ret;

	if (!have_base) {
		config__init(&base);
		check(!config__parse(&base, base_json, strlen(base_json)), "base config");
		have_base = 1;
	}
	if (size < 2)
		return 0;
	op = data[0] % NR_OPS;
	id = ids[data[1] % 8];
	if (op == 0)
		config__init(&cfg);
	else
		check(!config__copy(&cfg, &base), "copy of the base config");
	before = config__to_json(op == 0 ? &base : &cfg);
	error__clear();
	ret = run(&cfg, op, id, json, size - 2);
	if (ret) {
		check(error__get()[0] && !strchr(error__get(), '\n'), "not a one-line message");
		if (op) {
			after = config__to_json(&cfg);
			check(after && !strcmp(before, after),
			      "a failed request changed the config");
			free(after);
		} else {
			check(!cfg.boot.kernel_image_path && !cfg.nr_drives && !cfg.nr_net,
			      "a failed parse left something behind");
		}
	} else {
		check_invariants(&cfg);
		if (cfg.boot.kernel_image_path)
			check_round_trip(&cfg);
	}
	free(before);
	config__free(&cfg);
	return 0;
}
