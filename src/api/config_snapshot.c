// SPDX-License-Identifier: Apache-2.0
/*
 * The bodies of PUT /snapshot/create and PUT /snapshot/load, in Firecracker's schema
 * (docs/snapshot.md), into snapshot.h's parameters. Every field is checked; unknown and
 * duplicate fields are refused, as elsewhere in the API.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api/config.h"
#include "api/config_internal.h"
#include "vmm/log.h"

/* Fields of o must be among names, each once. */
static int only(const cJSON *o, const char *label, const char *const *names, size_t n)
{
	const cJSON *e;

	if (!cJSON_IsObject(o))
		return error__set(-EINVAL, "%s: must be an object, got %s", label,
				  json_type_name(o));
	cJSON_ArrayForEach (e, o) {
		size_t i;

		for (i = 0; i < n && strcmp(e->string, names[i]); i++)
			;
		if (i == n)
			return error__set(-EINVAL, "%s: unknown field \"%.64s\"", label, e->string);
		if (e != cJSON_GetObjectItemCaseSensitive(o, e->string))
			return error__set(-EINVAL, "%s: duplicate field \"%.64s\"", label, e->string);
	}
	return 0;
}

/* A non-empty string field into buf; absent is -ENOENT (with a message when required). */
static int string_field(const cJSON *o, const char *label, const char *key, char *buf,
			size_t size, bool required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v))
		return required ? error__set(-EINVAL, "%s.%s: missing required field", label, key)
				: -ENOENT;
	if (!cJSON_IsString(v))
		return error__set(-EINVAL, "%s.%s: must be a string, got %s", label, key,
				  json_type_name(v));
	if (!v->valuestring[0])
		return error__set(-EINVAL, "%s.%s: must not be empty", label, key);
	if (strlen(v->valuestring) >= size)
		return error__set(-EINVAL, "%s.%s: longer than %zu bytes", label, key, size - 1);
	snprintf(buf, size, "%s", v->valuestring);
	return 0;
}

static int bool_field(const cJSON *o, const char *label, const char *key, bool *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v))
		return error__set(-EINVAL, "%s.%s: must be true or false, got %s", label, key,
				  json_type_name(v));
	*out = cJSON_IsTrue(v);
	return 0;
}

static int parse_create(const cJSON *root, struct snapshot_create_params *p)
{
	static const char *const fields[] = { "snapshot_type", "snapshot_path", "mem_file_path",
					      "version" };
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "snapshot_type");
	int ret = only(root, "snapshot/create", fields, 4);

	if (ret)
		return ret;
	p->type = SNAPSHOT_TYPE_FULL;
	if (type && !cJSON_IsNull(type)) {
		const char *s = cJSON_GetStringValue(type);

		if (s && !strcmp(s, "Full"))
			p->type = SNAPSHOT_TYPE_FULL;
		else if (s && !strcmp(s, "Diff"))
			p->type = SNAPSHOT_TYPE_DIFF;
		else
			return error__set(-EINVAL, "snapshot/create.snapshot_type: must be \"Full\" or "
					  "\"Diff\"");
	}
	ret = string_field(root, "snapshot/create", "snapshot_path", p->snapshot_path,
			   sizeof(p->snapshot_path), true);
	if (!ret)
		ret = string_field(root, "snapshot/create", "mem_file_path", p->mem_file_path,
				   sizeof(p->mem_file_path), true);
	if (!ret && !strcmp(p->snapshot_path, p->mem_file_path))
		ret = error__set(-EINVAL, "snapshot/create: snapshot_path and mem_file_path must "
				 "be different files");
	return ret;
}

static int parse_backend(const cJSON *root, struct snapshot_load_params *p)
{
	static const char *const fields[] = { "backend_path", "backend_type" };
	const cJSON *mb = cJSON_GetObjectItemCaseSensitive(root, "mem_backend");
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(root, "mem_file_path");
	const char *type;
	int ret;

	if (mb && old && !cJSON_IsNull(mb) && !cJSON_IsNull(old))
		return error__set(-EINVAL, "snapshot/load: give mem_backend or mem_file_path, not "
				  "both");
	if (!mb || cJSON_IsNull(mb)) {
		p->backend = SNAPSHOT_BACKEND_FILE;
		ret = string_field(root, "snapshot/load", "mem_file_path", p->backend_path,
				   sizeof(p->backend_path), false);
		return ret == -ENOENT ? error__set(-EINVAL, "snapshot/load: mem_backend is "
						   "required") : ret;
	}
	ret = only(mb, "snapshot/load.mem_backend", fields, 2);
	if (!ret)
		ret = string_field(mb, "snapshot/load.mem_backend", "backend_path", p->backend_path,
				   sizeof(p->backend_path), true);
	if (ret)
		return ret;
	type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(mb, "backend_type"));
	if (type && !strcmp(type, "File"))
		p->backend = SNAPSHOT_BACKEND_FILE;
	else if (type && !strcmp(type, "Uffd"))
		p->backend = SNAPSHOT_BACKEND_UFFD;
	else
		return error__set(-EINVAL, "snapshot/load.mem_backend.backend_type: must be \"File\" "
				  "or \"Uffd\"");
	return 0;
}

static int parse_overrides(const cJSON *root, struct snapshot_load_params *p)
{
	static const char *const nfields[] = { "iface_id", "host_dev_name" };
	static const char *const vfields[] = { "uds_path" };
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "network_overrides");
	const cJSON *vs = cJSON_GetObjectItemCaseSensitive(root, "vsock_override"), *e;
	char label[64];
	int ret = 0;

	if (list && !cJSON_IsNull(list)) {
		if (!cJSON_IsArray(list))
			return error__set(-EINVAL, "snapshot/load.network_overrides: must be an "
					  "array, got %s", json_type_name(list));
		if (cJSON_GetArraySize(list) > VM_MAX_NET_IFACES)
			return error__set(-EINVAL, "snapshot/load.network_overrides: at most %d",
					  VM_MAX_NET_IFACES);
		cJSON_ArrayForEach (e, list) {
			struct snapshot_net_override *o = &p->net[p->nr_net_overrides];

			snprintf(label, sizeof(label), "snapshot/load.network_overrides[%u]",
				 p->nr_net_overrides);
			ret = only(e, label, nfields, 2);
			if (!ret)
				ret = string_field(e, label, "iface_id", o->iface_id,
						   sizeof(o->iface_id), true);
			if (!ret)
				ret = string_field(e, label, "host_dev_name", o->host_dev_name,
						   sizeof(o->host_dev_name), true);
			if (ret)
				return ret;
			for (unsigned int k = 0; k < p->nr_net_overrides; k++) {
				if (!strcmp(p->net[k].iface_id, o->iface_id))
					return error__set(-EINVAL, "%s: iface_id '%s' is overridden "
							  "twice", label, o->iface_id);
			}
			p->nr_net_overrides++;
		}
	}
	if (vs && !cJSON_IsNull(vs)) {
		ret = only(vs, "snapshot/load.vsock_override", vfields, 1);
		if (!ret)
			ret = string_field(vs, "snapshot/load.vsock_override", "uds_path",
					   p->vsock_uds_path, sizeof(p->vsock_uds_path), true);
		p->has_vsock_override = !ret;
	}
	return ret;
}

/*
 * Ember's own (docs/snapshot.md, "Working-set prefetch"): "prefetch": {"working_set_path"}
 * and "record_working_set": {"path", "duration_ms"}, for the File backend.
 */
static int parse_working_set(const cJSON *root, struct snapshot_load_params *p)
{
	static const char *const pfields[] = { "working_set_path" };
	static const char *const rfields[] = { "path", "duration_ms" };
	const cJSON *pf = cJSON_GetObjectItemCaseSensitive(root, "prefetch");
	const cJSON *rec = cJSON_GetObjectItemCaseSensitive(root, "record_working_set"), *ms;
	int ret = 0;

	if (pf && !cJSON_IsNull(pf)) {
		ret = only(pf, "snapshot/load.prefetch", pfields, 1);
		if (!ret)
			ret = string_field(pf, "snapshot/load.prefetch", "working_set_path",
					   p->prefetch_path, sizeof(p->prefetch_path), true);
		if (ret)
			return ret;
		p->has_prefetch = true;
	}
	if (rec && !cJSON_IsNull(rec)) {
		ret = only(rec, "snapshot/load.record_working_set", rfields, 2);
		if (!ret)
			ret = string_field(rec, "snapshot/load.record_working_set", "path",
					   p->record_path, sizeof(p->record_path), true);
		if (ret)
			return ret;
		p->record_ms = 1000;
		ms = cJSON_GetObjectItemCaseSensitive(rec, "duration_ms");
		if (ms && !cJSON_IsNull(ms)) {
			if (!cJSON_IsNumber(ms) || ms->valuedouble != (double)(int)ms->valuedouble ||
			    ms->valuedouble < 1 || ms->valuedouble > 600000)
				return error__set(-EINVAL, "snapshot/load.record_working_set.duration_ms:"
						  " must be a whole number of milliseconds, 1 to "
						  "600000");
			p->record_ms = (uint32_t)ms->valuedouble;
		}
		p->has_record = true;
	}
	if ((p->has_prefetch || p->has_record) && p->backend != SNAPSHOT_BACKEND_FILE)
		return error__set(-EINVAL, "snapshot/load: prefetch and record_working_set are for "
				  "the File backend; with Uffd the handler does both "
				  "(ember-uffd-handler --prefetch, --record)");
	return 0;
}

static int parse_load(const cJSON *root, struct snapshot_load_params *p)
{
	static const char *const fields[] = { "snapshot_path",	   "mem_backend",
					      "mem_file_path",	   "enable_diff_snapshots",
					      "track_dirty_pages", "resume_vm",
					      "network_overrides", "vsock_override",
					      "prefetch",	   "record_working_set" };
	bool diff = false;
	int ret = only(root, "snapshot/load", fields, sizeof(fields) / sizeof(fields[0]));

	if (!ret)
		ret = string_field(root, "snapshot/load", "snapshot_path", p->snapshot_path,
				   sizeof(p->snapshot_path), true);
	if (!ret)
		ret = parse_backend(root, p);
	if (!ret)
		ret = bool_field(root, "snapshot/load", "enable_diff_snapshots", &diff);
	if (!ret)
		ret = bool_field(root, "snapshot/load", "track_dirty_pages", &p->track_dirty_pages);
	if (!ret)
		ret = bool_field(root, "snapshot/load", "resume_vm", &p->resume_vm);
	p->track_dirty_pages = p->track_dirty_pages || diff; /* the old name */
	if (!ret)
		ret = parse_overrides(root, p);
	if (!ret)
		ret = parse_working_set(root, p);
	return ret;
}

int config__parse_snapshot_create(const char *json, size_t len, struct snapshot_create_params *p)
{
	cJSON *root = NULL;
	int ret = config__parse_json("snapshot/create", json, len, &root);

	memset(p, 0, sizeof(*p));
	if (!ret)
		ret = parse_create(root, p);
	cJSON_Delete(root);
	return ret;
}

int config__parse_snapshot_load(const char *json, size_t len, struct snapshot_load_params *p)
{
	cJSON *root = NULL;
	int ret = config__parse_json("snapshot/load", json, len, &root);

	memset(p, 0, sizeof(*p));
	if (!ret)
		ret = parse_load(root, p);
	cJSON_Delete(root);
	return ret;
}
