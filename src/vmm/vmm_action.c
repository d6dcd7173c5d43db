// SPDX-License-Identifier: Apache-2.0
/*
 * The actions the API thread sends the VMM thread: state checks as in Firecracker (pre-boot
 * configuration, run-time PATCH and actions), then the action itself.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/config.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "vmm/log.h"
#include "vmm/vmm.h"

#define MSG_AFTER_START "The requested operation is not supported after starting the microVM."
#define MSG_BEFORE_START "The requested operation is not supported before starting the microVM."

static void reply_error(struct vmm_reply *r, int status, const char *fmt, ...) LOG_PRINTF(3, 4);

static void reply_error(struct vmm_reply *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

static int apply_logger(const struct logger_config *l)
{
	int ret = log__set_path(l->log_path);

	if (ret)
		return error__set(ret, "log_path %s: %s", l->log_path, strerror(-ret));
	log__set_level(l->level);
	log__set_options(l->show_level, l->show_log_origin);
	return 0;
}

/* Side effects of a configuration change that take effect at once. */
static int apply_now(struct vmm *v, const struct vmm_action *a)
{
	switch (a->resource) {
	case VMM_RES_LOGGER:
		return apply_logger(&a->cfg.logger);
	case VMM_RES_METRICS:
		return vmm__open_metrics(v, a->cfg.metrics.metrics_path);
	default:
		return 0;
	}
}

/* The action's config, already applied, becomes the VM's. */
static void take_config(struct vmm *v, struct vmm_action *a, struct vmm_reply *r)
{
	config__free(&v->cfg);
	v->cfg = a->cfg;
	memset(&a->cfg, 0, sizeof(a->cfg));
	r->status = 204;
}

static void set_config(struct vmm *v, struct vmm_action *a, struct vmm_reply *r)
{
	if (v->state != INSTANCE_NOT_STARTED) {
		reply_error(r, 400, MSG_AFTER_START);
		return;
	}
	error__clear();
	if (apply_now(v, a)) {
		reply_error(r, 400, "%s", error__get());
		return;
	}
	take_config(v, a, r);
}

static const struct drive_config *find_drive_config(const struct vm_config *cfg, const char *id)
{
	for (unsigned int i = 0; i < cfg->nr_drives; i++) {
		if (!strcmp(cfg->drives[i].drive_id, id))
			return &cfg->drives[i];
	}
	return NULL;
}

static void patch_drive(struct vmm *v, struct vmm_action *a, struct vmm_reply *r)
{
	const struct drive_config *d = find_drive_config(&a->cfg, a->device_id);
	struct virtio_blk *b = vm__find_drive(&v->vm, a->device_id);

	if (!d || !b) {
		reply_error(r, 400, "drive %s: no such drive", a->device_id);
		return;
	}
	error__clear();
	if (virtio_blk__update(b, d, a->changed)) {
		reply_error(r, 400, "%s", error__get());
		return;
	}
	take_config(v, a, r);
}

static const struct net_config *find_net_config(const struct vm_config *cfg, const char *id)
{
	for (unsigned int i = 0; i < cfg->nr_net; i++) {
		if (!strcmp(cfg->net[i].iface_id, id))
			return &cfg->net[i];
	}
	return NULL;
}

static void patch_net(struct vmm *v, struct vmm_action *a, struct vmm_reply *r)
{
	const struct net_config *n = find_net_config(&a->cfg, a->device_id);
	struct virtio_net *dev = vm__find_net(&v->vm, a->device_id);

	if (!n || !dev) {
		reply_error(r, 400, "network interface %s: no such interface", a->device_id);
		return;
	}
	error__clear();
	if (virtio_net__update(dev, n, a->changed)) {
		reply_error(r, 400, "%s", error__get());
		return;
	}
	take_config(v, a, r);
}

/* Firecracker's message when no balloon was configured. */
#define MSG_NO_BALLOON "No balloon device found."

/* PATCH /balloon (the target) and /balloon/statistics (the interval), after the start. */
static void patch_balloon(struct vmm *v, struct vmm_action *a, struct vmm_reply *r)
{
	struct virtio_balloon *b = v->vm.balloon;

	if (!b || !(a->changed & CONFIG_CHANGED_BALLOON)) {
		reply_error(r, 400, MSG_NO_BALLOON);
		return;
	}
	error__clear();
	if (a->resource == VMM_RES_BALLOON) {
		virtio_balloon__set_target(b, a->cfg.balloon.amount_mib);
	} else if (virtio_balloon__set_stats_interval(b, a->cfg.balloon.stats_polling_interval_s)) {
		reply_error(r, 400, "%s", error__get());
		return;
	}
	take_config(v, a, r);
}

static void patch_device(struct vmm *v, struct vmm_action *a, struct vmm_reply *r)
{
	if (v->state == INSTANCE_NOT_STARTED) {
		reply_error(r, 400, MSG_BEFORE_START);
		return;
	}
	if (a->resource == VMM_RES_DRIVE)
		patch_drive(v, a, r);
	else if (a->resource == VMM_RES_NET)
		patch_net(v, a, r);
	else
		patch_balloon(v, a, r);
}

static void balloon_stats(struct vmm *v, struct vmm_reply *r)
{
	if (v->state == INSTANCE_NOT_STARTED) {
		reply_error(r, 400, MSG_BEFORE_START);
		return;
	}
	if (!v->vm.balloon) {
		reply_error(r, 400, MSG_NO_BALLOON);
		return;
	}
	error__clear();
	if (virtio_balloon__get_stats(v->vm.balloon, &r->balloon_stats)) {
		reply_error(r, 400, "%s", error__get());
		return;
	}
	r->status = 200;
}

static void instance_start(struct vmm *v, struct vmm_reply *r)
{
	if (v->state != INSTANCE_NOT_STARTED) {
		reply_error(r, 400, MSG_AFTER_START);
		return;
	}
	error__clear();
	if (vmm__start_instance(v)) {
		reply_error(r, 400, "InstanceStart: %s", error__get());
		return;
	}
	log_info("instance started in %llu us", (unsigned long long)v->lat.instance_start);
	r->status = 204;
}

static void pause_resume(struct vmm *v, bool pause, struct vmm_reply *r)
{
	uint64_t t0 = log__wall_us_since_start();
	int ret;

	if (v->state == INSTANCE_NOT_STARTED) {
		reply_error(r, 400, MSG_BEFORE_START);
		return;
	}
	if (pause && v->state == INSTANCE_RUNNING) {
		ret = vm__pause(&v->vm, VMM_PAUSE_TIMEOUT_MS);
		if (ret) {
			vm__resume(&v->vm);
			reply_error(r, 500, "the vCPUs did not stop within %d ms",
				    VMM_PAUSE_TIMEOUT_MS);
			return;
		}
		v->state = INSTANCE_PAUSED;
		v->lat.vmm_pause_vm = log__wall_us_since_start() - t0;
		log_info("paused");
	} else if (!pause && v->state == INSTANCE_PAUSED) {
		vm__resume(&v->vm);
		v->state = INSTANCE_RUNNING;
		v->lat.vmm_resume_vm = log__wall_us_since_start() - t0;
		log_info("resumed");
	}
	r->status = 204;
}

static void snapshot_create(struct vmm *v, const struct vmm_action *a, struct vmm_reply *r)
{
	if (v->state == INSTANCE_NOT_STARTED) {
		reply_error(r, 400, MSG_BEFORE_START);
		return;
	}
	error__clear();
	if (vmm__create_snapshot(v, &a->create)) {
		reply_error(r, 400, "snapshot/create: %s", error__get());
		return;
	}
	log_info("snapshot written to %s and %s in %llu us", a->create.snapshot_path,
		 a->create.mem_file_path,
		 (unsigned long long)(a->create.type == SNAPSHOT_TYPE_DIFF ? v->lat.diff_create_snapshot
									   : v->lat.full_create_snapshot));
	r->status = 204;
}

static void snapshot_load(struct vmm *v, const struct vmm_action *a, struct vmm_reply *r)
{
	error__clear();
	if (vmm__load_snapshot(v, &a->load)) {
		reply_error(r, 400, "snapshot/load: %s", error__get());
		return;
	}
	log_info("snapshot %s loaded in %llu us (%s)", a->load.snapshot_path,
		 (unsigned long long)v->lat.load_snapshot, a->load.resume_vm ? "running" : "paused");
	if (config__copy(&r->cfg, &v->cfg)) {
		reply_error(r, 500, "out of memory");
		return;
	}
	r->status = 204;
}

static void run_time_action(struct vmm *v, const struct vmm_action *a, struct vmm_reply *r)
{
	switch (a->type) {
	case VMM_ACTION_CTRL_ALT_DEL:
		if (v->state == INSTANCE_NOT_STARTED) {
			reply_error(r, 400, MSG_BEFORE_START);
			return;
		}
		vm__send_ctrl_alt_del(&v->vm);
		r->status = 204;
		return;
	case VMM_ACTION_FLUSH_METRICS:
		if (v->metrics_fd < 0) {
			reply_error(r, 400, "the metrics system is not configured (PUT /metrics)");
			return;
		}
		if (vmm__flush_metrics(v)) {
			reply_error(r, 400, "cannot write the metrics: %s", error__get());
			return;
		}
		r->status = 204;
		return;
	default:
		reply_error(r, 500, "unknown action");
		return;
	}
}

void vmm__handle_action(struct vmm *v, struct vmm_action *a, struct vmm_reply *r)
{
	r->status = 500;
	r->msg[0] = '\0';
	switch (a->type) {
	case VMM_ACTION_GET_INFO:
		r->status = 200;
		break;
	case VMM_ACTION_GET_CONFIG:
		r->status = config__copy(&r->cfg, &v->cfg) ? 500 : 200;
		break;
	case VMM_ACTION_SET_CONFIG:
		set_config(v, a, r);
		break;
	case VMM_ACTION_PATCH_DEVICE:
		patch_device(v, a, r);
		break;
	case VMM_ACTION_INSTANCE_START:
		instance_start(v, r);
		break;
	case VMM_ACTION_PAUSE:
	case VMM_ACTION_RESUME:
		pause_resume(v, a->type == VMM_ACTION_PAUSE, r);
		break;
	case VMM_ACTION_SNAPSHOT_CREATE:
		snapshot_create(v, a, r);
		break;
	case VMM_ACTION_SNAPSHOT_LOAD:
		snapshot_load(v, a, r);
		break;
	case VMM_ACTION_GET_BALLOON_STATS:
		balloon_stats(v, r);
		break;
	case VMM_ACTION_GET_METRICS:
		r->text = vmm__metrics_text(v);
		r->status = r->text ? 200 : 500;
		break;
	default:
		run_time_action(v, a, r);
		break;
	}
	r->state = v->state;
}
