/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the API thread asks of the VMM thread, and the answer. The API thread parses and
 * validates a request into a struct vmm_action; the VMM thread checks it against the VM's
 * state, applies it and fills the struct vmm_reply. Neither side sees the other's data.
 */
#ifndef EMBER_VMM_ACTION_H
#define EMBER_VMM_ACTION_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/balloon_stats.h"
#include "vmm/snapshot.h"
#include "vmm/vm_config.h"

enum instance_state {
	INSTANCE_NOT_STARTED,
	INSTANCE_RUNNING,
	INSTANCE_PAUSED,
};

enum vmm_action_type {
	VMM_ACTION_GET_INFO,   /* GET / */
	VMM_ACTION_GET_CONFIG, /* GET /machine-config, GET /vm/config */
	VMM_ACTION_SET_CONFIG, /* PUT/PATCH of a pre-boot resource: action.cfg is the new config */
	/* PATCH /drives/{id}, /network-interfaces/{id}, /balloon, /balloon/statistics (run time) */
	VMM_ACTION_PATCH_DEVICE,
	VMM_ACTION_INSTANCE_START,    /* PUT /actions InstanceStart */
	VMM_ACTION_CTRL_ALT_DEL,      /* PUT /actions SendCtrlAltDel */
	VMM_ACTION_FLUSH_METRICS,     /* PUT /actions FlushMetrics */
	VMM_ACTION_PAUSE,	      /* PATCH /vm Paused */
	VMM_ACTION_RESUME,	      /* PATCH /vm Resumed */
	VMM_ACTION_GET_METRICS,	      /* GET /metrics: Prometheus text */
	VMM_ACTION_SNAPSHOT_CREATE,   /* PUT /snapshot/create: action.create */
	VMM_ACTION_SNAPSHOT_LOAD,     /* PUT /snapshot/load: action.load; the reply's cfg */
	VMM_ACTION_GET_BALLOON_STATS, /* GET /balloon/statistics: the reply's balloon_stats */
};

/* Which resource a SET_CONFIG or PATCH_DEVICE touches; for errors and metrics. */
enum vmm_resource {
	VMM_RES_BOOT_SOURCE,
	VMM_RES_MACHINE_CONFIG,
	VMM_RES_DRIVE,
	VMM_RES_NET,
	VMM_RES_VSOCK,
	VMM_RES_ENTROPY,
	VMM_RES_BALLOON,       /* PUT and PATCH /balloon */
	VMM_RES_BALLOON_STATS, /* PATCH /balloon/statistics */
	VMM_RES_LOGGER,
	VMM_RES_METRICS,
	VMM_RES_SERIAL,
};

struct vmm_action {
	enum vmm_action_type type;
	enum vmm_resource resource;
	/*
	 * SET_CONFIG and PATCH_DEVICE: the whole configuration as it is to be after the
	 * request. The API thread keeps the authoritative copy of the configuration (only it
	 * changes it), applies the request body to a copy, and adopts the copy once the VMM
	 * has accepted it. PATCH_DEVICE also names the device and what changed.
	 */
	struct vm_config cfg;
	char device_id[VM_DEVICE_ID_MAX + 1];
	unsigned int changed;
	struct snapshot_create_params create;
	struct snapshot_load_params load;
};

#define VMM_REPLY_MSG_MAX 512

struct vmm_reply {
	int status;		     /* an HTTP status: 200, 204, 400, 500 ... */
	char msg[VMM_REPLY_MSG_MAX]; /* the fault message when status >= 400 */
	/* every reply */
	enum instance_state state;
	/* GET_CONFIG, and SNAPSHOT_LOAD (the restored VM's): a deep copy; the API thread
	 * frees it */
	struct vm_config cfg;
	/* GET_METRICS: malloc'ed text */
	char *text;
	/* GET_BALLOON_STATS */
	struct balloon_stats balloon_stats;
};

const char *instance_state__name(enum instance_state s);

#endif
