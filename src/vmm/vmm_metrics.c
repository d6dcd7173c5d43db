// SPDX-License-Identifier: Apache-2.0
/*
 * The metrics writer's view of the VMM: which counter structs make up the groups, and
 * where they go (the metrics file, Prometheus text).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vmm.h"

/* Snapshots of the counters that are summed or copied from elsewhere at flush time. */
struct snapshot {
	struct vcpu_metrics vcpu;
	struct vmm_metrics vmm;
	struct uart_metrics uart;
	struct i8042_metrics i8042;
	struct logger_metrics logger;
	struct latency_metrics lat;
	struct api_server_metrics api_server;
	struct get_api_metrics get_api;
	struct put_api_metrics put_api;
	struct patch_api_metrics patch_api;
	struct block_metrics block;
	struct virtio_metrics virtio;
	struct net_metrics net;
	struct vsock_metrics vsock;
	struct entropy_metrics entropy;
	struct balloon_metrics balloon;
};

#define NR_GROUPS 17

/* Every counter of the metrics file has its place in struct vmm's last[]. */
_Static_assert(api_server_metrics__count + get_api_metrics__count + put_api_metrics__count +
			       patch_api_metrics__count + i8042_metrics__count +
			       uart_metrics__count + block_metrics__count + net_metrics__count +
			       vsock_metrics__count + entropy_metrics__count +
			       balloon_metrics__count + virtio_metrics__count +
			       vcpu_metrics__count + vmm_metrics__count + logger_metrics__count +
			       signal_metrics__count + latency_metrics__count <=
		       sizeof(((struct vmm *)0)->last) / sizeof(uint64_t),
	       "struct vmm's last[] is too small for the metrics groups");

static void take_vm(struct vmm *v, struct snapshot *s)
{
	struct vm *vm = &v->vm;

	if (!v->vm_created)
		return;
	for (uint32_t i = 0; i < vm->nr_started; i++)
		metrics__add((uint64_t *)&s->vcpu, (const uint64_t *)&vm->vcpus[i].m,
			     vcpu_metrics__count);
	for (unsigned int i = 0; i < vm->nr_blks; i++)
		metrics__add((uint64_t *)&s->block, (const uint64_t *)&vm->blks[i]->m,
			     block_metrics__count);
	for (unsigned int i = 0; i < vm->nr_blks; i++)
		metrics__add((uint64_t *)&s->virtio, (const uint64_t *)&vm->blks[i]->t.m,
			     virtio_metrics__count);
	for (unsigned int i = 0; i < vm->nr_nets; i++) {
		virtio_net__sync_metrics(vm->nets[i]);
		metrics__add((uint64_t *)&s->net, (const uint64_t *)&vm->nets[i]->m,
			     net_metrics__count);
		metrics__add((uint64_t *)&s->virtio, (const uint64_t *)&vm->nets[i]->t.m,
			     virtio_metrics__count);
	}
	if (vm->vsock) {
		metrics__copy(&s->vsock, &vm->vsock->m, sizeof(s->vsock));
		metrics__add((uint64_t *)&s->virtio, (const uint64_t *)&vm->vsock->t.m,
			     virtio_metrics__count);
	}
	if (vm->rng) {
		metrics__copy(&s->entropy, &vm->rng->m, sizeof(s->entropy));
		metrics__add((uint64_t *)&s->virtio, (const uint64_t *)&vm->rng->t.m,
			     virtio_metrics__count);
	}
	if (vm->balloon) {
		metrics__copy(&s->balloon, &vm->balloon->m, sizeof(s->balloon));
		metrics__add((uint64_t *)&s->virtio, (const uint64_t *)&vm->balloon->t.m,
			     virtio_metrics__count);
	}
	metrics__copy(&s->uart, &vm->serial.m, sizeof(s->uart));
	metrics__copy(&s->i8042, &vm->i8042.m, sizeof(s->i8042));
	s->vmm.unassigned_pio_reads = vm->pio.unassigned_reads;
	s->vmm.unassigned_pio_writes = vm->pio.unassigned_writes;
	s->vmm.unassigned_mmio_reads = vm->mmio.unassigned_reads;
	s->vmm.unassigned_mmio_writes = vm->mmio.unassigned_writes;
	s->lat.boot_time = vm->boot_timer.signals ? vm->boot_timer.first_wall_us : 0;
}

static void take(struct vmm *v, struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->vmm = v->m;
	s->lat = v->lat;
	s->logger = v->logger_m;
	s->logger.missed_log_count = log__dropped();
	take_vm(v, s);
	if (v->sources.api) {
		struct api_metrics a;

		memset(&a, 0, sizeof(a));
		v->sources.api(v->sources.opaque, &a);
		s->api_server = a.server;
		s->get_api = a.get;
		s->put_api = a.put;
		s->patch_api = a.patch;
		s->lat.api_request_p50 = a.p50_us;
		s->lat.api_request_p99 = a.p99_us;
		s->lat.pause_vm = a.pause_vm_us;
		s->lat.resume_vm = a.resume_vm_us;
	}
}

/* The groups over a snapshot; last points into v->last for the file's deltas. */
static void groups(struct vmm *v, struct snapshot *s, struct metrics_group *g)
{
	struct metrics_group all[NR_GROUPS] = {
		METRICS_GROUP("api_server", api_server_metrics, METRICS_COUNTER, &s->api_server,
			      NULL),
		METRICS_GROUP("get_api_requests", get_api_metrics, METRICS_COUNTER, &s->get_api,
			      NULL),
		METRICS_GROUP("put_api_requests", put_api_metrics, METRICS_COUNTER, &s->put_api,
			      NULL),
		METRICS_GROUP("patch_api_requests", patch_api_metrics, METRICS_COUNTER,
			      &s->patch_api, NULL),
		METRICS_GROUP("i8042", i8042_metrics, METRICS_COUNTER, &s->i8042, NULL),
		METRICS_GROUP("uart", uart_metrics, METRICS_COUNTER, &s->uart, NULL),
		METRICS_GROUP("block", block_metrics, METRICS_COUNTER, &s->block, NULL),
		METRICS_GROUP("net", net_metrics, METRICS_COUNTER, &s->net, NULL),
		METRICS_GROUP("vsock", vsock_metrics, METRICS_COUNTER, &s->vsock, NULL),
		METRICS_GROUP("entropy", entropy_metrics, METRICS_COUNTER, &s->entropy, NULL),
		METRICS_GROUP("balloon", balloon_metrics, METRICS_COUNTER, &s->balloon, NULL),
		METRICS_GROUP("virtio", virtio_metrics, METRICS_COUNTER, &s->virtio, NULL),
		METRICS_GROUP("vcpu", vcpu_metrics, METRICS_COUNTER, &s->vcpu, NULL),
		METRICS_GROUP("vmm", vmm_metrics, METRICS_COUNTER, &s->vmm, NULL),
		METRICS_GROUP("logger", logger_metrics, METRICS_COUNTER, &s->logger, NULL),
		METRICS_GROUP("signals", signal_metrics, METRICS_COUNTER, &v->sig_m, NULL),
		METRICS_GROUP("latencies_us", latency_metrics, METRICS_GAUGE, &s->lat, NULL),
	};
	size_t used = 0;

	for (size_t i = 0; i < NR_GROUPS; i++) {
		g[i] = all[i];
		g[i].last = &v->last[used];
		used += g[i].count;
	}
	g[0].gauges = API_SERVER_GAUGES;
}

int vmm__flush_metrics(struct vmm *v)
{
	struct metrics_group g[NR_GROUPS];
	struct snapshot s;
	struct timespec ts;
	char *json;
	ssize_t w;
	size_t len;

	if (v->metrics_fd < 0)
		return 0;
	take(v, &s);
	groups(v, &s, g);
	clock_gettime(CLOCK_REALTIME, &ts);
	json = metrics__to_json(g, NR_GROUPS,
				(uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	if (!json)
		return error__set(-ENOMEM, "out of memory");
	len = strlen(json);
	w = write(v->metrics_fd, json, len);
	free(json);
	if (w != (ssize_t)len) {
		v->logger_m.missed_metrics_count++;
		v->logger_m.metrics_fails++;
		return error__set(w < 0 ? -errno : -EAGAIN, "%s",
				  w < 0 ? strerror(errno) : "short write");
	}
	return 0;
}

char *vmm__metrics_text(struct vmm *v)
{
	struct metrics_group g[NR_GROUPS];
	struct snapshot s;

	take(v, &s);
	groups(v, &s, g);
	return metrics__to_prometheus(g, NR_GROUPS);
}
