// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the API as the server runs it, minus the socket. The input is a stream
 * of pipelined requests; it goes through http_parser__feed(), and each complete request
 * through routes__handle(), which validates it and posts an action on the mailbox. On the
 * other side of the mailbox a responder thread plays the VMM thread: it keeps an instance
 * state (Not started, Running, Paused) and a configuration, applies the actions the way
 * vmm_action.c does (pre-boot only, run time only, InstanceStart once), and replies with a
 * plausible vmm_reply, so that every route and every reply path is reached.
 *
 * The first byte picks the parser limits and how the stream is split: bit 7 set gives small
 * limits (256-byte head, 512-byte body), bits 0-2 a chunking (0: the whole stream at once,
 * else 1, 2, 3, 7, 16, 61 or 256 bytes at a time). '@' is "default limits, whole stream".
 *
 * Checked for each request: a status from 200 to 599; 204 has no body; 405 has an Allow
 * header; every fault body is {"fault_message":"..."} in printable ASCII; the response
 * head fits HTTP_HEAD_MAX. At the end of each input, GET /vm/config's JSON parses back
 * through config__parse() to the same JSON whenever it names a kernel (config.c promises
 * that what is printed parses back). Everything allocated is freed.
 */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/config.h"
#include "api/http.h"
#include "api/routes.h"
#include "vmm/action.h"
#include "vmm/log.h"
#include "vmm/mailbox.h"

#define MAX_REQUESTS 64
#define MSG_AFTER_START "The requested operation is not supported after starting the microVM."
#define MSG_BEFORE_START "The requested operation is not supported before starting the microVM."

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_api: check failed: %s (line %d)\n", #cond,           \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static struct mailbox mailbox;

/*
 * The VMM thread's side: touched only by the responder while it handles an action, and by
 * the fuzzer between inputs, when no action is posted (the mailbox's lock orders the two).
 */
static struct {
	enum instance_state state;
	struct vm_config cfg;
} vmm;

/* ---- the responder: a stand-in for vmm__handle_action() ---- */

static void reply_error(struct vmm_reply *r, int status, const char *msg)
{
	r->status = status;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

static void set_config(struct vmm_action *a, struct vmm_reply *r)
{
	if (vmm.state != INSTANCE_NOT_STARTED) {
		reply_error(r, 400, MSG_AFTER_START);
		return;
	}
	/*
	 * The VMM takes the new configuration over, as vmm_action.c's set_config() does. Unlike
	 * Ember today, devices are accepted too, so that the router's paths for stored devices
	 * (a PUT that replaces one, clashes, a PATCH after the start) are reached.
	 */
	config__free(&vmm.cfg);
	vmm.cfg = a->cfg;
	memset(&a->cfg, 0, sizeof(a->cfg));
	r->status = 204;
}

static void instance_start(struct vmm_reply *r)
{
	if (vmm.state != INSTANCE_NOT_STARTED)
		reply_error(r, 400, MSG_AFTER_START);
	else if (!vmm.cfg.boot.kernel_image_path)
		reply_error(r, 400, "InstanceStart: no kernel: configure boot-source first");
	else if (vmm.cfg.boot.kernel_image_path[0] != '/')
		reply_error(r, 400, "InstanceStart: kernel image: No such file or directory");
	else {
		vmm.state = INSTANCE_RUNNING;
		r->status = 204;
	}
}

/* Pause, resume, Ctrl-Alt-Del and device PATCH: run time only. */
static void run_time(const struct vmm_action *a, struct vmm_reply *r)
{
	if (vmm.state == INSTANCE_NOT_STARTED) {
		reply_error(r, 400, MSG_BEFORE_START);
		return;
	}
	if (a->type == VMM_ACTION_PAUSE)
		vmm.state = INSTANCE_PAUSED;
	else if (a->type == VMM_ACTION_RESUME)
		vmm.state = INSTANCE_RUNNING;
	check(a->type != VMM_ACTION_PATCH_DEVICE || a->device_id[0]);
	r->status = 204;
}

static void handle(struct vmm_action *a, struct vmm_reply *r)
{
	r->status = 500;
	r->msg[0] = '\0';
	switch (a->type) {
	case VMM_ACTION_GET_INFO:
		r->status = 200;
		break;
	case VMM_ACTION_GET_CONFIG:
		r->status = config__copy(&r->cfg, &vmm.cfg) ? 500 : 200;
		break;
	case VMM_ACTION_SET_CONFIG:
		set_config(a, r);
		break;
	case VMM_ACTION_INSTANCE_START:
		instance_start(r);
		break;
	case VMM_ACTION_PATCH_DEVICE:
	case VMM_ACTION_CTRL_ALT_DEL:
	case VMM_ACTION_PAUSE:
	case VMM_ACTION_RESUME:
		run_time(a, r);
		break;
	case VMM_ACTION_FLUSH_METRICS:
		if (vmm.cfg.has_metrics)
			r->status = 204;
		else
			reply_error(r, 400, "the metrics system is not configured (PUT /metrics)");
		break;
	case VMM_ACTION_GET_METRICS:
		r->text = strdup("# TYPE ember_uart_write_count counter\n"
				 "ember_uart_write_count 42\n");
		r->status = r->text ? 200 : 500;
		break;
	default:
		reply_error(r, 500, "unknown action");
		break;
	}
	r->state = vmm.state;
}

static void *responder(void *arg)
{
	struct pollfd pfd = { .fd = mailbox.evtfd, .events = POLLIN };

	(void)arg;
	for (;;) {
		struct vmm_reply *reply;
		struct vmm_action *a;

		if (poll(&pfd, 1, -1) < 0)
			continue;
		a = mailbox__take(&mailbox, &reply);
		if (!a)
			continue;
		handle(a, reply);
		if (a->type == VMM_ACTION_GET_CONFIG && reply->status == 200)
			config__free(&reply->cfg); /* the router never asks; nobody else frees it */
		mailbox__done(&mailbox);
	}
	return NULL;
}

/* ---- the API thread's side ---- */

static void check_response(const struct http_request *req, struct http_response *resp)
{
	char head[HTTP_HEAD_MAX];
	size_t len = resp->body ? (resp->body_len ? resp->body_len : strlen(resp->body)) : 0;
	int n;

	check(resp->status >= 200 && resp->status <= 599);
	if (resp->status == 204)
		check(!len);
	if (resp->status == 405)
		check(resp->allow && resp->allow[0]);
	if (resp->status >= 400) {
		static const char prefix[] = "{\"fault_message\":\"";

		check(len > sizeof(prefix) && !memcmp(resp->body, prefix, sizeof(prefix) - 1));
		check(resp->body[len - 1] == '}' && resp->body[len - 2] == '"');
		for (size_t i = 0; i < len; i++)
			check(resp->body[i] >= 0x20 && resp->body[i] < 0x7f);
	}
	n = http__format_head(head, sizeof(head), resp, req->keep_alive);
	check(n > 0 && n <= HTTP_HEAD_MAX);
}

static void check_error_response(const struct http_parser *p)
{
	struct http_response resp = { 0 };
	char head[HTTP_HEAD_MAX];
	const char *msg;
	int status = http_parser__error(p, &msg);

	check(status >= 400 && status <= 505);
	check(http__set_fault(&resp, status, "%s", msg) == 0);
	check(http__format_head(head, sizeof(head), &resp, false) > 0);
	free(resp.body);
}

static size_t chunk_size(unsigned int mode, size_t left)
{
	static const size_t sizes[] = { 0, 1, 2, 3, 7, 16, 61, 256 };
	size_t n = mode ? sizes[mode] : left;

	return n < left ? n : left;
}

/* Parses and routes the stream until it ends, an error, or a request that closes. */
static void serve(struct api_routes *routes, struct http_parser *p, const uint8_t *d, size_t len,
		  unsigned int mode)
{
	const struct http_request *req;
	size_t off = 0;
	int handled = 0;

	http_parser__reset(p);
	while (off < len && handled < MAX_REQUESTS) {
		size_t chunk = chunk_size(mode, len - off), used;
		enum http_parse_result r = http_parser__feed(p, d + off, chunk, &used);
		struct http_response resp = { .status = 500 };

		check(used <= chunk);
		off += used;
		if (r == HTTP_PARSE_NEED_MORE) {
			(void)http_parser__take_continue(p);
			continue;
		}
		if (r == HTTP_PARSE_ERROR) {
			check_error_response(p);
			return;
		}
		req = http_parser__request(p);
		routes__handle(routes, req, &resp);
		check_response(req, &resp);
		free(resp.body);
		handled++;
		if (!req->keep_alive || resp.close)
			return;
	}
}

/* What GET /vm/config prints must parse back, as a config file, to the same JSON. */
static void check_round_trip(const struct vm_config *cfg)
{
	char *json = config__to_json(cfg), *again;
	struct vm_config parsed;

	check(json);
	if (cfg->boot.kernel_image_path) {
		config__init(&parsed);
		error__clear();
		if (config__parse(&parsed, json, strlen(json))) {
			fprintf(stderr, "fuzz_api: GET /vm/config does not parse back: %s\n%s\n",
				error__get(), json);
			abort();
		}
		again = config__to_json(&parsed);
		check(again);
		if (strcmp(json, again)) {
			fprintf(stderr,
				"fuzz_api: GET /vm/config changes when parsed back:\n%s\n%s\n",
				json, again);
			abort();
		}
		free(again);
		config__free(&parsed);
	}
	free(json);
}

static void reset_vmm(void)
{
	config__free(&vmm.cfg);
	config__init(&vmm.cfg);
	vmm.state = INSTANCE_NOT_STARTED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_parser def, small;
	static bool ready;
	struct api_routes routes;
	struct vm_config initial;
	pthread_t thread;

	if (!ready) {
		log__set_level(LOG_LEVEL_OFF);
		check(mailbox__init(&mailbox) == 0);
		config__init(&vmm.cfg);
		check(pthread_create(&thread, NULL, responder, NULL) == 0);
		check(http_parser__init(&def, 0, 0) == 0);
		check(http_parser__init(&small, 256, 512) == 0);
		ready = true;
	}
	if (size < 1)
		return 0;
	reset_vmm();
	config__init(&initial);
	check(routes__init(&routes, &mailbox, &initial, "fuzz-instance") == 0);
	config__free(&initial);
	serve(&routes, data[0] & 0x80 ? &small : &def, data + 1, size - 1, data[0] & 7);
	check_round_trip(&routes.cfg);
	routes__destroy(&routes);
	reset_vmm();
	return 0;
}
