// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/api/server.c: a real server thread on a Unix socket in a temporary
 * directory, a stub handler, and clients on real sockets. Every test ends by checking that
 * the server still answers a normal request.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/server.h"
#include "vmm/log.h"

#define S(str) str, sizeof(str) - 1
#define IO_TIMEOUT_MS 5000
#define BIG_BODY (1024 * 1024)

struct fixture {
	char dir[64];
	char path[128];
	struct api_server srv;
	struct api_server_config cfg;
	bool running;
};

/* ---- the stub handler ---- */

static unsigned int handled;

static void handler(void *opaque, const struct http_request *req, struct http_response *resp)
{
	(void)opaque;
	__atomic_fetch_add(&handled, 1, __ATOMIC_RELAXED);
	if (!strcmp(req->path, "/slow"))
		usleep(100 * 1000);
	if (!strcmp(req->path, "/nocontent")) {
		resp->status = 204;
		return;
	}
	if (!strcmp(req->path, "/big")) {
		resp->body = malloc(BIG_BODY);
		memset(resp->body, 'x', BIG_BODY);
		resp->body_len = BIG_BODY;
		resp->status = 200;
		return;
	}
	if (!strcmp(req->path, "/bad-status")) {
		resp->status = 42;
		return;
	}
	resp->close = !strcmp(req->path, "/close");
	resp->status = req->method == HTTP_METHOD_OTHER ? 405 : 200;
	if (asprintf(&resp->body, "{\"method\":\"%s\",\"path\":\"%s\",\"body_len\":%zu}",
		     req->method_name, req->path, req->body_len) < 0)
		resp->body = NULL;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/ember-api-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/api.sock", f->dir);
	f->cfg.socket_path = f->path;
	*state = f;
	return 0;
}

static void start(struct fixture *f)
{
	assert_int_equal(api_server__init(&f->srv, &f->cfg, handler, NULL), 0);
	assert_int_equal(api_server__start(&f->srv), 0);
	f->running = true;
}

static void stop(struct fixture *f)
{
	if (f->running)
		api_server__stop(&f->srv);
	f->running = false;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stop(f);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- a small blocking client ---- */

struct conn {
	int fd;
	size_t len;
	size_t cap;
	char *buf;
};

struct response {
	int status;
	bool close;
	bool has_length;
	size_t body_len;
	char head[1024];
	char *body; /* NUL-terminated copy */
};

static int connect_to(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = IO_TIMEOUT_MS / 1000 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%.100s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static struct conn *conn_open_cap(struct fixture *f, size_t cap)
{
	struct conn *c = malloc(sizeof(*c));

	c->fd = connect_to(f->path);
	c->len = 0;
	c->cap = cap;
	c->buf = malloc(cap);
	return c;
}

static struct conn *conn_open(struct fixture *f)
{
	return conn_open_cap(f, 65536);
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->buf);
	free(c);
}

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void send_str(struct conn *c, const char *s)
{
	send_all(c->fd, s, strlen(s));
}

/* Reads more into c->buf: the byte count, 0 at EOF, -1 on error or timeout. */
static ssize_t conn_fill(struct conn *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);

	if (n > 0)
		c->len += (size_t)n;
	return n;
}

static const char *header_value(const char *head, const char *name)
{
	const char *p = strcasestr(head, name);

	return p ? p + strlen(name) : NULL;
}

/* Reads one response; false if the connection ended first. */
static bool read_response(struct conn *c, struct response *r)
{
	char *end;
	size_t head_len;
	const char *v;

	memset(r, 0, sizeof(*r));
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (conn_fill(c) <= 0)
			return false;
	head_len = (size_t)(end + 4 - c->buf);
	assert_true(head_len < sizeof(r->head));
	memcpy(r->head, c->buf, head_len);
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
	v = header_value(r->head, "\r\nConnection: ");
	r->close = v && !strncmp(v, "close", 5);
	v = header_value(r->head, "\r\nContent-Length: ");
	r->has_length = v != NULL;
	r->body_len = v ? strtoul(v, NULL, 10) : 0;
	while (c->len < head_len + r->body_len)
		if (conn_fill(c) <= 0)
			return false;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, c->buf + head_len, r->body_len);
	r->body[r->body_len] = '\0';
	c->len -= head_len + r->body_len;
	memmove(c->buf, c->buf + head_len + r->body_len, c->len);
	return true;
}

static void expect_response(struct conn *c, int status, const char *body_part)
{
	struct response r;

	assert_true(read_response(c, &r));
	assert_int_equal(r.status, status);
	if (body_part && !strstr(r.body, body_part))
		fail_msg("body %s lacks %s", r.body, body_part);
	free(r.body);
}

/* The peer closed: EOF (or a reset) with nothing more to read. */
static void expect_closed(struct conn *c)
{
	char b;
	ssize_t n;

	assert_int_equal(c->len, 0);
	n = recv(c->fd, &b, 1, 0);
	if (n < 0)
		assert_int_equal(errno, ECONNRESET);
	else
		assert_int_equal(n, 0);
}

static void assert_alive(struct fixture *f)
{
	struct conn *c = conn_open(f);

	send_str(c, "GET /alive HTTP/1.1\r\n\r\n");
	expect_response(c, 200, "\"path\":\"/alive\"");
	conn_close(c);
}

/* ---- tests ---- */

static void test_simple(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	struct response r;

	start(f);
	c = conn_open(f);
	send_str(c, "GET /machine-config HTTP/1.1\r\nHost: localhost\r\n\r\n");
	assert_true(read_response(c, &r));
	assert_int_equal(r.status, 200);
	assert_false(r.close);
	assert_string_equal(r.body,
			    "{\"method\":\"GET\",\"path\":\"/machine-config\",\"body_len\":0}");
	assert_non_null(strstr(r.head, "\r\nServer: Ember API\r\n"));
	assert_non_null(strstr(r.head, "\r\nContent-Type: application/json\r\n"));
	free(r.body);
	conn_close(c);
	assert_alive(f);
}

static void test_keep_alive(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	struct response r;

	start(f);
	c = conn_open(f);
	for (int i = 0; i < 5; i++) {
		send_str(c, "PUT /drives/root HTTP/1.1\r\nContent-Length: 4\r\n\r\n{}{}");
		expect_response(c, 200, "\"body_len\":4");
	}
	send_str(c, "GET /nocontent HTTP/1.1\r\n\r\n");
	assert_true(read_response(c, &r));
	assert_int_equal(r.status, 204);
	assert_false(r.has_length);
	free(r.body);
	send_str(c, "DELETE /vm HTTP/1.1\r\n\r\n");
	expect_response(c, 405, "DELETE");
	send_str(c, "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n");
	assert_true(read_response(c, &r));
	assert_true(r.close);
	free(r.body);
	expect_closed(c);
	conn_close(c);
	/* HTTP/1.0 closes by default; the handler can ask to close too. */
	c = conn_open(f);
	send_str(c, "GET /old HTTP/1.0\r\n\r\n");
	assert_true(read_response(c, &r));
	assert_true(r.close);
	free(r.body);
	expect_closed(c);
	conn_close(c);
	c = conn_open(f);
	send_str(c, "GET /close HTTP/1.1\r\n\r\n");
	assert_true(read_response(c, &r));
	assert_true(r.close);
	free(r.body);
	expect_closed(c);
	conn_close(c);
	assert_alive(f);
}

static void test_pipelined(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	start(f);
	c = conn_open(f);
	/* Twenty requests in one write; the slow one first: answers stay in order. */
	char all[4096] = "GET /slow HTTP/1.1\r\n\r\n";

	for (int i = 0; i < 19; i++) {
		char one[128];

		snprintf(one, sizeof(one), "PUT /p%d HTTP/1.1\r\nContent-Length: %d\r\n\r\n%0*d", i,
			 i + 1, i + 1, 0);
		strcat(all, one);
	}
	send_str(c, all);
	expect_response(c, 200, "\"path\":\"/slow\"");
	for (int i = 0; i < 19; i++) {
		char want[64];

		snprintf(want, sizeof(want), "\"path\":\"/p%d\",\"body_len\":%d", i, i + 1);
		expect_response(c, 200, want);
	}
	/* A bad request after good ones: the good ones are answered, then 400 and close. */
	send_str(c, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nBad Header\r\n\r\nGET /c "
		    "HTTP/1.1\r\n\r\n");
	expect_response(c, 200, "/a");
	expect_response(c, 400, "fault_message");
	expect_closed(c);
	conn_close(c);
	assert_alive(f);
}

static void test_half_closed_client_is_answered(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	start(f);
	c = conn_open(f);
	send_str(c, "GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\n");
	shutdown(c->fd, SHUT_WR);
	expect_response(c, 200, "/one");
	expect_response(c, 200, "/two");
	expect_closed(c);
	conn_close(c);
	assert_alive(f);
}

static void test_many_clients(void **state)
{
	struct fixture *f = *state;
	enum {
		N = 100
	};
	struct conn *c[N];
	struct api_server_stats st;

	f->cfg.max_clients = 128;
	start(f);
	for (int i = 0; i < N; i++)
		c[i] = conn_open(f);
	for (int i = 0; i < N; i++) {
		char req[64];

		snprintf(req, sizeof(req), "GET /client/%d HTTP/1.1\r\n\r\n", i);
		send_str(c[i], req);
	}
	/* Read in reverse: every client is answered, whatever the order. */
	for (int i = N - 1; i >= 0; i--) {
		char want[64];

		snprintf(want, sizeof(want), "\"path\":\"/client/%d\"", i);
		expect_response(c[i], 200, want);
		conn_close(c[i]);
	}
	api_server__stats(&f->srv, &st);
	assert_int_equal(st.connections_accepted, N);
	assert_int_equal(st.requests, N);
	assert_int_equal(st.connections_rejected, 0);
	assert_alive(f);
}

static void test_max_clients(void **state)
{
	struct fixture *f = *state;
	struct conn *c[4], *extra;
	struct response r;
	struct api_server_stats st;

	f->cfg.max_clients = 4;
	start(f);
	for (int i = 0; i < 4; i++) {
		c[i] = conn_open(f);
		send_str(c[i], "GET /held HTTP/1.1\r\n\r\n");
		expect_response(c[i], 200, "/held");
	}
	extra = conn_open(f);
	if (read_response(extra, &r)) {
		assert_int_equal(r.status, 503);
		assert_true(r.close);
		assert_string_equal(r.body, "{\"fault_message\":\"too many API clients\"}");
		free(r.body);
	}
	expect_closed(extra);
	conn_close(extra);
	api_server__stats(&f->srv, &st);
	assert_int_equal(st.connections_rejected, 1);
	/* The held clients still work; when one leaves, a new one gets in. */
	send_str(c[0], "GET /still HTTP/1.1\r\n\r\n");
	expect_response(c[0], 200, "/still");
	conn_close(c[0]);
	for (int tries = 0;; tries++) {
		struct conn *n = conn_open(f);

		send_str(n, "GET /alive HTTP/1.1\r\n\r\n");
		assert_true(read_response(n, &r));
		free(r.body);
		conn_close(n);
		if (r.status == 200)
			break;
		assert_true(tries < 100);
		usleep(10 * 1000);
	}
	for (int i = 1; i < 4; i++)
		conn_close(c[i]);
}

struct slow_arg {
	struct fixture *f;
	bool done;
	int status;
};

static void *slow_client(void *p)
{
	static const char req[] = "PUT /slowly HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
	struct slow_arg *a = p;
	struct conn *c = conn_open(a->f);
	struct response r;

	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		send_all(c->fd, req + i, 1);
		usleep(5 * 1000);
	}
	if (read_response(c, &r)) {
		a->status = r.status;
		free(r.body);
	}
	__atomic_store_n(&a->done, true, __ATOMIC_RELEASE);
	conn_close(c);
	return NULL;
}

static void test_slow_client_does_not_stall_others(void **state)
{
	struct fixture *f = *state;
	struct slow_arg arg = { .f = f };
	pthread_t t;
	struct conn *c;

	start(f);
	assert_int_equal(pthread_create(&t, NULL, slow_client, &arg), 0);
	usleep(20 * 1000);
	c = conn_open(f);
	for (int i = 0; i < 20; i++) {
		send_str(c, "GET /fast HTTP/1.1\r\n\r\n");
		expect_response(c, 200, "/fast");
	}
	/* All twenty answered while the slow client was still sending its ~300 ms request. */
	assert_false(__atomic_load_n(&arg.done, __ATOMIC_ACQUIRE));
	conn_close(c);
	pthread_join(t, NULL);
	assert_int_equal(arg.status, 200);
	assert_alive(f);
}

static void test_half_open_client_times_out(void **state)
{
	struct fixture *f = *state;
	struct conn *half, *silent, *c;
	struct response r;
	struct api_server_stats st;
	uint64_t t0;

	f->cfg.request_timeout_ms = 500;
	start(f);
	t0 = now_ms();
	half = conn_open(f);
	silent = conn_open(f);
	send_str(half, "GET /never HTTP/1.1\r\nHo");
	/* Others are served meanwhile. */
	c = conn_open(f);
	for (int i = 0; i < 5; i++) {
		send_str(c, "GET /fast HTTP/1.1\r\n\r\n");
		expect_response(c, 200, "/fast");
	}
	assert_true(now_ms() - t0 < 450);
	/* The half-open client gets 408 and is closed at the timeout. */
	assert_true(read_response(half, &r));
	assert_int_equal(r.status, 408);
	free(r.body);
	expect_closed(half);
	assert_true(now_ms() - t0 >= 490);
	assert_true(now_ms() - t0 < 2000);
	/* A connection that never sent a byte is simply closed. */
	expect_closed(silent);
	/* The keep-alive client was idle, not half-open: it is still served. */
	send_str(c, "GET /fast HTTP/1.1\r\n\r\n");
	expect_response(c, 200, "/fast");
	api_server__stats(&f->srv, &st);
	assert_int_equal(st.connections_timed_out, 2);
	conn_close(half);
	conn_close(silent);
	conn_close(c);
	assert_alive(f);
}

static void test_slowloris_is_dropped(void **state)
{
	static const char req[] = "GET /loris HTTP/1.1\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	struct fixture *f = *state;
	struct conn *c;
	uint64_t t0;
	size_t i;

	f->cfg.request_timeout_ms = 200;
	f->cfg.idle_timeout_ms = 150;
	start(f);
	c = conn_open(f);
	t0 = now_ms();
	/* One byte every 20 ms keeps the connection busy, but not past the timeout. */
	for (i = 0; i < sizeof(req) - 1; i++) {
		if (send(c->fd, req + i, 1, MSG_NOSIGNAL) != 1)
			break;
		usleep(20 * 1000);
	}
	assert_true(i < sizeof(req) - 1);
	assert_true(now_ms() - t0 < 1000);
	conn_close(c);
	/* With idle_timeout_ms, an idle keep-alive connection is closed too. */
	c = conn_open(f);
	send_str(c, "GET /once HTTP/1.1\r\n\r\n");
	expect_response(c, 200, "/once");
	expect_closed(c);
	conn_close(c);
	assert_alive(f);
}

/* Requests that keep completing are progress: each one gets its own deadline. */
static void test_busy_client_is_not_timed_out(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	uint64_t t0;

	f->cfg.request_timeout_ms = 150;
	start(f);
	c = conn_open(f);
	t0 = now_ms();
	send_str(c, "GET /busy HT");
	for (int i = 0; now_ms() - t0 < 500; i++) {
		usleep(40 * 1000);
		/* Completes the request under way and starts the next one. */
		send_str(c, "TP/1.1\r\n\r\nGET /busy HT");
		expect_response(c, 200, "/busy");
	}
	send_str(c, "TP/1.1\r\n\r\n");
	expect_response(c, 200, "/busy");
	conn_close(c);
	assert_alive(f);
}

/* Out of file descriptors: the server pauses accepting instead of spinning, then resumes. */
static void test_accept_emfile(void **state)
{
	static const char req[] = "GET /later HTTP/1.1\r\n\r\n";
	struct fixture *f = *state;
	struct rlimit old, low;
	struct response r;
	struct conn *c;
	int lowest;
	ssize_t sent;

	start(f);
	lowest = dup(0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest + 1; /* room for the client's socket, not the server's */
	/* No assertion until the limit is restored, or later tests would run out of fds. */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	c = conn_open(f);
	sent = send(c->fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
	usleep(150 * 1000);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	/*
	 * The kernel keeps the connection queued and it is answered once accept works again.
	 * (Valgrind emulates the limit by closing the accepted fd: that connection is reset.)
	 */
	if (sent == sizeof(req) - 1 && read_response(c, &r)) {
		assert_int_equal(r.status, 200);
		free(r.body);
	} else {
		assert_true(errno == ECONNRESET || errno == EPIPE);
	}
	conn_close(c);
	assert_alive(f); /* accepting resumed */
}

static void wait_for_stat(struct fixture *f, size_t field, uint64_t want)
{
	struct api_server_stats st;

	for (int i = 0; i < 200; i++) {
		api_server__stats(&f->srv, &st);
		if (((uint64_t *)&st)[field / sizeof(uint64_t)] == want)
			return;
		usleep(5 * 1000);
	}
	fail_msg("counter never reached %llu", (unsigned long long)want);
}

static void test_disconnect_mid_request(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	start(f);
	c = conn_open(f);
	send_str(c, "GET /gone HTTP/1.1\r\nHost: x");
	conn_close(c);
	wait_for_stat(f, offsetof(struct api_server_stats, connections_closed_mid_request), 1);
	c = conn_open(f);
	send_str(c, "PUT /gone HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"partial");
	conn_close(c);
	wait_for_stat(f, offsetof(struct api_server_stats, connections_closed_mid_request), 2);
	/* Gone while its response is being written: nothing breaks either. */
	c = conn_open(f);
	send_str(c, "GET /big HTTP/1.1\r\n\r\n");
	usleep(20 * 1000);
	conn_close(c);
	assert_alive(f);
}

static void test_large_response_partial_writes(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	struct response r;

	start(f);
	c = conn_open_cap(f, BIG_BODY + 4096);
	/* 1 MiB does not fit the socket buffer: the server must continue on EPOLLOUT. */
	send_str(c, "GET /big HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
	usleep(50 * 1000);
	assert_alive(f); /* the server is not stuck on the full socket */
	assert_true(read_response(c, &r));
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, BIG_BODY);
	assert_int_equal(r.body[BIG_BODY - 1], 'x');
	free(r.body);
	expect_response(c, 200, "/after");
	conn_close(c);
	assert_alive(f);
}

static void expect_error_and_close(struct fixture *f, const char *req, size_t len, int status)
{
	struct conn *c = conn_open(f);
	struct response r;

	send_all(c->fd, req, len);
	assert_true(read_response(c, &r));
	assert_int_equal(r.status, status);
	assert_true(r.close);
	assert_non_null(strstr(r.body, "{\"fault_message\":\""));
	free(r.body);
	expect_closed(c);
	conn_close(c);
}

static void test_limits(void **state)
{
	struct fixture *f = *state;
	static char big[HTTP_HEADER_LIMIT_DEFAULT + 128];
	struct api_server_stats st;
	int n;

	start(f);
	n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: %0*d\r\n\r\n",
		     HTTP_HEADER_LIMIT_DEFAULT, 0);
	expect_error_and_close(f, big, (size_t)n, 431);
	expect_error_and_close(f, S("PUT /x HTTP/1.1\r\nContent-Length: 51201\r\n\r\n"), 413);
	n = snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\n\r\n", HTTP_TARGET_MAX, 0);
	expect_error_and_close(f, big, (size_t)n, 414);
	expect_error_and_close(f, S("GET / HTTP/2.0\r\n\r\n"), 505);
	expect_error_and_close(f, S("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
	expect_error_and_close(f, S("GET /../etc HTTP/1.1\r\n\r\n"), 400);
	/* The largest body allowed goes through. */
	struct conn *c = conn_open(f);
	char *body = malloc(HTTP_BODY_LIMIT_DEFAULT);

	memset(body, 'b', HTTP_BODY_LIMIT_DEFAULT);
	send_str(c, "PUT /max HTTP/1.1\r\nContent-Length: 51200\r\n\r\n");
	send_all(c->fd, body, HTTP_BODY_LIMIT_DEFAULT);
	expect_response(c, 200, "\"body_len\":51200");
	free(body);
	conn_close(c);
	api_server__stats(&f->srv, &st);
	assert_int_equal(st.parse_errors, 6);
	assert_int_equal(st.parse_errors_400, 1);
	assert_int_equal(st.parse_errors_413, 1);
	assert_int_equal(st.parse_errors_414, 1);
	assert_int_equal(st.parse_errors_431, 1);
	assert_int_equal(st.parse_errors_501, 1);
	assert_int_equal(st.parse_errors_505, 1);
	assert_alive(f);
}

static void test_configured_limits(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	f->cfg.body_limit = 16;
	f->cfg.header_limit = 128;
	start(f);
	expect_error_and_close(f, S("PUT /x HTTP/1.1\r\nContent-Length: 17\r\n\r\n"), 413);
	c = conn_open(f);
	send_str(c, "PUT /x HTTP/1.1\r\nContent-Length: 16\r\n\r\n0123456789abcdef");
	expect_response(c, 200, "\"body_len\":16");
	conn_close(c);
	expect_error_and_close(f,
			       S("GET / HTTP/1.1\r\nX: 0123456789012345678901234567890123456789"
				 "0123456789012345678901234567890123456789012345678901234567"
				 "890123456789\r\n\r\n"),
			       431);
	assert_alive(f);
}

static void test_expect_continue(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	struct pollfd pfd;

	start(f);
	c = conn_open(f);
	send_str(c, "PUT /drives/x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
	while (c->len < sizeof(HTTP_CONTINUE) - 1)
		assert_true(conn_fill(c) > 0);
	assert_memory_equal(c->buf, HTTP_CONTINUE, sizeof(HTTP_CONTINUE) - 1);
	c->len -= sizeof(HTTP_CONTINUE) - 1;
	memmove(c->buf, c->buf + sizeof(HTTP_CONTINUE) - 1, c->len);
	/* Nothing else until the body comes. */
	pfd = (struct pollfd){ .fd = c->fd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 50), 0);
	send_str(c, "hello");
	expect_response(c, 200, "\"body_len\":5");
	/* Too large: 413 straight away, no 100. */
	send_str(c,
		 "PUT /drives/x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 99999\r\n\r\n");
	expect_response(c, 413, "fault_message");
	expect_closed(c);
	conn_close(c);
	assert_alive(f);
}

static void test_bad_handler_status(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	start(f);
	c = conn_open(f);
	send_str(c, "GET /bad-status HTTP/1.1\r\n\r\n");
	expect_response(c, 500, NULL);
	send_str(c, "GET /then HTTP/1.1\r\n\r\n");
	expect_response(c, 200, "/then");
	conn_close(c);
	assert_alive(f);
}

static void test_stop_with_clients(void **state)
{
	struct fixture *f = *state;
	struct conn *idle, *partial, *fresh;
	struct stat st;

	start(f);
	idle = conn_open(f);
	send_str(idle, "GET /one HTTP/1.1\r\n\r\n");
	expect_response(idle, 200, "/one");
	partial = conn_open(f);
	send_str(partial, "PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
	fresh = conn_open(f);
	usleep(20 * 1000);
	stop(f);
	assert_int_equal(stat(f->path, &st), -1);
	expect_closed(idle);
	expect_closed(partial);
	expect_closed(fresh);
	conn_close(idle);
	conn_close(partial);
	conn_close(fresh);
	/* The same path can be served again. */
	start(f);
	assert_alive(f);
}

static void test_socket_in_use(void **state)
{
	struct fixture *f = *state;
	struct api_server other;
	char long_path[200];
	int fd;

	start(f);
	error__clear();
	assert_int_equal(api_server__init(&other, &f->cfg, handler, NULL), -EADDRINUSE);
	assert_non_null(strstr(error__get(), "in use"));
	api_server__stop(&other); /* harmless after a failed init */
	assert_alive(f);
	stop(f);

	/* A stale socket (no one listening) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%.100s", f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	start(f);
	assert_alive(f);
	stop(f);

	/* A regular file is not removed. */
	fd = open(f->path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	error__clear();
	assert_int_equal(api_server__init(&other, &f->cfg, handler, NULL), -EEXIST);
	assert_non_null(strstr(error__get(), "not a socket"));
	unlink(f->path);

	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	struct api_server_config cfg = { .socket_path = long_path };

	assert_int_equal(api_server__init(&other, &cfg, handler, NULL), -ENAMETOOLONG);
	cfg.socket_path = "/nonexistent-dir/api.sock";
	error__clear();
	assert_int_equal(api_server__init(&other, &cfg, handler, NULL), -ENOENT);
	assert_non_null(strstr(error__get(), "cannot bind"));
	start(f);
	assert_alive(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_simple, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_closed_client_is_answered, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_does_not_stall_others, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_half_open_client_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slowloris_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_client_is_not_timed_out, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_mid_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accept_emfile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_response_partial_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_configured_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_handler_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_with_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_in_use, setup, teardown),
	};

	log__set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
