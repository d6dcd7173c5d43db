/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's router: Firecracker's paths and methods, request bodies validated into
 * actions for the VMM thread, and the replies turned into JSON. Runs on the API thread.
 */
#ifndef EMBER_API_ROUTES_H
#define EMBER_API_ROUTES_H

#include <pthread.h>
#include <stdint.h>

#include "api/http.h"
#include "vmm/mailbox.h"
#include "vmm/metrics.h"
#include "vmm/vm_config.h"

/* The Firecracker API version whose paths and fields Ember speaks (GET /version). */
#define API_FIRECRACKER_VERSION "1.7.0"
#define API_APP_NAME "Ember"
#define API_VMM_TIMEOUT_MS 30000
#define API_LATENCY_WINDOW 1024

struct api_routes {
	struct mailbox *mailbox;
	struct vm_config cfg; /* the authoritative configuration: only this thread changes it */
	const char *instance_id;
	struct get_api_metrics get_m;
	struct put_api_metrics put_m;
	struct patch_api_metrics patch_m;
	struct api_server_metrics server_m;
	uint64_t pause_vm_us, resume_vm_us;

	pthread_mutex_t lat_lock;
	uint64_t lat_us[API_LATENCY_WINDOW]; /* the latest requests' latencies */
	uint64_t lat_n;
};

/* cfg is copied; the VMM thread holds its own copy, set up by the caller. */
int routes__init(struct api_routes *r, struct mailbox *mb, const struct vm_config *cfg,
		 const char *instance_id);
void routes__destroy(struct api_routes *r);
/* The API server's handler (opaque is the struct api_routes). */
void routes__handle(void *opaque, const struct http_request *req, struct http_response *resp);
/* p50 and p99 of the recent request latencies, µs (for the metrics writer; any thread). */
void routes__latencies(void *opaque, uint64_t *p50, uint64_t *p99);

#endif
