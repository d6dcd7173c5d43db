/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API as a whole: the socket server and the router, started on their own thread.
 */
#ifndef EMBER_API_API_H
#define EMBER_API_API_H

#include <stddef.h>

#include "api/routes.h"
#include "api/server.h"
#include "vmm/vmm.h"

struct api {
	struct api_server server;
	struct api_routes routes;
	bool started;
};

/* Binds sock_path and starts the API thread, serving v (its mailbox and config). */
int api__start(struct api *a, const char *sock_path, size_t max_payload, struct vmm *v,
	       const char *instance_id);
/* Stops the thread and removes the socket. */
void api__stop(struct api *a);
/* struct vmm_metrics_sources.api: the API's counters. */
void api__metrics(void *opaque, struct api_metrics *out);

#endif
