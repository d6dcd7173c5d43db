/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An Intel MultiProcessor Specification 1.4 table, so that SMP works without ACPI.
 */
#ifndef EMBER_VMM_MPTABLE_H
#define EMBER_VMM_MPTABLE_H

#include <stdint.h>

#include "vmm/memory.h"

#define MPTABLE_MAX_IRQ 23

/* Writes the floating pointer and the config table at LAYOUT_MPTABLE_ADDR. */
int mptable__write(const struct gmem *gm, uint32_t nr_vcpus);
/* Bytes the table takes for nr_vcpus, floating pointer included. */
uint64_t mptable__size(uint32_t nr_vcpus);
/* 8-bit sum of len bytes: a valid table sums to 0. */
uint8_t mptable__checksum(const void *p, uint64_t len);

#endif
