/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to src/api/config.c and src/api/config_devices.c: the tables that describe
 * Firecracker's JSON objects, and the one walker that parses, frees, copies and prints
 * any object a table describes.
 *
 * A table's offsets are relative to the struct it describes (struct vm_config for the top
 * level, struct drive_config for one drive, ...), so the same table serves the config file,
 * where the object sits inside struct vm_config, and an API body parsed on its own.
 */
#ifndef EMBER_API_CONFIG_INTERNAL_H
#define EMBER_API_CONFIG_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/vm_config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* The largest integer a JSON number (a double) holds exactly. */
#define JSON_INT_MAX ((1ULL << 53) - 1)
/* How much of a JSON path or of a user-supplied name an error message shows. */
#define PATH_SHOW_MAX 128
#define NAME_SHOW_MAX 64

enum field_type {
	FIELD_STRING,	   /* char *, strdup'ed */
	FIELD_BOOL,	   /* bool */
	FIELD_U32,	   /* uint32_t, from min to max */
	FIELD_U64,	   /* uint64_t, from min to max (at most JSON_INT_MAX) */
	FIELD_ENUM,	   /* an enum: field->parse(); printed as choices[value] */
	FIELD_CUSTOM,	   /* field->parse(); printed by field->print(), if any */
	FIELD_SECTION,	   /* a nested object described by field->section */
	FIELD_LIST,	   /* an array of objects described by field->section */
	FIELD_UNSUPPORTED, /* anything but null is refused; printed as null */
};

#define FIELD_REQUIRED 0x1u /* must be given, and not as null */
#define FIELD_NONEMPTY 0x2u /* FIELD_STRING: not "" */
#define FIELD_HAS 0x4u	    /* given (not null) sets the bool at has_offset; unset prints null */
#define REQNE (FIELD_REQUIRED | FIELD_NONEMPTY)

struct section;

struct field {
	const char *name;
	enum field_type type;
	unsigned int flags;
	size_t offset;	   /* of the value in the object the table describes */
	size_t has_offset; /* FIELD_HAS */
	uint64_t min;	   /* FIELD_U32, FIELD_U64 */
	/* FIELD_U32, FIELD_U64; FIELD_STRING: longest length (0: no limit); FIELD_LIST: most */
	uint64_t max;
	const char *const *choices; /* FIELD_ENUM, indexed by value */
	unsigned int nchoices;
	int (*parse)(void *dst, const char *path, const cJSON *item); /* FIELD_ENUM, _CUSTOM */
	/* FIELD_CUSTOM, and FIELD_SECTION to replace the default: adds name to obj, or not */
	int (*print)(cJSON *obj, const char *name, const void *src, const struct field *f);
	const struct section *section; /* FIELD_SECTION; FIELD_LIST: of one element */
	size_t count_offset;	       /* FIELD_LIST: the unsigned int that counts elements */
	/* FIELD_LIST: element i against elements 0..i-1, once it is parsed */
	int (*conflicts)(const void *array, unsigned int i, const char *path);
};

struct section {
	const char *label;  /* names the object in messages when it has no path: "drive" */
	const char *member; /* what its members are: "section" or "field" */
	const struct field *fields;
	size_t nfields;
	size_t size;				   /* of the struct the table describes */
	bool reset;				   /* zeroed before it is parsed */
	bool patch;				   /* nothing required; nothing given is an error */
	int (*check)(void *obj, const char *path); /* runs once every member is in */
};

/* Field initialisers: a field named n of the struct type t, member m. */
#define F_STRING(n, t, m, fl)                                                                      \
	{                                                                                          \
		.name = n, .type = FIELD_STRING, .flags = fl, .offset = offsetof(t, m)             \
	}
#define F_BOOL(n, t, m, fl)                                                                        \
	{                                                                                          \
		.name = n, .type = FIELD_BOOL, .flags = fl, .offset = offsetof(t, m)               \
	}
#define F_U32(n, t, m, fl, lo, hi)                                                                 \
	{                                                                                          \
		.name = n, .type = FIELD_U32, .flags = fl, .offset = offsetof(t, m), .min = lo,    \
		.max = hi                                                                          \
	}
#define F_U64(n, t, m, fl, lo, hi)                                                                 \
	{                                                                                          \
		.name = n, .type = FIELD_U64, .flags = fl, .offset = offsetof(t, m), .min = lo,    \
		.max = hi                                                                          \
	}
#define F_ENUM(n, t, m, names, fn)                                                                 \
	{                                                                                          \
		.name = n, .type = FIELD_ENUM, .offset = offsetof(t, m), .choices = names,         \
		.nchoices = ARRAY_SIZE(names), .parse = fn                                         \
	}
#define F_SECTION(n, t, m, fl, sec)                                                                \
	{                                                                                          \
		.name = n, .type = FIELD_SECTION, .flags = fl, .offset = offsetof(t, m),           \
		.section = sec                                                                     \
	}
#define F_HAS_SECTION(n, t, m, has, sec)                                                           \
	{                                                                                          \
		.name = n, .type = FIELD_SECTION, .flags = FIELD_HAS, .offset = offsetof(t, m),    \
		.has_offset = offsetof(t, has), .section = sec                                     \
	}
#define F_LIST(n, t, m, count, most, sec, fn)                                                      \
	{                                                                                          \
		.name = n, .type = FIELD_LIST, .offset = offsetof(t, m),                           \
		.count_offset = offsetof(t, count), .max = most, .section = sec, .conflicts = fn   \
	}
#define F_UNSUPPORTED(n)                                                                           \
	{                                                                                          \
		.name = n, .type = FIELD_UNSUPPORTED                                               \
	}

#define SECTION_OF(lbl, t, table)                                                                  \
	.label = lbl, .member = "field", .fields = table, .nfields = ARRAY_SIZE(table),            \
	.size = sizeof(t)

/* "path.name", or "name" when path is "" (an API body). */
static inline const char *join_path(char *buf, size_t len, const char *path, const char *name)
{
	snprintf(buf, len, "%s%s%s", path, path[0] ? "." : "", name);
	return buf;
}

/* Copies s for an error message: printable ASCII only, cut to the buffer. */
static inline const char *printable(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* What a JSON value is, for "must be X, got Y". */
static inline const char *json_type_name(const cJSON *item)
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
	return cJSON_IsObject(item) ? "an object" : "an unknown value";
}

/* The object at obj, described by sec, from json; path names it in messages ("" at top). */
int config__parse_object(void *obj, const struct section *sec, const cJSON *json, const char *path);
/* An API body (len bytes) into obj: the same checks as the config file, messages by label. */
int config__parse_body(void *obj, const struct section *sec, const char *json, size_t len);
/*
 * Parses a JSON document with the config file's strictness (nothing after the value, no
 * control characters, no \u0000 in strings, valid UTF-8, an object at the top). label
 * starts the error message. On success *out is the object, for the caller to cJSON_Delete.
 */
int config__parse_json(const char *label, const char *json, size_t len, cJSON **out);
/* Frees every string the object holds (lists: up to their count) and NULLs it. */
void config__free_object(void *obj, const struct section *sec);
/* Adds the object's members to o, in table order. */
int config__print_members(cJSON *o, const void *obj, const struct section *sec);

/* "<path>: must be <choices>, got ..." for a field that takes one of a few strings. */
int config__bad_choice(const char *path, const cJSON *item, const char *choices);

/* config.c: the top-level sections, for config__apply_body() */
extern const struct section config__boot_section;
extern const struct section config__machine_section;
extern const struct section config__machine_patch_section;
extern const struct section config__logger_section;
extern const struct section config__serial_section;

/* config_devices.c: the device lists of the config file, and the device tables. */
int config_devices__parse_list(void *obj, const char *path, const struct field *f,
			       const cJSON *item);
int config_devices__print_list(cJSON *o, const void *obj, const struct field *f);
int config_devices__drive_conflicts(const void *array, unsigned int i, const char *path);
int config_devices__net_conflicts(const void *array, unsigned int i, const char *path);
/* Firecracker keeps the root device first: it becomes /dev/vda. */
void config_devices__root_first(struct vm_config *cfg);
extern const struct section config_devices__drive_section;
extern const struct section config_devices__net_section;
extern const struct section config_devices__vsock_section;
extern const struct section config_devices__entropy_section;
extern const struct section config_devices__metrics_section;
extern const struct section config_balloon__section;
/*
 * The balloon's target fits the guest's memory: 0, or -EINVAL with a message that names
 * path, the balloon's field (amount_side) or machine-config's mem_size_mib.
 */
int config_balloon__fits(uint64_t mem_size_mib, uint32_t amount_mib, const char *path,
			 bool amount_side);

#endif
