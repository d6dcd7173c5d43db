// SPDX-License-Identifier: Apache-2.0
/*
 * Firecracker's config-file JSON -> struct vm_config.
 *
 * Each object of the schema is a table of fields. One generic loop walks an object's
 * members in document order, looks each key up in the table and marks it seen, so unknown
 * and duplicate keys cost nothing extra. An optional field given as null counts as absent,
 * as serde's Option<T> does in Firecracker. The first problem found is reported through
 * error__set() as "<section>.<field>: <problem>".
 *
 * cJSON is more lenient than a config parser may be, so the text is checked as well:
 * nothing but white space may follow the top-level value, control characters are refused
 * (cJSON skips them as white space and keeps them raw inside strings), and a string that
 * holds \u0000 is refused instead of being silently cut short.
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

#include "vmm/log.h"

#define BOOT_ARGS_MAX	4095
#define DEFAULT_MEM_MIB 128
/* How much of a JSON path or of a user-supplied name an error message shows. */
#define PATH_SHOW_MAX 128
#define NAME_SHOW_MAX 64

enum field_type {
	FIELD_STRING,
	FIELD_BOOL,
	FIELD_U32,
	FIELD_U64,
	FIELD_CUSTOM,	   /* field->parse() */
	FIELD_SECTION,	   /* a nested object described by field->section */
	FIELD_DEVICE_LIST, /* an array of devices; only the empty array is supported yet */
	FIELD_UNSUPPORTED, /* anything but null is refused */
};

#define FIELD_REQUIRED 0x1u
#define FIELD_NONEMPTY 0x2u

struct section;

struct field {
	const char *name;
	enum field_type type;
	unsigned int flags;
	size_t offset; /* of the destination in struct vm_config */
	uint64_t min;  /* FIELD_U32, FIELD_U64 */
	uint64_t max;  /* FIELD_U32, FIELD_U64; FIELD_STRING: longest length, 0 for no limit */
	int (*parse)(struct vm_config *cfg, const char *path, const cJSON *item);
	const struct section *section;
	const char *devices; /* FIELD_DEVICE_LIST: what the list holds */
};

struct section {
	const char *name;   /* "" for the top level */
	const char *member; /* "section" or "field" */
	const struct field *fields;
	size_t nfields;
	int (*check)(struct vm_config *cfg); /* runs once every member is in */
};

#define CFG_OFFSET(member) offsetof(struct vm_config, member)
#define ARRAY_SIZE(a)	   (sizeof(a) / sizeof((a)[0]))

/* Copies s for an error message: printable ASCII only, cut to the buffer. */
static const char *printable(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static const char *type_name(const cJSON *item)
{
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNull(item))
		return "null";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	return "an unknown value";
}

/* "<path>: must be <choices>, got ..." for a field that takes one of a few strings. */
static int bad_choice(const char *path, const cJSON *item, const char *choices)
{
	char name[NAME_SHOW_MAX];
	const char *s = cJSON_GetStringValue(item);

	if (!s)
		return error__set(-EINVAL, "%s: must be %s, got %s", path, choices,
				  type_name(item));
	return error__set(-EINVAL, "%s: must be %s, got \"%s\"", path, choices,
			  printable(name, sizeof(name), s));
}

static int get_string(const char *path, const cJSON *item, const struct field *f, char **dst)
{
	const char *s = cJSON_GetStringValue(item);
	size_t n;
	char *copy;

	if (!s)
		return error__set(-EINVAL, "%s: must be a string, got %s", path, type_name(item));
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

static int get_bool(const char *path, const cJSON *item, bool *dst)
{
	if (!cJSON_IsBool(item))
		return error__set(-EINVAL, "%s: must be true or false, got %s", path,
				  type_name(item));
	*dst = cJSON_IsTrue(item);
	return 0;
}

/*
 * JSON numbers reach us as doubles: refuse fractions, negatives and anything out of range
 * before the cast (every max here is far below 2^53, where doubles stop being exact).
 */
static int get_uint(const char *path, const cJSON *item, uint64_t min, uint64_t max, uint64_t *dst)
{
	double d = item->valuedouble;

	if (!cJSON_IsNumber(item))
		return error__set(-EINVAL,
				  "%s: must be an integer from %" PRIu64 " to %" PRIu64 ", got %s",
				  path, min, max, type_name(item));
	if (!(d >= (double)min && d <= (double)max) || d != (double)(uint64_t)d)
		return error__set(-EINVAL,
				  "%s: must be an integer from %" PRIu64 " to %" PRIu64
				  ", got %.15g",
				  path, min, max, d);
	*dst = (uint64_t)d;
	return 0;
}

static int parse_huge_pages(struct vm_config *cfg, const char *path, const cJSON *item)
{
	const char *s = cJSON_GetStringValue(item);

	if (s && !strcmp(s, "None")) {
		cfg->machine.huge_pages = HUGE_PAGES_NONE;
		return 0;
	}
	if (s && (!strcmp(s, "2M") || !strcmp(s, "Transparent")))
		return error__set(-EINVAL, "%s: \"%s\" is not supported yet", path, s);
	return bad_choice(path, item, "\"None\", \"2M\" or \"Transparent\"");
}

static int parse_cpu_template(struct vm_config *cfg, const char *path, const cJSON *item)
{
	char name[NAME_SHOW_MAX];
	const char *s = cJSON_GetStringValue(item);

	(void)cfg;
	if (!s)
		return error__set(-EINVAL, "%s: must be a string, got %s", path, type_name(item));
	if (strcmp(s, "None"))
		return error__set(-EINVAL, "%s: \"%s\" is not supported yet (only \"None\" is)",
				  path, printable(name, sizeof(name), s));
	return 0;
}

static int parse_log_level(struct vm_config *cfg, const char *path, const cJSON *item)
{
	const char *s = cJSON_GetStringValue(item);

	if (s && !log__parse_level(s, &cfg->logger.level))
		return 0;
	return bad_choice(path, item,
			  "one of \"Error\", \"Warning\", \"Info\", \"Debug\", \"Trace\", \"Off\"");
}

/* Firecracker's rule: with SMT, vCPUs come in pairs, unless there is only one. */
static int check_machine(struct vm_config *cfg)
{
	uint32_t n = cfg->machine.vcpu_count;

	if (cfg->machine.smt && n > 1 && n % 2)
		return error__set(
			-EINVAL, "machine-config.smt: needs vcpu_count 1 or an even number, got %u",
			n);
	return 0;
}

static int check_logger(struct vm_config *cfg)
{
	cfg->has_logger = true;
	return 0;
}

static const struct field boot_fields[] = {
	{ .name = "kernel_image_path",
	  .type = FIELD_STRING,
	  .flags = FIELD_REQUIRED | FIELD_NONEMPTY,
	  .offset = CFG_OFFSET(boot.kernel_image_path) },
	{ .name = "initrd_path",
	  .type = FIELD_STRING,
	  .flags = FIELD_NONEMPTY,
	  .offset = CFG_OFFSET(boot.initrd_path) },
	{ .name = "boot_args",
	  .type = FIELD_STRING,
	  .offset = CFG_OFFSET(boot.boot_args),
	  .max = BOOT_ARGS_MAX },
};

static const struct field machine_fields[] = {
	{ .name = "vcpu_count",
	  .type = FIELD_U32,
	  .flags = FIELD_REQUIRED,
	  .offset = CFG_OFFSET(machine.vcpu_count),
	  .min = 1,
	  .max = VM_MAX_VCPUS },
	{ .name = "mem_size_mib",
	  .type = FIELD_U64,
	  .flags = FIELD_REQUIRED,
	  .offset = CFG_OFFSET(machine.mem_size_mib),
	  .min = VM_MIN_MEM_MIB,
	  .max = VM_MAX_MEM_MIB },
	{ .name = "smt", .type = FIELD_BOOL, .offset = CFG_OFFSET(machine.smt) },
	{ .name = "track_dirty_pages",
	  .type = FIELD_BOOL,
	  .offset = CFG_OFFSET(machine.track_dirty_pages) },
	{ .name = "huge_pages", .type = FIELD_CUSTOM, .parse = parse_huge_pages },
	{ .name = "cpu_template", .type = FIELD_CUSTOM, .parse = parse_cpu_template },
};

static const struct field logger_fields[] = {
	{ .name = "log_path",
	  .type = FIELD_STRING,
	  .flags = FIELD_REQUIRED | FIELD_NONEMPTY,
	  .offset = CFG_OFFSET(logger.log_path) },
	{ .name = "level", .type = FIELD_CUSTOM, .parse = parse_log_level },
	{ .name = "show_level", .type = FIELD_BOOL, .offset = CFG_OFFSET(logger.show_level) },
	{ .name = "show_log_origin",
	  .type = FIELD_BOOL,
	  .offset = CFG_OFFSET(logger.show_log_origin) },
	{ .name = "module", .type = FIELD_UNSUPPORTED },
};

static const struct field serial_fields[] = {
	{ .name = "serial_out_path",
	  .type = FIELD_STRING,
	  .flags = FIELD_NONEMPTY,
	  .offset = CFG_OFFSET(serial.serial_out_path) },
	{ .name = "rate_limiter", .type = FIELD_UNSUPPORTED },
};

#define SECTION(sname, table, check_fn)                                                            \
	{                                                                                          \
		.name = sname, .member = "field", .fields = table, .nfields = ARRAY_SIZE(table),   \
		.check = check_fn                                                                  \
	}

static const struct section boot_section = SECTION("boot-source", boot_fields, NULL);
static const struct section machine_section =
	SECTION("machine-config", machine_fields, check_machine);
static const struct section logger_section = SECTION("logger", logger_fields, check_logger);
static const struct section serial_section = SECTION("serial", serial_fields, NULL);

static const struct field top_fields[] = {
	{ .name = "boot-source",
	  .type = FIELD_SECTION,
	  .flags = FIELD_REQUIRED,
	  .section = &boot_section },
	{ .name = "machine-config", .type = FIELD_SECTION, .section = &machine_section },
	{ .name = "logger", .type = FIELD_SECTION, .section = &logger_section },
	{ .name = "serial", .type = FIELD_SECTION, .section = &serial_section },
	{ .name = "drives", .type = FIELD_DEVICE_LIST, .devices = "block devices" },
	{ .name = "network-interfaces",
	  .type = FIELD_DEVICE_LIST,
	  .devices = "network interfaces" },
	{ .name = "vsock", .type = FIELD_UNSUPPORTED },
	{ .name = "balloon", .type = FIELD_UNSUPPORTED },
	{ .name = "entropy", .type = FIELD_UNSUPPORTED },
	{ .name = "mmds-config", .type = FIELD_UNSUPPORTED },
	{ .name = "metrics", .type = FIELD_UNSUPPORTED },
	{ .name = "cpu-config", .type = FIELD_UNSUPPORTED },
};

static const struct section top_section = {
	.name = "",
	.member = "section",
	.fields = top_fields,
	.nfields = ARRAY_SIZE(top_fields),
};

static int parse_object(struct vm_config *cfg, const struct section *sec, const cJSON *obj);

static int get_device_list(const char *path, const cJSON *item, const char *devices)
{
	if (!cJSON_IsArray(item))
		return error__set(-EINVAL, "%s: must be an array, got %s", path, type_name(item));
	if (cJSON_GetArraySize(item))
		return error__set(-EINVAL, "%s: %s are not supported yet", path, devices);
	return 0;
}

static int parse_field(struct vm_config *cfg, const char *path, const struct field *f,
		       const cJSON *item)
{
	void *dst = (char *)cfg + f->offset;
	uint64_t v = 0;
	int ret;

	switch (f->type) {
	case FIELD_STRING:
		return get_string(path, item, f, dst);
	case FIELD_BOOL:
		return get_bool(path, item, dst);
	case FIELD_U32:
	case FIELD_U64:
		ret = get_uint(path, item, f->min, f->max, &v);
		if (!ret && f->type == FIELD_U32)
			*(uint32_t *)dst = (uint32_t)v;
		else if (!ret)
			*(uint64_t *)dst = v;
		return ret;
	case FIELD_CUSTOM:
		return f->parse(cfg, path, item);
	case FIELD_SECTION:
		return parse_object(cfg, f->section, item);
	case FIELD_DEVICE_LIST:
		return get_device_list(path, item, f->devices);
	case FIELD_UNSUPPORTED:
		break;
	}
	return error__set(-EINVAL, "%s: not supported yet", path);
}

static const char *section_label(const struct section *sec)
{
	return sec->name[0] ? sec->name : "config";
}

/* Finds the member's field and marks it seen; unknown and repeated keys are errors. */
static int lookup_member(const struct section *sec, const char *key, uint32_t *seen,
			 const struct field **out)
{
	char name[NAME_SHOW_MAX];

	for (size_t i = 0; i < sec->nfields; i++) {
		if (strcmp(key, sec->fields[i].name))
			continue;
		if (*seen & (1u << i))
			return error__set(-EINVAL, "%s: duplicate %s \"%s\"", section_label(sec),
					  sec->member, key);
		*seen |= 1u << i;
		*out = &sec->fields[i];
		return 0;
	}
	return error__set(-EINVAL, "%s: unknown %s \"%s\"", section_label(sec), sec->member,
			  printable(name, sizeof(name), key));
}

static int check_required(const struct section *sec, uint32_t seen)
{
	for (size_t i = 0; i < sec->nfields; i++) {
		if (!(sec->fields[i].flags & FIELD_REQUIRED) || (seen & (1u << i)))
			continue;
		if (!sec->name[0])
			return error__set(-EINVAL, "%s: required section is missing",
					  sec->fields[i].name);
		return error__set(-EINVAL, "%s.%s: required field is missing", sec->name,
				  sec->fields[i].name);
	}
	return 0;
}

static int parse_object(struct vm_config *cfg, const struct section *sec, const cJSON *obj)
{
	char path[PATH_SHOW_MAX];
	const struct field *f = NULL;
	const cJSON *item;
	uint32_t seen = 0;
	int ret;

	if (!cJSON_IsObject(obj))
		return error__set(-EINVAL, "%s: must be an object, got %s", section_label(sec),
				  type_name(obj));
	cJSON_ArrayForEach(item, obj) {
		ret = lookup_member(sec, item->string, &seen, &f);
		if (ret)
			return ret;
		if (cJSON_IsNull(item) && !(f->flags & FIELD_REQUIRED))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", sec->name, sec->name[0] ? "." : "", f->name);
		ret = parse_field(cfg, path, f, item);
		if (ret)
			return ret;
	}
	ret = check_required(sec, seen);
	if (ret)
		return ret;
	return sec->check ? sec->check(cfg) : 0;
}

/* ---- checks on the JSON text that cJSON does not make ---- */

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int bad_json(const char *json, size_t pos, const char *what)
{
	unsigned int line = 1, col = 1;

	for (size_t i = 0; i < pos; i++) {
		col = json[i] == '\n' ? 1 : col + 1;
		line += json[i] == '\n';
	}
	return error__set(-EINVAL, "config: not valid JSON near byte %zu (line %u, column %u)%s",
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

static int nul_in_string(const cJSON *root, long index)
{
	struct string_hunt h = { .left = index };
	char name[NAME_SHOW_MAX];

	if (!hunt_string(root, &h))
		return error__set(-EINVAL, "config: a string contains a NUL byte (\\u0000)");
	if (h.key)
		return error__set(-EINVAL, "%s: name \"%s\" contains a NUL byte (\\u0000)",
				  h.path[0] ? h.path : "config",
				  printable(name, sizeof(name), h.key));
	return error__set(-EINVAL, "%s: must not contain a NUL byte (\\u0000)", h.path);
}

/* What cJSON lets through: data after the value, control characters, \u0000, a non-object. */
static int check_text(const char *json, size_t len, size_t end, const cJSON *root)
{
	size_t pos = end;
	long nul_string;

	while (pos < len && is_json_space(json[pos]))
		pos++;
	if (pos < len)
		return bad_json(json, pos, ": data after the top-level value");
	pos = scan_text(json, len, &nul_string);
	if (pos < len)
		return bad_json(json, pos, ": control character");
	if (!cJSON_IsObject(root))
		return error__set(-EINVAL, "config: top level must be an object, got %s",
				  type_name(root));
	if (nul_string >= 0)
		return nul_in_string(root, nul_string);
	return 0;
}

/* On success *out is an object that passed check_text(). */
static int parse_json(const char *json, size_t len, cJSON **out)
{
	const char *end = json;
	size_t pos = 0;
	cJSON *root;
	int ret;

	if (!json)
		return error__set(-EINVAL, "config: empty input");
	if (len > CONFIG_FILE_MAX)
		return error__set(-EINVAL, "config: larger than %d bytes", CONFIG_FILE_MAX);
	while (pos < len && is_json_space(json[pos]))
		pos++;
	if (pos == len)
		return error__set(-EINVAL, "config: empty input");
	root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!root)
		return bad_json(json, (size_t)(end - json), "");
	ret = check_text(json, len, (size_t)(end - json), root);
	if (ret) {
		cJSON_Delete(root);
		return ret;
	}
	*out = root;
	return 0;
}

void config__init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->machine.vcpu_count = 1;
	cfg->machine.mem_size_mib = DEFAULT_MEM_MIB;
	cfg->machine.huge_pages = HUGE_PAGES_NONE;
	cfg->logger.level = LOG_LEVEL_INFO;
}

static void free_string(char **s)
{
	free(*s);
	*s = NULL;
}

void config__free(struct vm_config *cfg)
{
	free_string(&cfg->boot.kernel_image_path);
	free_string(&cfg->boot.initrd_path);
	free_string(&cfg->boot.boot_args);
	free_string(&cfg->logger.log_path);
	free_string(&cfg->serial.serial_out_path);
}

/* On failure cfg is freed and back to the defaults of config__init(). */
int config__parse(struct vm_config *cfg, const char *json, size_t len)
{
	cJSON *root = NULL;
	int ret;

	ret = parse_json(json, len, &root);
	if (ret)
		return ret;
	ret = parse_object(cfg, &top_section, root);
	cJSON_Delete(root);
	if (ret) {
		config__free(cfg);
		config__init(cfg);
	}
	return ret;
}

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
