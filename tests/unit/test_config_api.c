// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the API side of src/api/config.c and config_devices.c: the bodies of PUT
 * and PATCH requests (config__apply_body, config__put_drive, config__put_net,
 * config__patch_drive, config__patch_net), config__check_id, config__copy and the JSON
 * out. Every failure must leave the config as it was, which the tests check by comparing
 * config__to_json() before and after.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/config.h"
#include "vmm/log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Every section set, two drives (the root one with both buckets) and two interfaces. */
static const char base_config[] =
	"{\"boot-source\":{\"kernel_image_path\":\"/k\",\"initrd_path\":\"/i\","
	"\"boot_args\":\"console=ttyS0\"},"
	"\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":true,"
	"\"track_dirty_pages\":true},"
	"\"logger\":{\"log_path\":\"/l\",\"level\":\"Warning\",\"show_level\":true},"
	"\"serial\":{\"serial_out_path\":\"/s\"},"
	"\"metrics\":{\"metrics_path\":\"/m\"},"
	"\"vsock\":{\"guest_cid\":3,\"uds_path\":\"/v\"},"
	"\"drives\":[{\"drive_id\":\"rootfs\",\"path_on_host\":\"/r\",\"is_root_device\":true,"
	"\"partuuid\":\"p-1\",\"rate_limiter\":{\"bandwidth\":{\"size\":100,\"refill_time\":10},"
	"\"ops\":{\"size\":5,\"one_time_burst\":7,\"refill_time\":20}}},"
	"{\"drive_id\":\"data\",\"path_on_host\":\"/d\",\"is_root_device\":false,"
	"\"is_read_only\":true,\"cache_type\":\"Writeback\"}],"
	"\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
	"\"guest_mac\":\"06:00:00:00:00:01\",\"rx_rate_limiter\":{\"bandwidth\":"
	"{\"size\":1000,\"refill_time\":100}}},"
	"{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"guest_mac\":\"06:00:00:00:00:02\"}]}";

static void base(struct vm_config *cfg)
{
	config__init(cfg);
	error__clear();
	if (config__parse(cfg, base_config, strlen(base_config))) {
		print_error("base config: %s\n", error__get());
		fail();
	}
}

/* The ways into the config: one API body of some kind, for some path id. */
enum op_type { OP_BODY, OP_PUT_DRIVE, OP_PUT_NET, OP_PATCH_DRIVE, OP_PATCH_NET };

struct target {
	const char *name;
	enum op_type op;
	enum config_body kind; /* OP_BODY */
	const char *id;	       /* the path id, for devices */
	const char *base[3][2];
};

static const struct target boot_t = {
	.name = "boot-source",
	.kind = CONFIG_BODY_BOOT_SOURCE,
	.base = { { "kernel_image_path", "\"/k2\"" } },
};
static const struct target machine_t = {
	.name = "machine-config",
	.kind = CONFIG_BODY_MACHINE_CONFIG,
	.base = { { "vcpu_count", "2" }, { "mem_size_mib", "512" } },
};
static const struct target machine_patch_t = {
	.name = "machine-config PATCH",
	.kind = CONFIG_BODY_MACHINE_CONFIG_PATCH,
};
static const struct target logger_t = {
	.name = "logger",
	.kind = CONFIG_BODY_LOGGER,
	.base = { { "log_path", "\"/l2\"" } },
};
static const struct target metrics_t = {
	.name = "metrics",
	.kind = CONFIG_BODY_METRICS,
	.base = { { "metrics_path", "\"/m2\"" } },
};
static const struct target serial_t = { .name = "serial", .kind = CONFIG_BODY_SERIAL };
static const struct target vsock_t = {
	.name = "vsock",
	.kind = CONFIG_BODY_VSOCK,
	.base = { { "guest_cid", "5" }, { "uds_path", "\"/v2\"" } },
};
static const struct target entropy_t = { .name = "entropy", .kind = CONFIG_BODY_ENTROPY };
static const struct target drive_t = {
	.name = "PUT drive",
	.op = OP_PUT_DRIVE,
	.id = "data",
	.base = { { "drive_id", "\"data\"" },
		  { "path_on_host", "\"/d2\"" },
		  { "is_root_device", "false" } },
};
static const struct target net_t = {
	.name = "PUT net",
	.op = OP_PUT_NET,
	.id = "eth1",
	.base = { { "iface_id", "\"eth1\"" }, { "host_dev_name", "\"tap9\"" } },
};
static const struct target drive_patch_t = {
	.name = "PATCH drive",
	.op = OP_PATCH_DRIVE,
	.id = "data",
	.base = { { "drive_id", "\"data\"" } },
};
static const struct target net_patch_t = {
	.name = "PATCH net",
	.op = OP_PATCH_NET,
	.id = "eth0",
	.base = { { "iface_id", "\"eth0\"" } },
};

/*
 * The target's base body, with "key": value instead of its own key (key NULL: the base
 * body; value NULL: the base body without key).
 */
static char *body_with(const struct target *t, const char *key, const char *value)
{
	static char buf[8192];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "{");

	for (size_t j = 0; j < 3 && t->base[j][0]; j++) {
		if (!key || strcmp(t->base[j][0], key))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%s\":%s",
					      n > 1 ? "," : "", t->base[j][0], t->base[j][1]);
	}
	if (key && value)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%s\":%s", n > 1 ? "," : "",
				      key, value);
	snprintf(buf + n, sizeof(buf) - n, "}");
	return buf;
}

static int run_len(struct vm_config *cfg, const struct target *t, const char *id, const char *json,
		   size_t len, unsigned int *changed)
{
	error__clear();
	switch (t->op) {
	case OP_BODY:
		return config__apply_body(cfg, t->kind, json, len);
	case OP_PUT_DRIVE:
		return config__put_drive(cfg, id, json, len);
	case OP_PUT_NET:
		return config__put_net(cfg, id, json, len);
	case OP_PATCH_DRIVE:
		return config__patch_drive(cfg, id, json, len, changed);
	case OP_PATCH_NET:
		return config__patch_net(cfg, id, json, len, changed);
	}
	return -1;
}

static int run(struct vm_config *cfg, const struct target *t, const char *json)
{
	unsigned int changed;

	return run_len(cfg, t, t->id, json, strlen(json), &changed);
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

/* Runs the request on the base config: it must fail and leave the config as it was. */
static void expect_fail_id(const struct target *t, const char *id, const char *json, size_t len,
			   int want_ret, const char *needle)
{
	struct vm_config cfg;
	unsigned int changed = 0xdead;
	char *before, *after;
	int ret;

	base(&cfg);
	before = config__to_json(&cfg);
	ret = run_len(&cfg, t, id, json, len, &changed);
	check_error(json ? json : "(null)", ret, want_ret, needle);
	after = config__to_json(&cfg);
	assert_non_null(before);
	assert_non_null(after);
	assert_string_equal(before, after);
	if (t->op == OP_PATCH_DRIVE || t->op == OP_PATCH_NET)
		assert_int_equal(changed, 0);
	free(before);
	free(after);
	config__free(&cfg);
}

static void expect_fail(const struct target *t, const char *json, const char *needle)
{
	expect_fail_id(t, t->id, json, strlen(json), -EINVAL, needle);
}

static void expect_ok(const struct target *t, const char *json)
{
	struct vm_config cfg;

	base(&cfg);
	if (run(&cfg, t, json)) {
		print_error("%s %s\n  refused: %s\n", t->name, json, error__get());
		fail();
	}
	config__free(&cfg);
}

static void test_check_id(void **state)
{
	static const struct {
		const char *id, *needle;
	} bad[] = {
		{ NULL, "drive_id: must not be empty" },
		{ "", "drive_id: must not be empty" },
		{ "01234567890123456789012345678901234567890123456789012345678901234",
		  "drive_id: must be at most 64 characters long, got 65" },
		{ "a/b", "drive_id: must hold only A-Z, a-z, 0-9, '_' and '-', got \"a/b\"" },
		{ "..", "drive_id: must hold only" },
		{ "a.b", "drive_id: must hold only" },
		{ "a b", "drive_id: must hold only" },
		{ "caf\xc3\xa9",
		  "drive_id: must hold only A-Z, a-z, 0-9, '_' and '-', got \"caf??\"" },
		{ "a\nb", "drive_id: must hold only" },
		{ "a%2f", "drive_id: must hold only" },
	};
	static const char *const good[] = {
		"a", "rootfs", "A_b-9",
		"_", "-",      "0123456789012345678901234567890123456789012345678901234567890123",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(config__check_id("drive_id", good[i]), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		error__clear();
		check_error(bad[i].id ? bad[i].id : "(null)",
			    config__check_id("drive_id", bad[i].id), -EINVAL, bad[i].needle);
	}
	error__clear();
	check_error("iface", config__check_id("iface_id", "x y"), -EINVAL,
		    "iface_id: must hold only");
}

/* Bad path ids, for every device request, before the body is even looked at. */
static void test_bad_path_ids(void **state)
{
	static const struct target *const targets[] = { &drive_t, &net_t, &drive_patch_t,
							&net_patch_t };
	static const char *const ids[] = {
		"",    "01234567890123456789012345678901234567890123456789012345678901234",
		"a/b", "a.b",
		"a b", "\xc3\xa9",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
		const struct target *t = targets[i];
		const char *what = t->op == OP_PUT_DRIVE || t->op == OP_PATCH_DRIVE ? "drive_id:" :
										      "iface_id:";
		char *json = body_with(t, NULL, NULL);

		for (size_t j = 0; j < ARRAY_SIZE(ids); j++)
			expect_fail_id(t, ids[j], json, strlen(json), -EINVAL, what);
		expect_fail_id(t, NULL, json, strlen(json), -EINVAL, what);
	}
}

static const struct good_value {
	const struct target *t;
	const char *key, *value;
} good_values[] = {
	{ &boot_t, "initrd_path", "\"/i2\"" },
	{ &boot_t, "initrd_path", "null" },
	{ &boot_t, "boot_args", "\"console=hvc0\"" },
	{ &boot_t, "boot_args", "null" },
	{ &boot_t, "boot_args", "\"\"" },
	{ &boot_t, "kernel_image_path", "\"/k\\u00e9\"" },
	{ &machine_t, "vcpu_count", "1" },
	{ &machine_t, "vcpu_count", "32" },
	{ &machine_t, "mem_size_mib", "1" },
	{ &machine_t, "mem_size_mib", "1048576" },
	{ &machine_t, "smt", "true" },
	{ &machine_t, "smt", "null" },
	{ &machine_t, "track_dirty_pages", "true" },
	{ &machine_t, "huge_pages", "\"None\"" },
	{ &machine_t, "cpu_template", "\"None\"" },
	{ &machine_t, "cpu_template", "null" },
	{ &machine_patch_t, "vcpu_count", "4" },
	{ &machine_patch_t, "vcpu_count", "1" },
	{ &machine_patch_t, "mem_size_mib", "1" },
	{ &machine_patch_t, "smt", "false" },
	{ &machine_patch_t, "track_dirty_pages", "false" },
	{ &machine_patch_t, "huge_pages", "\"None\"" },
	{ &machine_patch_t, "cpu_template", "\"None\"" },
	{ &logger_t, "level", "\"Error\"" },
	{ &logger_t, "level", "\"warning\"" },
	{ &logger_t, "level", "\"Warn\"" },
	{ &logger_t, "level", "\"Info\"" },
	{ &logger_t, "level", "\"debug\"" },
	{ &logger_t, "level", "\"TRACE\"" },
	{ &logger_t, "level", "\"Off\"" },
	{ &logger_t, "show_level", "true" },
	{ &logger_t, "show_log_origin", "false" },
	{ &logger_t, "module", "null" },
	{ &metrics_t, "metrics_path", "\"relative/metrics\"" },
	{ &serial_t, "serial_out_path", "\"/s2\"" },
	{ &serial_t, "serial_out_path", "null" },
	{ &serial_t, "rate_limiter", "null" },
	{ &vsock_t, "guest_cid", "3" },
	{ &vsock_t, "guest_cid", "4294967295" },
	{ &vsock_t, "vsock_id", "\"vsock0\"" },
	{ &vsock_t, "vsock_id", "null" },
	{ &vsock_t, "uds_path", "\"rel.sock\"" },
	{ &entropy_t, "rate_limiter", "null" },
	{ &entropy_t, "rate_limiter", "{}" },
	{ &entropy_t, "rate_limiter", "{\"bandwidth\":{\"size\":1,\"refill_time\":1}}" },
	{ &entropy_t, "rate_limiter",
	  "{\"ops\":{\"size\":2,\"one_time_burst\":3,\"refill_time\":4},\"bandwidth\":null}" },
	{ &drive_t, "is_read_only", "true" },
	{ &drive_t, "is_read_only", "null" },
	{ &drive_t, "partuuid", "\"abc-1\"" },
	{ &drive_t, "partuuid", "null" },
	{ &drive_t, "cache_type", "\"Unsafe\"" },
	{ &drive_t, "cache_type", "\"Writeback\"" },
	{ &drive_t, "cache_type", "null" },
	{ &drive_t, "io_engine", "null" },
	{ &drive_t, "io_engine", "\"Sync\"" },
	{ &drive_t, "io_engine", "\"Async\"" },
	{ &drive_t, "rate_limiter", "null" },
	{ &drive_t, "rate_limiter", "{}" },
	{ &drive_t, "rate_limiter", "{\"bandwidth\":{\"size\":1,\"refill_time\":1}}" },
	{ &drive_t, "rate_limiter",
	  "{\"ops\":{\"size\":0,\"one_time_burst\":0,\"refill_time\":0},\"bandwidth\":null}" },
	{ &drive_t, "socket", "null" },
	{ &drive_t, "path_on_host", "\"/same/as/rootfs/../r\"" },
	{ &net_t, "guest_mac", "\"02:00:00:00:00:09\"" },
	{ &net_t, "guest_mac", "\"06:00:00:00:00:02\"" }, /* its own, being replaced */
	{ &net_t, "guest_mac", "null" },
	{ &net_t, "host_dev_name", "\"tap1\"" }, /* its own, being replaced */
	{ &net_t, "host_dev_name", "\"123456789012345\"" },
	{ &net_t, "rx_rate_limiter", "{\"ops\":{\"size\":1,\"refill_time\":1}}" },
	{ &net_t, "tx_rate_limiter", "null" },
	{ &drive_patch_t, "path_on_host", "\"/new\"" },
	{ &drive_patch_t, "path_on_host", "null" },
	{ &drive_patch_t, "rate_limiter", "{\"ops\":{\"size\":1,\"refill_time\":1}}" },
	{ &drive_patch_t, "rate_limiter", "null" },
	{ &net_patch_t, "rx_rate_limiter", "{}" },
	{ &net_patch_t, "tx_rate_limiter", "{\"bandwidth\":{\"size\":1,\"refill_time\":1}}" },
	{ &net_patch_t, "tx_rate_limiter", "null" },
};

static void test_good_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good_values); i++) {
		const struct good_value *g = &good_values[i];

		expect_ok(g->t, body_with(g->t, g->key, g->value));
	}
}

static const struct bad_value {
	const struct target *t;
	const char *key, *value, *needle;
} bad_values[] = {
	{ &boot_t, "kernel_image_path", "1", "kernel_image_path: must be a string, got a number" },
	{ &boot_t, "kernel_image_path", "null", "kernel_image_path: must be a string, got null" },
	{ &boot_t, "kernel_image_path", "\"\"", "kernel_image_path: must not be empty" },
	{ &boot_t, "kernel_image_path", "\"/k\\u0000x\"",
	  "kernel_image_path: must not contain a NUL byte" },
	{ &boot_t, "initrd_path", "\"\"", "initrd_path: must not be empty" },
	{ &boot_t, "initrd_path", "[]", "initrd_path: must be a string, got an array" },
	{ &boot_t, "boot_args", "{}", "boot_args: must be a string, got an object" },
	{ &boot_t, "kernel", "\"/k\"", "boot-source: unknown field \"kernel\"" },
	{ &machine_t, "vcpu_count", "33", "vcpu_count: must be an integer from 1 to 32, got 33" },
	{ &machine_t, "vcpu_count", "0", "vcpu_count: must be an integer from 1 to 32, got 0" },
	{ &machine_t, "vcpu_count", "2.5", "vcpu_count: must be an integer from 1 to 32, got 2.5" },
	{ &machine_t, "vcpu_count", "\"2\"",
	  "vcpu_count: must be an integer from 1 to 32, got a "
	  "string" },
	{ &machine_t, "vcpu_count", "null",
	  "vcpu_count: must be an integer from 1 to 32, got null" },
	{ &machine_t, "mem_size_mib", "0", "mem_size_mib: must be an integer from 1 to 1048576" },
	{ &machine_t, "mem_size_mib", "1048577", "mem_size_mib: must be an integer from 1" },
	{ &machine_t, "mem_size_mib", "-5", "mem_size_mib: must be an integer from 1" },
	{ &machine_t, "smt", "1", "smt: must be true or false, got a number" },
	{ &machine_t, "track_dirty_pages", "\"yes\"", "track_dirty_pages: must be true or false" },
	{ &machine_t, "ksm", "\"yes\"", "ksm: must be true or false" },
	{ &machine_t, "huge_pages", "\"none\"",
	  "huge_pages: must be \"None\", \"2M\" or \"Transparent\", got \"none\"" },
	{ &machine_t, "cpu_template", "\"T2\"", "cpu_template: \"T2\" is not supported yet" },
	{ &machine_t, "cpu_template", "1", "cpu_template: must be a string" },
	{ &machine_t, "vcpus", "2", "machine-config: unknown field \"vcpus\"" },
	{ &machine_patch_t, "vcpu_count", "33", "vcpu_count: must be an integer from 1 to 32" },
	{ &machine_patch_t, "vcpu_count", "3", "smt: needs vcpu_count 1 or an even number, got 3" },
	{ &machine_patch_t, "huge_pages", "\"1G\"", "huge_pages: must be \"None\", \"2M\" or" },
	{ &machine_patch_t, "smt", "\"x\"", "smt: must be true or false" },
	{ &machine_patch_t, "vcpus", "2", "machine-config: unknown field \"vcpus\"" },
	{ &logger_t, "log_path", "\"\"", "log_path: must not be empty" },
	{ &logger_t, "level", "\"Verbose\"",
	  "level: must be one of \"Error\", \"Warning\", \"Info\", \"Debug\", \"Trace\", \"Off\", "
	  "got \"Verbose\"" },
	{ &logger_t, "level", "3", "level: must be one of" },
	{ &logger_t, "show_level", "\"true\"", "show_level: must be true or false" },
	{ &logger_t, "module", "\"api\"", "module: not supported yet" },
	{ &logger_t, "path", "\"/l\"", "logger: unknown field \"path\"" },
	{ &metrics_t, "metrics_path", "\"\"", "metrics_path: must not be empty" },
	{ &metrics_t, "metrics_path", "1", "metrics_path: must be a string, got a number" },
	{ &metrics_t, "metrics_path", "null", "metrics_path: must be a string, got null" },
	{ &metrics_t, "path", "\"/m\"", "metrics: unknown field \"path\"" },
	{ &serial_t, "serial_out_path", "\"\"", "serial_out_path: must not be empty" },
	{ &serial_t, "serial_out_path", "1", "serial_out_path: must be a string" },
	{ &serial_t, "rate_limiter", "{}", "rate_limiter: not supported yet" },
	{ &serial_t, "out", "\"/s\"", "serial: unknown field \"out\"" },
	{ &vsock_t, "guest_cid", "2", "guest_cid: must be an integer from 3 to 4294967295, got 2" },
	{ &vsock_t, "guest_cid", "4294967296",
	  "guest_cid: must be an integer from 3 to 4294967295" },
	{ &vsock_t, "guest_cid", "-3", "guest_cid: must be an integer from 3" },
	{ &vsock_t, "guest_cid", "\"3\"",
	  "guest_cid: must be an integer from 3 to 4294967295, got "
	  "a string" },
	{ &vsock_t, "guest_cid", "null", "guest_cid: must be an integer" },
	{ &vsock_t, "uds_path", "\"\"", "uds_path: must not be empty" },
	{ &vsock_t, "uds_path", "null", "uds_path: must be a string, got null" },
	{ &vsock_t, "vsock_id", "7", "vsock_id: must be a string, got a number" },
	{ &vsock_t, "cid", "3", "vsock: unknown field \"cid\"" },
	{ &entropy_t, "rate_limiter", "[]", "rate_limiter: must be an object, got an array" },
	{ &entropy_t, "rate_limiter", "{\"ops\":{\"size\":-1,\"refill_time\":1}}",
	  "rate_limiter.ops.size: must be an integer" },
	{ &entropy_t, "rate_limiter", "{\"ops\":{\"size\":1}}",
	  "rate_limiter.ops.refill_time: required field is missing" },
	{ &entropy_t, "rate_limiter", "{\"bytes\":{}}", "rate_limiter: unknown field \"bytes\"" },
	{ &entropy_t, "rate", "1", "entropy: unknown field \"rate\"" },
	{ &drive_t, "drive_id", "\"rootfs\"", "drive_id: does not match the path id 'data'" },
	{ &drive_t, "drive_id", "\"Data\"", "drive_id: does not match the path id 'data'" },
	{ &drive_t, "drive_id", "\"\"", "drive_id: must not be empty" },
	{ &drive_t, "drive_id", "\"a/b\"", "drive_id: must hold only" },
	{ &drive_t, "drive_id", "1", "drive_id: must be a string, got a number" },
	{ &drive_t, "drive_id", "null", "drive_id: must be a string, got null" },
	{ &drive_t, "path_on_host", "\"\"", "path_on_host: must not be empty" },
	{ &drive_t, "path_on_host", "true", "path_on_host: must be a string, got a boolean" },
	{ &drive_t, "path_on_host", "null", "path_on_host: must be a string, got null" },
	{ &drive_t, "is_root_device", "\"false\"", "is_root_device: must be true or false" },
	{ &drive_t, "is_root_device", "null", "is_root_device: must be true or false, got null" },
	{ &drive_t, "is_root_device", "true",
	  "is_root_device: drive 'rootfs' is already the root device" },
	{ &drive_t, "is_read_only", "0", "is_read_only: must be true or false" },
	{ &drive_t, "partuuid", "\"\"", "partuuid: must not be empty" },
	{ &drive_t, "partuuid", "\"a b\"", "partuuid: must not hold white space" },
	{ &drive_t, "partuuid", "1", "partuuid: must be a string" },
	{ &drive_t, "partuuid",
	  "\"0123456789012345678901234567890123456789012345678901234567890123456789012\"",
	  "partuuid: must be at most 72 bytes long, got 73" },
	{ &drive_t, "cache_type", "\"writeback\"",
	  "cache_type: must be \"Unsafe\" or \"Writeback\", got \"writeback\"" },
	{ &drive_t, "io_engine", "\"io_uring\"",
	  "io_engine: must be \"Sync\" or \"Async\", got \"io_uring\"" },
	{ &drive_t, "io_engine", "0", "io_engine: must be \"Sync\" or \"Async\", got a number" },
	{ &drive_t, "socket", "\"/vhost.sock\"", "socket: not supported yet" },
	{ &drive_t, "rate_limiter", "[]", "rate_limiter: must be an object, got an array" },
	{ &drive_t, "rate_limiter", "{\"bandwidth\":{\"size\":-1,\"refill_time\":1}}",
	  "rate_limiter.bandwidth.size: must be an integer from 0 to 9007199254740991, got -1" },
	{ &drive_t, "rate_limiter", "{\"bandwidth\":{\"size\":\"1\",\"refill_time\":1}}",
	  "rate_limiter.bandwidth.size: must be an integer from 0 to 9007199254740991, got a string" },
	{ &drive_t, "rate_limiter", "{\"bandwidth\":{\"size\":1}}",
	  "rate_limiter.bandwidth.refill_time: required field is missing" },
	{ &drive_t, "rate_limiter", "{\"ops\":{\"refill_time\":1}}",
	  "rate_limiter.ops.size: required field is missing" },
	{ &drive_t, "rate_limiter", "{\"ops\":{\"size\":1,\"refill_time\":1.5}}",
	  "rate_limiter.ops.refill_time: must be an integer" },
	{ &drive_t, "rate_limiter", "{\"ops\":{\"size\":1,\"refill_time\":18446744073710}}",
	  "rate_limiter.ops.refill_time: must be an integer from 0 to 18446744073709" },
	{ &drive_t, "rate_limiter",
	  "{\"ops\":{\"size\":1,\"refill_time\":1,\"one_time_burst\":-1}}",
	  "rate_limiter.ops.one_time_burst: must be an integer from 0" },
	{ &drive_t, "rate_limiter", "{\"ops\":{\"size\":1,\"refill_time\":1,\"burst\":1}}",
	  "rate_limiter.ops: unknown field \"burst\"" },
	{ &drive_t, "rate_limiter", "{\"ops\":null,\"ops\":null}",
	  "rate_limiter: duplicate field \"ops\"" },
	{ &drive_t, "rate_limiter", "{\"iops\":{}}", "rate_limiter: unknown field \"iops\"" },
	{ &drive_t, "rate_limiter", "{\"ops\":true}", "rate_limiter.ops: must be an object" },
	{ &drive_t, "readonly", "true", "drive: unknown field \"readonly\"" },
	{ &net_t, "iface_id", "\"eth0\"", "iface_id: does not match the path id 'eth1'" },
	{ &net_t, "iface_id", "\"\"", "iface_id: must not be empty" },
	{ &net_t, "iface_id", "\"e th\"", "iface_id: must hold only" },
	{ &net_t, "iface_id", "null", "iface_id: must be a string, got null" },
	{ &net_t, "host_dev_name", "\"tap0\"",
	  "host_dev_name: \"tap0\" is already used by interface "
	  "'eth0'" },
	{ &net_t, "host_dev_name", "\"\"", "host_dev_name: must be a Linux interface name" },
	{ &net_t, "host_dev_name", "\"1234567890123456\"",
	  "host_dev_name: must be a Linux interface name: 1 to 15 bytes" },
	{ &net_t, "host_dev_name", "\"a/b\"", "host_dev_name: must be a Linux interface name" },
	{ &net_t, "host_dev_name", "\"a b\"", "host_dev_name: must be a Linux interface name" },
	{ &net_t, "host_dev_name", "\"a:1\"", "host_dev_name: must be a Linux interface name" },
	{ &net_t, "host_dev_name", "\"..\"", "host_dev_name: must be a Linux interface name" },
	{ &net_t, "host_dev_name", "\"a\\u007f\"",
	  "host_dev_name: must be a Linux interface name" },
	{ &net_t, "host_dev_name", "5", "host_dev_name: must be a string, got a number" },
	{ &net_t, "guest_mac", "\"06:00:00:00:00:01\"",
	  "guest_mac: 06:00:00:00:00:01 is already used by interface 'eth0'" },
	{ &net_t, "guest_mac", "\"06:00:00:00:00:0\"", "guest_mac: must be a MAC address like" },
	{ &net_t, "guest_mac", "\"06:00:00:00:00:001\"", "guest_mac: must be a MAC address like" },
	{ &net_t, "guest_mac", "\"06:00:00:00:00:0x\"", "guest_mac: must be a MAC address like" },
	{ &net_t, "guest_mac", "\"06:00:00:00:00\"", "guest_mac: must be a MAC address like" },
	{ &net_t, "guest_mac", "\"0600.0000.0001\"", "guest_mac: must be a MAC address like" },
	{ &net_t, "guest_mac", "\"06:00:00:00:00:01 \"", "guest_mac: must be a MAC address like" },
	{ &net_t, "guest_mac", "\"\"", "guest_mac: must be a MAC address like" },
	{ &net_t, "guest_mac", "\"33:33:00:00:00:01\"",
	  "guest_mac: must not be a multicast address, got \"33:33:00:00:00:01\"" },
	{ &net_t, "guest_mac", "\"FF:FF:FF:FF:FF:FF\"", "guest_mac: must not be a multicast" },
	{ &net_t, "guest_mac", "\"00:00:00:00:00:00\"", "guest_mac: must not be all zeros" },
	{ &net_t, "guest_mac", "6", "guest_mac: must be a string, got a number" },
	{ &net_t, "rx_rate_limiter", "1", "rx_rate_limiter: must be an object, got a number" },
	{ &net_t, "tx_rate_limiter", "{\"bandwidth\":{\"size\":1,\"refill_time\":\"1\"}}",
	  "tx_rate_limiter.bandwidth.refill_time: must be an integer" },
	{ &net_t, "mtu", "1500", "network-interface: unknown field \"mtu\"" },
	{ &drive_patch_t, "drive_id", "\"rootfs\"", "drive_id: does not match the path id 'data'" },
	{ &drive_patch_t, "drive_id", "null", "drive_id: must be a string, got null" },
	{ &drive_patch_t, "drive_id", "\"a.b\"", "drive_id: must hold only" },
	{ &drive_patch_t, "path_on_host", "\"\"", "path_on_host: must not be empty" },
	{ &drive_patch_t, "path_on_host", "1", "path_on_host: must be a string" },
	{ &drive_patch_t, "rate_limiter", "{\"ops\":{\"size\":1}}",
	  "rate_limiter.ops.refill_time: required field is missing" },
	{ &drive_patch_t, "is_read_only", "false", "drive: unknown field \"is_read_only\"" },
	{ &drive_patch_t, "is_root_device", "false", "drive: unknown field \"is_root_device\"" },
	{ &drive_patch_t, "partuuid", "\"x\"", "drive: unknown field \"partuuid\"" },
	{ &drive_patch_t, "cache_type", "\"Unsafe\"", "drive: unknown field \"cache_type\"" },
	{ &net_patch_t, "iface_id", "\"eth1\"", "iface_id: does not match the path id 'eth0'" },
	{ &net_patch_t, "rx_rate_limiter", "{\"bandwidth\":{\"size\":1,\"refill_time\":-1}}",
	  "rx_rate_limiter.bandwidth.refill_time: must be an integer from 0" },
	{ &net_patch_t, "host_dev_name", "\"tap5\"",
	  "network-interface: unknown field "
	  "\"host_dev_name\"" },
	{ &net_patch_t, "guest_mac", "\"06:00:00:00:00:05\"",
	  "network-interface: unknown field "
	  "\"guest_mac\"" },
};

static void test_bad_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad_values); i++) {
		const struct bad_value *b = &bad_values[i];

		expect_fail(b->t, body_with(b->t, b->key, b->value), b->needle);
	}
}

/* Each required field of each body, left out; and bodies that are not objects. */
static void test_missing_required(void **state)
{
	static const struct {
		const struct target *t;
		const char *key, *needle;
	} cases[] = {
		{ &boot_t, "kernel_image_path", "kernel_image_path: required field is missing" },
		{ &machine_t, "vcpu_count", "vcpu_count: required field is missing" },
		{ &machine_t, "mem_size_mib", "mem_size_mib: required field is missing" },
		{ &logger_t, "log_path", "log_path: required field is missing" },
		{ &metrics_t, "metrics_path", "metrics_path: required field is missing" },
		{ &vsock_t, "guest_cid", "guest_cid: required field is missing" },
		{ &vsock_t, "uds_path", "uds_path: required field is missing" },
		{ &drive_t, "drive_id", "drive_id: required field is missing" },
		{ &drive_t, "path_on_host", "path_on_host: required field is missing" },
		{ &drive_t, "is_root_device", "is_root_device: required field is missing" },
		{ &net_t, "iface_id", "iface_id: required field is missing" },
		{ &net_t, "host_dev_name", "host_dev_name: required field is missing" },
		{ &drive_patch_t, "drive_id", "drive_id: required field is missing" },
		{ &net_patch_t, "iface_id", "iface_id: required field is missing" },
	};
	static const struct target *const all[] = {
		&boot_t,  &machine_t, &machine_patch_t, &logger_t,	&metrics_t,   &serial_t,
		&vsock_t, &drive_t,   &net_t,		&drive_patch_t, &net_patch_t,
		&entropy_t,
	};
	static const struct {
		const char *json, *needle;
	} not_objects[] = {
		{ "[]", ": top level must be an object, got an array" },
		{ "null", ": top level must be an object, got null" },
		{ "\"x\"", ": top level must be an object, got a string" },
		{ "{", ": not valid JSON near byte" },
		{ "{\n\"a\" 1}", ": not valid JSON near byte 6 (line 2, column 5)" },
		{ "{} {}", ": not valid JSON near byte 3 (line 1, column 4): data after" },
		{ "{\"a\":\"\x01\"}", ": not valid JSON near byte 6 (line 1, column 7): control" },
		{ " ", ": empty input" },
		{ "{\"x\\u0000\":1}", ": name \"x\" contains a NUL byte" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_fail(cases[i].t, body_with(cases[i].t, cases[i].key, NULL), cases[i].needle);
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(not_objects); j++)
			expect_fail(all[i], not_objects[j].json, not_objects[j].needle);
		expect_fail_id(all[i], all[i]->id, NULL, 0, -EINVAL, ": empty input");
		expect_fail_id(all[i], all[i]->id, "{}", 0, -EINVAL, ": empty input");
	}
	expect_fail(&boot_t, "[]", "boot-source: top level must be an object");
	expect_fail(&drive_t, "{\"drive_id\":", "drive: not valid JSON");
	expect_fail(&net_patch_t, "7", "network-interface: top level must be an object");
}

/* The body is len bytes, not NUL-terminated: what follows must not be read. */
static void test_body_length(void **state)
{
	static const char body[] = "{\"kernel_image_path\":\"/k2\"}GARBAGE";
	struct vm_config cfg;

	(void)state;
	base(&cfg);
	assert_int_equal(config__apply_body(&cfg, CONFIG_BODY_BOOT_SOURCE, body, strlen(body) - 7),
			 0);
	assert_string_equal(cfg.boot.kernel_image_path, "/k2");
	config__free(&cfg);
	expect_fail_id(&boot_t, NULL, body, strlen(body), -EINVAL,
		       "data after the top-level value");
	expect_fail_id(&boot_t, NULL, body, 10, -EINVAL, "boot-source: not valid JSON");
}

static void test_unknown_body_kind(void **state)
{
	struct vm_config cfg;

	(void)state;
	base(&cfg);
	error__clear();
	check_error("kind 99", config__apply_body(&cfg, (enum config_body)99, "{}", 2), -EINVAL,
		    "unknown request body kind");
	check_error("kind -1", config__apply_body(&cfg, (enum config_body) - 1, "{}", 2), -EINVAL,
		    "unknown request body kind");
	config__free(&cfg);
}

static void apply(struct vm_config *cfg, enum config_body kind, const char *json)
{
	error__clear();
	if (config__apply_body(cfg, kind, json, strlen(json))) {
		print_error("%s\n  refused: %s\n", json, error__get());
		fail();
	}
}

static void test_put_sections(void **state)
{
	struct vm_config cfg;

	(void)state;
	base(&cfg);
	/* PUT replaces: what is not given takes its default */
	apply(&cfg, CONFIG_BODY_BOOT_SOURCE, "{\"kernel_image_path\":\"/k2\"}");
	assert_string_equal(cfg.boot.kernel_image_path, "/k2");
	assert_null(cfg.boot.initrd_path);
	assert_null(cfg.boot.boot_args);
	apply(&cfg, CONFIG_BODY_MACHINE_CONFIG, "{\"vcpu_count\":3,\"mem_size_mib\":64}");
	assert_int_equal(cfg.machine.vcpu_count, 3);
	assert_int_equal(cfg.machine.mem_size_mib, 64);
	assert_false(cfg.machine.smt);
	assert_false(cfg.machine.track_dirty_pages);
	assert_int_equal(cfg.machine.huge_pages, HUGE_PAGES_NONE);
	apply(&cfg, CONFIG_BODY_LOGGER, "{\"log_path\":\"/l2\"}");
	assert_true(cfg.has_logger);
	assert_string_equal(cfg.logger.log_path, "/l2");
	assert_int_equal(cfg.logger.level, LOG_LEVEL_INFO);
	assert_false(cfg.logger.show_level);
	apply(&cfg, CONFIG_BODY_LOGGER,
	      "{\"log_path\":\"/l3\",\"level\":\"trace\","
	      "\"show_log_origin\":true}");
	assert_int_equal(cfg.logger.level, LOG_LEVEL_TRACE);
	assert_true(cfg.logger.show_log_origin);
	apply(&cfg, CONFIG_BODY_SERIAL, "{}");
	assert_null(cfg.serial.serial_out_path);
	apply(&cfg, CONFIG_BODY_SERIAL, "{\"serial_out_path\":\"/s2\"}");
	assert_string_equal(cfg.serial.serial_out_path, "/s2");
	apply(&cfg, CONFIG_BODY_METRICS, "{\"metrics_path\":\"/m2\"}");
	assert_true(cfg.has_metrics);
	assert_string_equal(cfg.metrics.metrics_path, "/m2");
	apply(&cfg, CONFIG_BODY_VSOCK,
	      "{\"vsock_id\":\"old\",\"guest_cid\":42,\"uds_path\":\"/v2\"}");
	assert_true(cfg.has_vsock);
	assert_int_equal(cfg.vsock.guest_cid, 42);
	assert_string_equal(cfg.vsock.uds_path, "/v2");
	apply(&cfg, CONFIG_BODY_ENTROPY,
	      "{\"rate_limiter\":{\"ops\":{\"size\":5,\"refill_time\":7}}}");
	assert_true(cfg.has_entropy);
	assert_true(cfg.entropy.has_rate_limiter);
	assert_true(cfg.entropy.rate_limiter.has_ops);
	assert_int_equal(cfg.entropy.rate_limiter.ops.size, 5);
	apply(&cfg, CONFIG_BODY_ENTROPY, "{}"); /* a PUT replaces the limiter too */
	assert_true(cfg.has_entropy);
	assert_false(cfg.entropy.has_rate_limiter);
	assert_false(cfg.entropy.rate_limiter.has_ops);
	/* the devices are untouched */
	assert_int_equal(cfg.nr_drives, 2);
	assert_int_equal(cfg.nr_net, 2);
	config__free(&cfg);

	/* on a fresh config, the has_ flags are set */
	config__init(&cfg);
	assert_false(cfg.has_logger);
	apply(&cfg, CONFIG_BODY_LOGGER, "{\"log_path\":\"/l\"}");
	apply(&cfg, CONFIG_BODY_METRICS, "{\"metrics_path\":\"/m\"}");
	apply(&cfg, CONFIG_BODY_VSOCK, "{\"guest_cid\":3,\"uds_path\":\"/v\"}");
	assert_false(cfg.has_entropy);
	apply(&cfg, CONFIG_BODY_ENTROPY, "{}");
	assert_true(cfg.has_entropy);
	assert_true(cfg.has_logger);
	assert_true(cfg.has_metrics);
	assert_true(cfg.has_vsock);
	config__free(&cfg);
}

static void test_machine_patch(void **state)
{
	struct vm_config cfg;

	(void)state;
	base(&cfg); /* 2 vCPUs, 256 MiB, SMT, dirty pages */
	apply(&cfg, CONFIG_BODY_MACHINE_CONFIG_PATCH, "{\"mem_size_mib\":1024}");
	assert_int_equal(cfg.machine.vcpu_count, 2);
	assert_int_equal(cfg.machine.mem_size_mib, 1024);
	assert_true(cfg.machine.smt);
	assert_true(cfg.machine.track_dirty_pages);
	apply(&cfg, CONFIG_BODY_MACHINE_CONFIG_PATCH, "{\"vcpu_count\":null,\"smt\":false}");
	assert_int_equal(cfg.machine.vcpu_count, 2);
	assert_false(cfg.machine.smt);
	apply(&cfg, CONFIG_BODY_MACHINE_CONFIG_PATCH, "{\"vcpu_count\":3}");
	assert_int_equal(cfg.machine.vcpu_count, 3);
	assert_int_equal(cfg.machine.mem_size_mib, 1024);
	assert_true(cfg.machine.track_dirty_pages);
	/* the SMT rule holds for the result */
	error__clear();
	check_error("smt",
		    config__apply_body(&cfg, CONFIG_BODY_MACHINE_CONFIG_PATCH, "{\"smt\":true}",
				       12),
		    -EINVAL, "smt: needs vcpu_count 1 or an even number, got 3");
	assert_false(cfg.machine.smt);
	apply(&cfg, CONFIG_BODY_MACHINE_CONFIG_PATCH, "{\"smt\":true,\"vcpu_count\":4}");
	assert_true(cfg.machine.smt);
	assert_int_equal(cfg.machine.vcpu_count, 4);
	config__free(&cfg);

	expect_fail(&machine_patch_t, "{}", "machine-config: empty PATCH request");
	expect_fail(&machine_patch_t, " { } ", "machine-config: empty PATCH request");
	expect_fail(&machine_patch_t, "{\"smt\":null}", "machine-config: empty PATCH request");
	expect_fail(&machine_patch_t, "{\"vcpu_count\":null,\"cpu_template\":null}",
		    "machine-config: empty PATCH request");
	expect_fail(&machine_patch_t, "{\"vcpu_count\":4,\"vcpu_count\":4}",
		    "machine-config: duplicate field \"vcpu_count\"");
	/* PUT with SMT and an odd count */
	expect_fail(&machine_t, "{\"vcpu_count\":3,\"mem_size_mib\":8,\"smt\":true}",
		    "smt: needs vcpu_count 1 or an even number, got 3");
}

static void put_drive(struct vm_config *cfg, const char *id, const char *json)
{
	error__clear();
	if (config__put_drive(cfg, id, json, strlen(json))) {
		print_error("PUT /drives/%s %s\n  refused: %s\n", id, json, error__get());
		fail();
	}
}

static void put_net(struct vm_config *cfg, const char *id, const char *json)
{
	error__clear();
	if (config__put_net(cfg, id, json, strlen(json))) {
		print_error("PUT /network-interfaces/%s %s\n  refused: %s\n", id, json,
			    error__get());
		fail();
	}
}

static char *drive_body(const char *id, bool root)
{
	static char buf[256];

	snprintf(buf, sizeof(buf),
		 "{\"drive_id\":\"%s\",\"path_on_host\":\"/img/%s\","
		 "\"is_root_device\":%s}",
		 id, id, root ? "true" : "false");
	return buf;
}

static void test_put_drive(void **state)
{
	struct vm_config cfg;
	const struct drive_config *d;
	char id[16];

	(void)state;
	config__init(&cfg);
	put_drive(&cfg, "data", drive_body("data", false));
	put_drive(&cfg, "rootfs",
		  "{\"drive_id\":\"rootfs\",\"path_on_host\":\"/r\",\"is_root_device\":true,"
		  "\"is_read_only\":true,\"partuuid\":\"abc-01\",\"cache_type\":\"Writeback\","
		  "\"io_engine\":\"Async\",\"socket\":null,\"rate_limiter\":{\"bandwidth\":"
		  "{\"size\":10,\"one_time_burst\":5,\"refill_time\":100}}}");
	/* the root device goes first */
	assert_int_equal(cfg.nr_drives, 2);
	d = &cfg.drives[0];
	assert_string_equal(d->drive_id, "rootfs");
	assert_string_equal(d->path_on_host, "/r");
	assert_true(d->is_root_device);
	assert_true(d->is_read_only);
	assert_string_equal(d->partuuid, "abc-01");
	assert_int_equal(d->cache_type, DRIVE_CACHE_WRITEBACK);
	assert_int_equal(d->io_engine, DRIVE_IO_ASYNC);
	assert_true(d->has_rate_limiter);
	assert_true(d->rate_limiter.has_bandwidth);
	assert_false(d->rate_limiter.has_ops);
	assert_int_equal(d->rate_limiter.bandwidth.size, 10);
	assert_int_equal(d->rate_limiter.bandwidth.one_time_burst, 5);
	assert_int_equal(d->rate_limiter.bandwidth.refill_time_ms, 100);
	assert_string_equal(cfg.drives[1].drive_id, "data");
	assert_false(cfg.drives[1].is_read_only);
	assert_int_equal(cfg.drives[1].cache_type, DRIVE_CACHE_UNSAFE);
	assert_int_equal(cfg.drives[1].io_engine, DRIVE_IO_SYNC);
	assert_false(cfg.drives[1].has_rate_limiter);

	/* a PUT with the same id replaces the drive, in place, with defaults */
	put_drive(&cfg, "rootfs", drive_body("rootfs", true));
	assert_int_equal(cfg.nr_drives, 2);
	d = &cfg.drives[0];
	assert_string_equal(d->path_on_host, "/img/rootfs");
	assert_false(d->is_read_only);
	assert_null(d->partuuid);
	assert_false(d->has_rate_limiter);
	assert_int_equal(d->cache_type, DRIVE_CACHE_UNSAFE);
	/* the root device may stop being root, and another may become root */
	put_drive(&cfg, "rootfs", drive_body("rootfs", false));
	put_drive(&cfg, "data", drive_body("data", true));
	assert_string_equal(cfg.drives[0].drive_id, "data");
	assert_string_equal(cfg.drives[1].drive_id, "rootfs");
	check_error("second root",
		    config__put_drive(&cfg, "rootfs", drive_body("rootfs", true),
				      strlen(drive_body("rootfs", true))),
		    -EINVAL, "is_root_device: drive 'data' is already the root device");

	/* eight drives at most: a ninth is refused, a replacement still works */
	for (int i = 2; i < VM_MAX_DRIVES; i++) {
		snprintf(id, sizeof(id), "d%d", i);
		put_drive(&cfg, id, drive_body(id, false));
	}
	assert_int_equal(cfg.nr_drives, VM_MAX_DRIVES);
	{
		char *before = config__to_json(&cfg), *after;
		char *body = drive_body("ninth", false);

		error__clear();
		check_error("ninth drive", config__put_drive(&cfg, "ninth", body, strlen(body)),
			    -ENOSPC, "drives: at most 8 drives are supported");
		after = config__to_json(&cfg);
		assert_string_equal(before, after);
		free(before);
		free(after);
	}
	put_drive(&cfg, "d7",
		  "{\"drive_id\":\"d7\",\"path_on_host\":\"/new7\","
		  "\"is_root_device\":false}");
	assert_string_equal(cfg.drives[7].path_on_host, "/new7");
	assert_int_equal(cfg.nr_drives, VM_MAX_DRIVES);
	config__free(&cfg);
	config__free(&cfg);
}

static void test_put_net(void **state)
{
	static const uint8_t mac[6] = { 0x06, 0x00, 0xac, 0x10, 0xff, 0x0a };
	struct vm_config cfg;
	const struct net_config *n;
	char id[16], body[256];

	(void)state;
	config__init(&cfg);
	put_net(&cfg, "eth0",
		"{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:AC:10:FF:0a\","
		"\"rx_rate_limiter\":{\"ops\":{\"size\":3,\"refill_time\":4}},"
		"\"tx_rate_limiter\":{\"bandwidth\":{\"size\":5,\"refill_time\":6}}}");
	n = &cfg.net[0];
	assert_int_equal(cfg.nr_net, 1);
	assert_string_equal(n->iface_id, "eth0");
	assert_string_equal(n->host_dev_name, "tap0");
	assert_true(n->has_guest_mac);
	assert_memory_equal(n->guest_mac, mac, 6);
	assert_true(n->has_rx_rate_limiter);
	assert_true(n->rx_rate_limiter.has_ops);
	assert_false(n->rx_rate_limiter.has_bandwidth);
	assert_int_equal(n->rx_rate_limiter.ops.size, 3);
	assert_true(n->has_tx_rate_limiter);
	assert_int_equal(n->tx_rate_limiter.bandwidth.refill_time_ms, 6);
	/* replace: the same id may keep its name and MAC */
	put_net(&cfg, "eth0",
		"{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
		"\"guest_mac\":\"06:00:ac:10:ff:0a\"}");
	assert_int_equal(cfg.nr_net, 1);
	assert_false(cfg.net[0].has_rx_rate_limiter);
	assert_false(cfg.net[0].has_tx_rate_limiter);
	error__clear();
	snprintf(body, sizeof(body),
		 "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\","
		 "\"guest_mac\":\"06:00:AC:10:FF:0A\"}");
	check_error("same mac", config__put_net(&cfg, "eth1", body, strlen(body)), -EINVAL,
		    "guest_mac: 06:00:ac:10:ff:0a is already used by interface 'eth0'");
	for (int i = 1; i < VM_MAX_NET_IFACES; i++) {
		snprintf(id, sizeof(id), "eth%d", i);
		snprintf(body, sizeof(body), "{\"iface_id\":\"%s\",\"host_dev_name\":\"tap%d\"}",
			 id, i);
		put_net(&cfg, id, body);
	}
	assert_int_equal(cfg.nr_net, VM_MAX_NET_IFACES);
	error__clear();
	snprintf(body, sizeof(body), "{\"iface_id\":\"eth9\",\"host_dev_name\":\"tap9\"}");
	check_error("ninth interface", config__put_net(&cfg, "eth9", body, strlen(body)), -ENOSPC,
		    "network-interfaces: at most 8 interfaces are supported");
	assert_int_equal(cfg.nr_net, VM_MAX_NET_IFACES);
	/* two interfaces without a MAC do not clash */
	assert_false(cfg.net[1].has_guest_mac);
	assert_false(cfg.net[2].has_guest_mac);
	config__free(&cfg);
}

static unsigned int patch_drive(struct vm_config *cfg, const char *id, const char *json)
{
	unsigned int changed = 0xdead;

	error__clear();
	if (config__patch_drive(cfg, id, json, strlen(json), &changed)) {
		print_error("PATCH /drives/%s %s\n  refused: %s\n", id, json, error__get());
		fail();
	}
	return changed;
}

static unsigned int patch_net(struct vm_config *cfg, const char *id, const char *json)
{
	unsigned int changed = 0xdead;

	error__clear();
	if (config__patch_net(cfg, id, json, strlen(json), &changed)) {
		print_error("PATCH /network-interfaces/%s %s\n  refused: %s\n", id, json,
			    error__get());
		fail();
	}
	return changed;
}

static void test_patch_drive(void **state)
{
	struct vm_config cfg;
	const struct drive_config *d;
	char *before, *after;

	(void)state;
	base(&cfg);
	d = &cfg.drives[0]; /* rootfs: bandwidth 100/10, ops 5+7/20 */
	assert_int_equal(patch_drive(&cfg, "rootfs",
				     "{\"drive_id\":\"rootfs\","
				     "\"path_on_host\":\"/r2\"}"),
			 CONFIG_CHANGED_PATH);
	assert_string_equal(d->path_on_host, "/r2");
	assert_string_equal(d->partuuid, "p-1");
	assert_true(d->is_root_device);
	assert_int_equal(d->rate_limiter.bandwidth.size, 100);
	/* a bucket given replaces that bucket whole; the other is kept */
	assert_int_equal(patch_drive(&cfg, "rootfs",
				     "{\"drive_id\":\"rootfs\",\"rate_limiter\":"
				     "{\"ops\":{\"size\":50,\"refill_time\":60}}}"),
			 CONFIG_CHANGED_RATE_LIMITER);
	assert_true(d->has_rate_limiter);
	assert_true(d->rate_limiter.has_bandwidth);
	assert_int_equal(d->rate_limiter.bandwidth.size, 100);
	assert_int_equal(d->rate_limiter.bandwidth.refill_time_ms, 10);
	assert_true(d->rate_limiter.has_ops);
	assert_int_equal(d->rate_limiter.ops.size, 50);
	assert_int_equal(d->rate_limiter.ops.one_time_burst, 0);
	assert_int_equal(d->rate_limiter.ops.refill_time_ms, 60);
	assert_string_equal(d->path_on_host, "/r2");
	/* a bucket of size 0 switches that bucket off; with none left, the limiter is off */
	patch_drive(&cfg, "rootfs",
		    "{\"drive_id\":\"rootfs\",\"rate_limiter\":"
		    "{\"bandwidth\":{\"size\":0,\"refill_time\":0}}}");
	assert_true(d->has_rate_limiter);
	assert_false(d->rate_limiter.has_bandwidth);
	assert_true(d->rate_limiter.has_ops);
	patch_drive(&cfg, "rootfs",
		    "{\"drive_id\":\"rootfs\",\"rate_limiter\":"
		    "{\"ops\":{\"size\":7,\"refill_time\":0}}}");
	assert_false(d->has_rate_limiter);
	assert_false(d->rate_limiter.has_ops);
	/* a drive without a limiter gets one */
	assert_int_equal(patch_drive(&cfg, "data",
				     "{\"drive_id\":\"data\",\"path_on_host\":\"/d2\","
				     "\"rate_limiter\":{\"bandwidth\":{\"size\":1,"
				     "\"refill_time\":2}}}"),
			 CONFIG_CHANGED_PATH | CONFIG_CHANGED_RATE_LIMITER);
	assert_true(cfg.drives[1].has_rate_limiter);
	assert_true(cfg.drives[1].is_read_only);
	assert_int_equal(cfg.drives[1].cache_type, DRIVE_CACHE_WRITEBACK);
	/* nothing but the id, or nulls: nothing changes, and that is not an error */
	before = config__to_json(&cfg);
	assert_int_equal(patch_drive(&cfg, "data", "{\"drive_id\":\"data\"}"), 0);
	assert_int_equal(patch_drive(&cfg, "data",
				     "{\"drive_id\":\"data\",\"path_on_host\":null,"
				     "\"rate_limiter\":null}"),
			 0);
	assert_int_equal(patch_drive(&cfg, "data", "{\"drive_id\":\"data\",\"rate_limiter\":{}}"),
			 CONFIG_CHANGED_RATE_LIMITER);
	after = config__to_json(&cfg);
	assert_string_equal(before, after);
	free(before);
	free(after);
	/* changed may be NULL */
	error__clear();
	assert_int_equal(config__patch_drive(&cfg, "data", "{\"drive_id\":\"data\"}", 19, NULL), 0);
	config__free(&cfg);

	expect_fail_id(&drive_patch_t, "nope", "{\"drive_id\":\"nope\"}", 19, -ENOENT,
		       "drive_id: no drive with id 'nope'");
	expect_fail_id(&drive_patch_t, "nope", "{\"drive_id\":\"nope\",\"path_on_host\":1}", 36,
		       -EINVAL, "path_on_host: must be a string");
	expect_fail(&drive_patch_t, "{}", "drive_id: required field is missing");
}

static void test_patch_net(void **state)
{
	struct vm_config cfg;
	const struct net_config *n;

	(void)state;
	base(&cfg);
	n = &cfg.net[0]; /* eth0: rx bandwidth 1000/100 */
	assert_int_equal(patch_net(&cfg, "eth0",
				   "{\"iface_id\":\"eth0\",\"tx_rate_limiter\":"
				   "{\"ops\":{\"size\":1,\"refill_time\":2}}}"),
			 CONFIG_CHANGED_TX_RATE_LIMITER);
	assert_true(n->has_tx_rate_limiter);
	assert_int_equal(n->tx_rate_limiter.ops.refill_time_ms, 2);
	assert_true(n->has_rx_rate_limiter);
	assert_int_equal(n->rx_rate_limiter.bandwidth.size, 1000);
	assert_int_equal(patch_net(&cfg, "eth0",
				   "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":"
				   "{\"ops\":{\"size\":3,\"refill_time\":4}}}"),
			 CONFIG_CHANGED_RX_RATE_LIMITER);
	assert_true(n->rx_rate_limiter.has_bandwidth);
	assert_true(n->rx_rate_limiter.has_ops);
	assert_int_equal(patch_net(&cfg, "eth0",
				   "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":{},"
				   "\"tx_rate_limiter\":{\"ops\":{\"size\":0,"
				   "\"refill_time\":9}}}"),
			 CONFIG_CHANGED_RX_RATE_LIMITER | CONFIG_CHANGED_TX_RATE_LIMITER);
	assert_false(n->has_tx_rate_limiter);
	assert_true(n->has_rx_rate_limiter);
	assert_string_equal(n->host_dev_name, "tap0");
	assert_true(n->has_guest_mac);
	assert_int_equal(patch_net(&cfg, "eth1", "{\"iface_id\":\"eth1\"}"), 0);
	config__free(&cfg);

	expect_fail_id(&net_patch_t, "eth7", "{\"iface_id\":\"eth7\"}", 19, -ENOENT,
		       "iface_id: no network interface with id 'eth7'");
	expect_fail(&net_patch_t, "{\"rx_rate_limiter\":{}}",
		    "iface_id: required field is missing");
}

/* Failures in the middle of a body: strings already copied are freed, *cfg is unchanged. */
static void test_failure_unchanged(void **state)
{
	(void)state;
	expect_fail(&boot_t, "{\"kernel_image_path\":\"/new\",\"initrd_path\":\"/new\",\"x\":1}",
		    "boot-source: unknown field \"x\"");
	expect_fail(&logger_t, "{\"log_path\":\"/new\",\"level\":\"no\"}", "level: must be one of");
	expect_fail(&serial_t, "{\"serial_out_path\":\"/new\",\"serial_out_path\":\"/n2\"}",
		    "serial: duplicate field \"serial_out_path\"");
	expect_fail(&vsock_t, "{\"uds_path\":\"/new\"}", "guest_cid: required field is missing");
	expect_fail(&metrics_t, "{\"metrics_path\":\"/new\",\"metrics_path\":\"/n\"}",
		    "metrics: duplicate field \"metrics_path\"");
	expect_fail(&drive_t,
		    "{\"drive_id\":\"data\",\"path_on_host\":\"/new\",\"partuuid\":\"x\","
		    "\"is_root_device\":true}",
		    "is_root_device: drive 'rootfs' is already the root device");
	expect_fail(&net_t, "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\"}",
		    "host_dev_name: \"tap0\" is already used by interface 'eth0'");
	expect_fail(&drive_patch_t,
		    "{\"drive_id\":\"data\",\"path_on_host\":\"/new\","
		    "\"rate_limiter\":{\"ops\":{\"size\":1}}}",
		    "rate_limiter.ops.refill_time: required field is missing");
	expect_fail(&drive_patch_t, "{\"path_on_host\":\"/new\",\"drive_id\":\"rootfs\"}",
		    "drive_id: does not match the path id 'data'");
	expect_fail(&net_patch_t,
		    "{\"iface_id\":\"eth0\",\"tx_rate_limiter\":{\"ops\":{\"size\":1,"
		    "\"refill_time\":1}},\"rx_rate_limiter\":5}",
		    "rx_rate_limiter: must be an object");
}

static void check_strings_differ(const char *a, const char *b)
{
	if (a || b) {
		assert_non_null(a);
		assert_non_null(b);
		assert_ptr_not_equal(a, b);
		assert_string_equal(a, b);
	}
}

static void test_copy(void **state)
{
	struct vm_config a, b;
	char *ja, *jb;

	(void)state;
	base(&a);
	memset(&b, 0xa5, sizeof(b)); /* need not be initialised */
	assert_int_equal(config__copy(&b, &a), 0);
	ja = config__to_json(&a);
	jb = config__to_json(&b);
	assert_string_equal(ja, jb);
	free(jb);
	check_strings_differ(a.boot.kernel_image_path, b.boot.kernel_image_path);
	check_strings_differ(a.boot.initrd_path, b.boot.initrd_path);
	check_strings_differ(a.boot.boot_args, b.boot.boot_args);
	check_strings_differ(a.logger.log_path, b.logger.log_path);
	check_strings_differ(a.serial.serial_out_path, b.serial.serial_out_path);
	check_strings_differ(a.metrics.metrics_path, b.metrics.metrics_path);
	check_strings_differ(a.vsock.uds_path, b.vsock.uds_path);
	for (unsigned int i = 0; i < a.nr_drives; i++) {
		check_strings_differ(a.drives[i].drive_id, b.drives[i].drive_id);
		check_strings_differ(a.drives[i].path_on_host, b.drives[i].path_on_host);
		check_strings_differ(a.drives[i].partuuid, b.drives[i].partuuid);
	}
	for (unsigned int i = 0; i < a.nr_net; i++) {
		check_strings_differ(a.net[i].iface_id, b.net[i].iface_id);
		check_strings_differ(a.net[i].host_dev_name, b.net[i].host_dev_name);
	}
	/* changing the copy leaves the original alone, and the other way round */
	patch_drive(&b, "rootfs", "{\"drive_id\":\"rootfs\",\"path_on_host\":\"/changed\"}");
	put_net(&b, "eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap7\"}");
	apply(&b, CONFIG_BODY_BOOT_SOURCE, "{\"kernel_image_path\":\"/k9\"}");
	jb = config__to_json(&a);
	assert_string_equal(ja, jb);
	free(jb);
	config__free(&a);
	assert_string_equal(b.drives[0].path_on_host, "/changed");
	assert_string_equal(b.drives[1].drive_id, "data");
	assert_string_equal(b.net[0].host_dev_name, "tap0");
	assert_string_equal(b.vsock.uds_path, "/v");
	/* a copy of an empty config */
	config__init(&a);
	config__free(&b);
	assert_int_equal(config__copy(&b, &a), 0);
	assert_null(b.boot.kernel_image_path);
	assert_int_equal(b.nr_drives, 0);
	config__free(&b);
	config__free(&b);
	free(ja);
}

/* A config built through the API prints as JSON that the config file parser reads back. */
static void test_round_trip(void **state)
{
	struct vm_config a, b;
	char *ja, *jb;

	(void)state;
	config__init(&a);
	apply(&a, CONFIG_BODY_BOOT_SOURCE,
	      "{\"kernel_image_path\":\"/k \\\"q\\\" \\u00e9\",\"boot_args\":\"a=b\\tc\"}");
	apply(&a, CONFIG_BODY_MACHINE_CONFIG,
	      "{\"vcpu_count\":32,\"mem_size_mib\":1048576,\"smt\":true,\"track_dirty_pages\":true}");
	apply(&a, CONFIG_BODY_LOGGER,
	      "{\"log_path\":\"/l\",\"level\":\"off\",\"show_level\":true}");
	apply(&a, CONFIG_BODY_METRICS, "{\"metrics_path\":\"/m\"}");
	apply(&a, CONFIG_BODY_SERIAL, "{\"serial_out_path\":\"/s\"}");
	apply(&a, CONFIG_BODY_VSOCK, "{\"guest_cid\":4294967295,\"uds_path\":\"/v\"}");
	put_drive(&a, "b", drive_body("b", false));
	put_drive(&a, "a",
		  "{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":true,"
		  "\"partuuid\":\"u\",\"cache_type\":\"Writeback\",\"io_engine\":\"Async\","
		  "\"is_read_only\":true,\"rate_limiter\":{\"ops\":{\"size\":9007199254740991,"
		  "\"one_time_burst\":9007199254740991,\"refill_time\":18446744073709}}}");
	put_net(&a, "n0",
		"{\"iface_id\":\"n0\",\"host_dev_name\":\"tap0\","
		"\"guest_mac\":\"FE:DC:BA:98:76:54\",\"tx_rate_limiter\":{\"bandwidth\":"
		"{\"size\":1,\"refill_time\":1}}}");
	put_net(&a, "n1", "{\"iface_id\":\"n1\",\"host_dev_name\":\"tap1\"}");
	ja = config__to_json(&a);
	assert_non_null(ja);
	config__init(&b);
	error__clear();
	if (config__parse(&b, ja, strlen(ja))) {
		print_error("%s\n  does not parse back: %s\n", ja, error__get());
		fail();
	}
	jb = config__to_json(&b);
	assert_string_equal(ja, jb);
	assert_string_equal(b.drives[0].drive_id, "a");
	assert_int_equal(b.drives[0].rate_limiter.ops.size, 9007199254740991ULL);
	assert_int_equal(b.drives[0].rate_limiter.ops.refill_time_ms, 18446744073709ULL);
	assert_int_equal(b.vsock.guest_cid, 4294967295U);
	assert_int_equal(b.logger.level, LOG_LEVEL_OFF);
	assert_string_equal(b.boot.kernel_image_path, "/k \"q\" \xc3\xa9");
	assert_string_equal(b.boot.boot_args, "a=b\tc");
	assert_non_null(strstr(ja, "\"guest_mac\":\"fe:dc:ba:98:76:54\""));
	assert_non_null(strstr(ja, "\"level\":\"Off\""));
	free(ja);
	free(jb);
	config__free(&a);
	config__free(&b);
}

static void test_machine_to_json(void **state)
{
	struct vm_config cfg;
	char *json;

	(void)state;
	base(&cfg);
	json = config__machine_to_json(&cfg.machine);
	assert_string_equal(json, "{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":true,"
				  "\"track_dirty_pages\":true,\"huge_pages\":\"None\",\"ksm\":false}");
	free(json);
	config__free(&cfg);
}

static int patch_target(struct vm_config *cfg, const char *json, unsigned int *changed)
{
	error__clear();
	return config__patch_balloon(cfg, json, strlen(json), changed);
}

static int patch_interval(struct vm_config *cfg, const char *json, unsigned int *changed)
{
	error__clear();
	return config__patch_balloon_stats(cfg, json, strlen(json), changed);
}

static int apply_ret(struct vm_config *cfg, enum config_body kind, const char *json)
{
	error__clear();
	return config__apply_body(cfg, kind, json, strlen(json));
}

/* PUT /balloon, PATCH /balloon and /balloon/statistics; the target fits the memory. */
static void test_balloon(void **state)
{
	struct vm_config cfg;
	unsigned int changed = 99;
	char *json;

	(void)state;
	config__init(&cfg); /* 128 MiB */
	/* PATCHes without a balloon: checked, nothing changed, nothing reported changed */
	assert_int_equal(patch_target(&cfg, "{\"amount_mib\":1}", &changed), 0);
	assert_int_equal(changed, 0);
	assert_false(cfg.has_balloon);
	check_error("patch bad", patch_target(&cfg, "{\"amount_mib\":-1}", NULL), -EINVAL,
		    "amount_mib: must be an integer from 0 to 4294967295, got -1");
	apply(&cfg, CONFIG_BODY_BALLOON, "{\"amount_mib\":128,\"deflate_on_oom\":true}");
	assert_true(cfg.has_balloon);
	assert_int_equal(cfg.balloon.amount_mib, 128);
	assert_true(cfg.balloon.deflate_on_oom);
	assert_int_equal(cfg.balloon.stats_polling_interval_s, 0);
	json = config__balloon_to_json(&cfg.balloon);
	assert_string_equal(json, "{\"amount_mib\":128,\"deflate_on_oom\":true,"
				  "\"stats_polling_interval_s\":0,\"free_page_hinting\":false,"
				  "\"free_page_reporting\":false}");
	free(json);
	/* too large for the memory, whichever side moves */
	check_error("put 129",
		    apply_ret(&cfg, CONFIG_BODY_BALLOON,
			      "{\"amount_mib\":129,\"deflate_on_oom\":true}"),
		    -EINVAL,
		    "amount_mib: must be at most the guest's memory "
		    "(machine-config.mem_size_mib 128), got 129");
	check_error("machine 64",
		    apply_ret(&cfg, CONFIG_BODY_MACHINE_CONFIG_PATCH, "{\"mem_size_mib\":64}"),
		    -EINVAL,
		    "mem_size_mib: must be at least the balloon's target "
		    "(balloon.amount_mib 128), got 64");
	assert_int_equal(cfg.machine.mem_size_mib, 128);
	check_error("patch 200", patch_target(&cfg, "{\"amount_mib\":200}", NULL), -EINVAL,
		    "at most the guest's memory");
	assert_int_equal(cfg.balloon.amount_mib, 128);
	/* PATCHes with one */
	assert_int_equal(patch_target(&cfg, "{\"amount_mib\":3}", &changed), 0);
	assert_int_equal(changed, CONFIG_CHANGED_BALLOON);
	assert_int_equal(cfg.balloon.amount_mib, 3);
	assert_true(cfg.balloon.deflate_on_oom);
	assert_int_equal(patch_interval(&cfg, "{\"stats_polling_interval_s\":9}", &changed), 0);
	assert_int_equal(cfg.balloon.stats_polling_interval_s, 9);
	assert_int_equal(cfg.balloon.amount_mib, 3);
	check_error("patch extra",
		    patch_target(&cfg, "{\"amount_mib\":3,\"deflate_on_oom\":false}", NULL),
		    -EINVAL, "balloon: unknown field \"deflate_on_oom\"");
	check_error("stats range",
		    patch_interval(&cfg, "{\"stats_polling_interval_s\":65536}", NULL), -EINVAL,
		    "stats_polling_interval_s: must be an integer from 0 to 65535");
	check_error("stats missing", patch_interval(&cfg, "{}", NULL), -EINVAL,
		    "stats_polling_interval_s: required field is missing");
	check_error(
		"hinting",
		apply_ret(&cfg, CONFIG_BODY_BALLOON,
			  "{\"amount_mib\":1,\"deflate_on_oom\":true,\"free_page_hinting\":true}"),
		-EINVAL, "free_page_hinting: not supported yet");
	apply(&cfg, CONFIG_BODY_BALLOON,
	      "{\"amount_mib\":1,\"deflate_on_oom\":false,\"free_page_hinting\":false,"
	      "\"free_page_reporting\":true,\"stats_polling_interval_s\":65535}");
	assert_true(cfg.balloon.free_page_reporting);
	assert_int_equal(cfg.balloon.stats_polling_interval_s, 65535);
	/* the memory may shrink down to the target */
	apply(&cfg, CONFIG_BODY_MACHINE_CONFIG_PATCH, "{\"mem_size_mib\":1}");
	config__free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_id),
		cmocka_unit_test(test_bad_path_ids),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_body_length),
		cmocka_unit_test(test_unknown_body_kind),
		cmocka_unit_test(test_put_sections),
		cmocka_unit_test(test_machine_patch),
		cmocka_unit_test(test_put_drive),
		cmocka_unit_test(test_put_net),
		cmocka_unit_test(test_patch_drive),
		cmocka_unit_test(test_patch_net),
		cmocka_unit_test(test_failure_unchanged),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_machine_to_json),
		cmocka_unit_test(test_balloon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
