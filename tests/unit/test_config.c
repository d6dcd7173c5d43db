// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/api/config.c and config_devices.c: Firecracker's config file -> struct
 * vm_config, and back through config__to_json(). The API's request bodies are tested in
 * test_config_api.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/config.h"
#include "vmm/log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A minimal good config, and the same without its opening brace, to add sections in front. */
#define MINIMAL_TAIL "\"boot-source\":{\"kernel_image_path\":\"/k\"}}"
#define MINIMAL	     "{" MINIMAL_TAIL

static const char full_config[] =
	"{\n"
	"  \"boot-source\": {\"kernel_image_path\": \"/img/vmlinux\",\n"
	"                  \"initrd_path\": \"/img/initrd\",\n"
	"                  \"boot_args\": \"console=ttyS0 reboot=k\"},\n"
	"  \"machine-config\": {\"vcpu_count\": 4, \"mem_size_mib\": 1024, \"smt\": true,\n"
	"                     \"track_dirty_pages\": true, \"huge_pages\": \"None\",\n"
	"                     \"cpu_template\": \"None\"},\n"
	"  \"logger\": {\"log_path\": \"/tmp/fc.log\", \"level\": \"debug\",\n"
	"             \"show_level\": true, \"show_log_origin\": true},\n"
	"  \"serial\": {\"serial_out_path\": \"/tmp/serial.out\"},\n"
	"  \"drives\": [\n"
	"    {\"drive_id\": \"data\", \"path_on_host\": \"/img/data.ext4\",\n"
	"     \"is_root_device\": false, \"is_read_only\": true, \"cache_type\": \"Writeback\",\n"
	"     \"io_engine\": \"Async\", \"socket\": null,\n"
	"     \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"one_time_burst\": 4096,\n"
	"                                    \"refill_time\": 100},\n"
	"                      \"ops\": {\"size\": 1000, \"refill_time\": 1000}}},\n"
	"    {\"drive_id\": \"rootfs\", \"path_on_host\": \"/img/rootfs.ext4\",\n"
	"     \"is_root_device\": true, \"partuuid\": \"0eaa91a0-01\"}\n"
	"  ],\n"
	"  \"network-interfaces\": [\n"
	"    {\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"06:00:AC:10:00:02\",\n"
	"     \"rx_rate_limiter\": {\"ops\": {\"size\": 10, \"refill_time\": 1}},\n"
	"     \"tx_rate_limiter\": null,\n"
	"     \"anti_spoofing\": {\"ipv4\": [\"172.16.0.2\"], \"ipv6\": [\"fd00::2\", \"2001:db8::1\"]}},\n"
	"    {\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\"}\n"
	"  ],\n"
	"  \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\", \"vsock_id\": \"vsock0\"},\n"
	"  \"metrics\": {\"metrics_path\": \"/tmp/metrics.fifo\"},\n"
	"  \"entropy\": {\"rate_limiter\": {\"bandwidth\": {\"size\": 4096,\n"
	"                                             \"refill_time\": 10}}},\n"
	"  \"balloon\": null, \"mmds-config\": null, \"cpu-config\": null\n"
	"}";

static int parse(struct vm_config *cfg, const char *json)
{
	config__init(cfg);
	error__clear();
	return config__parse(cfg, json, strlen(json));
}

static void assert_config_is_default(const struct vm_config *cfg)
{
	assert_null(cfg->boot.kernel_image_path);
	assert_null(cfg->boot.initrd_path);
	assert_null(cfg->boot.boot_args);
	assert_null(cfg->logger.log_path);
	assert_null(cfg->serial.serial_out_path);
	assert_int_equal(cfg->machine.vcpu_count, 1);
	assert_int_equal(cfg->machine.mem_size_mib, 128);
	assert_false(cfg->has_logger);
	assert_false(cfg->has_metrics);
	assert_null(cfg->metrics.metrics_path);
	assert_false(cfg->has_vsock);
	assert_null(cfg->vsock.uds_path);
	assert_int_equal(cfg->nr_drives, 0);
	assert_int_equal(cfg->nr_net, 0);
	for (size_t i = 0; i < VM_MAX_DRIVES; i++) {
		assert_null(cfg->drives[i].drive_id);
		assert_null(cfg->drives[i].path_on_host);
		assert_null(cfg->drives[i].partuuid);
	}
	for (size_t i = 0; i < VM_MAX_NET_IFACES; i++) {
		assert_null(cfg->net[i].iface_id);
		assert_null(cfg->net[i].host_dev_name);
	}
}

/* The error line must name the field: a substring match on needle, and one line only. */
static void check_error(const char *what, int ret, int want_ret, const char *needle)
{
	const char *msg = error__get();

	if (ret != want_ret || !strstr(msg, needle) || strchr(msg, '\n')) {
		print_error("input %s\n  ret %d (want %d)\n  error \"%s\"\n  want  \"%s\"\n", what,
			    ret, want_ret, msg, needle);
		fail();
	}
}

static void expect_reject_len(const char *json, size_t len, const char *needle)
{
	struct vm_config cfg;
	int ret;

	config__init(&cfg);
	error__clear();
	ret = config__parse(&cfg, json, len);
	check_error(json, ret, -EINVAL, needle);
	assert_config_is_default(&cfg);
	config__free(&cfg);
}

static void expect_reject(const char *json, const char *needle)
{
	expect_reject_len(json, strlen(json), needle);
}

static void expect_accept(const char *json)
{
	struct vm_config cfg;
	int ret = parse(&cfg, json);

	if (ret) {
		print_error("input %s\n  rejected: %s\n", json, error__get());
		fail();
	}
	config__free(&cfg);
}

/*
 * A good config, except that section gets "key": value (and loses its own "key"). With
 * section "boot-source" the document holds only that section; "drives" and
 * "network-interfaces" hold one element.
 */
static const struct {
	const char *section;
	const char *base[3][2];
} bases[] = {
	{ "boot-source", { { "kernel_image_path", "\"/k\"" } } },
	{ "machine-config", { { "vcpu_count", "2" }, { "mem_size_mib", "256" } } },
	{ "logger", { { "log_path", "\"/l\"" } } },
	{ "serial", { { NULL } } },
	{ "metrics", { { "metrics_path", "\"/m\"" } } },
	{ "vsock", { { "guest_cid", "3" }, { "uds_path", "\"/v\"" } } },
	{ "drives",
	  { { "drive_id", "\"rootfs\"" },
	    { "path_on_host", "\"/r\"" },
	    { "is_root_device", "true" } } },
	{ "network-interfaces", { { "iface_id", "\"eth0\"" }, { "host_dev_name", "\"tap0\"" } } },
};

static bool is_list(const char *section)
{
	return !strcmp(section, "drives") || !strcmp(section, "network-interfaces");
}

static char *doc_with(const char *section, const char *key, const char *value)
{
	static char buf[8192];
	size_t n;

	if (!strcmp(section, "boot-source"))
		n = (size_t)snprintf(buf, sizeof(buf), "{\"boot-source\":{");
	else
		n = (size_t)snprintf(buf, sizeof(buf),
				     "{\"boot-source\":{\"kernel_image_path\":\"/k\"},\"%s\":%s{",
				     section, is_list(section) ? "[" : "");
	for (size_t i = 0; i < ARRAY_SIZE(bases); i++) {
		if (strcmp(bases[i].section, section))
			continue;
		for (size_t j = 0; j < 3 && bases[i].base[j][0]; j++) {
			if (strcmp(bases[i].base[j][0], key))
				n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\"%s\":%s,",
						      bases[i].base[j][0], bases[i].base[j][1]);
		}
	}
	snprintf(buf + n, sizeof(buf) - n, "\"%s\":%s}%s}", key, value,
		 is_list(section) ? "]" : "");
	return buf;
}

static void test_minimal(void **state)
{
	struct vm_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, MINIMAL), 0);
	assert_string_equal(cfg.boot.kernel_image_path, "/k");
	assert_null(cfg.boot.initrd_path);
	assert_null(cfg.boot.boot_args);
	config__free(&cfg);
	assert_null(cfg.boot.kernel_image_path);
	config__free(&cfg);
}

static void check_bucket(const struct token_bucket_config *b, uint64_t size, uint64_t burst,
			 uint64_t refill)
{
	assert_int_equal(b->size, size);
	assert_int_equal(b->one_time_burst, burst);
	assert_int_equal(b->refill_time_ms, refill);
}

/* The devices of full_config; the root device has moved to the front. */
static void check_full_devices(const struct vm_config *cfg)
{
	static const uint8_t mac[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };
	const struct drive_config *d;
	const struct net_config *n;

	assert_int_equal(cfg->nr_drives, 2);
	d = &cfg->drives[0];
	assert_string_equal(d->drive_id, "rootfs");
	assert_string_equal(d->path_on_host, "/img/rootfs.ext4");
	assert_true(d->is_root_device);
	assert_false(d->is_read_only);
	assert_string_equal(d->partuuid, "0eaa91a0-01");
	assert_int_equal(d->cache_type, DRIVE_CACHE_UNSAFE);
	assert_int_equal(d->io_engine, DRIVE_IO_SYNC);
	assert_false(d->has_rate_limiter);
	d = &cfg->drives[1];
	assert_string_equal(d->drive_id, "data");
	assert_string_equal(d->path_on_host, "/img/data.ext4");
	assert_false(d->is_root_device);
	assert_true(d->is_read_only);
	assert_null(d->partuuid);
	assert_int_equal(d->cache_type, DRIVE_CACHE_WRITEBACK);
	assert_int_equal(d->io_engine, DRIVE_IO_ASYNC);
	assert_true(d->has_rate_limiter);
	assert_true(d->rate_limiter.has_bandwidth);
	check_bucket(&d->rate_limiter.bandwidth, 1048576, 4096, 100);
	assert_true(d->rate_limiter.has_ops);
	check_bucket(&d->rate_limiter.ops, 1000, 0, 1000);

	assert_int_equal(cfg->nr_net, 2);
	n = &cfg->net[0];
	assert_string_equal(n->iface_id, "eth0");
	assert_string_equal(n->host_dev_name, "tap0");
	assert_true(n->has_guest_mac);
	assert_memory_equal(n->guest_mac, mac, 6);
	assert_true(n->has_rx_rate_limiter);
	assert_false(n->rx_rate_limiter.has_bandwidth);
	assert_true(n->rx_rate_limiter.has_ops);
	check_bucket(&n->rx_rate_limiter.ops, 10, 0, 1);
	assert_false(n->has_tx_rate_limiter);
	assert_true(n->has_anti_spoofing);
	assert_int_equal(n->anti_spoofing.nr_ipv4, 1);
	assert_memory_equal(n->anti_spoofing.ipv4[0], ((uint8_t[4]){ 172, 16, 0, 2 }), 4);
	assert_int_equal(n->anti_spoofing.nr_ipv6, 2);
	assert_memory_equal(n->anti_spoofing.ipv6[0], ((uint8_t[16]){ 0xfd, [15] = 2 }), 16);
	assert_memory_equal(n->anti_spoofing.ipv6[1],
			    ((uint8_t[16]){ 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }), 16);
	n = &cfg->net[1];
	assert_string_equal(n->iface_id, "eth1");
	assert_string_equal(n->host_dev_name, "tap1");
	assert_false(n->has_guest_mac);
	assert_false(n->has_rx_rate_limiter);
	assert_false(n->has_anti_spoofing);
}

static void test_full(void **state)
{
	struct vm_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, full_config), 0);
	assert_string_equal(cfg.boot.kernel_image_path, "/img/vmlinux");
	assert_string_equal(cfg.boot.initrd_path, "/img/initrd");
	assert_string_equal(cfg.boot.boot_args, "console=ttyS0 reboot=k");
	assert_int_equal(cfg.machine.vcpu_count, 4);
	assert_int_equal(cfg.machine.mem_size_mib, 1024);
	assert_true(cfg.machine.smt);
	assert_true(cfg.machine.track_dirty_pages);
	assert_int_equal(cfg.machine.huge_pages, HUGE_PAGES_NONE);
	assert_true(cfg.has_logger);
	assert_string_equal(cfg.logger.log_path, "/tmp/fc.log");
	assert_int_equal(cfg.logger.level, LOG_LEVEL_DEBUG);
	assert_true(cfg.logger.show_level);
	assert_true(cfg.logger.show_log_origin);
	assert_string_equal(cfg.serial.serial_out_path, "/tmp/serial.out");
	assert_true(cfg.has_vsock);
	assert_int_equal(cfg.vsock.guest_cid, 3);
	assert_string_equal(cfg.vsock.uds_path, "/tmp/v.sock");
	assert_true(cfg.has_metrics);
	assert_string_equal(cfg.metrics.metrics_path, "/tmp/metrics.fifo");
	check_full_devices(&cfg);
	config__free(&cfg);
	config__free(&cfg);
	assert_null(cfg.boot.initrd_path);
	assert_null(cfg.logger.log_path);
	assert_null(cfg.serial.serial_out_path);
	assert_null(cfg.vsock.uds_path);
	assert_null(cfg.metrics.metrics_path);
	assert_int_equal(cfg.nr_drives, 0);
	assert_int_equal(cfg.nr_net, 0);
	assert_null(cfg.drives[0].drive_id);
	assert_null(cfg.drives[1].path_on_host);
	assert_null(cfg.net[0].host_dev_name);
}

static void test_defaults(void **state)
{
	struct vm_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, MINIMAL), 0);
	assert_int_equal(cfg.machine.vcpu_count, 1);
	assert_int_equal(cfg.machine.mem_size_mib, 128);
	assert_false(cfg.machine.smt);
	assert_false(cfg.machine.track_dirty_pages);
	assert_int_equal(cfg.machine.huge_pages, HUGE_PAGES_NONE);
	assert_false(cfg.has_logger);
	assert_int_equal(cfg.logger.level, LOG_LEVEL_INFO);
	assert_false(cfg.logger.show_level);
	assert_null(cfg.serial.serial_out_path);
	config__free(&cfg);
}

static void test_null_means_absent(void **state)
{
	struct vm_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "{\"boot-source\":{\"kernel_image_path\":\"/k\","
				     "\"initrd_path\":null,\"boot_args\":null},"
				     "\"machine-config\":null,\"logger\":null,\"serial\":null,"
				     "\"drives\":null}"),
			 0);
	assert_null(cfg.boot.initrd_path);
	assert_false(cfg.has_logger);
	assert_int_equal(cfg.machine.vcpu_count, 1);
	config__free(&cfg);
}

static void test_good_values(void **state)
{
	static const struct {
		const char *section, *key, *value;
	} cases[] = {
		{ "machine-config", "vcpu_count", "1" },
		{ "machine-config", "vcpu_count", "32" },
		{ "machine-config", "mem_size_mib", "1" },
		{ "machine-config", "mem_size_mib", "1048576" },
		{ "machine-config", "smt", "false" },
		{ "machine-config", "huge_pages", "\"None\"" },
		{ "machine-config", "cpu_template", "\"None\"" },
		{ "logger", "level", "\"Warn\"" },
		{ "logger", "level", "\"WARNING\"" },
		{ "logger", "level", "\"off\"" },
		{ "logger", "level", "\"Trace\"" },
		{ "logger", "module", "null" },
		{ "serial", "rate_limiter", "null" },
		{ "boot-source", "kernel_image_path", "\"/k\\\\u0000\"" },
		{ "drives", "is_read_only", "null" },
		{ "drives", "is_read_only", "true" },
		{ "drives", "cache_type", "\"Writeback\"" },
		{ "drives", "cache_type", "null" },
		{ "drives", "io_engine", "\"Async\"" },
		{ "drives", "socket", "null" },
		{ "drives", "partuuid", "null" },
		{ "drives", "partuuid", "\"12345678-1234-1234-1234-123456789abc/PARTNROFF=1\"" },
		{ "drives", "rate_limiter", "null" },
		{ "drives", "rate_limiter", "{}" },
		{ "drives", "rate_limiter",
		  "{\"bandwidth\":null,\"ops\":{\"size\":0,\"refill_time\":0}}" },
		{ "drives", "rate_limiter",
		  "{\"ops\":{\"size\":9007199254740991,\"one_time_burst\":9007199254740991,"
		  "\"refill_time\":18446744073709}}" },
		{ "drives", "drive_id", "\"a\"" },
		{ "drives", "drive_id",
		  "\"0123456789012345678901234567890123456789012345678901234567890_-X\"" },
		{ "drives", "is_root_device", "false" },
		{ "network-interfaces", "guest_mac", "\"fe:ff:ff:ff:ff:ff\"" },
		{ "network-interfaces", "guest_mac", "\"02:00:00:00:00:00\"" },
		{ "network-interfaces", "guest_mac", "null" },
		{ "network-interfaces", "host_dev_name", "\"tap-0_x.y123456\"" },
		{ "network-interfaces", "host_dev_name", "\"...\"" },
		{ "network-interfaces", "rx_rate_limiter", "null" },
		{ "network-interfaces", "anti_spoofing", "null" },
		{ "network-interfaces", "tx_rate_limiter",
		  "{\"bandwidth\":{\"size\":1,\"refill_time\":1,\"one_time_burst\":null}}" },
		{ "vsock", "guest_cid", "4294967295" },
		{ "vsock", "vsock_id", "\"vsock0\"" },
		{ "vsock", "vsock_id", "null" },
		{ "metrics", "metrics_path", "\"relative/m\"" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_accept(doc_with(cases[i].section, cases[i].key, cases[i].value));
}

/* What anti_spoofing takes, on an interface with a guest_mac. */
static void test_anti_spoofing_values(void **state)
{
	static const char *const good[] = {
		"{}",
		"{\"ipv4\": [], \"ipv6\": []}",
		"{\"ipv4\": [\"1.2.3.4\",\"1.2.3.5\",\"1.2.3.6\",\"1.2.3.7\",\"1.2.3.8\","
		"\"1.2.3.9\",\"1.2.3.10\",\"223.255.255.254\"]}",
		"{\"ipv6\": [\"fe80::1\", \"::ffff:1.2.3.4\", \"2001:db8::ffff\"]}",
	};
	char json[1024];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(json, sizeof(json),
			 "{\"boot-source\":{\"kernel_image_path\":\"/k\"},\"network-interfaces\":"
			 "[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
			 "\"guest_mac\":\"06:00:ac:10:00:02\",\"anti_spoofing\":%s}]}",
			 good[i]);
		expect_accept(json);
	}
}

static void test_log_levels(void **state)
{
	struct vm_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, doc_with("logger", "level", "\"Warn\"")), 0);
	assert_int_equal(cfg.logger.level, LOG_LEVEL_WARN);
	assert_true(cfg.has_logger);
	config__free(&cfg);
	assert_int_equal(parse(&cfg, doc_with("logger", "level", "\"ERROR\"")), 0);
	assert_int_equal(cfg.logger.level, LOG_LEVEL_ERROR);
	config__free(&cfg);
}

static const struct bad_value {
	const char *section, *key, *value, *needle;
} bad_values[] = {
	{ "boot-source", "kernel_image_path", "1",
	  "boot-source.kernel_image_path: must be a string, got a number" },
	{ "boot-source", "kernel_image_path", "true",
	  "boot-source.kernel_image_path: must be a string" },
	{ "boot-source", "kernel_image_path", "null",
	  "boot-source.kernel_image_path: must be a string, got null" },
	{ "boot-source", "kernel_image_path", "[]",
	  "boot-source.kernel_image_path: must be a string, got an array" },
	{ "boot-source", "kernel_image_path", "{}",
	  "boot-source.kernel_image_path: must be a string, got an object" },
	{ "boot-source", "kernel_image_path", "\"\"",
	  "boot-source.kernel_image_path: must not be empty" },
	{ "boot-source", "initrd_path", "7", "boot-source.initrd_path: must be a string" },
	{ "boot-source", "initrd_path", "false", "boot-source.initrd_path: must be a string" },
	{ "boot-source", "initrd_path", "\"\"", "boot-source.initrd_path: must not be empty" },
	{ "boot-source", "boot_args", "[\"a\"]", "boot-source.boot_args: must be a string" },
	{ "boot-source", "boot_args", "{}", "boot-source.boot_args: must be a string" },
	{ "machine-config", "vcpu_count", "\"2\"",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got a string" },
	{ "machine-config", "vcpu_count", "true",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got a boolean" },
	{ "machine-config", "vcpu_count", "null",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got null" },
	{ "machine-config", "vcpu_count", "[2]", "machine-config.vcpu_count: must be an integer" },
	{ "machine-config", "vcpu_count", "0",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got 0" },
	{ "machine-config", "vcpu_count", "33",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got 33" },
	{ "machine-config", "vcpu_count", "-1",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got -1" },
	{ "machine-config", "vcpu_count", "-0",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got -0" },
	{ "machine-config", "vcpu_count", "2.5",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got 2.5" },
	{ "machine-config", "vcpu_count", "1e300",
	  "machine-config.vcpu_count: must be an integer from 1 to 32, got 1e+300" },
	{ "machine-config", "vcpu_count", "1e400",
	  "machine-config.vcpu_count: must be an integer" },
	{ "machine-config", "vcpu_count", "4294967297",
	  "machine-config.vcpu_count: must be an integer" },
	{ "machine-config", "mem_size_mib", "0",
	  "machine-config.mem_size_mib: must be an integer from 1 to 1048576, got 0" },
	{ "machine-config", "mem_size_mib", "1048577",
	  "machine-config.mem_size_mib: must be an integer from 1 to 1048576, got 1048577" },
	{ "machine-config", "mem_size_mib", "9007199254740993",
	  "machine-config.mem_size_mib: must be an integer" },
	{ "machine-config", "mem_size_mib", "18446744073709551616",
	  "machine-config.mem_size_mib: must be an integer" },
	{ "machine-config", "mem_size_mib", "128.5",
	  "machine-config.mem_size_mib: must be an integer" },
	{ "machine-config", "mem_size_mib", "\"128\"",
	  "machine-config.mem_size_mib: must be an integer" },
	{ "machine-config", "mem_size_mib", "false",
	  "machine-config.mem_size_mib: must be an integer" },
	{ "machine-config", "smt", "\"true\"",
	  "machine-config.smt: must be true or false, got a string" },
	{ "machine-config", "smt", "1", "machine-config.smt: must be true or false, got a number" },
	{ "machine-config", "track_dirty_pages", "\"yes\"",
	  "machine-config.track_dirty_pages: must be true or false" },
	{ "machine-config", "track_dirty_pages", "0",
	  "machine-config.track_dirty_pages: must be true or false" },
	{ "machine-config", "huge_pages", "2",
	  "machine-config.huge_pages: must be \"None\", \"2M\" or \"Transparent\", got a number" },
	{ "machine-config", "huge_pages", "true", "machine-config.huge_pages: must be" },
	{ "machine-config", "huge_pages", "\"4M\"",
	  "machine-config.huge_pages: must be \"None\", \"2M\" or \"Transparent\", got \"4M\"" },
	{ "machine-config", "huge_pages", "\"none\"", "machine-config.huge_pages: must be" },
	{ "machine-config", "ksm", "1", "machine-config.ksm: must be true or false" },
	{ "machine-config", "cpu_template", "1", "machine-config.cpu_template: must be a string" },
	{ "machine-config", "cpu_template", "\"T2\"",
	  "machine-config.cpu_template: \"T2\" is not supported yet" },
	{ "machine-config", "cpu_template", "\"C3\"",
	  "machine-config.cpu_template: \"C3\" is not supported yet" },
	{ "logger", "log_path", "1", "logger.log_path: must be a string" },
	{ "logger", "log_path", "null", "logger.log_path: must be a string, got null" },
	{ "logger", "log_path", "\"\"", "logger.log_path: must not be empty" },
	{ "logger", "level", "3",
	  "logger.level: must be one of \"Error\", \"Warning\", \"Info\", \"Debug\", \"Trace\", "
	  "\"Off\", got a number" },
	{ "logger", "level", "\"Verbose\"", "logger.level: must be one of" },
	{ "logger", "level", "true", "logger.level: must be one of" },
	{ "logger", "show_level", "\"true\"", "logger.show_level: must be true or false" },
	{ "logger", "show_level", "1", "logger.show_level: must be true or false" },
	{ "logger", "show_log_origin", "\"false\"",
	  "logger.show_log_origin: must be true or false" },
	{ "logger", "module", "\"api_server\"", "logger.module: not supported yet" },
	{ "serial", "serial_out_path", "1", "serial.serial_out_path: must be a string" },
	{ "serial", "serial_out_path", "true", "serial.serial_out_path: must be a string" },
	{ "serial", "serial_out_path", "\"\"", "serial.serial_out_path: must not be empty" },
	{ "serial", "rate_limiter", "{}", "serial.rate_limiter: not supported yet" },
	{ "boot-source", "kernel", "\"/k\"", "boot-source: unknown field \"kernel\"" },
	{ "machine-config", "vcpus", "2", "machine-config: unknown field \"vcpus\"" },
	{ "logger", "path", "\"/l\"", "logger: unknown field \"path\"" },
	{ "serial", "out", "\"/s\"", "serial: unknown field \"out\"" },
	{ "serial", "Serial_out_path", "\"/s\"", "serial: unknown field \"Serial_out_path\"" },
	{ "drives", "drive_id", "1", "drives[0].drive_id: must be a string, got a number" },
	{ "drives", "drive_id", "null", "drives[0].drive_id: must be a string, got null" },
	{ "drives", "drive_id", "\"\"", "drives[0].drive_id: must not be empty" },
	{ "drives", "drive_id", "\"a/b\"",
	  "drives[0].drive_id: must hold only A-Z, a-z, 0-9, '_' and '-', got \"a/b\"" },
	{ "drives", "drive_id", "\"a.b\"", "drives[0].drive_id: must hold only" },
	{ "drives", "drive_id", "\"a b\"", "drives[0].drive_id: must hold only" },
	{ "drives", "drive_id", "\"r\u00e9\"", "drives[0].drive_id: must hold only" },
	{ "drives", "drive_id",
	  "\"01234567890123456789012345678901234567890123456789012345678901234\"",
	  "drives[0].drive_id: must be at most 64 characters long, got 65" },
	{ "drives", "path_on_host", "1", "drives[0].path_on_host: must be a string, got a number" },
	{ "drives", "path_on_host", "null", "drives[0].path_on_host: must be a string, got null" },
	{ "drives", "path_on_host", "\"\"", "drives[0].path_on_host: must not be empty" },
	{ "drives", "is_root_device", "\"true\"",
	  "drives[0].is_root_device: must be true or false, got a string" },
	{ "drives", "is_root_device", "null", "drives[0].is_root_device: must be true or false" },
	{ "drives", "is_read_only", "1", "drives[0].is_read_only: must be true or false" },
	{ "drives", "partuuid", "\"\"", "drives[0].partuuid: must not be empty" },
	{ "drives", "partuuid", "7", "drives[0].partuuid: must be a string" },
	{ "drives", "partuuid", "\"abc init=/bin/sh\"",
	  "drives[0].partuuid: must not hold white space or control characters" },
	{ "drives", "partuuid", "\"a\\u0001\"", "drives[0].partuuid: must not hold white space" },
	{ "drives", "cache_type", "\"unsafe\"",
	  "drives[0].cache_type: must be \"Unsafe\" or \"Writeback\", got \"unsafe\"" },
	{ "drives", "cache_type", "1",
	  "drives[0].cache_type: must be \"Unsafe\" or \"Writeback\", got a number" },
	{ "drives", "io_engine", "\"sync\"",
	  "drives[0].io_engine: must be \"Sync\" or \"Async\", got \"sync\"" },
	{ "drives", "io_engine", "true", "drives[0].io_engine: must be \"Sync\" or \"Async\"" },
	{ "drives", "socket", "\"/vhost.sock\"", "drives[0].socket: not supported yet" },
	{ "drives", "rate_limiter", "1",
	  "drives[0].rate_limiter: must be an object, got a number" },
	{ "drives", "rate_limiter", "{\"bw\":{}}", "drives[0].rate_limiter: unknown field \"bw\"" },
	{ "drives", "rate_limiter", "{\"ops\":[]}",
	  "drives[0].rate_limiter.ops: must be an object, got an array" },
	{ "drives", "rate_limiter", "{\"bandwidth\":{\"size\":1}}",
	  "drives[0].rate_limiter.bandwidth.refill_time: required field is missing" },
	{ "drives", "rate_limiter", "{\"bandwidth\":{\"refill_time\":1}}",
	  "drives[0].rate_limiter.bandwidth.size: required field is missing" },
	{ "drives", "rate_limiter", "{\"ops\":{\"size\":-1,\"refill_time\":1}}",
	  "drives[0].rate_limiter.ops.size: must be an integer from 0 to 9007199254740991, got -1" },
	{ "drives", "rate_limiter", "{\"ops\":{\"size\":9007199254740992,\"refill_time\":1}}",
	  "drives[0].rate_limiter.ops.size: must be an integer from 0 to 9007199254740991" },
	{ "drives", "rate_limiter", "{\"ops\":{\"size\":1,\"refill_time\":18446744073710}}",
	  "drives[0].rate_limiter.ops.refill_time: must be an integer from 0 to 18446744073709, "
	  "got 18446744073710" },
	{ "drives", "rate_limiter",
	  "{\"ops\":{\"size\":1,\"refill_time\":1,\"one_time_burst\":1.5}}",
	  "drives[0].rate_limiter.ops.one_time_burst: must be an integer" },
	{ "drives", "rate_limiter", "{\"ops\":{\"size\":1,\"refill_time\":1,\"size\":2}}",
	  "drives[0].rate_limiter.ops: duplicate field \"size\"" },
	{ "drives", "nope", "1", "drives[0]: unknown field \"nope\"" },
	{ "drives", "Drive_id", "\"x\"", "drives[0]: unknown field \"Drive_id\"" },
	{ "network-interfaces", "iface_id", "\"eth 0\"",
	  "network-interfaces[0].iface_id: must hold only A-Z" },
	{ "network-interfaces", "iface_id", "\"\"",
	  "network-interfaces[0].iface_id: must not be empty" },
	{ "network-interfaces", "iface_id", "[]",
	  "network-interfaces[0].iface_id: must be a string" },
	{ "network-interfaces", "host_dev_name", "\"\"",
	  "network-interfaces[0].host_dev_name: must be a Linux interface name: 1 to 15 bytes" },
	{ "network-interfaces", "host_dev_name", "\"tap0123456789012\"",
	  "network-interfaces[0].host_dev_name: must be a Linux interface name" },
	{ "network-interfaces", "host_dev_name", "\"tap/0\"", "host_dev_name: must be a Linux" },
	{ "network-interfaces", "host_dev_name", "\"tap:0\"", "host_dev_name: must be a Linux" },
	{ "network-interfaces", "host_dev_name", "\"tap 0\"", "host_dev_name: must be a Linux" },
	{ "network-interfaces", "host_dev_name", "\"tap\\t0\"", "host_dev_name: must be a Linux" },
	{ "network-interfaces", "host_dev_name", "\".\"", "host_dev_name: must be a Linux" },
	{ "network-interfaces", "host_dev_name", "\"..\"", "host_dev_name: must be a Linux" },
	{ "network-interfaces", "host_dev_name", "null",
	  "network-interfaces[0].host_dev_name: must be a string, got null" },
	{ "network-interfaces", "guest_mac", "6",
	  "network-interfaces[0].guest_mac: must be a string, got a number" },
	{ "network-interfaces", "guest_mac", "\"06:00:00:00:00\"",
	  "network-interfaces[0].guest_mac: must be a MAC address like \"06:00:ac:10:00:02\", got "
	  "\"06:00:00:00:00\"" },
	{ "network-interfaces", "guest_mac", "\"06:00:00:00:00:01:02\"", "must be a MAC address" },
	{ "network-interfaces", "guest_mac", "\"06-00-00-00-00-01\"", "must be a MAC address" },
	{ "network-interfaces", "guest_mac", "\"6:0:0:0:0:1\"", "must be a MAC address" },
	{ "network-interfaces", "guest_mac", "\"06:00:00:00:00:0g\"", "must be a MAC address" },
	{ "network-interfaces", "guest_mac", "\" 06:00:00:00:00:1\"", "must be a MAC address" },
	{ "network-interfaces", "guest_mac", "\"01:00:5e:00:00:01\"",
	  "network-interfaces[0].guest_mac: must not be a multicast address, got "
	  "\"01:00:5e:00:00:01\"" },
	{ "network-interfaces", "guest_mac", "\"ff:ff:ff:ff:ff:ff\"", "must not be a multicast" },
	{ "network-interfaces", "guest_mac", "\"00:00:00:00:00:00\"",
	  "network-interfaces[0].guest_mac: must not be all zeros" },
	{ "network-interfaces", "rx_rate_limiter", "[]",
	  "network-interfaces[0].rx_rate_limiter: must be an object, got an array" },
	{ "network-interfaces", "tx_rate_limiter",
	  "{\"bandwidth\":{\"size\":1,\"refill_time\":1,\"x\":1}}",
	  "network-interfaces[0].tx_rate_limiter.bandwidth: unknown field \"x\"" },
	{ "network-interfaces", "mtu", "1500", "network-interfaces[0]: unknown field \"mtu\"" },
	{ "network-interfaces", "anti_spoofing", "{}",
	  "network-interfaces[0].anti_spoofing: needs guest_mac: the filter lets through only "
	  "frames from the interface's own MAC" },
	{ "network-interfaces", "anti_spoofing", "[]",
	  "network-interfaces[0].anti_spoofing: must be an object, got an array" },
	{ "network-interfaces", "anti_spoofing", "{\"mac\": true}",
	  "network-interfaces[0].anti_spoofing: unknown field \"mac\"" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv4\": \"172.16.0.2\"}",
	  "network-interfaces[0].anti_spoofing.ipv4: must be an array of IPv4 addresses, got a "
	  "string" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv4\": [\"172.16.0.256\"]}",
	  "network-interfaces[0].anti_spoofing.ipv4[0]: must be an IPv4 address like "
	  "\"172.16.0.2\", got \"172.16.0.256\"" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv4\": [\"fd00::2\"]}",
	  "anti_spoofing.ipv4[0]: must be an IPv4 address" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv4\": [\"1.2.3.4\", 5]}",
	  "network-interfaces[0].anti_spoofing.ipv4[1]: must be a string, got a number" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv4\": [\"0.0.0.0\"]}",
	  "anti_spoofing.ipv4[0]: \"0.0.0.0\" is the unspecified address, which no guest may "
	  "send from" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv4\": [\"224.0.0.1\"]}",
	  "is a multicast address" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv4\": [\"255.255.255.255\"]}",
	  "is a reserved or broadcast address" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv4\": [\"127.0.0.1\"]}",
	  "is a loopback address" },
	{ "network-interfaces", "anti_spoofing",
	  "{\"ipv4\": [\"1.2.3.4\",\"1.2.3.5\",\"1.2.3.6\",\"1.2.3.7\",\"1.2.3.8\","
	  "\"1.2.3.9\",\"1.2.3.10\",\"1.2.3.11\",\"1.2.3.12\"]}",
	  "network-interfaces[0].anti_spoofing.ipv4: at most 8 addresses are supported, got 9" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv6\": [\"fd00::g\"]}",
	  "network-interfaces[0].anti_spoofing.ipv6[0]: must be an IPv6 address like \"fd00::2\"" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv6\": [\"::\"]}",
	  "is the unspecified address" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv6\": [\"ff02::1\"]}",
	  "is a multicast address" },
	{ "network-interfaces", "anti_spoofing", "{\"ipv6\": [\"::1\"]}", "is the loopback address" },
	{ "vsock", "guest_cid", "2",
	  "vsock.guest_cid: must be an integer from 3 to 4294967295, got 2" },
	{ "vsock", "guest_cid", "4294967296", "vsock.guest_cid: must be an integer from 3" },
	{ "vsock", "guest_cid", "\"3\"",
	  "vsock.guest_cid: must be an integer from 3 to 4294967295, "
	  "got a string" },
	{ "vsock", "guest_cid", "null", "vsock.guest_cid: must be an integer" },
	{ "vsock", "uds_path", "\"\"", "vsock.uds_path: must not be empty" },
	{ "vsock", "uds_path", "false", "vsock.uds_path: must be a string, got a boolean" },
	{ "vsock", "vsock_id", "1", "vsock.vsock_id: must be a string, got a number" },
	{ "vsock", "cid", "3", "vsock: unknown field \"cid\"" },
	{ "metrics", "metrics_path", "\"\"", "metrics.metrics_path: must not be empty" },
	{ "metrics", "metrics_path", "null", "metrics.metrics_path: must be a string, got null" },
	{ "metrics", "path", "\"/m\"", "metrics: unknown field \"path\"" },
};

static void test_bad_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad_values); i++) {
		const struct bad_value *b = &bad_values[i];

		expect_reject(doc_with(b->section, b->key, b->value), b->needle);
	}
}

static void test_boot_args_length(void **state)
{
	char args[2049], value[2052];

	(void)state;
	/* Linux on x86 keeps 2048 bytes of command line, the NUL included */
	memset(args, 'a', sizeof(args) - 1);
	args[2047] = '\0';
	snprintf(value, sizeof(value), "\"%s\"", args);
	expect_accept(doc_with("boot-source", "boot_args", value));
	args[2047] = 'a';
	args[2048] = '\0';
	snprintf(value, sizeof(value), "\"%s\"", args);
	expect_reject(doc_with("boot-source", "boot_args", value),
		      "boot-source.boot_args: must be at most 2047 bytes long, got 2048");
}

static void test_sections(void **state)
{
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{ "{\"boot-source\":[]}", "boot-source: must be an object, got an array" },
		{ "{\"boot-source\":\"/k\"}", "boot-source: must be an object, got a string" },
		{ "{\"boot-source\":null}", "boot-source: must be an object, got null" },
		{ "{\"machine-config\":1," MINIMAL_TAIL, "machine-config: must be an object" },
		{ "{\"logger\":\"x\"," MINIMAL_TAIL, "logger: must be an object, got a string" },
		{ "{\"serial\":true," MINIMAL_TAIL, "serial: must be an object, got a boolean" },
		{ "{\"drives\":{}," MINIMAL_TAIL, "drives: must be an array, got an object" },
		{ "{\"drives\":[{}]," MINIMAL_TAIL,
		  "drives[0].drive_id: required field is missing" },
		{ "{\"drives\":[[]]," MINIMAL_TAIL, "drives[0]: must be an object, got an array" },
		{ "{\"network-interfaces\":[1]," MINIMAL_TAIL,
		  "network-interfaces[0]: must be an object, got a number" },
		{ "{\"network-interfaces\":\"eth0\"," MINIMAL_TAIL,
		  "network-interfaces: must be an array" },
		{ "{\"vsock\":{}," MINIMAL_TAIL, "vsock.guest_cid: required field is missing" },
		{ "{\"vsock\":{\"guest_cid\":3}," MINIMAL_TAIL,
		  "vsock.uds_path: required field is missing" },
		{ "{\"vsock\":[]," MINIMAL_TAIL, "vsock: must be an object, got an array" },
		{ "{\"balloon\":{}," MINIMAL_TAIL,
		  "balloon.amount_mib: required field is missing" },
		{ "{\"balloon\":{\"amount_mib\":129,\"deflate_on_oom\":false}," MINIMAL_TAIL,
		  "balloon.amount_mib: must be at most the guest's memory "
		  "(machine-config.mem_size_mib 128), got 129" },
		{ "{\"balloon\":{\"amount_mib\":1,\"deflate_on_oom\":false,\"x\":1}," MINIMAL_TAIL,
		  "balloon: unknown field \"x\"" },
		{ "{\"balloon\":{\"amount_mib\":1,\"deflate_on_oom\":false,"
		  "\"free_page_hinting\":true}," MINIMAL_TAIL,
		  "balloon.free_page_hinting: not supported yet" },
		{ "{\"entropy\":[]," MINIMAL_TAIL, "entropy: must be an object, got an array" },
		{ "{\"entropy\":{\"rate\":1}," MINIMAL_TAIL, "entropy: unknown field \"rate\"" },
		{ "{\"entropy\":{\"rate_limiter\":{\"ops\":{\"size\":1}}}," MINIMAL_TAIL,
		  "entropy.rate_limiter.ops.refill_time: required field is missing" },
		{ "{\"mmds-config\":{}," MINIMAL_TAIL, "mmds-config: not supported yet" },
		{ "{\"metrics\":{}," MINIMAL_TAIL,
		  "metrics.metrics_path: required field is missing" },
		{ "{\"metrics\":\"/m\"," MINIMAL_TAIL, "metrics: must be an object, got a string" },
		{ "{\"cpu-config\":\"/c.json\"," MINIMAL_TAIL, "cpu-config: not supported yet" },
		{ "{\"cpu-config\":false," MINIMAL_TAIL, "cpu-config: not supported yet" },
		{ "{\"foo\":{}," MINIMAL_TAIL, "config: unknown section \"foo\"" },
		{ "{\"Boot-source\":{}}", "config: unknown section \"Boot-source\"" },
		{ "{\"fo\\no\":1}", "config: unknown section \"fo?o\"" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_reject(cases[i].json, cases[i].needle);
	expect_accept("{\"drives\":[],\"network-interfaces\":[]," MINIMAL_TAIL);
	expect_accept("{\"vsock\":null,\"balloon\":null,\"entropy\":null,\"mmds-config\":null,"
		      "\"metrics\":null,\"cpu-config\":null," MINIMAL_TAIL);
}

static void test_missing_required(void **state)
{
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{ "{}", "boot-source: required section is missing" },
		{ "{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128}}",
		  "boot-source: required section is missing" },
		{ "{\"boot-source\":{}}",
		  "boot-source.kernel_image_path: required field is missing" },
		{ "{\"boot-source\":{\"initrd_path\":\"/i\"}}",
		  "boot-source.kernel_image_path: required field is missing" },
		{ "{\"machine-config\":{\"mem_size_mib\":128}," MINIMAL_TAIL,
		  "machine-config.vcpu_count: required field is missing" },
		{ "{\"machine-config\":{\"vcpu_count\":2}," MINIMAL_TAIL,
		  "machine-config.mem_size_mib: required field is missing" },
		{ "{\"machine-config\":{}," MINIMAL_TAIL,
		  "machine-config.vcpu_count: required field" },
		{ "{\"logger\":{\"level\":\"Info\"}," MINIMAL_TAIL,
		  "logger.log_path: required field is missing" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_reject(cases[i].json, cases[i].needle);
	expect_accept("{\"serial\":{}," MINIMAL_TAIL);
}

/* n drives "d0".."d<n-1>" (the first of them the root device) or n interfaces. */
static char *devices_doc(const char *list, unsigned int n)
{
	static char buf[8192];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "{\"%s\":[", list);

	for (unsigned int i = 0; i < n; i++) {
		if (!strcmp(list, "drives"))
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"%s{\"drive_id\":\"d%u\",\"path_on_host\":\"/d%u\","
						"\"is_root_device\":%s}",
						i ? "," : "", i, i, i ? "false" : "true");
		else
			len += (size_t)snprintf(
				buf + len, sizeof(buf) - len,
				"%s{\"iface_id\":\"n%u\",\"host_dev_name\":\"tap%u\","
				"\"guest_mac\":\"06:00:00:00:00:%02x\"}",
				i ? "," : "", i, i, i);
	}
	snprintf(buf + len, sizeof(buf) - len, "]," MINIMAL_TAIL);
	return buf;
}

static void test_device_lists(void **state)
{
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{ "{\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":true},"
		  "{\"drive_id\":\"b\",\"path_on_host\":\"/b\",\"is_root_device\":true}]," MINIMAL_TAIL,
		  "drives[1].is_root_device: drive 'a' is already the root device" },
		{ "{\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":false},"
		  "{\"drive_id\":\"a\",\"path_on_host\":\"/b\",\"is_root_device\":false}]," MINIMAL_TAIL,
		  "drives[1].drive_id: duplicate id 'a'" },
		{ "{\"network-interfaces\":[{\"iface_id\":\"a\",\"host_dev_name\":\"tap0\"},"
		  "{\"iface_id\":\"a\",\"host_dev_name\":\"tap1\"}]," MINIMAL_TAIL,
		  "network-interfaces[1].iface_id: duplicate id 'a'" },
		{ "{\"network-interfaces\":[{\"iface_id\":\"a\",\"host_dev_name\":\"tap0\"},"
		  "{\"iface_id\":\"b\",\"host_dev_name\":\"tap0\"}]," MINIMAL_TAIL,
		  "network-interfaces[1].host_dev_name: \"tap0\" is already used by interface 'a'" },
		{ "{\"network-interfaces\":[{\"iface_id\":\"a\",\"host_dev_name\":\"tap0\","
		  "\"guest_mac\":\"06:00:00:00:00:0A\"},{\"iface_id\":\"b\",\"host_dev_name\":\"tap1\","
		  "\"guest_mac\":\"06:00:00:00:00:0a\"}]," MINIMAL_TAIL,
		  "network-interfaces[1].guest_mac: 06:00:00:00:00:0a is already used by interface 'a'" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_reject(cases[i].json, cases[i].needle);
	expect_accept(devices_doc("drives", 8));
	expect_reject(devices_doc("drives", 9), "drives: at most 8 are supported, got 9");
	expect_accept(devices_doc("network-interfaces", 8));
	expect_reject(devices_doc("network-interfaces", 9),
		      "network-interfaces: at most 8 are supported, got 9");
	/* two interfaces without a MAC do not clash */
	expect_accept("{\"network-interfaces\":[{\"iface_id\":\"a\",\"host_dev_name\":\"tap0\"},"
		      "{\"iface_id\":\"b\",\"host_dev_name\":\"tap1\"}]," MINIMAL_TAIL);
}

/* Firecracker keeps the root device first; the others keep their order. */
static void test_root_first(void **state)
{
	struct vm_config cfg;

	(void)state;
	assert_int_equal(
		parse(&cfg, "{\"drives\":["
			    "{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":false},"
			    "{\"drive_id\":\"b\",\"path_on_host\":\"/b\",\"is_root_device\":false},"
			    "{\"drive_id\":\"r\",\"path_on_host\":\"/r\",\"is_root_device\":true},"
			    "{\"drive_id\":\"c\",\"path_on_host\":\"/c\",\"is_root_device\":false}"
			    "]," MINIMAL_TAIL),
		0);
	assert_int_equal(cfg.nr_drives, 4);
	assert_string_equal(cfg.drives[0].drive_id, "r");
	assert_string_equal(cfg.drives[1].drive_id, "a");
	assert_string_equal(cfg.drives[2].drive_id, "b");
	assert_string_equal(cfg.drives[3].drive_id, "c");
	assert_string_equal(cfg.drives[0].path_on_host, "/r");
	config__free(&cfg);
}

/* A bucket of size 0 or refill_time 0 limits nothing: it is dropped, as Firecracker does. */
static void test_idle_buckets(void **state)
{
	struct vm_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, doc_with("drives", "rate_limiter",
					      "{\"bandwidth\":{\"size\":0,\"refill_time\":100},"
					      "\"ops\":{\"size\":5,\"refill_time\":0}}")),
			 0);
	assert_false(cfg.drives[0].has_rate_limiter);
	assert_false(cfg.drives[0].rate_limiter.has_bandwidth);
	assert_false(cfg.drives[0].rate_limiter.has_ops);
	assert_int_equal(cfg.drives[0].rate_limiter.ops.size, 0);
	config__free(&cfg);
	assert_int_equal(parse(&cfg, doc_with("network-interfaces", "tx_rate_limiter",
					      "{\"bandwidth\":{\"size\":0,\"refill_time\":100},"
					      "\"ops\":{\"size\":5,\"refill_time\":7}}")),
			 0);
	assert_true(cfg.net[0].has_tx_rate_limiter);
	assert_false(cfg.net[0].tx_rate_limiter.has_bandwidth);
	assert_true(cfg.net[0].tx_rate_limiter.has_ops);
	check_bucket(&cfg.net[0].tx_rate_limiter.ops, 5, 0, 7);
	config__free(&cfg);
	assert_int_equal(parse(&cfg, doc_with("drives", "rate_limiter", "{}")), 0);
	assert_false(cfg.drives[0].has_rate_limiter);
	config__free(&cfg);
}

/* Firecracker's "entropy": an object with an optional rate_limiter, as a drive's. */
static void test_entropy(void **state)
{
	struct vm_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, MINIMAL), 0);
	assert_false(cfg.has_entropy);
	config__free(&cfg);
	assert_int_equal(parse(&cfg, "{\"entropy\":{}," MINIMAL_TAIL), 0);
	assert_true(cfg.has_entropy);
	assert_false(cfg.entropy.has_rate_limiter);
	config__free(&cfg);
	assert_int_equal(parse(&cfg, "{\"entropy\":{\"rate_limiter\":null}," MINIMAL_TAIL), 0);
	assert_true(cfg.has_entropy);
	assert_false(cfg.entropy.has_rate_limiter);
	config__free(&cfg);
	/* an idle bucket limits nothing */
	assert_int_equal(parse(&cfg, "{\"entropy\":{\"rate_limiter\":{\"bandwidth\":{\"size\":0,"
				     "\"refill_time\":100}}}," MINIMAL_TAIL),
			 0);
	assert_true(cfg.has_entropy);
	assert_false(cfg.entropy.has_rate_limiter);
	config__free(&cfg);
	assert_int_equal(parse(&cfg, full_config), 0);
	assert_true(cfg.has_entropy);
	assert_true(cfg.entropy.has_rate_limiter);
	assert_true(cfg.entropy.rate_limiter.has_bandwidth);
	assert_false(cfg.entropy.rate_limiter.has_ops);
	check_bucket(&cfg.entropy.rate_limiter.bandwidth, 4096, 0, 10);
	config__free(&cfg);
}

static void test_to_json_minimal(void **state)
{
	static const char want[] =
		"{\"balloon\":null,\"drives\":[],\"boot-source\":{\"kernel_image_path\":\"/k\","
		"\"initrd_path\":null,\"boot_args\":null},\"cpu-config\":null,\"logger\":null,"
		"\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":false,"
		"\"track_dirty_pages\":false,\"huge_pages\":\"None\",\"ksm\":false},\"metrics\":null,"
		"\"mmds-config\":null,\"network-interfaces\":[],\"vsock\":null,\"entropy\":null}";
	struct vm_config cfg;
	char *json;

	(void)state;
	assert_int_equal(parse(&cfg, MINIMAL), 0);
	json = config__to_json(&cfg);
	assert_non_null(json);
	assert_string_equal(json, want);
	free(json);
	json = config__machine_to_json(&cfg.machine);
	assert_string_equal(json, "{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":false,"
				  "\"track_dirty_pages\":false,\"huge_pages\":\"None\",\"ksm\":false}");
	free(json);
	config__free(&cfg);
}

static void test_to_json_full(void **state)
{
	static const char *const parts[] = {
		"\"drives\":[{\"drive_id\":\"rootfs\",\"partuuid\":\"0eaa91a0-01\","
		"\"is_root_device\":true,\"cache_type\":\"Unsafe\",\"is_read_only\":false,"
		"\"path_on_host\":\"/img/rootfs.ext4\",\"rate_limiter\":null,\"io_engine\":\"Sync\","
		"\"socket\":null},{\"drive_id\":\"data\",\"partuuid\":null,",
		"\"rate_limiter\":{\"bandwidth\":{\"size\":1048576,\"one_time_burst\":4096,"
		"\"refill_time\":100},\"ops\":{\"size\":1000,\"one_time_burst\":0,\"refill_time\":1000}}",
		"\"cache_type\":\"Writeback\"",
		"\"io_engine\":\"Async\"",
		"\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
		"\"guest_mac\":\"06:00:ac:10:00:02\",\"rx_rate_limiter\":{\"bandwidth\":null,"
		"\"ops\":{\"size\":10,\"one_time_burst\":0,\"refill_time\":1}},"
		"\"tx_rate_limiter\":null,\"anti_spoofing\":{\"ipv4\":[\"172.16.0.2\"],"
		"\"ipv6\":[\"fd00::2\",\"2001:db8::1\"]}},{\"iface_id\":\"eth1\","
		"\"host_dev_name\":\"tap1\",\"guest_mac\":null,\"rx_rate_limiter\":null,"
		"\"tx_rate_limiter\":null,\"anti_spoofing\":null}]",
		"\"vsock\":{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\"}",
		"\"entropy\":{\"rate_limiter\":{\"bandwidth\":{\"size\":4096,\"one_time_burst\":0,"
		"\"refill_time\":10},\"ops\":null}}",
		"\"metrics\":{\"metrics_path\":\"/tmp/metrics.fifo\"}",
		"\"logger\":{\"log_path\":\"/tmp/fc.log\",\"level\":\"Debug\",\"show_level\":true,"
		"\"show_log_origin\":true,",
		"\"machine-config\":{\"vcpu_count\":4,\"mem_size_mib\":1024,\"smt\":true,"
		"\"track_dirty_pages\":true,\"huge_pages\":\"None\",\"ksm\":false}",
		"\"serial\":{\"serial_out_path\":\"/tmp/serial.out\"",
	};
	struct vm_config cfg;
	char *json;

	(void)state;
	assert_int_equal(parse(&cfg, full_config), 0);
	json = config__to_json(&cfg);
	assert_non_null(json);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		if (!strstr(json, parts[i])) {
			print_error("%s\n  does not hold\n%s\n", json, parts[i]);
			fail();
		}
	}
	free(json);
	config__free(&cfg);
}

/* What config__to_json() prints, config__parse() reads back into the same config. */
static void check_round_trip(const char *json)
{
	struct vm_config a, b;
	char *one, *two;

	assert_int_equal(parse(&a, json), 0);
	one = config__to_json(&a);
	assert_non_null(one);
	if (parse(&b, one)) {
		print_error("%s\n  does not parse back: %s\n", one, error__get());
		fail();
	}
	two = config__to_json(&b);
	assert_string_equal(one, two);
	assert_int_equal(a.nr_drives, b.nr_drives);
	assert_int_equal(a.nr_net, b.nr_net);
	assert_int_equal(a.has_logger, b.has_logger);
	assert_int_equal(a.logger.level, b.logger.level);
	assert_int_equal(a.machine.mem_size_mib, b.machine.mem_size_mib);
	free(one);
	free(two);
	config__free(&a);
	config__free(&b);
}

static void test_round_trip(void **state)
{
	struct vm_config cfg;

	(void)state;
	check_round_trip(MINIMAL);
	check_round_trip(full_config);
	check_round_trip(devices_doc("drives", 8));
	check_round_trip(devices_doc("network-interfaces", 8));
	check_round_trip(doc_with("logger", "level", "\"warn\""));
	check_round_trip(
		doc_with("boot-source", "boot_args", "\"a \\\"b\\\" \\\\ \\u00e9 \\u0001\""));
	check_round_trip(doc_with("drives", "rate_limiter",
				  "{\"ops\":{\"size\":9007199254740991,\"one_time_burst\":1,"
				  "\"refill_time\":18446744073709}}"));
	check_round_trip(doc_with("vsock", "guest_cid", "4294967295"));
	check_round_trip("{\"entropy\":{}," MINIMAL_TAIL);
	check_round_trip(
		"{\"balloon\":{\"amount_mib\":100,\"deflate_on_oom\":true,"
		"\"stats_polling_interval_s\":5,\"free_page_reporting\":true}," MINIMAL_TAIL);
	check_round_trip("{\"entropy\":{\"rate_limiter\":{\"ops\":{\"size\":3,"
			 "\"refill_time\":5}}}," MINIMAL_TAIL);
	/* integers near 2^53 print exactly (cJSON's own printer rounds them) */
	assert_int_equal(parse(&cfg, doc_with("drives", "rate_limiter",
					      "{\"ops\":{\"size\":9007199254740991,"
					      "\"one_time_burst\":9007199254740990,"
					      "\"refill_time\":18446744073709}}")),
			 0);
	{
		char *json = config__to_json(&cfg);
		struct vm_config back;

		assert_non_null(strstr(json, "\"size\":9007199254740991,\"one_time_burst\":"
					     "9007199254740990,\"refill_time\":18446744073709"));
		assert_int_equal(parse(&back, json), 0);
		check_bucket(&back.drives[0].rate_limiter.ops, 9007199254740991ULL,
			     9007199254740990ULL, 18446744073709ULL);
		config__free(&back);
		free(json);
	}
	config__free(&cfg);
	/* and field by field, for the config that holds everything */
	assert_int_equal(parse(&cfg, full_config), 0);
	{
		char *json = config__to_json(&cfg);
		struct vm_config back;

		config__free(&cfg);
		assert_int_equal(parse(&back, json), 0);
		check_full_devices(&back);
		assert_string_equal(back.vsock.uds_path, "/tmp/v.sock");
		assert_int_equal(back.machine.vcpu_count, 4);
		assert_string_equal(back.serial.serial_out_path, "/tmp/serial.out");
		assert_int_equal(back.logger.level, LOG_LEVEL_DEBUG);
		config__free(&back);
		free(json);
	}
}

static void test_smt(void **state)
{
	(void)state;
	expect_reject("{\"machine-config\":{\"vcpu_count\":3,\"mem_size_mib\":128,\"smt\":true}"
		      "," MINIMAL_TAIL,
		      "machine-config.smt: needs vcpu_count 1 or an even number, got 3");
	expect_reject("{\"machine-config\":{\"smt\":true,\"mem_size_mib\":128,\"vcpu_count\":31}"
		      "," MINIMAL_TAIL,
		      "machine-config.smt");
	expect_accept("{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":true}"
		      "," MINIMAL_TAIL);
	expect_accept("{\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":128,\"smt\":true}"
		      "," MINIMAL_TAIL);
	expect_accept("{\"machine-config\":{\"vcpu_count\":3,\"mem_size_mib\":128,\"smt\":false}"
		      "," MINIMAL_TAIL);
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	expect_reject("{\"boot-source\":{\"kernel_image_path\":\"/a\"}," MINIMAL_TAIL,
		      "config: duplicate section \"boot-source\"");
	expect_reject(
		"{\"boot-source\":{\"kernel_image_path\":\"/a\",\"kernel_image_path\":\"/b\"}}",
		"boot-source: duplicate field \"kernel_image_path\"");
	expect_reject("{\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":128,\"vcpu_count\":4}"
		      "," MINIMAL_TAIL,
		      "machine-config: duplicate field \"vcpu_count\"");
	expect_reject("{\"drives\":[],\"drives\":[]," MINIMAL_TAIL,
		      "config: duplicate section \"drives\"");
	expect_reject("{\"vsock\":null,\"vsock\":null," MINIMAL_TAIL,
		      "config: duplicate section \"vsock\"");
}

static void test_nul_in_strings(void **state)
{
	static const char raw_nul[] = "{\"boot-source\":{\"kernel_image_path\":\"/k\0x\"}}";
	struct vm_config cfg;

	(void)state;
	/* an escaped backslash followed by "u0000" is plain text */
	assert_int_equal(parse(&cfg, doc_with("boot-source", "kernel_image_path",
					      "\"/k\\\\u0000\\\"\\u0041\"")),
			 0);
	assert_string_equal(cfg.boot.kernel_image_path, "/k\\u0000\"A");
	config__free(&cfg);
	expect_reject(doc_with("boot-source", "kernel_image_path", "\"/k\\u0000/evil\""),
		      "boot-source.kernel_image_path: must not contain a NUL byte");
	expect_reject(doc_with("logger", "log_path", "\"\\u0000\""),
		      "logger.log_path: must not contain a NUL byte");
	expect_reject(doc_with("boot-source", "boot_args", "\"a\\\\\\u0000\""),
		      "boot-source.boot_args: must not contain a NUL byte");
	expect_reject("{\"boot-source\\u0000x\":{\"kernel_image_path\":\"/k\"}}",
		      "config: name \"boot-source\" contains a NUL byte");
	expect_reject("{\"boot-source\":{\"kernel_image_path\\u0000\":\"/k\"}}",
		      "boot-source: name \"kernel_image_path\" contains a NUL byte");
	expect_reject("{\"vsock\":{\"a\":[\"x\",\"y\\u0000\"]}," MINIMAL_TAIL,
		      "vsock.a[1]: must not contain a NUL byte");
	expect_reject_len(raw_nul, sizeof(raw_nul) - 1,
			  "config: not valid JSON near byte 39 (line 1, column 40)");
	expect_reject("{\"boot-source\":{\"kernel_image_path\":\"/k\tx\"}}", "control character");
	expect_reject("{\"boot-source\":\x01{\"kernel_image_path\":\"/k\"}}",
		      "config: not valid JSON near byte 15 (line 1, column 16): control character");
}

static void test_invalid_json(void **state)
{
	(void)state;
	expect_reject_len("", 0, "config: empty input");
	expect_reject_len(NULL, 0, "config: empty input");
	expect_reject(" \n\t\r", "config: empty input");
	expect_reject("{\"boot-source\":", "config: not valid JSON near byte");
	expect_reject("{\"a\" 1}", "config: not valid JSON near byte 5 (line 1, column 6)");
	expect_reject("{\n\"a\":\n tru}", "config: not valid JSON near byte 8 (line 3, column 2)");
	expect_reject("{'boot-source':{}}", "config: not valid JSON near byte");
	expect_reject(MINIMAL " x", "config: not valid JSON near byte 43 (line 1, column 44): data "
				    "after the top-level value");
	expect_reject(MINIMAL "{}", "data after the top-level value");
	expect_reject("[]", "config: top level must be an object, got an array");
	expect_reject("[" MINIMAL "]", "config: top level must be an object, got an array");
	expect_reject("[\"\\u0000\"]", "config: top level must be an object, got an array");
	expect_reject("null", "config: top level must be an object, got null");
	expect_reject("42", "config: top level must be an object, got a number");
	expect_reject("\"x\"", "config: top level must be an object, got a string");
	expect_accept(" \n" MINIMAL " \r\n\t");
}

static void test_too_large(void **state)
{
	size_t len = CONFIG_FILE_MAX + 1;
	char *buf = malloc(len);

	(void)state;
	assert_non_null(buf);
	memset(buf, ' ', len);
	memcpy(buf, MINIMAL, strlen(MINIMAL));
	expect_reject_len(buf, len, "config: larger than 1048576 bytes");
	free(buf);
}

/* Deep nesting stays within cJSON's limit or is refused, never a crash. */
static void test_deep_nesting(void **state)
{
	size_t depth = 100000, n = 0;
	char *buf = malloc(2 * depth + 64);

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < depth; i++)
		buf[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		buf[n++] = ']';
	expect_reject_len(buf, n, "config: not valid JSON");

	n = (size_t)sprintf(buf, "{\"vsock\":");
	for (size_t i = 0; i < 900; i++)
		buf[n++] = '[';
	n += (size_t)sprintf(buf + n, "\"\\u0000\"");
	for (size_t i = 0; i < 900; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	expect_reject_len(buf, n, "vsock[0][0][0]");
	free(buf);
}

/*
 * The input has no NUL terminator: put it flush against an unmapped page, so that any read
 * past len faults. Every proper prefix of a good config must be refused cleanly.
 */
static void test_not_nul_terminated(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = strlen(full_config);
	char *map, *end;
	struct vm_config cfg;

	(void)state;
	map = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
	end = map + page;
	memcpy(end - len, full_config, len);
	config__init(&cfg);
	assert_int_equal(config__parse(&cfg, end - len, len), 0);
	assert_int_equal(cfg.machine.vcpu_count, 4);
	config__free(&cfg);
	for (size_t n = 0; n < len; n++) {
		memcpy(end - n, full_config, n);
		expect_reject_len(end - n, n, "config:");
	}
	memcpy(end - 5, "{\"a\\u", 5);
	expect_reject_len(end - 5, 5, "config: not valid JSON");
	memcpy(end - 2, "1e", 2);
	expect_reject_len(end - 2, 2, "config:");
	munmap(map, 2 * (size_t)page);
}

static void test_failure_frees(void **state)
{
	struct vm_config cfg;

	(void)state;
	/* kernel_image_path and log_path are allocated before the bad value is reached */
	assert_int_equal(parse(&cfg, "{\"boot-source\":{\"kernel_image_path\":\"/k\"},"
				     "\"logger\":{\"log_path\":\"/l\"},"
				     "\"machine-config\":{\"vcpu_count\":0,\"mem_size_mib\":1}}"),
			 -EINVAL);
	assert_config_is_default(&cfg);
	config__free(&cfg);
	config__free(&cfg);
	/* devices hold strings too: a later failure frees them all */
	assert_int_equal(
		parse(&cfg,
		      "{\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"/a\","
		      "\"is_root_device\":true,\"partuuid\":\"p\"},"
		      "{\"drive_id\":\"b\",\"path_on_host\":\"/b\",\"is_root_device\":1}]," MINIMAL_TAIL),
		-EINVAL);
	assert_config_is_default(&cfg);
	assert_int_equal(parse(&cfg, "{\"network-interfaces\":[{\"iface_id\":\"a\","
				     "\"host_dev_name\":\"tap0\"}],\"vsock\":{\"uds_path\":\"/v\","
				     "\"guest_cid\":3},\"metrics\":{\"metrics_path\":\"/m\"},"
				     "\"serial\":{\"serial_out_path\":\"/s\"},\"boot-source\":{}}"),
			 -EINVAL);
	assert_config_is_default(&cfg);
	assert_null(cfg.serial.serial_out_path);
	config__free(&cfg);
}

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/test_config.XXXXXX", path[64], msg[128];
	struct vm_config cfg;
	int ret;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.json", dir);
	config__init(&cfg);

	error__clear();
	ret = config__load_file(&cfg, path);
	snprintf(msg, sizeof(msg), "config file %s: No such file or directory", path);
	check_error(path, ret, -ENOENT, msg);

	ret = config__load_file(&cfg, dir);
	snprintf(msg, sizeof(msg), "config file %s: is a directory", dir);
	check_error(dir, ret, -EISDIR, msg);

	write_file(path, "", 0);
	ret = config__load_file(&cfg, path);
	check_error(path, ret, -EINVAL, "is empty");

	write_file(path, "{\"boot-source\":{}}", 18);
	ret = config__load_file(&cfg, path);
	check_error(path, ret, -EINVAL, "boot-source.kernel_image_path: required field");

	write_file(path, full_config, strlen(full_config));
	assert_int_equal(config__load_file(&cfg, path), 0);
	assert_string_equal(cfg.boot.kernel_image_path, "/img/vmlinux");
	config__free(&cfg);

	assert_int_equal(truncate(path, CONFIG_FILE_MAX + 1), 0);
	ret = config__load_file(&cfg, path);
	check_error(path, ret, -EFBIG, "larger than 1048576 bytes");

	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_null_means_absent),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_anti_spoofing_values),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_boot_args_length),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_device_lists),
		cmocka_unit_test(test_root_first),
		cmocka_unit_test(test_idle_buckets),
		cmocka_unit_test(test_entropy),
		cmocka_unit_test(test_to_json_minimal),
		cmocka_unit_test(test_to_json_full),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_smt),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_nul_in_strings),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_failure_frees),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
