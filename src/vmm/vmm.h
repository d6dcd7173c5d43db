/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VMM thread: one epoll loop over the VM's stop event, signals, the serial console's
 * input, the API mailbox and the metrics timer; the instance's state (Not started,
 * Running, Paused) and the actions the API asks for.
 */
#ifndef EMBER_VMM_VMM_H
#define EMBER_VMM_VMM_H

#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

#include "vmm/action.h"
#include "vmm/event_loop.h"
#include "vmm/mailbox.h"
#include "vmm/metrics.h"
#include "vmm/prefetch.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

#define VMM_METRICS_PERIOD_S 60
#define VMM_PAUSE_TIMEOUT_MS 5000
#define VMM_SERIAL_FLUSH_MS 5

/* The API thread's counters, read by the metrics writer (any thread may call this). */
struct api_metrics {
	struct api_server_metrics server;
	struct get_api_metrics get;
	struct put_api_metrics put;
	struct patch_api_metrics patch;
	uint64_t p50_us, p99_us;
	uint64_t pause_vm_us, resume_vm_us; /* the last PATCH /vm, as the API client saw it */
};

struct vmm_metrics_sources {
	void (*api)(void *opaque, struct api_metrics *out);
	void *opaque;
};

struct vmm {
	struct vm_config cfg; /* the configuration InstanceStart uses */
	struct vm_options opts;
	struct vm vm;
	bool vm_created;
	struct prefetch prefetch; /* a restore's working-set prefetch or recording */
	bool diff_base; /* a snapshot taken or loaded while tracking dirty pages: Diffs may follow */
	enum instance_state state;
	bool api; /* driven by the API: without a VM, wait for actions */

	struct event_loop loop;
	struct event_handler stop_h, signal_h, stdin_h, rx_ready_h, mailbox_h, timer_h;
	struct event_handler out_kick_h, out_timer_h; /* serial output waiting: flush soon */
	struct mailbox mailbox;
	bool stdin_armed;
	bool tty_raw;
	struct termios saved_tty;
	bool done;
	int exit_code; /* when stopped before a VM ran */

	int metrics_fd;
	struct vmm_metrics_sources sources;
	struct vmm_metrics m;
	struct latency_metrics lat;
	struct logger_metrics logger_m;
	struct signal_metrics sig_m;
	uint64_t last[256]; /* the metrics file's previous values, for deltas */
};

/*
 * Takes over cfg (moved into v->cfg; the caller must not free it). With api set, the VMM
 * waits for InstanceStart through the mailbox; otherwise vmm__start_instance() is called
 * by the caller.
 */
int vmm__init(struct vmm *v, struct vm_config *cfg, const struct vm_options *opts, bool api);
/* InstanceStart: builds and starts the VM from v->cfg. */
int vmm__start_instance(struct vmm *v);
/* PUT /snapshot/load: the VM made from a snapshot, in a fresh Ember (snapshot.h). */
int vmm__load_snapshot(struct vmm *v, const struct snapshot_load_params *p);
/* PUT /snapshot/create: the paused VM to its files. */
int vmm__create_snapshot(struct vmm *v, const struct snapshot_create_params *p);
/* Runs the loop until the VM stops (or, before one runs, until a signal). */
int vmm__run(struct vmm *v);
int vmm__exit_code(const struct vmm *v);
/* Handles one action from the API thread (vmm_action.c). */
void vmm__handle_action(struct vmm *v, struct vmm_action *a, struct vmm_reply *r);
/* Writes the metrics file now; -errno (vmm_metrics.c). */
int vmm__flush_metrics(struct vmm *v);
/* Opens the metrics file (a file or named pipe), replacing an open one. */
int vmm__open_metrics(struct vmm *v, const char *path);
/* Prometheus text of every counter; malloc'ed, NULL on ENOMEM. */
char *vmm__metrics_text(struct vmm *v);
/* Tears down; for_exit leaves KVM's teardown to the process exit (vm__destroy_for_exit). */
void vmm__destroy(struct vmm *v, bool for_exit);

#endif
