/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VMM thread's epoll loop. A handler embeds struct event_handler and is found again
 * with container_of().
 */
#ifndef EMBER_VMM_EVENT_LOOP_H
#define EMBER_VMM_EVENT_LOOP_H

#include <stddef.h>
#include <stdint.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct event_handler {
	int fd;
	void (*fn)(struct event_handler *h, uint32_t events);
};

struct event_loop {
	int epfd;
};

int event_loop__init(struct event_loop *l);
int event_loop__add(struct event_loop *l, struct event_handler *h, uint32_t events);
int event_loop__mod(struct event_loop *l, struct event_handler *h, uint32_t events);
int event_loop__del(struct event_loop *l, struct event_handler *h);
/* Waits up to timeout_ms (-1: forever) and dispatches; returns events handled or -errno. */
int event_loop__run_once(struct event_loop *l, int timeout_ms);
void event_loop__destroy(struct event_loop *l);

#endif
