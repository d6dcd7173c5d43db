/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots (docs/snapshot.md): a paused VM written as a state file (snapshot_file.h's
 * format: the config, the memory layout, every vCPU, the in-kernel devices, every device)
 * and a memory file (guest RAM, region after region, zero pages left as holes); and a VM
 * made again from the two in a fresh Ember, its memory mapped MAP_PRIVATE from the memory
 * file so that pages load lazily and copy on write.
 */
#ifndef EMBER_VMM_SNAPSHOT_H
#define EMBER_VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm_config.h"

#define SNAPSHOT_PATH_MAX 4096

enum snapshot_type {
	SNAPSHOT_TYPE_FULL,
	SNAPSHOT_TYPE_DIFF,
};

enum snapshot_backend {
	SNAPSHOT_BACKEND_FILE,
	SNAPSHOT_BACKEND_UFFD,
};

struct snapshot_create_params {
	enum snapshot_type type;
	char snapshot_path[SNAPSHOT_PATH_MAX];
	char mem_file_path[SNAPSHOT_PATH_MAX];
};

struct snapshot_net_override {
	char iface_id[VM_DEVICE_ID_MAX + 1];
	char host_dev_name[16];
};

struct snapshot_load_params {
	char snapshot_path[SNAPSHOT_PATH_MAX];
	enum snapshot_backend backend;
	char backend_path[SNAPSHOT_PATH_MAX]; /* the memory file, or the uffd handler's socket */
	bool track_dirty_pages;
	bool resume_vm;
	unsigned int nr_net_overrides;
	struct snapshot_net_override net[VM_MAX_NET_IFACES];
	bool has_vsock_override;
	char vsock_uds_path[SNAPSHOT_PATH_MAX];
	/* Ember's own, File backend only (prefetch.h): a working set to prefetch, ... */
	bool has_prefetch;
	char prefetch_path[SNAPSHOT_PATH_MAX];
	/* ... and one to record over the first record_ms after the load */
	bool has_record;
	char record_path[SNAPSHOT_PATH_MAX];
	uint32_t record_ms;
};

struct vm;
struct vm_options;
struct prefetch;

/*
 * Writes the paused vm (configured by cfg) to p's files: the memory file first, then the
 * state file, each durably (a temporary file, fsync, rename), so that a state file is never
 * there without its memory. A Full memory file holds all of guest memory (zero pages as
 * holes); a Diff one, as large, only the pages written since the last snapshot or restore
 * (needs track_dirty_pages and *has_base: a Full snapshot taken, or one loaded, since). With
 * track_dirty_pages, every snapshot clears the dirty log and sets *has_base. 0 or -errno
 * with error__set().
 */
int snapshot__create(struct vm *vm, const struct vm_config *cfg,
		     const struct snapshot_create_params *p, bool *has_base);
/*
 * Makes vm again from p's state file and memory file. *cfg is the running Ember's config
 * (a fresh one: no boot source, drives, interfaces or vsock) and becomes the snapshot's,
 * with p's overrides and *cfg's own logger, metrics and serial output (vm points into it:
 * keep it while vm lives). vm is created with every state restored and its vCPUs not
 * started; *pf runs p's prefetch or working-set recording, if any (prefetch__stop() it
 * before vm goes). 0, or -errno with error__set(), vm not made and *cfg as it was.
 */
int snapshot__load(struct vm *vm, struct vm_config *cfg, const struct vm_options *opts,
		   const struct snapshot_load_params *p, struct prefetch *pf);

#endif
