/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Firecracker's JSON config schema <-> struct vm_config: the config file, the bodies of
 * the API's PUT and PATCH requests, and the JSON that GET requests return.
 */
#ifndef EMBER_API_CONFIG_H
#define EMBER_API_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/snapshot.h"
#include "vmm/vm_config.h"

/* Defaults: 1 vCPU, 128 MiB, no SMT, no dirty tracking, huge pages None, no logger. */
void config__init(struct vm_config *cfg);

/*
 * Parses a whole config document (len bytes, not necessarily NUL-terminated) into cfg,
 * which config__init() has prepared. 0 on success. On failure returns -EINVAL (or -ENOMEM)
 * and sets error__set() to one line that names the field and the problem, e.g.
 *   "machine-config.vcpu_count: must be an integer from 1 to 32, got 33"
 * On failure cfg is freed and reset to the config__init() defaults. An optional field or
 * section given as null counts as absent.
 */
int config__parse(struct vm_config *cfg, const char *json, size_t len);

/* Reads the file (at most CONFIG_FILE_MAX bytes) and parses it. */
#define CONFIG_FILE_MAX (1024 * 1024)
int config__load_file(struct vm_config *cfg, const char *path);

void config__free(struct vm_config *cfg);
/* A deep copy; -ENOMEM. dst need not be initialised; free it with config__free(). */
int config__copy(struct vm_config *dst, const struct vm_config *src);

/*
 * API request bodies. Each parses one JSON object (len bytes, not NUL-terminated) with the
 * same strictness and messages as the config file, the message naming "<field>" (e.g.
 * "vcpu_count: must be an integer from 1 to 32, got 33"). On failure *out is unchanged.
 */
enum config_body {
	CONFIG_BODY_BOOT_SOURCE,	  /* PUT /boot-source -> cfg->boot */
	CONFIG_BODY_MACHINE_CONFIG,	  /* PUT /machine-config -> cfg->machine (all fields) */
	CONFIG_BODY_MACHINE_CONFIG_PATCH, /* PATCH /machine-config: only the fields given */
	CONFIG_BODY_LOGGER,		  /* PUT /logger -> cfg->logger, has_logger */
	CONFIG_BODY_METRICS,		  /* PUT /metrics -> cfg->metrics, has_metrics */
	CONFIG_BODY_SERIAL,		  /* PUT /serial -> cfg->serial */
	CONFIG_BODY_VSOCK,		  /* PUT /vsock -> cfg->vsock, has_vsock */
	CONFIG_BODY_ENTROPY,		  /* PUT /entropy -> cfg->entropy, has_entropy */
	CONFIG_BODY_BALLOON,		  /* PUT /balloon -> cfg->balloon, has_balloon */
};

/*
 * Applies a body of the given kind onto *cfg: for PUT bodies the section is replaced (its
 * fields not given take their defaults); for CONFIG_BODY_MACHINE_CONFIG_PATCH only the
 * fields given change, and an empty object is refused ("empty PATCH request").
 * *cfg must stay valid as a whole: machine-config's cross-field rule (smt needs an even
 * vcpu_count) is checked against the result. On failure *cfg is unchanged.
 */
int config__apply_body(struct vm_config *cfg, enum config_body kind, const char *json, size_t len);

/*
 * PUT /drives/{id} and PUT /network-interfaces/{id}: parse one device; id is the path's
 * id, which must equal the body's drive_id / iface_id ("drive_id: does not match the path
 * id"). Ids are 1..64 of [A-Za-z0-9_-]. The result replaces the device with the same id
 * in cfg, or is added (at most VM_MAX_DRIVES / VM_MAX_NET_IFACES, else -ENOSPC with a
 * message); a second root device is refused.
 */
int config__put_drive(struct vm_config *cfg, const char *id, const char *json, size_t len);
int config__put_net(struct vm_config *cfg, const char *id, const char *json, size_t len);
/*
 * PATCH /drives/{id} (drive_id plus path_on_host and/or rate_limiter) and PATCH
 * /network-interfaces/{id} (iface_id plus rx_rate_limiter and/or tx_rate_limiter): the
 * device must exist (-ENOENT, "no drive with id ..."). What changed is reported in *changed
 * as CONFIG_CHANGED_* bits.
 */
#define CONFIG_CHANGED_PATH 0x1u
#define CONFIG_CHANGED_RATE_LIMITER 0x2u
#define CONFIG_CHANGED_RX_RATE_LIMITER 0x4u
#define CONFIG_CHANGED_TX_RATE_LIMITER 0x8u
int config__patch_drive(struct vm_config *cfg, const char *id, const char *json, size_t len,
			unsigned int *changed);
int config__patch_net(struct vm_config *cfg, const char *id, const char *json, size_t len,
		      unsigned int *changed);
/*
 * PATCH /balloon ({"amount_mib"}, at most the guest's memory) and PATCH /balloon/statistics
 * ({"stats_polling_interval_s"}): the body checked and, when a balloon is configured,
 * applied to cfg (*changed CONFIG_CHANGED_BALLOON); without one, cfg stays as it is and
 * *changed is 0 (the VMM thread answers: not before the start, or no balloon device).
 */
#define CONFIG_CHANGED_BALLOON 0x10u
int config__patch_balloon(struct vm_config *cfg, const char *json, size_t len,
			  unsigned int *changed);
int config__patch_balloon_stats(struct vm_config *cfg, const char *json, size_t len,
				unsigned int *changed);
/*
 * A body that is one field holding one of a few strings, like PUT /actions
 * {"action_type": "InstanceStart"}: parsed as strictly as the config file, the only field
 * allowed being key. *index is the choice given. -EINVAL with a message otherwise.
 */
int config__parse_choice(const char *label, const char *json, size_t len, const char *key,
			 const char *const *choices, size_t n, int *index);
/* An API id: 1..64 of [A-Za-z0-9_-]; -EINVAL with a message naming what. */
int config__check_id(const char *what, const char *id);

/*
 * JSON out (malloc'ed, NUL-terminated, compact), in Firecracker's shapes:
 * GET /machine-config, and GET /vm/config (the whole config: "boot-source",
 * "machine-config", "drives", "network-interfaces", "vsock", "entropy", "logger",
 * "metrics", ...).
 * NULL on ENOMEM.
 */
char *config__machine_to_json(const struct machine_config *m);
/* GET /balloon: Firecracker's Balloon object. */
char *config__balloon_to_json(const struct balloon_config *b);
char *config__to_json(const struct vm_config *cfg);
/*
 * The bodies of PUT /snapshot/create and /snapshot/load (Firecracker's fields), checked.
 * 0, or -EINVAL with error__set() naming the field.
 */
int config__parse_snapshot_create(const char *json, size_t len, struct snapshot_create_params *p);
int config__parse_snapshot_load(const char *json, size_t len, struct snapshot_load_params *p);

#endif
