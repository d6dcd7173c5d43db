// SPDX-License-Identifier: Apache-2.0
#include "vmm/mailbox.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

int mailbox__init(struct mailbox *mb)
{
	pthread_condattr_t attr;

	mb->action = NULL;
	mb->reply = NULL;
	mb->taken = mb->done = mb->closed = false;
	mb->evtfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (mb->evtfd < 0)
		return -errno;
	pthread_mutex_init(&mb->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&mb->cond, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

void mailbox__destroy(struct mailbox *mb)
{
	if (mb->evtfd < 0)
		return;
	close(mb->evtfd);
	mb->evtfd = -1;
	pthread_cond_destroy(&mb->cond);
	pthread_mutex_destroy(&mb->lock);
}

static struct timespec deadline(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int mailbox__call(struct mailbox *mb, struct vmm_action *action, struct vmm_reply *reply,
		  int timeout_ms)
{
	struct timespec until = deadline(timeout_ms);
	uint64_t one = 1;
	bool timed_out = false;
	int ret;
	ssize_t w;

	pthread_mutex_lock(&mb->lock);
	if (mb->closed) {
		pthread_mutex_unlock(&mb->lock);
		return -EPIPE;
	}
	mb->action = action;
	mb->reply = reply;
	mb->taken = mb->done = false;
	w = write(mb->evtfd, &one, sizeof(one));
	(void)w;
	while (!mb->done && !mb->closed) {
		if (timed_out) {
			/* once the VMM thread holds the action, it must be let finish */
			if (!mb->taken)
				break;
			pthread_cond_wait(&mb->cond, &mb->lock);
			continue;
		}
		if (pthread_cond_timedwait(&mb->cond, &mb->lock, &until) == ETIMEDOUT)
			timed_out = true;
	}
	if (mb->done)
		ret = 0;
	else if (mb->closed)
		ret = -EPIPE;
	else
		ret = -ETIMEDOUT;
	mb->action = NULL;
	mb->reply = NULL;
	pthread_mutex_unlock(&mb->lock);
	return ret;
}

struct vmm_action *mailbox__take(struct mailbox *mb, struct vmm_reply **reply)
{
	struct vmm_action *a = NULL;
	uint64_t n;
	ssize_t r = read(mb->evtfd, &n, sizeof(n));

	(void)r;
	pthread_mutex_lock(&mb->lock);
	if (mb->action && !mb->taken) {
		a = mb->action;
		*reply = mb->reply;
		mb->taken = true;
	}
	pthread_mutex_unlock(&mb->lock);
	return a;
}

void mailbox__done(struct mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->done = true;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
}

void mailbox__close(struct mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->closed = true;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
}
