// SPDX-License-Identifier: Apache-2.0
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "api/config.h"
#include "jail/seccomp.h"
#include "vmm/snapshot.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"

const char *instance_state__name(enum instance_state s)
{
	switch (s) {
	case INSTANCE_RUNNING:
		return "Running";
	case INSTANCE_PAUSED:
		return "Paused";
	default:
		return "Not started";
	}
}

static void drain_eventfd(int fd)
{
	uint64_t n;
	ssize_t r = read(fd, &n, sizeof(n));

	(void)r;
}

static void on_stop(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, stop_h);

	(void)events;
	drain_eventfd(h->fd);
	v->done = true;
}

static void count_signal(struct vmm *v, uint32_t signo)
{
	if (signo == SIGHUP)
		v->sig_m.sighup++;
}

static void on_signal(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, signal_h);
	struct signalfd_siginfo si;

	(void)events;
	if (read(h->fd, &si, sizeof(si)) != sizeof(si))
		return;
	count_signal(v, si.ssi_signo);
	log_info("stopping on signal %u", si.ssi_signo);
	if (v->vm_created) {
		vm__request_stop(&v->vm, VM_STOP_SIGNAL, 128 + (int)si.ssi_signo);
		return;
	}
	v->exit_code = 128 + (int)si.ssi_signo;
	v->done = true;
}

static void arm_stdin(struct vmm *v, bool on)
{
	if (v->stdin_armed == on)
		return;
	if (!event_loop__mod(&v->loop, &v->stdin_h, on ? EPOLLIN : 0))
		v->stdin_armed = on;
}

static void on_stdin(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, stdin_h);
	uint8_t buf[256];
	size_t space = serial__rx_space(&v->vm.serial);
	ssize_t n;

	(void)events;
	if (!space) {
		/* the guest is not reading: wait for room before taking more */
		arm_stdin(v, false);
		return;
	}
	n = read(h->fd, buf, space < sizeof(buf) ? space : sizeof(buf));
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		event_loop__del(&v->loop, h);
		v->stdin_armed = false;
		return;
	}
	if (n > 0)
		serial__input(&v->vm.serial, buf, (size_t)n);
}

static void on_rx_ready(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, rx_ready_h);

	(void)events;
	drain_eventfd(h->fd);
	arm_stdin(v, true);
}

/* Serial output is waiting in the buffer: write it out in a few milliseconds. */
static void on_out_kick(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, out_kick_h);
	struct itimerspec its = { .it_value = { 0, VMM_SERIAL_FLUSH_MS * 1000000L } };

	(void)events;
	drain_eventfd(h->fd);
	timerfd_settime(v->out_timer_h.fd, 0, &its, NULL);
}

static void on_out_timer(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, out_timer_h);

	(void)events;
	drain_eventfd(h->fd);
	serial__flush(&v->vm.serial);
}

static void on_timer(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, timer_h);

	(void)events;
	drain_eventfd(h->fd);
	if (v->metrics_fd >= 0)
		vmm__flush_metrics(v);
}

static void on_mailbox(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, mailbox_h);
	struct vmm_reply *reply;
	struct vmm_action *a = mailbox__take(&v->mailbox, &reply);

	(void)events;
	if (!a)
		return;
	vmm__handle_action(v, a, reply);
	mailbox__done(&v->mailbox);
}

static int setup_signals(struct vmm *v)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	/* blocked here, so every thread inherits it; vCPU threads unblock the kick */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	v->signal_h =
		(struct event_handler){ signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK), on_signal };
	if (v->signal_h.fd < 0)
		return error__set(-errno, "signalfd: %s", strerror(errno));
	return vcpu__init_signals();
}

static int setup_timer(struct vmm *v)
{
	struct itimerspec its = { .it_interval = { VMM_METRICS_PERIOD_S, 0 },
				  .it_value = { VMM_METRICS_PERIOD_S, 0 } };

	v->timer_h =
		(struct event_handler){ timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK),
					on_timer };
	if (v->timer_h.fd < 0 || timerfd_settime(v->timer_h.fd, 0, &its, NULL) < 0)
		return error__set(-errno, "timerfd: %s", strerror(errno));
	return 0;
}

/* Opens a file or a named pipe to append to without ever blocking. */
static int open_sink(const char *path)
{
	struct stat st;
	int flags = O_WRONLY | O_CREAT | O_APPEND;

	/* a pipe opened read-write needs no reader to open, and never returns ENXIO */
	if (!stat(path, &st) && S_ISFIFO(st.st_mode))
		flags = O_RDWR;
	return open(path, flags | O_NONBLOCK | O_CLOEXEC, 0640);
}

int vmm__open_metrics(struct vmm *v, const char *path)
{
	int fd = open_sink(path);

	if (fd < 0)
		return error__set(-errno, "metrics file %s: %s", path, strerror(errno));
	if (v->metrics_fd >= 0)
		close(v->metrics_fd);
	v->metrics_fd = fd;
	return 0;
}

int vmm__init(struct vmm *v, struct vm_config *cfg, const struct vm_options *opts, bool api)
{
	int ret;

	memset(v, 0, sizeof(*v));
	v->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	v->opts = *opts;
	v->api = api;
	v->metrics_fd = -1;
	v->stdin_h.fd = -1;
	v->out_timer_h.fd = -1;
	v->m.panic_count = 0;
	ret = mailbox__init(&v->mailbox);
	if (ret)
		return error__set(ret, "eventfd: %s", strerror(-ret));
	ret = event_loop__init(&v->loop);
	if (ret)
		return error__set(ret, "epoll: %s", strerror(-ret));
	ret = setup_signals(v);
	if (!ret)
		ret = setup_timer(v);
	if (!ret && v->cfg.has_metrics)
		ret = vmm__open_metrics(v, v->cfg.metrics.metrics_path);
	if (ret)
		return ret;
	v->mailbox_h = (struct event_handler){ v->mailbox.evtfd, on_mailbox };
	ret = event_loop__add(&v->loop, &v->signal_h, EPOLLIN);
	if (!ret)
		ret = event_loop__add(&v->loop, &v->timer_h, EPOLLIN);
	if (!ret && api)
		ret = event_loop__add(&v->loop, &v->mailbox_h, EPOLLIN);
	if (ret)
		return error__set(ret, "epoll_ctl: %s", strerror(-ret));
	return 0;
}

/* Guest input: stdin, raw, when it is a terminal we may use. */
static void setup_tty(struct vmm *v)
{
	struct termios t;
	pid_t fg;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &v->saved_tty) < 0)
		return;
	/* a background job must leave its controlling terminal alone (it would get SIGTTOU) */
	fg = tcgetpgrp(STDIN_FILENO);
	if (fg >= 0 && fg != getpgrp())
		return;
	t = v->saved_tty;
	t.c_lflag &= (tcflag_t) ~(ICANON | ECHO | ISIG | IEXTEN);
	t.c_iflag &= (tcflag_t) ~(ICRNL | IXON);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (!tcsetattr(STDIN_FILENO, TCSANOW, &t))
		v->tty_raw = true;
}

static void restore_tty(struct vmm *v)
{
	if (v->tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &v->saved_tty);
	v->tty_raw = false;
}

static int watch_vm(struct vmm *v)
{
	int ret;

	v->stop_h = (struct event_handler){ v->vm.stop_evt, on_stop };
	v->rx_ready_h = (struct event_handler){ v->vm.serial_rx_ready_fd, on_rx_ready };
	v->out_kick_h = (struct event_handler){ v->vm.serial_out_kick_fd, on_out_kick };
	v->out_timer_h =
		(struct event_handler){ timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK),
					on_out_timer };
	if (v->out_timer_h.fd < 0)
		return error__set(-errno, "timerfd: %s", strerror(errno));
	ret = event_loop__add(&v->loop, &v->stop_h, EPOLLIN);
	if (!ret)
		ret = event_loop__add(&v->loop, &v->rx_ready_h, EPOLLIN);
	if (!ret)
		ret = event_loop__add(&v->loop, &v->out_kick_h, EPOLLIN);
	if (!ret)
		ret = event_loop__add(&v->loop, &v->out_timer_h, EPOLLIN);
	if (!ret)
		ret = vm__watch_devices(&v->vm, &v->loop);
	if (!ret && v->tty_raw) {
		v->stdin_h = (struct event_handler){ STDIN_FILENO, on_stdin };
		ret = event_loop__add(&v->loop, &v->stdin_h, EPOLLIN);
		v->stdin_armed = !ret;
	}
	if (ret)
		return error__set(ret, "epoll_ctl: %s", strerror(-ret));
	return 0;
}

/* A start or a load that failed half-way: nothing half-made stays (the VM's fds leave the
 * loop as they are closed). */
static void undo_start(struct vmm *v)
{
	if (v->stdin_armed)
		event_loop__del(&v->loop, &v->stdin_h);
	v->stdin_armed = false;
	if (v->out_timer_h.fd >= 0)
		close(v->out_timer_h.fd);
	v->out_timer_h.fd = -1;
	restore_tty(v);
	prefetch__stop(&v->prefetch);
	vm__destroy(&v->vm);
	v->vm_created = false;
}

int vmm__start_instance(struct vmm *v)
{
	uint64_t t0 = log__wall_us_since_start();
	int ret;

	if (v->state != INSTANCE_NOT_STARTED)
		return error__set(-EBUSY, "the microVM is already running");
	v->opts.boot_timer_origin_us = v->api ? t0 : 0;
	ret = vm__create(&v->vm, &v->cfg, &v->opts);
	if (ret)
		return ret;
	v->vm_created = true;
	setup_tty(v);
	ret = watch_vm(v);
	if (!ret)
		ret = vm__start(&v->vm);
	/*
	 * The VM is built and its vCPU threads run (with their own filters: a thread inherits
	 * its creator's, so this one's comes after them), before this thread serves any
	 * device event.
	 */
	if (!ret)
		ret = seccomp__apply(SECCOMP_THREAD_VMM);
	if (ret) {
		undo_start(v);
		return ret;
	}
	v->state = INSTANCE_RUNNING;
	v->lat.instance_start = log__wall_us_since_start() - t0;
	return 0;
}

/* Nothing but the logger, metrics and serial output configured: a snapshot may load. */
static bool fresh(const struct vm_config *cfg)
{
	return !cfg->boot.kernel_image_path && !cfg->nr_drives && !cfg->nr_net && !cfg->has_vsock &&
	       !cfg->has_entropy && !cfg->has_balloon;
}

int vmm__load_snapshot(struct vmm *v, const struct snapshot_load_params *p)
{
	uint64_t t0 = log__wall_us_since_start();
	int ret;

	if (v->state != INSTANCE_NOT_STARTED)
		return error__set(-EBUSY, "a snapshot loads only into a fresh Ember: this one's "
				  "microVM is already running");
	if (!fresh(&v->cfg))
		return error__set(-EINVAL, "a snapshot loads only into a fresh Ember: this one has "
				  "a boot source, drives, network interfaces, vsock, entropy or a "
				  "balloon configured");
	v->opts.boot_timer_origin_us = 0;
	ret = snapshot__load(&v->vm, &v->cfg, &v->opts, p, &v->prefetch);
	if (ret)
		return ret;
	v->vm_created = true;
	setup_tty(v);
	ret = watch_vm(v);
	/* the vCPUs park at once when the VM is to stay paused */
	if (!ret && !p->resume_vm)
		vm__start_paused(&v->vm);
	if (!ret)
		ret = vm__start(&v->vm);
	if (!ret && !p->resume_vm)
		ret = vm__pause(&v->vm, VMM_PAUSE_TIMEOUT_MS);
	if (!ret)
		ret = seccomp__apply(SECCOMP_THREAD_VMM);
	if (ret) {
		undo_start(v);
		return ret;
	}
	v->state = p->resume_vm ? INSTANCE_RUNNING : INSTANCE_PAUSED;
	v->diff_base = p->track_dirty_pages; /* the loaded memory is the next Diff's base */
	v->lat.load_snapshot = log__wall_us_since_start() - t0;
	return 0;
}

int vmm__create_snapshot(struct vmm *v, const struct snapshot_create_params *p)
{
	uint64_t t0 = log__wall_us_since_start();
	int ret;

	if (v->state != INSTANCE_PAUSED)
		return error__set(-EINVAL, "a snapshot is taken only while the microVM is paused "
				  "(PATCH /vm {\"state\": \"Paused\"})");
	ret = snapshot__create(&v->vm, &v->cfg, p, &v->diff_base);
	if (!ret && p->type == SNAPSHOT_TYPE_DIFF)
		v->lat.diff_create_snapshot = log__wall_us_since_start() - t0;
	else if (!ret)
		v->lat.full_create_snapshot = log__wall_us_since_start() - t0;
	return ret;
}

int vmm__run(struct vmm *v)
{
	int ret = 0;

	while (!ret && !v->done) {
		ret = event_loop__run_once(&v->loop, -1);
		if (ret > 0)
			ret = 0;
	}
	if (v->vm_created) {
		vm__stop_vcpus(&v->vm);
		serial__flush(&v->vm.serial);
	}
	restore_tty(v);
	mailbox__close(&v->mailbox);
	if (ret)
		return error__set_default(ret, "VMM loop: %s", strerror(-ret));
	return 0;
}

int vmm__exit_code(const struct vmm *v)
{
	return v->vm_created ? vm__exit_code(&v->vm) : v->exit_code;
}

void vmm__destroy(struct vmm *v, bool for_exit)
{
	if (v->metrics_fd >= 0) {
		vmm__flush_metrics(v);
		close(v->metrics_fd);
		v->metrics_fd = -1;
	}
	prefetch__stop(&v->prefetch);
	if (v->vm_created) {
		if (for_exit)
			vm__destroy_for_exit(&v->vm);
		else
			vm__destroy(&v->vm);
		v->vm_created = false;
	}
	restore_tty(v);
	event_loop__destroy(&v->loop);
	mailbox__destroy(&v->mailbox);
	if (v->signal_h.fd >= 0)
		close(v->signal_h.fd);
	if (v->timer_h.fd >= 0)
		close(v->timer_h.fd);
	if (v->out_timer_h.fd >= 0)
		close(v->out_timer_h.fd);
	v->signal_h.fd = v->timer_h.fd = v->out_timer_h.fd = -1;
	config__free(&v->cfg);
}
