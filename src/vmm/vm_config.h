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
#define VM_DEFAULT_BOOT_ARGS                                                              \
	"reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux "      \
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

struct vm_config {
	struct boot_source_config boot;
	struct machine_config machine;
	bool has_logger;
	struct logger_config logger;
	struct serial_config serial;
};

#endif
