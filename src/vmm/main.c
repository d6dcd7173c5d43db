// SPDX-License-Identifier: Apache-2.0
/*
 * ember: parse the command line and the config, build the VM, run the VMM loop until the
 * guest stops, and exit with a code that says why. Only main() exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "api/config.h"
#include "vmm/cli.h"
#include "vmm/event_loop.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

struct vmm {
	struct vm vm;
	struct event_loop loop;
	struct event_handler stop_h;
	struct event_handler signal_h;
	struct event_handler stdin_h;
	struct event_handler rx_ready_h;
	bool stdin_armed;
	bool tty_raw;
	struct termios saved_tty;
	bool done;
};

static void on_stop(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, stop_h);
	uint64_t n;
	ssize_t r = read(h->fd, &n, sizeof(n));

	(void)r;
	(void)events;
	v->done = true;
}

static void on_signal(struct event_handler *h, uint32_t events)
{
	struct vmm *v = container_of(h, struct vmm, signal_h);
	struct signalfd_siginfo si;

	(void)events;
	if (read(h->fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("stopping on signal %u", si.ssi_signo);
	vm__request_stop(&v->vm, VM_STOP_SIGNAL, 128 + (int)si.ssi_signo);
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
	uint64_t n;
	ssize_t r = read(h->fd, &n, sizeof(n));

	(void)r;
	(void)events;
	arm_stdin(v, true);
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
	v->signal_h.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (v->signal_h.fd < 0)
		return error__set(-errno, "signalfd: %s", strerror(errno));
	v->signal_h.fn = on_signal;
	return vcpu__init_signals();
}

/* Guest input: stdin, raw, when it is a terminal. */
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
	v->vm.opts.serial_in_fd = STDIN_FILENO;
}

static void restore_tty(struct vmm *v)
{
	if (v->tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &v->saved_tty);
	v->tty_raw = false;
}

static int setup_loop(struct vmm *v)
{
	int ret = event_loop__init(&v->loop);

	if (ret)
		return error__set(ret, "epoll: %s", strerror(-ret));
	v->stop_h = (struct event_handler){ v->vm.stop_evt, on_stop };
	v->rx_ready_h = (struct event_handler){ v->vm.serial_rx_ready_fd, on_rx_ready };
	ret = event_loop__add(&v->loop, &v->stop_h, EPOLLIN);
	if (!ret)
		ret = event_loop__add(&v->loop, &v->signal_h, EPOLLIN);
	if (!ret)
		ret = event_loop__add(&v->loop, &v->rx_ready_h, EPOLLIN);
	if (!ret && v->tty_raw) {
		v->stdin_h = (struct event_handler){ STDIN_FILENO, on_stdin };
		ret = event_loop__add(&v->loop, &v->stdin_h, EPOLLIN);
		v->stdin_armed = !ret;
	}
	if (ret)
		return error__set(ret, "epoll_ctl: %s", strerror(-ret));
	return 0;
}

static int setup_logging(const struct cli_args *a, const struct vm_config *cfg)
{
	const char *path = a->log_path;
	enum log_level level = a->level;
	int ret;

	if (cfg->has_logger) {
		if (!path)
			path = cfg->logger.log_path;
		if (!a->level_set)
			level = cfg->logger.level;
	}
	log__set_level(level);
	log__set_options(a->show_level || (cfg->has_logger && cfg->logger.show_level),
			 a->show_log_origin || (cfg->has_logger && cfg->logger.show_log_origin));
	if (!path)
		return 0;
	ret = log__set_path(path);
	if (ret)
		return error__set(ret, "log file %s: %s", path, strerror(-ret));
	return 0;
}

static int run(struct vmm *v)
{
	int ret = vm__start(&v->vm);

	while (!ret && !v->done) {
		ret = event_loop__run_once(&v->loop, -1);
		if (ret > 0)
			ret = 0;
	}
	vm__stop_vcpus(&v->vm);
	if (ret)
		return error__set_default(ret, "VMM loop: %s", strerror(-ret));
	return 0;
}

static int fail(const char *what)
{
	const char *msg = error__get();

	fprintf(stderr, "ember: %s\n", msg[0] ? msg : what);
	return EMBER_EXIT_ERROR;
}

int main(int argc, char **argv)
{
	static struct vmm v;
	struct vm_options opts = { .serial_in_fd = -1 };
	struct vm_config cfg;
	struct cli_args args;
	int code;

	log__mark_process_start();
	if (cli__parse(argc, argv, &args))
		return fail("bad arguments");
	if (args.action == CLI_HELP) {
		fputs(cli__usage, stdout);
		return 0;
	}
	if (args.action == CLI_VERSION) {
		printf("ember %s\n", EMBER_VERSION);
		return 0;
	}
	log__init(args.id);
	config__init(&cfg);
	if (config__load_file(&cfg, args.config_file) || setup_logging(&args, &cfg) ||
	    setup_signals(&v)) {
		config__free(&cfg);
		return fail("configuration failed");
	}
	opts.boot_timer = args.boot_timer;
	opts.debug_exit = args.debug_exit;
	if (vm__create(&v.vm, &cfg, &opts)) {
		config__free(&cfg);
		return fail("cannot create the VM");
	}
	setup_tty(&v);
	if (setup_loop(&v) || run(&v)) {
		restore_tty(&v);
		vm__destroy(&v.vm);
		config__free(&cfg);
		return fail("the VM failed");
	}
	restore_tty(&v);
	code = vm__exit_code(&v.vm);
	log_info("VM stopped, exit code %d", code);
	event_loop__destroy(&v.loop);
	vm__destroy_for_exit(&v.vm);
	config__free(&cfg);
	log__close();
	return code;
}
