/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Uffd restore backend: guest memory is anonymous and registered with a userfaultfd,
 * which goes, with the regions' layout, to a page-fault handler listening on a Unix socket
 * (Firecracker's protocol; docs/snapshot.md, tools/ember-uffd-handler.c). The handler
 * fills each page the first time it is touched, from wherever it keeps the memory.
 */
#ifndef EMBER_VMM_SNAPSHOT_UFFD_H
#define EMBER_VMM_SNAPSHOT_UFFD_H

#include <stdint.h>

#include "vmm/memory.h"

/*
 * Lays out and maps mem_bytes of anonymous guest memory in gm (backed as b says: 2 MiB
 * huge pages are private hugetlb pages here, and the handler is told the page size),
 * registers every region with a new userfaultfd (missing pages), and hands it to the handler
 * at socket_path with the regions' addresses, sizes and memory-file offsets (offsets[i]). gm
 * keeps the uffd (closed by memory__unmap()). 0, or -errno with error__set() and gm unmapped.
 */
int snapshot_uffd__map(struct gmem *gm, uint64_t mem_bytes, const struct memory_backing *b,
		       const uint64_t *offsets, const char *socket_path);

#endif
