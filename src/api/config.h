/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Firecracker's JSON config file schema <-> struct vm_config.
 */
#ifndef EMBER_API_CONFIG_H
#define EMBER_API_CONFIG_H

#include <stddef.h>

#include "vmm/vm_config.h"

/* Defaults: 1 vCPU, 128 MiB, no SMT, no dirty tracking, huge pages None, no logger. */
void config__init(struct vm_config *cfg);

/*
 * Parses a whole config document (len bytes, not necessarily NUL-terminated) into cfg,
 * which config__init() has prepared. 0 on success. On failure returns -EINVAL (or -ENOMEM)
 * and sets error__set() to one line that names the field and the problem, e.g.
 *   "machine-config.vcpu_count: must be an integer from 1 to 32, got 33"
 * cfg is left safe to pass to config__free() either way.
 */
int config__parse(struct vm_config *cfg, const char *json, size_t len);

/* Reads the file (at most CONFIG_FILE_MAX bytes) and parses it. */
#define CONFIG_FILE_MAX (1024 * 1024)
int config__load_file(struct vm_config *cfg, const char *path);

void config__free(struct vm_config *cfg);

#endif
