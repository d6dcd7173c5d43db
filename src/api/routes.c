// SPDX-License-Identifier: Apache-2.0
/*
 * Firecracker's API paths. Each request is validated here, on the API thread, against a
 * copy of the configuration; only a valid one becomes an action for the VMM thread, which
 * checks it against the instance's state (pre-boot only, run time, ...) and applies it.
 */
#include "api/routes.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/config.h"
#include "vmm/cli.h"
#include "vmm/log.h"

enum route_id {
	ROUTE_ROOT,
	ROUTE_VERSION,
	ROUTE_BOOT_SOURCE,
	ROUTE_MACHINE_CONFIG,
	ROUTE_DRIVES,
	ROUTE_NET,
	ROUTE_VSOCK,
	ROUTE_ENTROPY,
	ROUTE_ACTIONS,
	ROUTE_VM,
	ROUTE_VM_CONFIG,
	ROUTE_LOGGER,
	ROUTE_METRICS,
	ROUTE_SERIAL,
	ROUTE_SNAPSHOT_CREATE,
	ROUTE_SNAPSHOT_LOAD,
	ROUTE_BALLOON,
	ROUTE_BALLOON_STATS,
};

#define M_GET (1u << HTTP_METHOD_GET)
#define M_PUT (1u << HTTP_METHOD_PUT)
#define M_PATCH (1u << HTTP_METHOD_PATCH)

struct route {
	const char *path;
	bool has_id; /* "/path/{id}" */
	unsigned int methods;
	const char *allow;
	enum route_id id;
};

static const struct route routes[] = {
	{ "/", false, M_GET, "GET", ROUTE_ROOT },
	{ "/version", false, M_GET, "GET", ROUTE_VERSION },
	{ "/boot-source", false, M_PUT, "PUT", ROUTE_BOOT_SOURCE },
	{ "/machine-config", false, M_GET | M_PUT | M_PATCH, "GET, PUT, PATCH",
	  ROUTE_MACHINE_CONFIG },
	{ "/drives", true, M_PUT | M_PATCH, "PUT, PATCH", ROUTE_DRIVES },
	{ "/network-interfaces", true, M_PUT | M_PATCH, "PUT, PATCH", ROUTE_NET },
	{ "/vsock", false, M_PUT, "PUT", ROUTE_VSOCK },
	{ "/entropy", false, M_PUT, "PUT", ROUTE_ENTROPY },
	{ "/actions", false, M_PUT, "PUT", ROUTE_ACTIONS },
	{ "/vm", false, M_PATCH, "PATCH", ROUTE_VM },
	{ "/vm/config", false, M_GET, "GET", ROUTE_VM_CONFIG },
	{ "/logger", false, M_PUT, "PUT", ROUTE_LOGGER },
	{ "/metrics", false, M_GET | M_PUT, "GET, PUT", ROUTE_METRICS },
	{ "/serial", false, M_PUT, "PUT", ROUTE_SERIAL },
	{ "/snapshot/create", false, M_PUT, "PUT", ROUTE_SNAPSHOT_CREATE },
	{ "/snapshot/load", false, M_PUT, "PUT", ROUTE_SNAPSHOT_LOAD },
	{ "/balloon", false, M_GET | M_PUT | M_PATCH, "GET, PUT, PATCH", ROUTE_BALLOON },
	{ "/balloon/statistics", false, M_GET | M_PATCH, "GET, PATCH", ROUTE_BALLOON_STATS },
};

/* Firecracker paths Ember does not serve yet: a 400 that says so, not a 404. */
static const char *const not_yet[] = {
	"/mmds",
	"/mmds/config",
	"/cpu-config",
	"/hotplug/memory",
	"/balloon/hinting/start",
	"/balloon/hinting/status",
	"/balloon/hinting/stop",
};

int routes__init(struct api_routes *r, struct mailbox *mb, const struct vm_config *cfg,
		 const char *instance_id)
{
	memset(r, 0, sizeof(*r));
	r->mailbox = mb;
	r->instance_id = instance_id ? instance_id : "anonymous-instance";
	pthread_mutex_init(&r->lat_lock, NULL);
	if (config__copy(&r->cfg, cfg))
		return -ENOMEM;
	return 0;
}

void routes__destroy(struct api_routes *r)
{
	config__free(&r->cfg);
	pthread_mutex_destroy(&r->lat_lock);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void routes__latencies(void *opaque, uint64_t *p50, uint64_t *p99)
{
	struct api_routes *r = opaque;
	uint64_t sorted[API_LATENCY_WINDOW];
	size_t n;

	pthread_mutex_lock(&r->lat_lock);
	n = r->lat_n < API_LATENCY_WINDOW ? r->lat_n : API_LATENCY_WINDOW;
	memcpy(sorted, r->lat_us, n * sizeof(sorted[0]));
	pthread_mutex_unlock(&r->lat_lock);
	*p50 = *p99 = 0;
	if (!n)
		return;
	qsort(sorted, n, sizeof(sorted[0]), cmp_u64);
	*p50 = sorted[(n - 1) / 2];
	*p99 = sorted[(n - 1) * 99 / 100];
}

static void record_latency(struct api_routes *r, uint64_t us)
{
	pthread_mutex_lock(&r->lat_lock);
	r->lat_us[r->lat_n % API_LATENCY_WINDOW] = us;
	r->lat_n++;
	pthread_mutex_unlock(&r->lat_lock);
}

/* Sends an action and waits; on failure fills resp and returns -1. */
static int call_vmm(struct api_routes *r, struct vmm_action *a, struct vmm_reply *reply,
		    struct http_response *resp)
{
	int ret;

	memset(reply, 0, sizeof(*reply));
	ret = mailbox__call(r->mailbox, a, reply, API_VMM_TIMEOUT_MS);
	if (ret == -ETIMEDOUT) {
		r->server_m.sync_vmm_send_timeout_count++;
		http__set_fault(resp, 504, "the VMM did not answer within %d ms",
				API_VMM_TIMEOUT_MS);
		return -1;
	}
	if (ret) {
		r->server_m.sync_response_fails++;
		http__set_fault(resp, 503, "the VMM is shutting down");
		return -1;
	}
	if (reply->status >= 400) {
		http__set_fault(resp, reply->status, "%s", reply->msg);
		return -1;
	}
	resp->status = reply->status;
	return 0;
}

static void set_json(struct http_response *resp, int status, cJSON *obj)
{
	char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;

	cJSON_Delete(obj);
	if (!s) {
		http__set_fault(resp, 500, "out of memory");
		return;
	}
	resp->status = status;
	resp->body = s;
	resp->body_len = 0;
}

static void set_json_text(struct http_response *resp, char *text)
{
	if (!text) {
		http__set_fault(resp, 500, "out of memory");
		return;
	}
	resp->status = 200;
	resp->body = text;
	resp->body_len = 0;
}

static int get_info(struct api_routes *r, struct http_response *resp)
{
	struct vmm_action a = { .type = VMM_ACTION_GET_INFO };
	struct vmm_reply reply;
	cJSON *o;

	if (call_vmm(r, &a, &reply, resp))
		return -1;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", r->instance_id);
	cJSON_AddStringToObject(o, "state", instance_state__name(reply.state));
	cJSON_AddStringToObject(o, "vmm_version", EMBER_VERSION);
	cJSON_AddStringToObject(o, "app_name", API_APP_NAME);
	set_json(resp, 200, o);
	return 0;
}

static int get_version(struct http_response *resp)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "firecracker_version", API_FIRECRACKER_VERSION);
	cJSON_AddStringToObject(o, "ember_version", EMBER_VERSION);
	set_json(resp, 200, o);
	return 0;
}

static int get_metrics_text(struct api_routes *r, struct http_response *resp)
{
	struct vmm_action a = { .type = VMM_ACTION_GET_METRICS };
	struct vmm_reply reply;

	if (call_vmm(r, &a, &reply, resp))
		return -1;
	resp->status = 200;
	resp->body = reply.text;
	resp->body_len = 0;
	resp->content_type = "text/plain; version=0.0.4";
	return 0;
}

/*
 * Applies a request to a copy of the configuration, sends the copy to the VMM thread
 * and, once the VMM has taken it, keeps the copy as the new configuration.
 */
static int change_config(struct api_routes *r, const struct http_request *req, enum route_id route,
			 const char *id, struct http_response *resp);

static const char *body_error(void)
{
	const char *msg = error__get();

	return msg[0] ? msg : "invalid request body";
}

static int parse_into(struct vm_config *cfg, const struct http_request *req, enum route_id route,
		      const char *id, enum vmm_resource *res, unsigned int *changed)
{
	bool patch = req->method == HTTP_METHOD_PATCH;

	error__clear();
	switch (route) {
	case ROUTE_BOOT_SOURCE:
		*res = VMM_RES_BOOT_SOURCE;
		return config__apply_body(cfg, CONFIG_BODY_BOOT_SOURCE, req->body, req->body_len);
	case ROUTE_MACHINE_CONFIG:
		*res = VMM_RES_MACHINE_CONFIG;
		return config__apply_body(
			cfg, patch ? CONFIG_BODY_MACHINE_CONFIG_PATCH : CONFIG_BODY_MACHINE_CONFIG,
			req->body, req->body_len);
	case ROUTE_DRIVES:
		*res = VMM_RES_DRIVE;
		return patch ? config__patch_drive(cfg, id, req->body, req->body_len, changed)
			     : config__put_drive(cfg, id, req->body, req->body_len);
	case ROUTE_NET:
		*res = VMM_RES_NET;
		return patch ? config__patch_net(cfg, id, req->body, req->body_len, changed)
			     : config__put_net(cfg, id, req->body, req->body_len);
	case ROUTE_VSOCK:
		*res = VMM_RES_VSOCK;
		return config__apply_body(cfg, CONFIG_BODY_VSOCK, req->body, req->body_len);
	case ROUTE_ENTROPY:
		*res = VMM_RES_ENTROPY; /* a device built at InstanceStart, as vsock is */
		return config__apply_body(cfg, CONFIG_BODY_ENTROPY, req->body, req->body_len);
	case ROUTE_BALLOON:
		*res = VMM_RES_BALLOON;
		return patch ? config__patch_balloon(cfg, req->body, req->body_len, changed)
			     : config__apply_body(cfg, CONFIG_BODY_BALLOON, req->body,
						  req->body_len);
	case ROUTE_BALLOON_STATS:
		*res = VMM_RES_BALLOON_STATS;
		return config__patch_balloon_stats(cfg, req->body, req->body_len, changed);
	case ROUTE_LOGGER:
		*res = VMM_RES_LOGGER;
		return config__apply_body(cfg, CONFIG_BODY_LOGGER, req->body, req->body_len);
	case ROUTE_METRICS:
		*res = VMM_RES_METRICS;
		return config__apply_body(cfg, CONFIG_BODY_METRICS, req->body, req->body_len);
	default:
		*res = VMM_RES_SERIAL;
		return config__apply_body(cfg, CONFIG_BODY_SERIAL, req->body, req->body_len);
	}
}

static int change_config(struct api_routes *r, const struct http_request *req, enum route_id route,
			 const char *id, struct http_response *resp)
{
	struct vmm_action a = { .type = VMM_ACTION_SET_CONFIG };
	struct vm_config next;
	struct vmm_reply reply;
	int ret;

	if (!req->body_len)
		return http__set_fault(resp, 400, "the request body is empty: send a JSON object"), -1;
	if (config__copy(&next, &r->cfg))
		return http__set_fault(resp, 500, "out of memory"), -1;
	if (parse_into(&next, req, route, id, &a.resource, &a.changed)) {
		http__set_fault(resp, 400, "%s", body_error());
		config__free(&next);
		return -1;
	}
	if (req->method == HTTP_METHOD_PATCH && route != ROUTE_MACHINE_CONFIG) {
		a.type = VMM_ACTION_PATCH_DEVICE;
		snprintf(a.device_id, sizeof(a.device_id), "%s", id);
	}
	ret = config__copy(&a.cfg, &next);
	if (!ret)
		ret = call_vmm(r, &a, &reply, resp);
	else
		http__set_fault(resp, 500, "out of memory");
	config__free(&a.cfg);
	if (ret) {
		config__free(&next);
		return -1;
	}
	config__free(&r->cfg);
	r->cfg = next;
	resp->status = 204;
	return 0;
}

/* {"<key>": "<one of choices>"} and nothing else; the index of the choice, or -1. */
static int one_choice(const struct http_request *req, const char *label, const char *key,
		      const char *const *choices, size_t n, struct http_response *resp)
{
	int i = -1;

	error__clear();
	if (!req->body_len) {
		http__set_fault(resp, 400, "the request body is empty: send a JSON object");
		return -1;
	}
	if (config__parse_choice(label, req->body, req->body_len, key, choices, n, &i)) {
		http__set_fault(resp, 400, "%s", body_error());
		return -1;
	}
	return i;
}

static int put_action(struct api_routes *r, const struct http_request *req,
		      struct http_response *resp)
{
	static const char *const names[] = { "InstanceStart", "SendCtrlAltDel", "FlushMetrics" };
	static const enum vmm_action_type types[] = { VMM_ACTION_INSTANCE_START,
						      VMM_ACTION_CTRL_ALT_DEL,
						      VMM_ACTION_FLUSH_METRICS };
	struct vmm_action a = { 0 };
	struct vmm_reply reply;
	int i = one_choice(req, "actions", "action_type", names, 3, resp);

	if (i < 0)
		return -1;
	a.type = types[i];
	if (call_vmm(r, &a, &reply, resp))
		return -1;
	resp->status = 204;
	return 0;
}

static int patch_vm(struct api_routes *r, const struct http_request *req,
		    struct http_response *resp)
{
	static const char *const states[] = { "Paused", "Resumed" };
	struct vmm_action a = { 0 };
	struct vmm_reply reply;
	int i = one_choice(req, "vm", "state", states, 2, resp);

	if (i < 0)
		return -1;
	uint64_t t0 = now_us();

	a.type = i == 0 ? VMM_ACTION_PAUSE : VMM_ACTION_RESUME;
	if (call_vmm(r, &a, &reply, resp))
		return -1;
	__atomic_store_n(i == 0 ? &r->pause_vm_us : &r->resume_vm_us, now_us() - t0,
			 __ATOMIC_RELAXED);
	resp->status = 204;
	return 0;
}

/* GET /balloon: the configured balloon, as the API thread knows it (the target included). */
static int get_balloon(struct api_routes *r, struct http_response *resp)
{
	if (!r->cfg.has_balloon)
		return http__set_fault(resp, 400, "No balloon device found."), -1;
	set_json_text(resp, config__balloon_to_json(&r->cfg.balloon));
	return resp->status == 200 ? 0 : -1;
}

static void add_u64(cJSON *o, const char *name, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	cJSON_AddRawToObject(o, name, num);
}

/* Firecracker's BalloonStats: the pages and MiB, then what the guest has reported. */
static cJSON *balloon_stats_json(const struct balloon_stats *s)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	add_u64(o, "target_pages", s->target_pages);
	add_u64(o, "actual_pages", s->actual_pages);
	add_u64(o, "target_mib", s->target_pages / 256);
	add_u64(o, "actual_mib", s->actual_pages / 256);
	for (unsigned int i = 0; i < BALLOON_STATS_NR; i++) {
		if (s->present & (1u << i))
			add_u64(o, balloon_stats__names[i], s->value[i]);
	}
	return o;
}

static int get_balloon_stats(struct api_routes *r, struct http_response *resp)
{
	struct vmm_action a = { .type = VMM_ACTION_GET_BALLOON_STATS };
	struct vmm_reply reply;

	if (call_vmm(r, &a, &reply, resp))
		return -1;
	set_json(resp, 200, balloon_stats_json(&reply.balloon_stats));
	return resp->status == 200 ? 0 : -1;
}

/* PUT /snapshot/create and /snapshot/load: the body checked here, the rest on the VMM. */
static int put_snapshot(struct api_routes *r, const struct http_request *req, bool load,
			struct http_response *resp)
{
	struct vmm_action *a = calloc(1, sizeof(*a));
	struct vmm_reply reply;
	int ret;

	if (!a)
		return http__set_fault(resp, 500, "out of memory"), -1;
	error__clear();
	if (!req->body_len)
		ret = error__set(-EINVAL, "the request body is empty: send a JSON object");
	else if (load)
		ret = config__parse_snapshot_load(req->body, req->body_len, &a->load);
	else
		ret = config__parse_snapshot_create(req->body, req->body_len, &a->create);
	if (ret) {
		http__set_fault(resp, 400, "%s", body_error());
		free(a);
		return -1;
	}
	a->type = load ? VMM_ACTION_SNAPSHOT_LOAD : VMM_ACTION_SNAPSHOT_CREATE;
	ret = call_vmm(r, a, &reply, resp);
	free(a);
	if (ret)
		return -1;
	if (load) { /* the restored VM's configuration is the one GET /vm/config shows now */
		config__free(&r->cfg);
		r->cfg = reply.cfg;
	}
	resp->status = 204;
	return 0;
}

static int dispatch(struct api_routes *r, const struct http_request *req, enum route_id route,
		    const char *id, struct http_response *resp)
{
	bool get = req->method == HTTP_METHOD_GET;

	switch (route) {
	case ROUTE_ROOT:
		return get_info(r, resp);
	case ROUTE_VERSION:
		return get_version(resp);
	case ROUTE_ACTIONS:
		return put_action(r, req, resp);
	case ROUTE_VM:
		return patch_vm(r, req, resp);
	case ROUTE_SNAPSHOT_CREATE:
	case ROUTE_SNAPSHOT_LOAD:
		return put_snapshot(r, req, route == ROUTE_SNAPSHOT_LOAD, resp);
	case ROUTE_VM_CONFIG:
		set_json_text(resp, config__to_json(&r->cfg));
		return resp->status == 200 ? 0 : -1;
	case ROUTE_MACHINE_CONFIG:
		if (!get)
			break;
		set_json_text(resp, config__machine_to_json(&r->cfg.machine));
		return resp->status == 200 ? 0 : -1;
	case ROUTE_METRICS:
		if (get)
			return get_metrics_text(r, resp);
		break;
	case ROUTE_BALLOON:
		if (get)
			return get_balloon(r, resp);
		break;
	case ROUTE_BALLOON_STATS:
		if (get)
			return get_balloon_stats(r, resp);
		break;
	default:
		break;
	}
	return change_config(r, req, route, id, resp);
}

static void put_counters(struct api_routes *r, int route, uint64_t **count, uint64_t **fails)
{
	struct put_api_metrics *p = &r->put_m;

	switch (route) {
	case ROUTE_ACTIONS:
		*count = &p->actions_count, *fails = &p->actions_fails;
		break;
	case ROUTE_BOOT_SOURCE:
		*count = &p->boot_source_count, *fails = &p->boot_source_fails;
		break;
	case ROUTE_DRIVES:
		*count = &p->drive_count, *fails = &p->drive_fails;
		break;
	case ROUTE_LOGGER:
		*count = &p->logger_count, *fails = &p->logger_fails;
		break;
	case ROUTE_MACHINE_CONFIG:
		*count = &p->machine_cfg_count, *fails = &p->machine_cfg_fails;
		break;
	case ROUTE_METRICS:
		*count = &p->metrics_count, *fails = &p->metrics_fails;
		break;
	case ROUTE_NET:
		*count = &p->network_count, *fails = &p->network_fails;
		break;
	case ROUTE_VSOCK:
		*count = &p->vsock_count, *fails = &p->vsock_fails;
		break;
	case ROUTE_SERIAL:
		*count = &p->serial_count, *fails = &p->serial_fails;
		break;
	default:
		break;
	}
}

/* Firecracker's per-endpoint counters: <endpoint>_count, and <endpoint>_fails for PUT/PATCH. */
static void count_request(struct api_routes *r, int route, enum http_method m, bool ok)
{
	uint64_t *count = NULL, *fails = NULL;

	if (m == HTTP_METHOD_GET) {
		switch (route) {
		case ROUTE_ROOT:
			count = &r->get_m.instance_info_count;
			break;
		case ROUTE_VERSION:
			count = &r->get_m.vmm_version_count;
			break;
		case ROUTE_MACHINE_CONFIG:
			count = &r->get_m.machine_cfg_count;
			break;
		case ROUTE_VM_CONFIG:
			count = &r->get_m.vm_config_count;
			break;
		case ROUTE_METRICS:
			count = &r->get_m.metrics_count;
			break;
		default:
			break;
		}
		fails = &r->get_m.fails;
	} else if (m == HTTP_METHOD_PATCH) {
		switch (route) {
		case ROUTE_DRIVES:
			count = &r->patch_m.drive_count, fails = &r->patch_m.drive_fails;
			break;
		case ROUTE_NET:
			count = &r->patch_m.network_count, fails = &r->patch_m.network_fails;
			break;
		case ROUTE_MACHINE_CONFIG:
			count = &r->patch_m.machine_cfg_count,
			fails = &r->patch_m.machine_cfg_fails;
			break;
		case ROUTE_VM:
			count = &r->patch_m.vm_count, fails = &r->patch_m.vm_fails;
			break;
		default:
			break;
		}
	} else if (m == HTTP_METHOD_PUT) {
		put_counters(r, route, &count, &fails);
	}
	if (count)
		__atomic_add_fetch(count, 1, __ATOMIC_RELAXED);
	if (!ok && fails)
		__atomic_add_fetch(fails, 1, __ATOMIC_RELAXED);
}

/* The route for a path, with its {id} copied out; NULL for none. */
static const struct route *match(const char *path, char *id, size_t id_size)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		size_t n = strlen(routes[i].path);

		if (strncmp(path, routes[i].path, n))
			continue;
		if (!path[n] && !routes[i].has_id)
			return &routes[i];
		if (path[n] == '/' && routes[i].has_id && path[n + 1] &&
		    !strchr(path + n + 1, '/')) {
			snprintf(id, id_size, "%s", path + n + 1);
			return &routes[i];
		}
	}
	return NULL;
}

static bool known_but_not_yet(const char *path)
{
	for (size_t i = 0; i < sizeof(not_yet) / sizeof(not_yet[0]); i++) {
		if (!strcmp(path, not_yet[i]))
			return true;
	}
	return false;
}

static int route_request(struct api_routes *r, const struct http_request *req,
			 struct http_response *resp, const struct route **out)
{
	char id[HTTP_TARGET_MAX + 1] = "";
	const struct route *rt = match(req->path, id, sizeof(id));

	*out = rt;
	if (!rt && known_but_not_yet(req->path))
		return http__set_fault(resp, 400, "%s is not supported yet", req->path), -1;
	if (!rt)
		return http__set_fault(resp, 404, "unknown path %.128s", req->path), -1;
	if (req->method == HTTP_METHOD_OTHER || !(rt->methods & (1u << req->method))) {
		resp->allow = rt->allow;
		return http__set_fault(resp, 405, "%s is not allowed on %s (allowed: %s)",
				       req->method_name, rt->path, rt->allow),
		       -1;
	}
	if (rt->has_id) {
		error__clear();
		if (config__check_id(rt->id == ROUTE_DRIVES ? "drive_id" : "iface_id", id))
			return http__set_fault(resp, 400, "%s", body_error()), -1;
	}
	return dispatch(r, req, rt->id, id, resp);
}

void routes__handle(void *opaque, const struct http_request *req, struct http_response *resp)
{
	struct api_routes *r = opaque;
	const struct route *rt = NULL;
	uint64_t t0 = now_us();
	int ret = route_request(r, req, resp, &rt);

	count_request(r, rt ? (int)rt->id : -1, req->method, ret == 0);
	record_latency(r, now_us() - t0);
	if (ret)
		log_debug("API %s %s: %d", req->method_name, req->path, resp->status);
}
