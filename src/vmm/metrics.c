// SPDX-License-Identifier: Apache-2.0
#include "vmm/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

METRICS_NAMES(uart_metrics, UART_METRICS);
METRICS_NAMES(i8042_metrics, I8042_METRICS);
METRICS_NAMES(vcpu_metrics, VCPU_METRICS);
METRICS_NAMES(vmm_metrics, VMM_METRICS);
METRICS_NAMES(api_server_metrics, API_SERVER_METRICS);
METRICS_NAMES(get_api_metrics, GET_API_METRICS);
METRICS_NAMES(put_api_metrics, PUT_API_METRICS);
METRICS_NAMES(patch_api_metrics, PATCH_API_METRICS);
METRICS_NAMES(logger_metrics, LOGGER_METRICS);
METRICS_NAMES(latency_metrics, LATENCY_METRICS);
METRICS_NAMES(signal_metrics, SIGNAL_METRICS);
METRICS_NAMES(block_metrics, BLOCK_METRICS);
METRICS_NAMES(virtio_metrics, VIRTIO_METRICS);

/* A growing string; on allocation failure it stays NULL and further appends do nothing. */
struct buf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void append(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
		char *s = realloc(b->s, cap);

		if (!s) {
			b->failed = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

static char *finish(struct buf *b)
{
	if (b->failed) {
		free(b->s);
		return NULL;
	}
	return b->s;
}

static bool is_gauge(const struct metrics_group *grp, size_t i)
{
	return grp->kind == METRICS_GAUGE || (i < 64 && (grp->gauges & (1ULL << i)));
}

char *metrics__to_json(struct metrics_group *groups, size_t n, uint64_t utc_ms)
{
	struct buf b = { 0 };

	append(&b, "{\"utc_timestamp_ms\":%" PRIu64, utc_ms);
	for (size_t g = 0; g < n; g++) {
		struct metrics_group *grp = &groups[g];

		append(&b, ",\"%s\":{", grp->name);
		for (size_t i = 0; i < grp->count; i++) {
			uint64_t v = grp->values[i];

			if (grp->kind == METRICS_COUNTER && grp->last && !is_gauge(grp, i)) {
				uint64_t d = v - grp->last[i];

				grp->last[i] = v;
				v = d;
			}
			append(&b, "%s\"%s\":%" PRIu64, i ? "," : "", grp->names[i], v);
		}
		append(&b, "}");
	}
	append(&b, "}\n");
	return finish(&b);
}

char *metrics__to_prometheus(const struct metrics_group *groups, size_t n)
{
	struct buf b = { 0 };

	for (size_t g = 0; g < n; g++) {
		const struct metrics_group *grp = &groups[g];

		for (size_t i = 0; i < grp->count; i++) {
			const char *type = is_gauge(grp, i) ? "gauge" : "counter";

			append(&b, "# TYPE ember_%s_%s %s\nember_%s_%s %" PRIu64 "\n", grp->name,
			       grp->names[i], type, grp->name, grp->names[i], grp->values[i]);
		}
	}
	if (!b.s)
		append(&b, "%s", "");
	return finish(&b);
}

void metrics__copy(void *dst, const void *src, size_t bytes)
{
	const uint64_t *s = src;
	uint64_t *d = dst;

	for (size_t i = 0; i < bytes / sizeof(uint64_t); i++)
		d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

void metrics__add(uint64_t *a, const uint64_t *b, size_t count)
{
	for (size_t i = 0; i < count; i++)
		a[i] += __atomic_load_n(&b[i], __ATOMIC_RELAXED);
}
