// SPDX-License-Identifier: Apache-2.0
/*
 * The API server thread: one epoll loop over the listening Unix socket, the clients and a
 * stop eventfd. Every socket is non-blocking; a client's bytes go through its own parser and
 * each complete request is answered before the next one on that connection is parsed, which
 * keeps pipelined answers in order and bounds what a client can make the server buffer.
 *
 * System calls the API thread makes once it runs, for its seccomp filter:
 *   epoll_wait (glibc may issue epoll_pwait), epoll_ctl   the loop
 *   accept4 (SOCK_NONBLOCK | SOCK_CLOEXEC)                 new clients
 *   read                                                  client bytes, the stop eventfd
 *   sendmsg (MSG_NOSIGNAL | MSG_DONTWAIT)                  every response
 *   close                                                 clients
 *   clock_gettime                                         deadlines (vDSO, normally no syscall)
 *   mmap, munmap, brk, madvise                            malloc/free
 *   write                                                 the logger
 *   futex, exit, rt_sigprocmask                           thread start, end, locks
 * plus whatever the handler needs to reach the VMM thread (an eventfd write, futex).
 * socket, connect, lstat, unlink, bind, listen, epoll_create1, eventfd2 and the thread
 * creation run on the caller's thread in api_server__init(), __start() and __stop().
 */
#include "api/server.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jail/seccomp.h"
#include "vmm/log.h"

#define IN_BUF_SIZE 16384     /* one read(); the parser keeps what it needs */
#define REQUESTS_PER_WAKEUP 8 /* then the other clients get their turn */
#define ACCEPTS_PER_WAKEUP 32
#define ACCEPT_PAUSE_MS 100 /* after EMFILE and the like */
#define LISTEN_BACKLOG 128
#define ONE_SHOT_MAX (HTTP_HEAD_MAX + 128)

enum phase {
	PHASE_READ,  /* a request is expected or under way: request_timeout_ms */
	PHASE_WRITE, /* a response waits for the client to take it: request_timeout_ms */
	PHASE_IDLE,  /* keep-alive, between requests: idle_timeout_ms */
	PHASE_NEXT,  /* a request was answered: whatever comes next gets a fresh deadline */
};

enum step {
	STEP_OUTPUT,  /* a response (or 100 Continue) is queued */
	STEP_READ,    /* every buffered byte is parsed: read more */
	STEP_BACKLOG, /* out of budget with bytes left: come back without waiting */
};

struct api_client {
	struct event_handler h;
	struct api_server *srv;
	struct api_client *next;
	struct api_client *prev;
	struct http_parser parser;
	size_t in_off; /* in[in_off, in_len) is read but not yet parsed */
	size_t in_len;
	char head[HTTP_HEAD_MAX]; /* the response being sent: head, then body */
	size_t head_len;
	char *body;
	size_t body_len;
	size_t out_off;
	bool close_after; /* close once the response is sent */
	bool served;	  /* a request has completed on this connection */
	bool backlog;
	uint32_t events; /* as registered with epoll */
	enum phase phase;
	uint64_t deadline; /* CLOCK_MONOTONIC ms; 0: none */
	char in[IN_BUF_SIZE];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void count(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

void api_server__stats(const struct api_server *s, struct api_server_stats *out)
{
	/* struct api_server_stats is nothing but uint64_t counters. */
	const uint64_t *src = (const uint64_t *)&s->stats;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/* ---- sending ---- */

/* One non-blocking attempt, for a client that will be closed right after. */
static void send_once(int fd, int status, const char *msg)
{
	struct http_response resp = { .status = status };
	char buf[ONE_SHOT_MAX];
	struct iovec iov = { .iov_base = buf };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int n;

	resp.body = http__fault_body(msg, &resp.body_len);
	n = http__format_response(buf, sizeof(buf), &resp, false);
	iov.iov_len = n > 0 ? (size_t)n : 0;
	if (n > 0 && sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("API: could not send %d: %s", status, strerror(errno));
	free(resp.body);
}

/*
 * Closes a connection that got its one answer: what the client already sent is read and
 * dropped first, since a Unix socket closed with unread data resets the peer, which would
 * then lose the answer too.
 */
static void close_gently(int fd)
{
	char sink[4096];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	close(fd);
}

static bool out_pending(const struct api_client *c)
{
	return c->out_off < c->head_len + c->body_len;
}

/* 0 when everything is sent, -EAGAIN when the socket is full, or another -errno. */
static int flush(struct api_client *c)
{
	while (out_pending(c)) {
		struct iovec iov[2];
		struct msghdr msg = { .msg_iov = iov };
		size_t boff = c->out_off > c->head_len ? c->out_off - c->head_len : 0;
		ssize_t n;

		if (c->out_off < c->head_len)
			iov[msg.msg_iovlen++] =
				(struct iovec){ c->head + c->out_off, c->head_len - c->out_off };
		if (c->body_len > boff)
			iov[msg.msg_iovlen++] =
				(struct iovec){ c->body + boff, c->body_len - boff };
		n = sendmsg(c->h.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
		c->out_off += (size_t)n;
	}
	free(c->body);
	c->body = NULL;
	c->head_len = c->body_len = c->out_off = 0;
	return 0;
}

/* Takes resp->body. */
static void queue_response(struct api_client *c, struct http_response *resp, bool keep_alive)
{
	int n = http__format_head(c->head, sizeof(c->head), resp, keep_alive);

	if (n < 0) {
		log_error("API: cannot format a %d response: %s", resp->status, strerror(-n));
		free(resp->body);
		resp->body = NULL;
		resp->status = 500;
		keep_alive = false;
		n = http__format_head(c->head, sizeof(c->head), resp, keep_alive);
	}
	c->head_len = (size_t)n;
	c->body_len = resp->head_only ? 0 : http__body_len(resp);
	c->body = resp->body;
	if (!c->body_len) {
		free(c->body);
		c->body = NULL;
	}
	c->out_off = 0;
	c->close_after = !keep_alive;
}

static void queue_continue(struct api_client *c)
{
	memcpy(c->head, HTTP_CONTINUE, sizeof(HTTP_CONTINUE) - 1);
	c->head_len = sizeof(HTTP_CONTINUE) - 1;
	c->out_off = 0;
}

/* ---- requests ---- */

static void handle_request(struct api_client *c)
{
	struct api_server *s = c->srv;
	const struct http_request *req = http_parser__request(&c->parser);
	struct http_response resp = { .status = 500 };

	count(&s->stats.requests);
	c->served = true;
	c->phase = PHASE_NEXT;
	s->handle(s->opaque, req, &resp);
	if (resp.status < 200 || resp.status > 599) {
		log_error("API: handler returned status %d for %s %s", resp.status,
			  req->method_name, req->path);
		free(resp.body);
		resp.body = NULL;
		resp.body_len = 0;
		resp.status = 500;
	}
	log_debug("API: %s %s -> %d", req->method_name, req->path, resp.status);
	/* RFC 9110 9.3.2: a response to HEAD has the headers of a GET, never a body */
	resp.head_only = !strcmp(req->method_name, "HEAD");
	queue_response(c, &resp, req->keep_alive && !resp.close);
}

static void count_parse_error(struct api_server_stats *st, int status)
{
	count(&st->parse_errors);
	switch (status) {
	case 413:
		count(&st->parse_errors_413);
		break;
	case 414:
		count(&st->parse_errors_414);
		break;
	case 431:
		count(&st->parse_errors_431);
		break;
	case 501:
		count(&st->parse_errors_501);
		break;
	case 505:
		count(&st->parse_errors_505);
		break;
	default:
		count(&st->parse_errors_400);
		break;
	}
}

static void handle_parse_error(struct api_client *c)
{
	struct http_response resp = { 0 };
	const char *msg;
	int status = http_parser__error(&c->parser, &msg);

	count_parse_error(&c->srv->stats, status);
	log_warn("API: bad request (%d): %s", status, msg);
	http__set_fault(&resp, status, "%s", msg);
	queue_response(c, &resp, false);
}

/* Parses what is buffered, up to the first complete request or error. */
static enum step process(struct api_client *c, unsigned int *budget)
{
	while (c->in_off < c->in_len) {
		enum http_parse_result r;
		size_t used;

		if (!*budget)
			return STEP_BACKLOG;
		r = http_parser__feed(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &used);
		c->in_off += used;
		if (r == HTTP_PARSE_DONE) {
			(*budget)--;
			handle_request(c);
			return STEP_OUTPUT;
		}
		if (r == HTTP_PARSE_ERROR) {
			handle_parse_error(c);
			return STEP_OUTPUT;
		}
	}
	c->in_off = c->in_len = 0;
	if (http_parser__take_continue(&c->parser)) {
		queue_continue(c);
		return STEP_OUTPUT;
	}
	return STEP_READ;
}

/* >0 bytes read, 0 at EOF, -EAGAIN, or another -errno. Only called with `in` empty. */
static ssize_t fill(struct api_client *c)
{
	ssize_t n;

	do
		n = read(c->h.fd, c->in, sizeof(c->in));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
	c->in_off = 0;
	c->in_len = (size_t)n;
	return n;
}

/* ---- clients ---- */

static void close_client(struct api_client *c)
{
	struct api_server *s = c->srv;

	event_loop__del(&s->loop, &c->h);
	close(c->h.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nr_clients--;
	http_parser__destroy(&c->parser);
	free(c->body);
	free(c);
}

static void end_of_stream(struct api_client *c, ssize_t ret)
{
	if (http_parser__in_progress(&c->parser)) {
		count(&c->srv->stats.connections_closed_mid_request);
		log_debug("API: client left in the middle of a request");
	} else if (ret < 0) {
		log_debug("API: client read error: %s", strerror((int)-ret));
	}
	close_client(c);
}

static enum phase current_phase(const struct api_client *c)
{
	if (out_pending(c))
		return PHASE_WRITE;
	if (!c->served || c->backlog || http_parser__in_progress(&c->parser))
		return PHASE_READ;
	return PHASE_IDLE;
}

/* After serving: the deadline for the phase the client is now in, and the epoll mask. */
static void update(struct api_client *c)
{
	const struct api_server_config *cfg = &c->srv->cfg;
	enum phase ph = current_phase(c);
	uint32_t events = ph == PHASE_WRITE ? EPOLLOUT : EPOLLIN;

	if (ph != c->phase) {
		c->phase = ph;
		if (ph != PHASE_IDLE)
			c->deadline = now_ms() + cfg->request_timeout_ms;
		else
			c->deadline = cfg->idle_timeout_ms ? now_ms() + cfg->idle_timeout_ms : 0;
	}
	if (events != c->events && !event_loop__mod(&c->srv->loop, &c->h, events))
		c->events = events;
}

static void serve(struct api_client *c)
{
	unsigned int budget = REQUESTS_PER_WAKEUP;
	enum step step;
	ssize_t n;

	c->backlog = false;
	for (;;) {
		n = flush(c);
		if (n == -EAGAIN)
			break;
		if (n < 0 || c->close_after) {
			close_client(c);
			return;
		}
		step = process(c, &budget);
		if (step == STEP_BACKLOG) {
			c->backlog = true;
			break;
		}
		if (step == STEP_OUTPUT)
			continue;
		n = fill(c);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			end_of_stream(c, n);
			return;
		}
	}
	update(c);
}

static void on_client(struct event_handler *h, uint32_t events)
{
	(void)events; /* reads and writes just try; EAGAIN says when to stop */
	serve(container_of(h, struct api_client, h));
}

static int add_client(struct api_server *s, int fd)
{
	struct api_client *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	ret = http_parser__init(&c->parser, s->cfg.header_limit, s->cfg.body_limit);
	if (ret)
		goto err_free;
	c->srv = s;
	c->h.fd = fd;
	c->h.fn = on_client;
	c->events = EPOLLIN;
	c->phase = PHASE_READ;
	c->deadline = now_ms() + s->cfg.request_timeout_ms;
	ret = event_loop__add(&s->loop, &c->h, c->events);
	if (ret)
		goto err_parser;
	c->next = s->clients;
	if (s->clients)
		s->clients->prev = c;
	s->clients = c;
	s->nr_clients++;
	return 0;
err_parser:
	http_parser__destroy(&c->parser);
err_free:
	free(c);
	return ret;
}

/* ---- the listener ---- */

static void pause_accept(struct api_server *s, int err)
{
	log_warn("API: accept failed: %s; pausing for %d ms", strerror(err), ACCEPT_PAUSE_MS);
	if (!event_loop__mod(&s->loop, &s->listen_h, 0))
		s->accept_paused_until = now_ms() + ACCEPT_PAUSE_MS;
}

static void resume_accept(struct api_server *s)
{
	if (!s->accept_paused_until || now_ms() < s->accept_paused_until)
		return;
	if (!event_loop__mod(&s->loop, &s->listen_h, EPOLLIN))
		s->accept_paused_until = 0;
}

static void take_client(struct api_server *s, int fd)
{
	count(&s->stats.connections_accepted);
	if (s->nr_clients >= s->cfg.max_clients) {
		count(&s->stats.connections_rejected);
		log_warn("API: %u clients already; rejecting a connection", s->nr_clients);
		send_once(fd, 503, "too many API clients");
		close_gently(fd);
		return;
	}
	if (add_client(s, fd)) {
		send_once(fd, 503, "out of memory for an API client");
		close_gently(fd);
	}
}

static void on_listen(struct event_handler *h, uint32_t events)
{
	struct api_server *s = container_of(h, struct api_server, listen_h);

	(void)events;
	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			take_client(s, fd);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO) {
			pause_accept(s, errno);
			return;
		}
	}
}

static void on_stop(struct event_handler *h, uint32_t events)
{
	struct api_server *s = container_of(h, struct api_server, stop_h);
	uint64_t v;

	(void)events;
	if (read(s->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_error("API: stop eventfd: %s", strerror(errno));
	s->stopping = true;
}

/* ---- the thread ---- */

static int next_timeout(const struct api_server *s)
{
	uint64_t now = now_ms(), next = UINT64_MAX;

	if (s->accept_paused_until)
		next = s->accept_paused_until;
	for (const struct api_client *c = s->clients; c; c = c->next) {
		if (c->backlog)
			return 0;
		if (c->deadline && c->deadline < next)
			next = c->deadline;
	}
	if (next == UINT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static void expire(struct api_server *s)
{
	uint64_t now = now_ms();
	struct api_client *c, *next;

	for (c = s->clients; c; c = next) {
		next = c->next;
		if (!c->deadline || now < c->deadline)
			continue;
		if (c->phase != PHASE_IDLE) {
			count(&s->stats.connections_timed_out);
			log_warn("API: dropping a client that took over %u ms to %s",
				 s->cfg.request_timeout_ms,
				 c->phase == PHASE_WRITE ? "take a response" : "send a request");
		}
		if (c->phase == PHASE_READ && http_parser__in_progress(&c->parser))
			send_once(c->h.fd, 408, "request timed out");
		close_client(c);
	}
}

static void run_backlog(struct api_server *s)
{
	struct api_client *c, *next;

	for (c = s->clients; c; c = next) {
		next = c->next;
		if (c->backlog)
			serve(c);
	}
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;

	log__set_thread_tag("api");
	/* before the first request: from here on the clients' bytes are untrusted input */
	s->thread_ret = seccomp__apply(SECCOMP_THREAD_API);
	if (s->thread_ret)
		log_error("API: %s", error__get());
	sem_post(&s->thread_ready);
	if (s->thread_ret)
		return NULL;
	log_info("API server listening on %s", s->path);
	while (!s->stopping) {
		int ret = event_loop__run_once(&s->loop, next_timeout(s));

		if (ret < 0) {
			log_error("API: epoll_wait: %s; the API server stops", strerror(-ret));
			break;
		}
		resume_accept(s);
		run_backlog(s);
		expire(s);
	}
	return NULL;
}

/* ---- set-up and tear-down, on the caller's thread ---- */

/* Removes a socket file left by a dead process; refuses one a live server listens on. */
static int remove_stale_socket(const char *path, const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		return error__set(-errno, "API socket %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return error__set(-EEXIST, "API socket path %s exists and is not a socket", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return error__set(-errno, "API socket probe: %s", strerror(errno));
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) ? -errno : 0;
	close(fd);
	if (ret == 0 || ret == -EAGAIN || ret == -EINPROGRESS)
		return error__set(-EADDRINUSE, "API socket %s is in use by a running server", path);
	if (ret != -ECONNREFUSED)
		return error__set(ret, "API socket %s: cannot check it: %s", path, strerror(-ret));
	if (unlink(path) && errno != ENOENT)
		return error__set(-errno, "cannot remove the stale API socket %s: %s", path,
				  strerror(errno));
	log_info("API: removed the stale socket %s", path);
	return 0;
}

static int open_listener(struct api_server *s)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int ret;

	memcpy(addr.sun_path, s->path, strlen(s->path) + 1);
	ret = remove_stale_socket(s->path, &addr);
	if (ret)
		return ret;
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return error__set(-errno, "API socket: %s", strerror(errno));
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr))) {
		ret = error__set(-errno, "cannot bind the API socket %s: %s", s->path,
				 strerror(errno));
		goto err_close;
	}
	if (listen(s->listen_fd, LISTEN_BACKLOG)) {
		ret = error__set(-errno, "cannot listen on the API socket %s: %s", s->path,
				 strerror(errno));
		goto err_unlink;
	}
	return 0;
err_unlink:
	unlink(s->path);
err_close:
	close(s->listen_fd);
	s->listen_fd = -1;
	return ret;
}

static int apply_config(struct api_server *s, const struct api_server_config *cfg)
{
	struct http_parser probe;
	int ret;

	if (!cfg->socket_path || !cfg->socket_path[0])
		return error__set(-EINVAL, "the API socket path is empty");
	if (strlen(cfg->socket_path) >= sizeof(s->path))
		return error__set(-ENAMETOOLONG, "the API socket path %s is longer than %zu bytes",
				  cfg->socket_path, sizeof(s->path) - 1);
	strcpy(s->path, cfg->socket_path);
	s->cfg = *cfg;
	s->cfg.socket_path = s->path;
	if (!s->cfg.max_clients)
		s->cfg.max_clients = API_MAX_CLIENTS_DEFAULT;
	if (!s->cfg.request_timeout_ms)
		s->cfg.request_timeout_ms = API_REQUEST_TIMEOUT_MS_DEFAULT;
	ret = http_parser__init(&probe, cfg->header_limit, cfg->body_limit);
	if (ret)
		return error__set(ret, "API HTTP limits (headers %zu, body %zu): %s",
				  cfg->header_limit, cfg->body_limit, strerror(-ret));
	s->cfg.header_limit = probe.header_limit;
	s->cfg.body_limit = probe.body_limit;
	http_parser__destroy(&probe);
	return 0;
}

int api_server__init(struct api_server *s, const struct api_server_config *cfg,
		     api_handler_fn handle, void *opaque)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->listen_fd = s->stop_fd = s->loop.epfd = -1;
	s->handle = handle;
	s->opaque = opaque;
	ret = apply_config(s, cfg);
	if (ret)
		return ret;
	ret = open_listener(s);
	if (ret)
		return ret;
	ret = event_loop__init(&s->loop);
	if (ret)
		goto err_listener;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		ret = -errno;
		goto err_loop;
	}
	s->listen_h = (struct event_handler){ .fd = s->listen_fd, .fn = on_listen };
	s->stop_h = (struct event_handler){ .fd = s->stop_fd, .fn = on_stop };
	ret = event_loop__add(&s->loop, &s->listen_h, EPOLLIN);
	if (!ret)
		ret = event_loop__add(&s->loop, &s->stop_h, EPOLLIN);
	if (ret)
		goto err_eventfd;
	s->initialised = true;
	return 0;
err_eventfd:
	close(s->stop_fd);
err_loop:
	event_loop__destroy(&s->loop);
err_listener:
	close(s->listen_fd);
	unlink(s->path);
	return error__set_default(ret, "API server set-up: %s", strerror(-ret));
}

int api_server__start(struct api_server *s)
{
	sigset_t all, old;
	int ret;

	if (!s->initialised || s->started)
		return -EINVAL;
	/* The thread starts with every signal blocked: they are the main thread's business. */
	sigfillset(&all);
	if (sem_init(&s->thread_ready, 0, 0))
		return error__set(-errno, "cannot start the API thread: %s", strerror(errno));
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&s->thread, NULL, api_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		sem_destroy(&s->thread_ready);
		return error__set(ret, "cannot start the API thread: %s", strerror(-ret));
	}
	while (sem_wait(&s->thread_ready) && errno == EINTR)
		;
	sem_destroy(&s->thread_ready);
	if (s->thread_ret) {
		pthread_join(s->thread, NULL);
		return error__set(s->thread_ret, "the API thread's seccomp filter: %s",
				  strerror(-s->thread_ret));
	}
	pthread_setname_np(s->thread, "api");
	s->started = true;
	return 0;
}

void api_server__stop(struct api_server *s)
{
	uint64_t one = 1;

	if (!s->initialised)
		return;
	if (s->started) {
		if (write(s->stop_fd, &one, sizeof(one)) < 0)
			log_error("API: cannot signal the API thread: %s", strerror(errno));
		pthread_join(s->thread, NULL);
		s->started = false;
	}
	while (s->clients)
		close_client(s->clients);
	event_loop__destroy(&s->loop);
	close(s->stop_fd);
	close(s->listen_fd);
	unlink(s->path);
	s->initialised = false;
}
