// SPDX-License-Identifier: Apache-2.0
/*
 * Firecracker's JSON config schema <-> struct vm_config: the config file, the bodies of the
 * API's PUT and PATCH requests, and the JSON that GET requests return.
 *
 * Each object of the schema is a table of fields (config_internal.h). One generic loop walks
 * an object's members in document order, looks each key up in the table and marks it seen,
 * so unknown and duplicate keys cost nothing extra. An optional field given as null counts
 * as absent, as serde's Option<T> does in Firecracker. The first problem found is reported
 * through error__set() as "<path>: <problem>": "machine-config.vcpu_count" or
 * "drives[1].path_on_host" in the config file, "vcpu_count" in an API body. The same tables
 * drive config__free(), config__copy() and the JSON out, so what is printed parses back.
 *
 * cJSON is more lenient than a config parser may be, so the text is checked as well:
 * nothing but white space may follow the top-level value, control characters are refused
 * (cJSON skips them as white space and keeps them raw inside strings), and a string that
 * holds \u0000 is refused instead of being silently cut short.
 * The devices and their rate limiters are described in config_devices.c.
 */
#include "api/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/config_internal.h"
#include "api/utf8.h"
#include "vmm/layout.h"
#include "vmm/log.h"

#define BOOT_ARGS_MAX (LAYOUT_CMDLINE_MAX - 1) /* the NUL; Ember appends its own arguments */
#define DEFAULT_MEM_MIB 128

/* Enum fields are read and written as unsigned int, the type GCC and clang give them. */
_Static_assert(sizeof(enum huge_pages) == sizeof(unsigned int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(unsigned int), "enum size");

int config__bad_choice(const char *path, const cJSON *item, const char *choices)
{
	char name[NAME_SHOW_MAX];
	const char *s = cJSON_GetStringValue(item);

	if (!s)
		return error__set(-EINVAL, "%s: must be %s, got %s", path, choices,
				  json_type_name(item));
	return error__set(-EINVAL, "%s: must be %s, got \"%s\"", path, choices,
			  printable(name, sizeof(name), s));
}

static int get_string(const char *path, const cJSON *item, const struct field *f, char **dst)
{
	const char *s = cJSON_GetStringValue(item);
	size_t n;
	char *copy;

	if (!s)
		return error__set(-EINVAL, "%s: must be a string, got %s", path,
				  json_type_name(item));
	n = strlen(s);
	if (!n && (f->flags & FIELD_NONEMPTY))
		return error__set(-EINVAL, "%s: must not be empty", path);
	if (f->max && n > f->max)
		return error__set(-EINVAL, "%s: must be at most %" PRIu64 " bytes long, got %zu",
				  path, f->max, n);
	copy = strdup(s);
	if (!copy)
		return error__set(-ENOMEM, "%s: out of memory", path);
	free(*dst);
	*dst = copy;
	return 0;
}

/*
 * JSON numbers reach us as doubles: refuse fractions, negatives and anything out of range
 * before the cast (every max is at most JSON_INT_MAX, where doubles stop being exact).
 */
static int get_uint(const char *path, const cJSON *item, uint64_t min, uint64_t max, uint64_t *dst)
{
	double d = item->valuedouble;

	if (!cJSON_IsNumber(item))
		return error__set(-EINVAL,
				  "%s: must be an integer from %" PRIu64 " to %" PRIu64 ", got %s",
				  path, min, max, json_type_name(item));
	if (!(d >= (double)min && d <= (double)max) || d != (double)(uint64_t)d)
		return error__set(-EINVAL,
				  "%s: must be an integer from %" PRIu64 " to %" PRIu64
				  ", got %.15g",
				  path, min, max, d);
	*dst = (uint64_t)d;
	return 0;
}

static const char *const huge_pages_names[] = {
	[HUGE_PAGES_NONE] = "None",
	[HUGE_PAGES_2M] = "2M",
	[HUGE_PAGES_TRANSPARENT] = "Transparent",
};

static int parse_huge_pages(void *dst, const char *path, const cJSON *item)
{
	const char *s = cJSON_GetStringValue(item);

	for (unsigned int i = 0; s && i < sizeof(huge_pages_names) / sizeof(huge_pages_names[0]);
	     i++) {
		if (!strcmp(s, huge_pages_names[i])) {
			*(enum huge_pages *)dst = (enum huge_pages)i;
			return 0;
		}
	}
	return config__bad_choice(path, item, "\"None\", \"2M\" or \"Transparent\"");
}

static int parse_cpu_template(void *dst, const char *path, const cJSON *item)
{
	char name[NAME_SHOW_MAX];
	const char *s = cJSON_GetStringValue(item);

	(void)dst;
	if (!s)
		return error__set(-EINVAL, "%s: must be a string, got %s", path,
				  json_type_name(item));
	if (strcmp(s, "None"))
		return error__set(-EINVAL, "%s: \"%s\" is not supported yet (only \"None\" is)",
				  path, printable(name, sizeof(name), s));
	return 0;
}

static int parse_log_level(void *dst, const char *path, const cJSON *item)
{
	const char *s = cJSON_GetStringValue(item);

	if (s && !log__parse_level(s, dst))
		return 0;
	return config__bad_choice(
		path, item,
		"one of \"Error\", \"Warning\", \"Info\", \"Debug\", \"Trace\", \"Off\"");
}

/* Firecracker's rule: with SMT, vCPUs come in pairs, unless there is only one. */
static int check_machine(void *obj, const char *path)
{
	const struct machine_config *m = obj;
	char fpath[PATH_SHOW_MAX];

	if (m->smt && m->vcpu_count > 1 && m->vcpu_count % 2)
		return error__set(-EINVAL, "%s: needs vcpu_count 1 or an even number, got %u",
				  join_path(fpath, sizeof(fpath), path, "smt"), m->vcpu_count);
	return 0;
}

static int print_object(cJSON *o, const char *name, const void *src, const struct section *sec);

/* GET /vm/config shows "serial" only when it says something. */
static int print_serial(cJSON *o, const char *name, const void *src, const struct field *f)
{
	const struct serial_config *s = src;

	return s->serial_out_path ? print_object(o, name, src, f->section) : 0;
}

static const char *const log_level_names[] = {
	[LOG_LEVEL_OFF] = "Off",   [LOG_LEVEL_ERROR] = "Error", [LOG_LEVEL_WARN] = "Warning",
	[LOG_LEVEL_INFO] = "Info", [LOG_LEVEL_DEBUG] = "Debug", [LOG_LEVEL_TRACE] = "Trace",
};

#define BOOT struct boot_source_config
#define MACH struct machine_config
#define LOGC struct logger_config
#define CFG struct vm_config

static const struct field boot_fields[] = {
	F_STRING("kernel_image_path", BOOT, kernel_image_path, REQNE),
	F_STRING("initrd_path", BOOT, initrd_path, FIELD_NONEMPTY),
	{ .name = "boot_args",
	  .type = FIELD_STRING,
	  .offset = offsetof(BOOT, boot_args),
	  .max = BOOT_ARGS_MAX },
};

static const struct field machine_fields[] = {
	F_U32("vcpu_count", MACH, vcpu_count, FIELD_REQUIRED, 1, VM_MAX_VCPUS),
	F_U64("mem_size_mib", MACH, mem_size_mib, FIELD_REQUIRED, VM_MIN_MEM_MIB, VM_MAX_MEM_MIB),
	F_BOOL("smt", MACH, smt, 0),
	{ .name = "cpu_template", .type = FIELD_CUSTOM, .parse = parse_cpu_template },
	F_BOOL("track_dirty_pages", MACH, track_dirty_pages, 0),
	F_ENUM("huge_pages", MACH, huge_pages, huge_pages_names, parse_huge_pages),
	F_BOOL("ksm", MACH, ksm, 0), /* Ember's own: guest memory MADV_MERGEABLE */
};

static const struct field logger_fields[] = {
	F_STRING("log_path", LOGC, log_path, REQNE),
	F_ENUM("level", LOGC, level, log_level_names, parse_log_level),
	F_BOOL("show_level", LOGC, show_level, 0),
	F_BOOL("show_log_origin", LOGC, show_log_origin, 0),
	F_UNSUPPORTED("module"),
};

static const struct field serial_fields[] = {
	F_STRING("serial_out_path", struct serial_config, serial_out_path, FIELD_NONEMPTY),
	F_UNSUPPORTED("rate_limiter"),
};

const struct section config__boot_section = { SECTION_OF("boot-source", BOOT, boot_fields) };
const struct section config__machine_section = {
	SECTION_OF("machine-config", MACH, machine_fields),
	.check = check_machine,
};
/* PATCH /machine-config: the same fields, none required, checked as a whole afterwards. */
const struct section config__machine_patch_section = {
	SECTION_OF("machine-config", MACH, machine_fields),
	.patch = true,
	.check = check_machine,
};
const struct section config__logger_section = { SECTION_OF("logger", LOGC, logger_fields) };
const struct section config__serial_section = {
	SECTION_OF("serial", struct serial_config, serial_fields),
};

/* In the order of Firecracker's GET /vm/config, with "serial" (not in it) last. */
static const struct field top_fields[] = {
	F_HAS_SECTION("balloon", CFG, balloon, has_balloon, &config_balloon__section),
	F_LIST("drives", CFG, drives, nr_drives, VM_MAX_DRIVES, &config_devices__drive_section,
	       config_devices__drive_conflicts),
	F_SECTION("boot-source", CFG, boot, FIELD_REQUIRED, &config__boot_section),
	F_UNSUPPORTED("cpu-config"),
	F_HAS_SECTION("logger", CFG, logger, has_logger, &config__logger_section),
	F_SECTION("machine-config", CFG, machine, 0, &config__machine_section),
	F_HAS_SECTION("metrics", CFG, metrics, has_metrics, &config_devices__metrics_section),
	F_UNSUPPORTED("mmds-config"),
	F_LIST("network-interfaces", CFG, net, nr_net, VM_MAX_NET_IFACES,
	       &config_devices__net_section, config_devices__net_conflicts),
	F_HAS_SECTION("vsock", CFG, vsock, has_vsock, &config_devices__vsock_section),
	F_HAS_SECTION("entropy", CFG, entropy, has_entropy, &config_devices__entropy_section),
	{ .name = "serial",
	  .type = FIELD_SECTION,
	  .offset = offsetof(CFG, serial),
	  .section = &config__serial_section,
	  .print = print_serial },
};

/* What one section's fields cannot check alone: the balloon fits the memory. */
static int check_top(void *obj, const char *path)
{
	const struct vm_config *cfg = obj;

	(void)path;
	if (!cfg->has_balloon)
		return 0;
	return config_balloon__fits(cfg->machine.mem_size_mib, cfg->balloon.amount_mib,
				    "balloon.amount_mib", true);
}

static const struct section top_section = {
	.label = "config",
	.member = "section",
	.fields = top_fields,
	.nfields = ARRAY_SIZE(top_fields),
	.size = sizeof(CFG),
	.check = check_top,
};

/* ---- the walker: JSON -> object ---- */

static int parse_field(void *obj, const char *path, const struct field *f, const cJSON *item)
{
	void *dst = (char *)obj + f->offset;
	uint64_t v = 0;
	int ret;

	switch (f->type) {
	case FIELD_STRING:
		return get_string(path, item, f, dst);
	case FIELD_BOOL:
		if (!cJSON_IsBool(item))
			return error__set(-EINVAL, "%s: must be true or false, got %s", path,
					  json_type_name(item));
		*(bool *)dst = cJSON_IsTrue(item);
		return 0;
	case FIELD_U32:
	case FIELD_U64:
		ret = get_uint(path, item, f->min, f->max, &v);
		if (!ret && f->type == FIELD_U32)
			*(uint32_t *)dst = (uint32_t)v;
		else if (!ret)
			*(uint64_t *)dst = v;
		return ret;
	case FIELD_ENUM:
	case FIELD_CUSTOM:
		return f->parse(dst, path, item);
	case FIELD_SECTION:
		return config__parse_object(dst, f->section, item, path);
	case FIELD_LIST:
		return config_devices__parse_list(obj, path, f, item);
	case FIELD_UNSUPPORTED:
		break;
	}
	return error__set(-EINVAL, "%s: not supported yet", path);
}

/* Finds the member's field and marks it seen; unknown and repeated keys are errors. */
static int lookup_member(const struct section *sec, const char *label, const char *key,
			 uint32_t *seen, const struct field **out)
{
	char name[NAME_SHOW_MAX];

	for (size_t i = 0; i < sec->nfields; i++) {
		if (strcmp(key, sec->fields[i].name))
			continue;
		if (*seen & (1u << i))
			return error__set(-EINVAL, "%s: duplicate %s \"%s\"", label, sec->member,
					  key);
		*seen |= 1u << i;
		*out = &sec->fields[i];
		return 0;
	}
	return error__set(-EINVAL, "%s: unknown %s \"%s\"", label, sec->member,
			  printable(name, sizeof(name), key));
}

static bool is_required(const struct section *sec, const struct field *f)
{
	return (f->flags & FIELD_REQUIRED) && !sec->patch;
}

static int check_required(const struct section *sec, uint32_t seen, const char *path)
{
	char fpath[PATH_SHOW_MAX];

	for (size_t i = 0; i < sec->nfields; i++) {
		if (!is_required(sec, &sec->fields[i]) || (seen & (1u << i)))
			continue;
		return error__set(-EINVAL, "%s: required %s is missing",
				  join_path(fpath, sizeof(fpath), path, sec->fields[i].name),
				  sec->member);
	}
	return 0;
}

int config__parse_object(void *obj, const struct section *sec, const cJSON *json, const char *path)
{
	const char *label = path[0] ? path : sec->label;
	char fpath[PATH_SHOW_MAX];
	const struct field *f = NULL;
	const cJSON *item;
	uint32_t seen = 0;
	bool given = false;
	int ret;

	if (!cJSON_IsObject(json))
		return error__set(-EINVAL, "%s: must be an object, got %s", label,
				  json_type_name(json));
	if (sec->reset)
		memset(obj, 0, sec->size);
	cJSON_ArrayForEach (item, json) {
		ret = lookup_member(sec, label, item->string, &seen, &f);
		if (ret)
			return ret;
		if (cJSON_IsNull(item) && !is_required(sec, f))
			continue;
		given = true;
		ret = parse_field(obj, join_path(fpath, sizeof(fpath), path, f->name), f, item);
		if (ret)
			return ret;
		if (f->flags & FIELD_HAS)
			*(bool *)((char *)obj + f->has_offset) = true;
	}
	if (sec->patch && !given)
		return error__set(-EINVAL, "%s: empty PATCH request", label);
	ret = check_required(sec, seen, path);
	if (ret)
		return ret;
	return sec->check ? sec->check(obj, path) : 0;
}

/* ---- the walker: strings, for free and copy ---- */

/* Calls fn on every string the object holds, passing on what fn returns. */
static int walk_strings(void *obj, const struct section *sec, int (*fn)(char **s, int ret), int ret)
{
	for (size_t i = 0; i < sec->nfields; i++) {
		const struct field *f = &sec->fields[i];
		char *p = (char *)obj + f->offset;
		unsigned int n;

		if (f->type == FIELD_STRING) {
			ret = fn((char **)p, ret);
		} else if (f->type == FIELD_SECTION) {
			ret = walk_strings(p, f->section, fn, ret);
		} else if (f->type == FIELD_LIST) {
			n = *(unsigned int *)((char *)obj + f->count_offset);
			for (unsigned int j = 0; j < n && j < f->max; j++)
				ret = walk_strings(p + j * f->section->size, f->section, fn, ret);
		}
	}
	return ret;
}

static int free_string(char **s, int ret)
{
	free(*s);
	*s = NULL;
	return ret;
}

/* After the first failure, the strings left are not ours: forget them. */
static int dup_string(char **s, int ret)
{
	if (ret)
		*s = NULL;
	else if (*s && !(*s = strdup(*s)))
		ret = -ENOMEM;
	return ret;
}

void config__free_object(void *obj, const struct section *sec)
{
	walk_strings(obj, sec, free_string, 0);
}

/* ---- the walker: object -> JSON ---- */

static int print_object(cJSON *o, const char *name, const void *src, const struct section *sec)
{
	cJSON *child = cJSON_AddObjectToObject(o, name);

	return child ? config__print_members(child, src, sec) : -ENOMEM;
}

/*
 * A new JSON value for a field of a plain type, or null. Integers are written out as text:
 * cJSON prints a double with 15 digits when it is within a relative epsilon of the value,
 * which changes integers above 2^52.
 */
static cJSON *plain_value(const char *src, const struct field *f, bool has)
{
	unsigned int v;
	char num[24];

	switch (has ? f->type : FIELD_UNSUPPORTED) {
	case FIELD_STRING:
		src = *(char *const *)src;
		return src ? cJSON_CreateString(src) : cJSON_CreateNull();
	case FIELD_BOOL:
		return cJSON_CreateBool(*(const bool *)src);
	case FIELD_U32:
		snprintf(num, sizeof(num), "%" PRIu32, *(const uint32_t *)src);
		return cJSON_CreateRaw(num);
	case FIELD_U64:
		snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)src);
		return cJSON_CreateRaw(num);
	case FIELD_ENUM:
		v = *(const unsigned int *)src;
		return v < f->nchoices ? cJSON_CreateString(f->choices[v]) : cJSON_CreateNull();
	default:
		return cJSON_CreateNull();
	}
}

/* Adds the value of a field of obj to o; 0 or -ENOMEM. */
static int print_field(cJSON *o, const void *obj, const struct field *f)
{
	const char *src = (const char *)obj + f->offset;
	bool has = !(f->flags & FIELD_HAS) || *(const bool *)((const char *)obj + f->has_offset);
	cJSON *v;

	if (has && f->print)
		return f->print(o, f->name, src, f);
	if (f->type == FIELD_CUSTOM && has)
		return 0; /* not shown */
	if (f->type == FIELD_SECTION && has)
		return print_object(o, f->name, src, f->section);
	if (f->type == FIELD_LIST)
		return config_devices__print_list(o, obj, f);
	v = plain_value(src, f, has);
	if (!v || !cJSON_AddItemToObject(o, f->name, v)) {
		cJSON_Delete(v);
		return -ENOMEM;
	}
	return 0;
}

int config__print_members(cJSON *o, const void *obj, const struct section *sec)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < sec->nfields; i++)
		ret = print_field(o, obj, &sec->fields[i]);
	return ret;
}

static char *print_root(const void *obj, const struct section *sec)
{
	cJSON *o = cJSON_CreateObject();
	char *s = NULL;

	if (o && !config__print_members(o, obj, sec))
		s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

char *config__machine_to_json(const struct machine_config *m)
{
	return print_root(m, &config__machine_section);
}

char *config__balloon_to_json(const struct balloon_config *b)
{
	return print_root(b, &config_balloon__section);
}

char *config__to_json(const struct vm_config *cfg)
{
	return print_root(cfg, &top_section);
}

/* ---- checks on the JSON text that cJSON does not make ---- */

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int bad_json(const char *label, const char *json, size_t pos, const char *what)
{
	unsigned int line = 1, col = 1;

	for (size_t i = 0; i < pos; i++) {
		col = json[i] == '\n' ? 1 : col + 1;
		line += json[i] == '\n';
	}
	return error__set(-EINVAL, "%s: not valid JSON near byte %zu (line %u, column %u)%s", label,
			  pos, line, col, what);
}

/*
 * Walks text that cJSON has accepted. Returns the offset of the first control character
 * (len if none) and sets *nul_string to the index, counting keys and values in document
 * order, of the first string that holds \u0000 (-1 if none).
 */
static size_t scan_text(const char *s, size_t len, long *nul_string)
{
	bool in_string = false;
	long strings = -1;

	*nul_string = -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 && (in_string || !is_json_space((char)c)))
			return i;
		if (c == '"') {
			in_string = !in_string;
			strings += in_string;
		} else if (in_string && c == '\\') {
			if (i + 5 < len && !memcmp(s + i + 1, "u0000", 5) && *nul_string < 0)
				*nul_string = strings;
			i++;
		}
	}
	return len;
}

struct string_hunt {
	long left;	 /* strings still to skip */
	const char *key; /* set when the string found is a key */
	char path[PATH_SHOW_MAX];
};

static void append_path(struct string_hunt *h, size_t base, const char *key, long index)
{
	char name[NAME_SHOW_MAX];
	size_t room = sizeof(h->path) - base;

	if (key)
		snprintf(h->path + base, room, "%s%s", base ? "." : "",
			 printable(name, sizeof(name), key));
	else
		snprintf(h->path + base, room, "[%ld]", index);
}

/* Finds the string that scan_text() counted, and the path to it. */
static bool hunt_string(const cJSON *item, struct string_hunt *h)
{
	size_t base = strlen(h->path);
	bool is_object = cJSON_IsObject(item);
	long i = 0;

	if (cJSON_IsString(item))
		return h->left-- == 0;
	if (!is_object && !cJSON_IsArray(item))
		return false;
	for (const cJSON *c = item->child; c; c = c->next, i++) {
		if (is_object && h->left-- == 0) {
			h->key = c->string;
			return true;
		}
		append_path(h, base, is_object ? c->string : NULL, i);
		if (hunt_string(c, h))
			return true;
		h->path[base] = '\0';
	}
	return false;
}

static int nul_in_string(const char *label, const cJSON *root, long index)
{
	struct string_hunt h = { .left = index };
	char name[NAME_SHOW_MAX];

	if (!hunt_string(root, &h))
		return error__set(-EINVAL, "%s: a string contains a NUL byte (\\u0000)", label);
	if (h.key)
		return error__set(-EINVAL, "%s: name \"%s\" contains a NUL byte (\\u0000)",
				  h.path[0] ? h.path : label, printable(name, sizeof(name), h.key));
	return error__set(-EINVAL, "%s: must not contain a NUL byte (\\u0000)", h.path);
}

/* What cJSON lets through: data after the value, control characters, \u0000, a non-object. */
static int check_text(const char *label, const char *json, size_t len, size_t end,
		      const cJSON *root)
{
	size_t pos = end;
	long nul_string;

	while (pos < len && is_json_space(json[pos]))
		pos++;
	if (pos < len)
		return bad_json(label, json, pos, ": data after the top-level value");
	pos = scan_text(json, len, &nul_string);
	if (pos < len)
		return bad_json(label, json, pos, ": control character");
	pos = utf8__check(json, len);
	if (pos < len)
		return bad_json(label, json, pos, ": not valid UTF-8");
	if (!cJSON_IsObject(root))
		return error__set(-EINVAL, "%s: top level must be an object, got %s", label,
				  json_type_name(root));
	if (nul_string >= 0)
		return nul_in_string(label, root, nul_string);
	return 0;
}

/* On success *out is an object that passed check_text(); label names the document. */
int config__parse_json(const char *label, const char *json, size_t len, cJSON **out)
{
	const char *end = json;
	size_t pos = 0;
	cJSON *root;
	int ret;

	if (!json)
		return error__set(-EINVAL, "%s: empty input", label);
	if (len > CONFIG_FILE_MAX)
		return error__set(-EINVAL, "%s: larger than %d bytes", label, CONFIG_FILE_MAX);
	while (pos < len && is_json_space(json[pos]))
		pos++;
	if (pos == len)
		return error__set(-EINVAL, "%s: empty input", label);
	root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!root)
		return bad_json(label, json, (size_t)(end - json), "");
	ret = check_text(label, json, len, (size_t)(end - json), root);
	if (ret) {
		cJSON_Delete(root);
		return ret;
	}
	*out = root;
	return 0;
}

int config__parse_body(void *obj, const struct section *sec, const char *json, size_t len)
{
	cJSON *root = NULL;
	int ret;

	ret = config__parse_json(sec->label, json, len, &root);
	if (ret)
		return ret;
	ret = config__parse_object(obj, sec, root, "");
	cJSON_Delete(root);
	return ret;
}

/* ---- the config as a whole ---- */

void config__init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->machine.vcpu_count = 1;
	cfg->machine.mem_size_mib = DEFAULT_MEM_MIB;
	cfg->machine.huge_pages = HUGE_PAGES_NONE;
	cfg->logger.level = LOG_LEVEL_INFO;
}

void config__free(struct vm_config *cfg)
{
	config__free_object(cfg, &top_section);
	cfg->nr_drives = 0;
	cfg->nr_net = 0;
}

int config__copy(struct vm_config *dst, const struct vm_config *src)
{
	int ret;

	if (dst == src)
		return 0;
	memcpy(dst, src, sizeof(*dst));
	ret = walk_strings(dst, &top_section, dup_string, 0);
	if (ret) {
		config__free(dst);
		config__init(dst);
		return error__set(ret, "config: out of memory");
	}
	return 0;
}

/* On failure cfg is freed and back to the defaults of config__init(). */
int config__parse(struct vm_config *cfg, const char *json, size_t len)
{
	cJSON *root = NULL;
	int ret;

	ret = config__parse_json(top_section.label, json, len, &root);
	if (ret)
		return ret;
	ret = config__parse_object(cfg, &top_section, root, "");
	cJSON_Delete(root);
	if (!ret) {
		config_devices__root_first(cfg);
		return 0;
	}
	config__free(cfg);
	config__init(cfg);
	return ret;
}

/* ---- the config file ---- */

/* Reads at most CONFIG_FILE_MAX + 1 bytes, so that a larger file shows as too large. */
static int read_all(int fd, char *buf, size_t *len)
{
	ssize_t n;

	*len = 0;
	while (*len <= CONFIG_FILE_MAX) {
		n = read(fd, buf + *len, CONFIG_FILE_MAX + 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		*len += (size_t)n;
	}
	return 0;
}

static int check_file(int fd, const char *path)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st)) {
		ret = -errno;
		return error__set(ret, "config file %s: %s", path, strerror(-ret));
	}
	if (S_ISDIR(st.st_mode))
		return error__set(-EISDIR, "config file %s: is a directory", path);
	if (S_ISREG(st.st_mode) && st.st_size > CONFIG_FILE_MAX)
		return error__set(-EFBIG, "config file %s: larger than %d bytes", path,
				  CONFIG_FILE_MAX);
	return 0;
}

static int load_fd(struct vm_config *cfg, int fd, const char *path)
{
	char *buf;
	size_t len;
	int ret;

	ret = check_file(fd, path);
	if (ret)
		return ret;
	buf = malloc(CONFIG_FILE_MAX + 1);
	if (!buf)
		return error__set(-ENOMEM, "config file %s: out of memory", path);
	ret = read_all(fd, buf, &len);
	if (ret)
		error__set(ret, "config file %s: %s", path, strerror(-ret));
	else if (len > CONFIG_FILE_MAX)
		ret = error__set(-EFBIG, "config file %s: larger than %d bytes", path,
				 CONFIG_FILE_MAX);
	else if (!len)
		ret = error__set(-EINVAL, "config file %s: is empty", path);
	else
		ret = config__parse(cfg, buf, len);
	free(buf);
	return ret;
}

int config__load_file(struct vm_config *cfg, const char *path)
{
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		return error__set(ret, "config file %s: %s", path, strerror(-ret));
	}
	ret = load_fd(cfg, fd, path);
	close(fd);
	return ret;
}
