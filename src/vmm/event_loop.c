// SPDX-License-Identifier: Apache-2.0
#include "vmm/event_loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_EVENTS 32

int event_loop__init(struct event_loop *l)
{
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -errno : 0;
}

static int ctl(struct event_loop *l, int op, struct event_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(l->epfd, op, h->fd, &ev) < 0 ? -errno : 0;
}

int event_loop__add(struct event_loop *l, struct event_handler *h, uint32_t events)
{
	return ctl(l, EPOLL_CTL_ADD, h, events);
}

int event_loop__mod(struct event_loop *l, struct event_handler *h, uint32_t events)
{
	return ctl(l, EPOLL_CTL_MOD, h, events);
}

int event_loop__del(struct event_loop *l, struct event_handler *h)
{
	return ctl(l, EPOLL_CTL_DEL, h, 0);
}

int event_loop__run_once(struct event_loop *l, int timeout_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = epoll_wait(l->epfd, ev, MAX_EVENTS, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct event_handler *h = ev[i].data.ptr;

		h->fn(h, ev[i].events);
	}
	return n;
}

void event_loop__destroy(struct event_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}
