/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a VM is made of, as parsed from Firecracker's JSON config schema
 * (src/api/config.c) or, later, built up through the API.
 */
#ifndef EMBER_VMM_VM_CONFIG_H
#define EMBER_VMM_VM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/log.h"

#define VM_MAX_VCPUS 32
#define VM_MIN_MEM_MIB 1ULL
/* 1 TiB: far more than a microVM needs, and within every host's address width. */
#define VM_MAX_MEM_MIB (1024ULL * 1024ULL)

/* Firecracker's default when boot_args is not given. */
#define VM_DEFAULT_BOOT_ARGS                                                                       \
	"reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux "               \
	"i8042.dumbkbd swiotlb=noforce"

enum huge_pages {
	HUGE_PAGES_NONE,
	HUGE_PAGES_2M,
	HUGE_PAGES_TRANSPARENT,
};

struct boot_source_config {
	char *kernel_image_path; /* required */
	char *initrd_path;	 /* NULL: no initrd */
	char *boot_args;	 /* NULL: VM_DEFAULT_BOOT_ARGS */
};

struct machine_config {
	uint32_t vcpu_count;   /* 1..VM_MAX_VCPUS, default 1 */
	uint64_t mem_size_mib; /* VM_MIN_MEM_MIB..VM_MAX_MEM_MIB, default 128 */
	bool smt;	       /* two threads per core; needs an even vcpu_count > 1 or 1 */
	bool track_dirty_pages;
	enum huge_pages huge_pages;
	bool ksm; /* Ember's own: the host's KSM may merge identical guest pages */
};

struct logger_config {
	char *log_path; /* NULL: stderr */
	enum log_level level;
	bool show_level;
	bool show_log_origin;
};

struct serial_config {
	char *serial_out_path; /* NULL: stdout */
};

struct metrics_config {
	char *metrics_path; /* a file or named pipe */
};

/* Firecracker's TokenBucket: size tokens, refilled over refill_time ms. */
struct token_bucket_config {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

struct rate_limiter_config {
	bool has_bandwidth; /* bytes */
	struct token_bucket_config bandwidth;
	bool has_ops; /* operations */
	struct token_bucket_config ops;
};

enum drive_cache_type {
	DRIVE_CACHE_UNSAFE,
	DRIVE_CACHE_WRITEBACK,
};

enum drive_io_engine {
	DRIVE_IO_SYNC,
	DRIVE_IO_ASYNC,
};

#define VM_DEVICE_ID_MAX 64
#define VM_MAX_DRIVES 8
#define VM_MAX_NET_IFACES 8

struct drive_config {
	char *drive_id; /* 1..64 of [A-Za-z0-9_-] */
	char *path_on_host;
	bool is_root_device;
	bool is_read_only;
	char *partuuid; /* NULL: root=/dev/vda */
	enum drive_cache_type cache_type;
	enum drive_io_engine io_engine;
	bool has_rate_limiter;
	struct rate_limiter_config rate_limiter;
};

/* Anti-spoofing (docs/network.md): the source addresses the guest may send from. */
#define VM_ANTISPOOF_ADDRS_MAX 8
struct antispoof_config {
	unsigned int nr_ipv4;
	uint8_t ipv4[VM_ANTISPOOF_ADDRS_MAX][4]; /* network byte order */
	unsigned int nr_ipv6;
	uint8_t ipv6[VM_ANTISPOOF_ADDRS_MAX][16];
};

struct net_config {
	char *iface_id;
	char *host_dev_name; /* the TAP device */
	bool has_guest_mac;
	uint8_t guest_mac[6];
	bool has_rx_rate_limiter;
	struct rate_limiter_config rx_rate_limiter;
	bool has_tx_rate_limiter;
	struct rate_limiter_config tx_rate_limiter;
	bool has_anti_spoofing; /* needs guest_mac */
	struct antispoof_config anti_spoofing;
};

struct vsock_config {
	uint32_t guest_cid; /* >= 3 */
	char *uds_path;
};

/* Firecracker's entropy device (virtio-rng): only its rate limiter. */
struct entropy_config {
	bool has_rate_limiter;
	struct rate_limiter_config rate_limiter;
};

/*
 * Firecracker's balloon device (virtio-balloon, docs/balloon.md). amount_mib is the target
 * (at most the guest's memory); stats_polling_interval_s 0 turns the statistics off.
 */
#define VM_BALLOON_STATS_INTERVAL_MAX 65535 /* Firecracker's u16 */
struct balloon_config {
	uint32_t amount_mib;
	bool deflate_on_oom;
	uint32_t stats_polling_interval_s;
	bool free_page_hinting; /* Firecracker's; only false is taken (not supported yet) */
	bool free_page_reporting;
};

struct vm_config {
	struct boot_source_config boot;
	struct machine_config machine;
	bool has_logger;
	struct logger_config logger;
	struct serial_config serial;
	bool has_metrics;
	struct metrics_config metrics;
	unsigned int nr_drives;
	struct drive_config drives[VM_MAX_DRIVES];
	unsigned int nr_net;
	struct net_config net[VM_MAX_NET_IFACES];
	bool has_vsock;
	struct vsock_config vsock;
	bool has_entropy;
	struct entropy_config entropy;
	bool has_balloon;
	struct balloon_config balloon;
};

#endif
