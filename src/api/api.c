// SPDX-License-Identifier: Apache-2.0
#include "api/api.h"

#include <string.h>

#include "vmm/log.h"

void api__metrics(void *opaque, struct api_metrics *out)
{
	struct api *a = opaque;
	struct api_server_stats st;

	metrics__copy(&out->server, &a->routes.server_m, sizeof(out->server));
	metrics__copy(&out->get, &a->routes.get_m, sizeof(out->get));
	metrics__copy(&out->put, &a->routes.put_m, sizeof(out->put));
	metrics__copy(&out->patch, &a->routes.patch_m, sizeof(out->patch));
	api_server__stats(&a->server, &st);
	out->server.connections_accepted = st.connections_accepted;
	out->server.connections_rejected = st.connections_rejected;
	out->server.connections_timed_out = st.connections_timed_out;
	out->server.parse_errors = st.parse_errors;
	routes__latencies(&a->routes, &out->p50_us, &out->p99_us);
	out->pause_vm_us = __atomic_load_n(&a->routes.pause_vm_us, __ATOMIC_RELAXED);
	out->resume_vm_us = __atomic_load_n(&a->routes.resume_vm_us, __ATOMIC_RELAXED);
}

int api__start(struct api *a, const char *sock_path, size_t max_payload, struct vmm *v,
	       const char *instance_id)
{
	struct api_server_config cfg = { .socket_path = sock_path, .body_limit = max_payload };
	int ret;

	memset(a, 0, sizeof(*a));
	ret = routes__init(&a->routes, &v->mailbox, &v->cfg, instance_id);
	if (ret)
		return error__set(ret, "out of memory");
	ret = api_server__init(&a->server, &cfg, routes__handle, &a->routes);
	if (ret) {
		routes__destroy(&a->routes);
		return ret;
	}
	ret = api_server__start(&a->server);
	if (ret) {
		api_server__stop(&a->server);
		routes__destroy(&a->routes);
		return ret;
	}
	a->routes.server_m.process_startup_time_us = log__wall_us_since_start();
	a->routes.server_m.process_startup_time_cpu_us = log__cpu_us_since_start();
	a->started = true;
	v->sources = (struct vmm_metrics_sources){ api__metrics, a };
	return 0;
}

void api__stop(struct api *a)
{
	if (!a->started)
		return;
	api_server__stop(&a->server);
	routes__destroy(&a->routes);
	a->started = false;
}
