/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics: every subsystem keeps a struct of uint64_t counters, declared here with an
 * X-macro that also gives the counters' names (Firecracker's names where Firecracker has
 * the counter). The writer serialises those structs, as one JSON object per flush to the
 * metrics file (counts since the previous flush, as Firecracker does) and as Prometheus
 * text (running totals) for GET /metrics. Nothing else builds metrics by hand.
 */
#ifndef EMBER_VMM_METRICS_H
#define EMBER_VMM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_FIELD(name) uint64_t name;
#define METRICS_NAME(name) #name,
#define METRICS_STRUCT(type, LIST)                                                                 \
	struct type {                                                                              \
		LIST(METRICS_FIELD)                                                                \
	};                                                                                         \
	extern const char *const type##__names[];                                                  \
	enum { type##__count = sizeof(struct type) / sizeof(uint64_t) }
#define METRICS_NAMES(type, LIST) const char *const type##__names[] = { LIST(METRICS_NAME) }

/* Firecracker's "uart" */
#define UART_METRICS(X)                                                                            \
	X(error_count)                                                                             \
	X(flush_count) X(missed_read_count) X(missed_write_count) X(read_count) X(write_count)
METRICS_STRUCT(uart_metrics, UART_METRICS);

/* Firecracker's "i8042" */
#define I8042_METRICS(X)                                                                           \
	X(error_count)                                                                             \
	X(missed_read_count) X(missed_write_count) X(read_count) X(reset_count) X(write_count)
METRICS_STRUCT(i8042_metrics, I8042_METRICS);

/* Firecracker's "vcpu", summed over the vCPUs; exit_other is Ember's */
#define VCPU_METRICS(X)                                                                            \
	X(exit_io_in)                                                                              \
	X(exit_io_out) X(exit_mmio_read) X(exit_mmio_write) X(failures) X(filter_cpuid)            \
		X(exit_other)
METRICS_STRUCT(vcpu_metrics, VCPU_METRICS);

/* Firecracker's "vmm"; the unassigned_* counters are Ember's */
#define VMM_METRICS(X)                                                                             \
	X(device_events)                                                                           \
	X(panic_count) X(unassigned_pio_reads) X(unassigned_pio_writes) X(unassigned_mmio_reads)   \
		X(unassigned_mmio_writes)
METRICS_STRUCT(vmm_metrics, VMM_METRICS);

/* Firecracker's "api_server"; the connection counters are Ember's */
#define API_SERVER_METRICS(X)                                                                      \
	X(process_startup_time_us)                                                                 \
	X(process_startup_time_cpu_us) X(sync_response_fails) X(sync_vmm_send_timeout_count)       \
		X(connections_accepted) X(connections_rejected) X(connections_timed_out)           \
			X(parse_errors)
METRICS_STRUCT(api_server_metrics, API_SERVER_METRICS);
/* process_startup_time_us and _cpu_us are values, reported whole in every flush */
#define API_SERVER_GAUGES 0x3ULL

/* Firecracker's "get_api_requests"; metrics_count and vm_config_count are Ember's */
#define GET_API_METRICS(X)                                                                         \
	X(instance_info_count)                                                                     \
	X(machine_cfg_count) X(mmds_count) X(vmm_version_count) X(vm_config_count)                 \
		X(metrics_count) X(fails)
METRICS_STRUCT(get_api_metrics, GET_API_METRICS);

/* Firecracker's "put_api_requests" */
#define PUT_API_METRICS(X)                                                                         \
	X(actions_count)                                                                           \
	X(actions_fails) X(boot_source_count) X(boot_source_fails) X(drive_count) X(drive_fails)   \
		X(logger_count) X(logger_fails) X(machine_cfg_count) X(machine_cfg_fails)          \
			X(cpu_cfg_count) X(cpu_cfg_fails) X(metrics_count) X(metrics_fails)        \
				X(network_count) X(network_fails) X(mmds_count) X(mmds_fails)      \
					X(vsock_count) X(vsock_fails) X(serial_count)              \
						X(serial_fails)
METRICS_STRUCT(put_api_metrics, PUT_API_METRICS);

/* Firecracker's "patch_api_requests"; vm_count and vm_fails are Ember's */
#define PATCH_API_METRICS(X)                                                                       \
	X(drive_count)                                                                             \
	X(drive_fails) X(network_count) X(network_fails) X(machine_cfg_count) X(machine_cfg_fails) \
		X(mmds_count) X(mmds_fails) X(vm_count) X(vm_fails)
METRICS_STRUCT(patch_api_metrics, PATCH_API_METRICS);

/* Firecracker's "logger" */
#define LOGGER_METRICS(X) X(missed_metrics_count) X(metrics_fails) X(missed_log_count) X(log_fails)
METRICS_STRUCT(logger_metrics, LOGGER_METRICS);

/*
 * Firecracker's "latencies_us" (the last value seen, in microseconds); instance_start,
 * boot_time and api_request_p50/p99 are Ember's.
 */
#define LATENCY_METRICS(X)                                                                         \
	X(pause_vm)                                                                                \
	X(resume_vm) X(vmm_pause_vm) X(vmm_resume_vm) X(instance_start) X(boot_time)               \
		X(api_request_p50) X(api_request_p99) X(full_create_snapshot)                      \
		X(diff_create_snapshot) X(load_snapshot)
METRICS_STRUCT(latency_metrics, LATENCY_METRICS);

/* Firecracker's "block" (summed over the drives) */
#define BLOCK_METRICS(X)                                                                           \
	X(activate_fails) X(cfg_fails) X(no_avail_buffer) X(event_fails) X(execute_fails)          \
	X(invalid_reqs_count) X(flush_count) X(queue_event_count) X(rate_limiter_event_count)      \
	X(update_count) X(update_fails) X(read_bytes) X(write_bytes) X(read_count) X(write_count) \
	X(rate_limiter_throttled_events) X(io_engine_throttled_events)
METRICS_STRUCT(block_metrics, BLOCK_METRICS);

/* Ember's own: the virtio-mmio transports, summed over the devices */
#define VIRTIO_METRICS(X) X(queue_notifies) X(interrupts) X(needs_reset) X(bad_register_accesses)
METRICS_STRUCT(virtio_metrics, VIRTIO_METRICS);

/* Firecracker's "signals" */
#define SIGNAL_METRICS(X) X(sigbus) X(sigsegv) X(sigxfsz) X(sigxcpu) X(sigpipe) X(sighup) X(sigill)
METRICS_STRUCT(signal_metrics, SIGNAL_METRICS);

enum metrics_kind {
	METRICS_COUNTER, /* only grows: the file gets deltas, Prometheus the total */
	METRICS_GAUGE,	 /* a value: both get it as it is */
};

/* One group as the writer sees it: its name, counters and where they are. */
struct metrics_group {
	const char *name;
	const char *const *names;
	size_t count;
	enum metrics_kind kind;
	const uint64_t *values; /* count counters, contiguous */
	uint64_t *last;		/* what the last flush wrote, for deltas; count entries */
	uint64_t gauges;	/* in a counter group, bit i: counter i is a value (a gauge) */
};

#define METRICS_GROUP(gname, type, kind, ptr, lastp)                                               \
	{                                                                                          \
		gname, type##__names, type##__count, kind, (const uint64_t *)(ptr),                \
			(uint64_t *)(lastp), 0                                                     \
	}

/*
 * {"utc_timestamp_ms":T,"<group>":{"<counter>":N,...},...}\n, counters as deltas since the
 * last call (which it records), gauges as they are. Returns malloc'ed text or NULL.
 */
char *metrics__to_json(struct metrics_group *groups, size_t n, uint64_t utc_ms);
/* Prometheus text exposition: ember_<group>_<counter> <total>, with # TYPE lines. */
char *metrics__to_prometheus(const struct metrics_group *groups, size_t n);
/* Adds b's counters to a's (for summing per-vCPU structs); count uint64_t each. */
void metrics__add(uint64_t *a, const uint64_t *b, size_t count);
/* Copies a struct of counters that another thread updates, each counter read atomically. */
void metrics__copy(void *dst, const void *src, size_t bytes);

#endif
