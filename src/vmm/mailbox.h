/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one-slot mailbox between the API thread and the VMM thread: the API thread posts an
 * action and waits for the reply; an eventfd wakes the VMM thread's epoll loop, which
 * takes the action, handles it and replies.
 */
#ifndef EMBER_VMM_MAILBOX_H
#define EMBER_VMM_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>

#include "vmm/action.h"

struct mailbox {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int evtfd; /* readable when an action waits */
	struct vmm_action *action;
	struct vmm_reply *reply;
	bool taken;
	bool done;
	bool closed; /* the VMM thread is gone: fail new and waiting actions */
};

int mailbox__init(struct mailbox *mb);
void mailbox__destroy(struct mailbox *mb);
/*
 * API thread: posts the action and waits up to timeout_ms for the reply. -ETIMEDOUT if
 * the VMM thread did not answer in time (the action is withdrawn if it was not taken yet,
 * else the call keeps waiting for it, since the VMM thread is using it), -EPIPE once the
 * mailbox is closed.
 */
int mailbox__call(struct mailbox *mb, struct vmm_action *action, struct vmm_reply *reply,
		  int timeout_ms);
/* VMM thread: the waiting action, or NULL; clears the eventfd. */
struct vmm_action *mailbox__take(struct mailbox *mb, struct vmm_reply **reply);
/* VMM thread: the reply is filled in. */
void mailbox__done(struct mailbox *mb);
/* VMM thread, at exit: refuse actions from now on. */
void mailbox__close(struct mailbox *mb);

#endif
