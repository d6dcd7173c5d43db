// SPDX-License-Identifier: Apache-2.0
/*
 * The devices of Firecracker's config schema and the API requests that change the config
 * a part at a time.
 *
 * Devices: drives, network interfaces, vsock and the entropy device, with the rate limiters
 * of drives, interfaces and the entropy device, and the metrics sink (the balloon is in
 * config_balloon.c). config.c uses these tables for the config file's "drives",
 * "network-interfaces", "vsock", "entropy" and "metrics"; the lists of devices are walked
 * here. Firecracker's rules, as its API documents them: ids are 1 to 64 of [A-Za-z0-9_-];
 * at most one drive is the root device, and it is kept first (it becomes /dev/vda); no
 * two interfaces share a host_dev_name or a guest_mac; a token bucket with size 0 or
 * refill_time 0 limits nothing and counts as absent; a PATCH of a rate limiter replaces
 * the buckets it gives and keeps the others.
 *
 * Requests: PUT and PATCH of one drive or interface, and
 * config__apply_body() for the bodies of /boot-source, /machine-config, /logger, /metrics,
 * /serial, /vsock, /entropy and /balloon. Each parses into scratch space and changes the
 * config only once the whole request is good; the balloon's target must fit the memory,
 * whichever of the two changes.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/config.h"
#include "api/config_internal.h"
#include "vmm/log.h"

/* refill_time becomes nanoseconds in the rate limiter: it must fit a uint64_t then. */
#define REFILL_TIME_MAX_MS (UINT64_MAX / 1000000)
/* A Linux interface name: IFNAMSIZ - 1. */
#define HOST_DEV_NAME_MAX 15
/* Enough for "<uuid>/PARTNROFF=<n>", the longest form the kernel takes after PARTUUID=. */
#define PARTUUID_MAX 72
#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

_Static_assert(sizeof(enum drive_cache_type) == sizeof(unsigned int), "enum size");
_Static_assert(sizeof(enum drive_io_engine) == sizeof(unsigned int), "enum size");

#define DRIVE struct drive_config
#define NET struct net_config
#define ASPOOF struct antispoof_config
#define RL struct rate_limiter_config
#define TB struct token_bucket_config

int config__check_id(const char *what, const char *id)
{
	char shown[NAME_SHOW_MAX];
	size_t n = id ? strlen(id) : 0;

	if (!what)
		what = "id";
	if (!n)
		return error__set(-EINVAL, "%s: must not be empty", what);
	if (n > VM_DEVICE_ID_MAX)
		return error__set(-EINVAL, "%s: must be at most %d characters long, got %zu", what,
				  VM_DEVICE_ID_MAX, n);
	if (strspn(id, ID_CHARS) != n)
		return error__set(-EINVAL,
				  "%s: must hold only A-Z, a-z, 0-9, '_' and '-', got \"%s\"", what,
				  printable(shown, sizeof(shown), id));
	return 0;
}

/* ---- rate limiters ---- */

static const struct field bucket_fields[] = {
	F_U64("size", TB, size, FIELD_REQUIRED, 0, JSON_INT_MAX),
	F_U64("one_time_burst", TB, one_time_burst, 0, 0, JSON_INT_MAX),
	F_U64("refill_time", TB, refill_time_ms, FIELD_REQUIRED, 0, REFILL_TIME_MAX_MS),
};

/* A bucket given replaces the old one whole, even in a PATCH. */
static const struct section bucket_section = {
	SECTION_OF("token bucket", TB, bucket_fields),
	.reset = true,
};

static void drop_idle_bucket(bool *has, struct token_bucket_config *b)
{
	if (*has && (!b->size || !b->refill_time_ms)) {
		*has = false;
		memset(b, 0, sizeof(*b));
	}
}

static int check_limiter(void *obj, const char *path)
{
	struct rate_limiter_config *rl = obj;

	(void)path;
	drop_idle_bucket(&rl->has_bandwidth, &rl->bandwidth);
	drop_idle_bucket(&rl->has_ops, &rl->ops);
	return 0;
}

static const struct field limiter_fields[] = {
	F_HAS_SECTION("bandwidth", RL, bandwidth, has_bandwidth, &bucket_section),
	F_HAS_SECTION("ops", RL, ops, has_ops, &bucket_section),
};

static const struct section limiter_section = {
	SECTION_OF("rate_limiter", RL, limiter_fields),
	.check = check_limiter,
};

/* A limiter with no bucket left limits nothing, and counts as absent. */
static bool limits(const struct rate_limiter_config *rl)
{
	return rl->has_bandwidth || rl->has_ops;
}

/* ---- drives ---- */

static const char *const cache_type_names[] = {
	[DRIVE_CACHE_UNSAFE] = "Unsafe",
	[DRIVE_CACHE_WRITEBACK] = "Writeback",
};

static const char *const io_engine_names[] = {
	[DRIVE_IO_SYNC] = "Sync",
	[DRIVE_IO_ASYNC] = "Async",
};

/* One of names, exactly (Firecracker's enums are case-sensitive); the value is its index. */
static int parse_choice(void *dst, const char *path, const cJSON *item, const char *const *names,
			unsigned int n, const char *choices)
{
	const char *s = cJSON_GetStringValue(item);

	for (unsigned int i = 0; s && i < n; i++) {
		if (!strcmp(s, names[i])) {
			*(unsigned int *)dst = i;
			return 0;
		}
	}
	return config__bad_choice(path, item, choices);
}

static int parse_cache_type(void *dst, const char *path, const cJSON *item)
{
	return parse_choice(dst, path, item, cache_type_names, ARRAY_SIZE(cache_type_names),
			    "\"Unsafe\" or \"Writeback\"");
}

static int parse_io_engine(void *dst, const char *path, const cJSON *item)
{
	return parse_choice(dst, path, item, io_engine_names, ARRAY_SIZE(io_engine_names),
			    "\"Sync\" or \"Async\"");
}

/* The partuuid goes into the kernel command line: one word, no control characters. */
static int check_word(const char *path, const char *s)
{
	char shown[NAME_SHOW_MAX];

	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return error__set(-EINVAL,
					  "%s: must not hold white space or control characters, "
					  "got \"%s\"",
					  path, printable(shown, sizeof(shown), s));
	}
	return 0;
}

static int check_drive(void *obj, const char *path)
{
	struct drive_config *d = obj;
	char fpath[PATH_SHOW_MAX];
	int ret;

	ret = config__check_id(join_path(fpath, sizeof(fpath), path, "drive_id"), d->drive_id);
	if (!ret && d->partuuid)
		ret = check_word(join_path(fpath, sizeof(fpath), path, "partuuid"), d->partuuid);
	d->has_rate_limiter = limits(&d->rate_limiter);
	return ret;
}

/* In the order of Firecracker's GET /vm/config. */
static const struct field drive_fields[] = {
	F_STRING("drive_id", DRIVE, drive_id, FIELD_REQUIRED),
	{ .name = "partuuid",
	  .type = FIELD_STRING,
	  .flags = FIELD_NONEMPTY,
	  .offset = offsetof(DRIVE, partuuid),
	  .max = PARTUUID_MAX },
	F_BOOL("is_root_device", DRIVE, is_root_device, FIELD_REQUIRED),
	F_ENUM("cache_type", DRIVE, cache_type, cache_type_names, parse_cache_type),
	F_BOOL("is_read_only", DRIVE, is_read_only, 0),
	F_STRING("path_on_host", DRIVE, path_on_host, REQNE),
	F_HAS_SECTION("rate_limiter", DRIVE, rate_limiter, has_rate_limiter, &limiter_section),
	F_ENUM("io_engine", DRIVE, io_engine, io_engine_names, parse_io_engine),
	F_UNSUPPORTED("socket"), /* vhost-user */
};

const struct section config_devices__drive_section = {
	SECTION_OF("drive", DRIVE, drive_fields),
	.check = check_drive,
};

static int check_patch_id(void *obj, const char *path)
{
	(void)path;
	return config__check_id("drive_id", ((struct drive_config *)obj)->drive_id);
}

static const struct field drive_patch_fields[] = {
	F_STRING("drive_id", DRIVE, drive_id, FIELD_REQUIRED),
	F_STRING("path_on_host", DRIVE, path_on_host, FIELD_NONEMPTY),
	F_HAS_SECTION("rate_limiter", DRIVE, rate_limiter, has_rate_limiter, &limiter_section),
};

static const struct section drive_patch_section = {
	SECTION_OF("drive", DRIVE, drive_patch_fields),
	.check = check_patch_id,
};

/* d against the drives other than the one with its id (which d replaces). */
static int drive_clash(const struct drive_config *drives, unsigned int n,
		       const struct drive_config *d, const char *path)
{
	char fpath[PATH_SHOW_MAX], id[NAME_SHOW_MAX];

	for (unsigned int j = 0; j < n; j++) {
		if (!strcmp(drives[j].drive_id, d->drive_id))
			continue;
		if (d->is_root_device && drives[j].is_root_device)
			return error__set(-EINVAL, "%s: drive '%s' is already the root device",
					  join_path(fpath, sizeof(fpath), path, "is_root_device"),
					  printable(id, sizeof(id), drives[j].drive_id));
	}
	return 0;
}

int config_devices__drive_conflicts(const void *array, unsigned int i, const char *path)
{
	const struct drive_config *drives = array, *d = &drives[i];
	char fpath[PATH_SHOW_MAX], id[NAME_SHOW_MAX];

	for (unsigned int j = 0; j < i; j++) {
		if (!strcmp(drives[j].drive_id, d->drive_id))
			return error__set(-EINVAL, "%s: duplicate id '%s'",
					  join_path(fpath, sizeof(fpath), path, "drive_id"),
					  printable(id, sizeof(id), d->drive_id));
	}
	return drive_clash(drives, i, d, path);
}

/* ---- the config file's lists of devices ---- */

/* Each element in turn, checked against those before it; the count covers a failed one. */
int config_devices__parse_list(void *obj, const char *path, const struct field *f,
			       const cJSON *item)
{
	unsigned int *count = (unsigned int *)((char *)obj + f->count_offset);
	char *array = (char *)obj + f->offset, epath[PATH_SHOW_MAX];
	const cJSON *e;
	int n, ret;

	if (!cJSON_IsArray(item))
		return error__set(-EINVAL, "%s: must be an array, got %s", path,
				  json_type_name(item));
	n = cJSON_GetArraySize(item);
	if ((uint64_t)n > f->max)
		return error__set(-EINVAL, "%s: at most %" PRIu64 " are supported, got %d", path,
				  f->max, n);
	cJSON_ArrayForEach (e, item) {
		char *elem = array + (size_t)*count * f->section->size;

		snprintf(epath, sizeof(epath), "%s[%u]", path, *count);
		memset(elem, 0, f->section->size);
		(*count)++;
		ret = config__parse_object(elem, f->section, e, epath);
		if (!ret && f->conflicts)
			ret = f->conflicts(array, *count - 1, epath);
		if (ret)
			return ret;
	}
	return 0;
}

int config_devices__print_list(cJSON *o, const void *obj, const struct field *f)
{
	unsigned int n = *(const unsigned int *)((const char *)obj + f->count_offset);
	const char *array = (const char *)obj + f->offset;
	cJSON *list = cJSON_AddArrayToObject(o, f->name), *e;
	int ret = list ? 0 : -ENOMEM;

	for (unsigned int i = 0; !ret && i < n && i < f->max; i++) {
		e = cJSON_CreateObject();
		if (!e || !cJSON_AddItemToArray(list, e)) {
			cJSON_Delete(e);
			return -ENOMEM;
		}
		ret = config__print_members(e, array + i * f->section->size, f->section);
	}
	return ret;
}

void config_devices__root_first(struct vm_config *cfg)
{
	struct drive_config root;

	for (unsigned int i = 1; i < cfg->nr_drives; i++) {
		if (!cfg->drives[i].is_root_device)
			continue;
		root = cfg->drives[i];
		memmove(&cfg->drives[1], &cfg->drives[0], i * sizeof(root));
		cfg->drives[0] = root;
		return;
	}
}

static int find_drive(const struct vm_config *cfg, const char *id)
{
	for (unsigned int i = 0; i < cfg->nr_drives; i++) {
		if (!strcmp(cfg->drives[i].drive_id, id))
			return (int)i;
	}
	return -1;
}

static int match_path_id(const char *what, const char *body_id, const char *id)
{
	char shown[NAME_SHOW_MAX];

	if (strcmp(body_id, id))
		return error__set(-EINVAL, "%s: does not match the path id '%s'", what,
				  printable(shown, sizeof(shown), id));
	return 0;
}

int config__put_drive(struct vm_config *cfg, const char *id, const char *json, size_t len)
{
	const struct section *sec = &config_devices__drive_section;
	struct drive_config d = { 0 };
	int i, ret;

	ret = config__check_id("drive_id", id);
	if (ret)
		return ret;
	ret = config__parse_body(&d, sec, json, len);
	if (!ret)
		ret = match_path_id("drive_id", d.drive_id, id);
	if (!ret)
		ret = drive_clash(cfg->drives, cfg->nr_drives, &d, "");
	i = find_drive(cfg, id);
	if (!ret && i < 0 && cfg->nr_drives >= VM_MAX_DRIVES)
		ret = error__set(-ENOSPC, "drives: at most %d drives are supported", VM_MAX_DRIVES);
	if (ret) {
		config__free_object(&d, sec);
		return ret;
	}
	if (i < 0)
		i = (int)cfg->nr_drives++;
	else
		config__free_object(&cfg->drives[i], sec);
	cfg->drives[i] = d;
	config_devices__root_first(cfg);
	return 0;
}

/* The body is parsed over a copy of the drive's rate limiter, so that buckets merge. */
int config__patch_drive(struct vm_config *cfg, const char *id, const char *json, size_t len,
			unsigned int *changed)
{
	struct drive_config p = { 0 }, *d;
	unsigned int bits = 0;
	int i, ret;

	if (changed)
		*changed = 0;
	ret = config__check_id("drive_id", id);
	if (ret)
		return ret;
	i = find_drive(cfg, id);
	if (i >= 0)
		p.rate_limiter = cfg->drives[i].rate_limiter;
	ret = config__parse_body(&p, &drive_patch_section, json, len);
	if (!ret)
		ret = match_path_id("drive_id", p.drive_id, id);
	if (!ret && i < 0)
		ret = error__set(-ENOENT, "drive_id: no drive with id '%s'", id);
	if (ret) {
		config__free_object(&p, &drive_patch_section);
		return ret;
	}
	d = &cfg->drives[i];
	if (p.path_on_host) {
		free(d->path_on_host);
		d->path_on_host = p.path_on_host;
		p.path_on_host = NULL;
		bits |= CONFIG_CHANGED_PATH;
	}
	if (p.has_rate_limiter) {
		d->rate_limiter = p.rate_limiter;
		d->has_rate_limiter = limits(&d->rate_limiter);
		bits |= CONFIG_CHANGED_RATE_LIMITER;
	}
	config__free_object(&p, &drive_patch_section);
	if (changed)
		*changed = bits;
	return 0;
}

/* ---- network interfaces ---- */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "xx:xx:xx:xx:xx:xx", two hex digits a byte. */
static bool scan_mac(const char *s, uint8_t *mac)
{
	int hi, lo;

	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 6; i++) {
		hi = hex_digit(s[3 * i]);
		lo = hex_digit(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static int parse_mac(void *dst, const char *path, const cJSON *item)
{
	static const uint8_t zero[6];
	const char *s = cJSON_GetStringValue(item);
	char shown[NAME_SHOW_MAX];
	uint8_t mac[6];

	if (!s)
		return error__set(-EINVAL, "%s: must be a string, got %s", path,
				  json_type_name(item));
	printable(shown, sizeof(shown), s);
	if (!scan_mac(s, mac))
		return error__set(-EINVAL,
				  "%s: must be a MAC address like \"06:00:ac:10:00:02\", "
				  "got \"%s\"",
				  path, shown);
	if (mac[0] & 1)
		return error__set(-EINVAL, "%s: must not be a multicast address, got \"%s\"", path,
				  shown);
	if (!memcmp(mac, zero, sizeof(mac)))
		return error__set(-EINVAL, "%s: must not be all zeros", path);
	memcpy(dst, mac, sizeof(mac));
	return 0;
}

static void format_mac(char *buf, size_t len, const uint8_t *m)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static int print_mac(cJSON *o, const char *name, const void *src, const struct field *f)
{
	char mac[18];

	(void)f;
	format_mac(mac, sizeof(mac), src);
	return cJSON_AddStringToObject(o, name, mac) ? 0 : -ENOMEM;
}

/* Linux's rule (dev_valid_name), and no control characters. */
static int check_host_dev_name(const char *path, const char *s)
{
	size_t n = strlen(s);
	bool bad = !n || n > HOST_DEV_NAME_MAX || !strcmp(s, ".") || !strcmp(s, "..");
	char shown[NAME_SHOW_MAX];

	for (size_t i = 0; !bad && i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		bad = c <= ' ' || c == 0x7f || c == 0xa0 || c == '/' || c == ':';
	}
	if (bad)
		return error__set(-EINVAL,
				  "%s: must be a Linux interface name: 1 to %d bytes, not \".\" or "
				  "\"..\", without '/', ':', white space or control characters, "
				  "got \"%s\"",
				  path, HOST_DEV_NAME_MAX, printable(shown, sizeof(shown), s));
	return 0;
}

/* ---- anti-spoofing: the source addresses a guest may send from ---- */

/* A unicast address a host can be: not unspecified, multicast, broadcast or loopback. */
static const char *bad_source(int family, const uint8_t *a)
{
	static const uint8_t zero[16], loop6[16] = { [15] = 1 };

	if (family == AF_INET) {
		if (!memcmp(a, zero, 4))
			return "the unspecified address";
		if (a[0] >= 224)
			return a[0] < 240 ? "a multicast address"
					  : "a reserved or broadcast address";
		if (a[0] == 127)
			return "a loopback address";
		return NULL;
	}
	if (!memcmp(a, zero, 16))
		return "the unspecified address";
	if (a[0] == 0xff)
		return "a multicast address";
	if (!memcmp(a, loop6, 16))
		return "the loopback address";
	return NULL;
}

static int parse_addr_list(const char *path, const cJSON *item, int family, unsigned int *nr,
			   uint8_t *addrs)
{
	const char *what = family == AF_INET ? "IPv4" : "IPv6";
	size_t len = family == AF_INET ? 4 : 16;
	char epath[PATH_SHOW_MAX], shown[NAME_SHOW_MAX];
	const cJSON *e;
	const char *why;
	unsigned int n = 0;

	if (!cJSON_IsArray(item))
		return error__set(-EINVAL, "%s: must be an array of %s addresses, got %s", path,
				  what, json_type_name(item));
	if (cJSON_GetArraySize(item) > VM_ANTISPOOF_ADDRS_MAX)
		return error__set(-EINVAL, "%s: at most %d addresses are supported, got %d", path,
				  VM_ANTISPOOF_ADDRS_MAX, cJSON_GetArraySize(item));
	cJSON_ArrayForEach (e, item) {
		const char *str = cJSON_GetStringValue(e);
		uint8_t *a = addrs + n * len;

		snprintf(epath, sizeof(epath), "%s[%u]", path, n);
		if (!str)
			return error__set(-EINVAL, "%s: must be a string, got %s", epath,
					  json_type_name(e));
		printable(shown, sizeof(shown), str);
		if (inet_pton(family, str, a) != 1)
			return error__set(
				-EINVAL, "%s: must be an %s address like \"%s\", got \"%s\"", epath,
				what, family == AF_INET ? "172.16.0.2" : "fd00::2", shown);
		why = bad_source(family, a);
		if (why)
			return error__set(-EINVAL, "%s: \"%s\" is %s, which no guest may send from",
					  epath, shown, why);
		n++;
	}
	*nr = n;
	return 0;
}

static int parse_ipv4_list(void *dst, const char *path, const cJSON *item)
{
	struct antispoof_config *a = dst; /* the field's offset is the struct's own */

	return parse_addr_list(path, item, AF_INET, &a->nr_ipv4, &a->ipv4[0][0]);
}

static int parse_ipv6_list(void *dst, const char *path, const cJSON *item)
{
	struct antispoof_config *a =
		(void *)((char *)dst - offsetof(struct antispoof_config, nr_ipv6));

	return parse_addr_list(path, item, AF_INET6, &a->nr_ipv6, &a->ipv6[0][0]);
}

static int print_addr_list(cJSON *o, const char *name, int family, unsigned int nr,
			   const uint8_t *addrs)
{
	size_t len = family == AF_INET ? 4 : 16;
	cJSON *list = cJSON_AddArrayToObject(o, name);
	char buf[INET6_ADDRSTRLEN];

	if (!list)
		return -ENOMEM;
	for (unsigned int i = 0; i < nr && i < VM_ANTISPOOF_ADDRS_MAX; i++) {
		cJSON *str;

		if (!inet_ntop(family, addrs + i * len, buf, sizeof(buf)))
			return -EINVAL;
		str = cJSON_CreateString(buf);
		if (!str || !cJSON_AddItemToArray(list, str)) {
			cJSON_Delete(str);
			return -ENOMEM;
		}
	}
	return 0;
}

static int print_ipv4_list(cJSON *o, const char *name, const void *src, const struct field *f)
{
	const struct antispoof_config *a = src;

	(void)f;
	return print_addr_list(o, name, AF_INET, a->nr_ipv4, &a->ipv4[0][0]);
}

static int print_ipv6_list(cJSON *o, const char *name, const void *src, const struct field *f)
{
	const struct antispoof_config *a =
		(const void *)((const char *)src - offsetof(struct antispoof_config, nr_ipv6));

	(void)f;
	return print_addr_list(o, name, AF_INET6, a->nr_ipv6, &a->ipv6[0][0]);
}

static const struct field antispoof_fields[] = {
	{ .name = "ipv4",
	  .type = FIELD_CUSTOM,
	  .offset = offsetof(ASPOOF, nr_ipv4),
	  .parse = parse_ipv4_list,
	  .print = print_ipv4_list },
	{ .name = "ipv6",
	  .type = FIELD_CUSTOM,
	  .offset = offsetof(ASPOOF, nr_ipv6),
	  .parse = parse_ipv6_list,
	  .print = print_ipv6_list },
};

_Static_assert(offsetof(struct antispoof_config, nr_ipv4) == 0, "parse_ipv4_list's cast");

static const struct section antispoof_section = {
	SECTION_OF("anti_spoofing", ASPOOF, antispoof_fields),
	.reset = true,
};

static int check_net(void *obj, const char *path)
{
	struct net_config *n = obj;
	char fpath[PATH_SHOW_MAX];
	int ret;

	ret = config__check_id(join_path(fpath, sizeof(fpath), path, "iface_id"), n->iface_id);
	if (!ret)
		ret = check_host_dev_name(join_path(fpath, sizeof(fpath), path, "host_dev_name"),
					  n->host_dev_name);
	n->has_rx_rate_limiter = limits(&n->rx_rate_limiter);
	n->has_tx_rate_limiter = limits(&n->tx_rate_limiter);
	if (!ret && n->has_anti_spoofing && !n->has_guest_mac)
		ret = error__set(-EINVAL,
				 "%s: needs guest_mac: the filter lets through only frames from "
				 "the interface's own MAC",
				 join_path(fpath, sizeof(fpath), path, "anti_spoofing"));
	return ret;
}

static const struct field net_fields[] = {
	F_STRING("iface_id", NET, iface_id, FIELD_REQUIRED),
	F_STRING("host_dev_name", NET, host_dev_name, FIELD_REQUIRED),
	{ .name = "guest_mac",
	  .type = FIELD_CUSTOM,
	  .flags = FIELD_HAS,
	  .offset = offsetof(NET, guest_mac),
	  .has_offset = offsetof(NET, has_guest_mac),
	  .parse = parse_mac,
	  .print = print_mac },
	F_HAS_SECTION("rx_rate_limiter", NET, rx_rate_limiter, has_rx_rate_limiter,
		      &limiter_section),
	F_HAS_SECTION("tx_rate_limiter", NET, tx_rate_limiter, has_tx_rate_limiter,
		      &limiter_section),
	F_HAS_SECTION("anti_spoofing", NET, anti_spoofing, has_anti_spoofing, &antispoof_section),
};

const struct section config_devices__net_section = {
	SECTION_OF("network-interface", NET, net_fields),
	.check = check_net,
};

static int check_net_patch_id(void *obj, const char *path)
{
	(void)path;
	return config__check_id("iface_id", ((struct net_config *)obj)->iface_id);
}

static const struct field net_patch_fields[] = {
	F_STRING("iface_id", NET, iface_id, FIELD_REQUIRED),
	F_HAS_SECTION("rx_rate_limiter", NET, rx_rate_limiter, has_rx_rate_limiter,
		      &limiter_section),
	F_HAS_SECTION("tx_rate_limiter", NET, tx_rate_limiter, has_tx_rate_limiter,
		      &limiter_section),
};

static const struct section net_patch_section = {
	SECTION_OF("network-interface", NET, net_patch_fields),
	.check = check_net_patch_id,
};

/* n against the interfaces other than the one with its id (which n replaces). */
static int net_clash(const struct net_config *nets, unsigned int count, const struct net_config *n,
		     const char *path)
{
	char fpath[PATH_SHOW_MAX], id[NAME_SHOW_MAX], mac[18];

	for (unsigned int j = 0; j < count; j++) {
		const struct net_config *o = &nets[j];

		if (!strcmp(o->iface_id, n->iface_id))
			continue;
		printable(id, sizeof(id), o->iface_id);
		if (!strcmp(o->host_dev_name, n->host_dev_name))
			return error__set(-EINVAL, "%s: \"%s\" is already used by interface '%s'",
					  join_path(fpath, sizeof(fpath), path, "host_dev_name"),
					  n->host_dev_name, id);
		if (!n->has_guest_mac || !o->has_guest_mac ||
		    memcmp(o->guest_mac, n->guest_mac, sizeof(n->guest_mac)))
			continue;
		format_mac(mac, sizeof(mac), n->guest_mac);
		return error__set(-EINVAL, "%s: %s is already used by interface '%s'",
				  join_path(fpath, sizeof(fpath), path, "guest_mac"), mac, id);
	}
	return 0;
}

int config_devices__net_conflicts(const void *array, unsigned int i, const char *path)
{
	const struct net_config *nets = array, *n = &nets[i];
	char fpath[PATH_SHOW_MAX], id[NAME_SHOW_MAX];

	for (unsigned int j = 0; j < i; j++) {
		if (!strcmp(nets[j].iface_id, n->iface_id))
			return error__set(-EINVAL, "%s: duplicate id '%s'",
					  join_path(fpath, sizeof(fpath), path, "iface_id"),
					  printable(id, sizeof(id), n->iface_id));
	}
	return net_clash(nets, i, n, path);
}

static int find_net(const struct vm_config *cfg, const char *id)
{
	for (unsigned int i = 0; i < cfg->nr_net; i++) {
		if (!strcmp(cfg->net[i].iface_id, id))
			return (int)i;
	}
	return -1;
}

int config__put_net(struct vm_config *cfg, const char *id, const char *json, size_t len)
{
	const struct section *sec = &config_devices__net_section;
	struct net_config n = { 0 };
	int i, ret;

	ret = config__check_id("iface_id", id);
	if (ret)
		return ret;
	ret = config__parse_body(&n, sec, json, len);
	if (!ret)
		ret = match_path_id("iface_id", n.iface_id, id);
	if (!ret)
		ret = net_clash(cfg->net, cfg->nr_net, &n, "");
	i = find_net(cfg, id);
	if (!ret && i < 0 && cfg->nr_net >= VM_MAX_NET_IFACES)
		ret = error__set(-ENOSPC, "network-interfaces: at most %d interfaces are supported",
				 VM_MAX_NET_IFACES);
	if (ret) {
		config__free_object(&n, sec);
		return ret;
	}
	if (i < 0)
		i = (int)cfg->nr_net++;
	else
		config__free_object(&cfg->net[i], sec);
	cfg->net[i] = n;
	return 0;
}

/* As for drives: each limiter given is parsed over a copy of the current one. */
int config__patch_net(struct vm_config *cfg, const char *id, const char *json, size_t len,
		      unsigned int *changed)
{
	struct net_config p = { 0 }, *n;
	unsigned int bits = 0;
	int i, ret;

	if (changed)
		*changed = 0;
	ret = config__check_id("iface_id", id);
	if (ret)
		return ret;
	i = find_net(cfg, id);
	if (i >= 0) {
		p.rx_rate_limiter = cfg->net[i].rx_rate_limiter;
		p.tx_rate_limiter = cfg->net[i].tx_rate_limiter;
	}
	ret = config__parse_body(&p, &net_patch_section, json, len);
	if (!ret)
		ret = match_path_id("iface_id", p.iface_id, id);
	if (!ret && i < 0)
		ret = error__set(-ENOENT, "iface_id: no network interface with id '%s'", id);
	if (ret) {
		config__free_object(&p, &net_patch_section);
		return ret;
	}
	n = &cfg->net[i];
	if (p.has_rx_rate_limiter) {
		n->rx_rate_limiter = p.rx_rate_limiter;
		n->has_rx_rate_limiter = limits(&n->rx_rate_limiter);
		bits |= CONFIG_CHANGED_RX_RATE_LIMITER;
	}
	if (p.has_tx_rate_limiter) {
		n->tx_rate_limiter = p.tx_rate_limiter;
		n->has_tx_rate_limiter = limits(&n->tx_rate_limiter);
		bits |= CONFIG_CHANGED_TX_RATE_LIMITER;
	}
	config__free_object(&p, &net_patch_section);
	if (changed)
		*changed = bits;
	return 0;
}

/* ---- vsock and metrics ---- */

/* Deprecated in Firecracker: a string, ignored. */
static int parse_vsock_id(void *dst, const char *path, const cJSON *item)
{
	(void)dst;
	if (!cJSON_IsString(item))
		return error__set(-EINVAL, "%s: must be a string, got %s", path,
				  json_type_name(item));
	return 0;
}

static const struct field vsock_fields[] = {
	{ .name = "vsock_id", .type = FIELD_CUSTOM, .parse = parse_vsock_id },
	F_U32("guest_cid", struct vsock_config, guest_cid, FIELD_REQUIRED, 3, UINT32_MAX),
	F_STRING("uds_path", struct vsock_config, uds_path, REQNE),
};

const struct section config_devices__vsock_section = {
	SECTION_OF("vsock", struct vsock_config, vsock_fields),
};

static const struct field metrics_fields[] = {
	F_STRING("metrics_path", struct metrics_config, metrics_path, REQNE),
};

const struct section config_devices__metrics_section = {
	SECTION_OF("metrics", struct metrics_config, metrics_fields),
};

/* ---- the entropy device ---- */

static int check_entropy(void *obj, const char *path)
{
	struct entropy_config *e = obj;

	(void)path;
	e->has_rate_limiter = limits(&e->rate_limiter);
	return 0;
}

static const struct field entropy_fields[] = {
	F_HAS_SECTION("rate_limiter", struct entropy_config, rate_limiter, has_rate_limiter,
		      &limiter_section),
};

const struct section config_devices__entropy_section = {
	SECTION_OF("entropy", struct entropy_config, entropy_fields),
	.check = check_entropy,
};

/* ---- PUT and PATCH of a whole section ---- */

#define NO_HAS SIZE_MAX

/* Where each API body lands in struct vm_config. */
static const struct body {
	const struct section *sec;
	size_t offset;
	size_t has; /* the bool that says the section is set, or NO_HAS */
} bodies[] = {
	[CONFIG_BODY_BOOT_SOURCE] = { &config__boot_section, offsetof(struct vm_config, boot),
				      NO_HAS },
	[CONFIG_BODY_MACHINE_CONFIG] = { &config__machine_section,
					 offsetof(struct vm_config, machine), NO_HAS },
	[CONFIG_BODY_MACHINE_CONFIG_PATCH] = { &config__machine_patch_section,
					       offsetof(struct vm_config, machine), NO_HAS },
	[CONFIG_BODY_LOGGER] = { &config__logger_section, offsetof(struct vm_config, logger),
				 offsetof(struct vm_config, has_logger) },
	[CONFIG_BODY_METRICS] = { &config_devices__metrics_section,
				  offsetof(struct vm_config, metrics),
				  offsetof(struct vm_config, has_metrics) },
	[CONFIG_BODY_SERIAL] = { &config__serial_section, offsetof(struct vm_config, serial),
				 NO_HAS },
	[CONFIG_BODY_VSOCK] = { &config_devices__vsock_section, offsetof(struct vm_config, vsock),
				offsetof(struct vm_config, has_vsock) },
	[CONFIG_BODY_ENTROPY] = { &config_devices__entropy_section,
				  offsetof(struct vm_config, entropy),
				  offsetof(struct vm_config, has_entropy) },
	[CONFIG_BODY_BALLOON] = { &config_balloon__section, offsetof(struct vm_config, balloon),
				  offsetof(struct vm_config, has_balloon) },
};

/* The section a body made (at dst) against the rest of cfg: the balloon fits the memory. */
static int check_across(const struct vm_config *cfg, enum config_body kind, const void *dst)
{
	const struct machine_config *m = dst;
	const struct balloon_config *b = dst;

	if (kind == CONFIG_BODY_BALLOON)
		return config_balloon__fits(cfg->machine.mem_size_mib, b->amount_mib, "amount_mib",
					    true);
	if ((kind == CONFIG_BODY_MACHINE_CONFIG || kind == CONFIG_BODY_MACHINE_CONFIG_PATCH) &&
	    cfg->has_balloon)
		return config_balloon__fits(m->mem_size_mib, cfg->balloon.amount_mib,
					    "mem_size_mib", false);
	return 0;
}

/*
 * The body is parsed into a scratch section that starts from the config__init() defaults
 * (a PUT) or from the current section (a PATCH; those hold no strings), and replaces the
 * section only once it is whole.
 */
int config__apply_body(struct vm_config *cfg, enum config_body kind, const char *json, size_t len)
{
	struct vm_config scratch;
	const struct body *b;
	char *dst, *cur;
	int ret;

	if ((unsigned int)kind >= ARRAY_SIZE(bodies))
		return error__set(-EINVAL, "config: unknown request body kind %d", (int)kind);
	b = &bodies[kind];
	config__init(&scratch);
	dst = (char *)&scratch + b->offset;
	cur = (char *)cfg + b->offset;
	if (b->sec->patch)
		memcpy(dst, cur, b->sec->size);
	ret = config__parse_body(dst, b->sec, json, len);
	if (!ret)
		ret = check_across(cfg, kind, dst);
	if (ret) {
		config__free_object(dst, b->sec);
		return ret;
	}
	config__free_object(cur, b->sec);
	memcpy(cur, dst, b->sec->size);
	if (b->has != NO_HAS)
		*(bool *)((char *)cfg + b->has) = true;
	return 0;
}

static int choice_error(const char *label, const char *key, const char *const *choices, size_t n)
{
	char list[256] = "";
	size_t used = 0;

	for (size_t i = 0; i < n && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
					 i ? (i + 1 == n ? " or " : ", ") : "", choices[i]);
	(void)label;
	return error__set(-EINVAL, "%s: must be %s", key, list);
}

int config__parse_choice(const char *label, const char *json, size_t len, const char *key,
			 const char *const *choices, size_t n, int *index)
{
	cJSON *root = NULL;
	const cJSON *item;
	int ret = config__parse_json(label, json, len, &root);

	if (ret)
		return ret;
	ret = -EINVAL;
	cJSON_ArrayForEach (item, root) {
		if (strcmp(item->string, key)) {
			error__set(-EINVAL, "%s: unknown field \"%.64s\"", label, item->string);
			goto out;
		}
		if (item != cJSON_GetObjectItemCaseSensitive(root, key)) {
			error__set(-EINVAL, "%s: duplicate field \"%s\"", label, key);
			goto out;
		}
	}
	item = cJSON_GetObjectItemCaseSensitive(root, key);
	if (!item) {
		error__set(-EINVAL, "%s: missing required field", key);
		goto out;
	}
	for (size_t i = 0; cJSON_IsString(item) && i < n; i++) {
		if (!strcmp(item->valuestring, choices[i])) {
			*index = (int)i;
			ret = 0;
			goto out;
		}
	}
	choice_error(label, key, choices, n);
out:
	cJSON_Delete(root);
	return ret;
}
