// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the HTTP request parser on a stream of pipelined requests.
 *
 * The first byte picks the limits (default or small) and a chunking; the rest is the
 * stream. It is parsed twice, whole and in chunks, and the two must agree request by
 * request: the parser may not depend on how bytes arrive. Each request and each error gets
 * a formatted response, whose head must fit HTTP_HEAD_MAX and whose JSON must be ASCII.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"

#define MAX_REQUESTS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct record {
	int status; /* 0: a request */
	int method;
	bool keep_alive;
	bool expect_continue;
	size_t body_len;
	uint64_t hash; /* of method name, path, query, content type and body */
	size_t end;    /* stream offset just after it */
};

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static void check_json_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		check(s[i] >= 0x20 && s[i] < 0x7f);
}

/* What the router will do: answer it. Here: echo the path in a fault body. */
static void respond(int status, const char *msg, bool keep_alive)
{
	struct http_response resp = { .status = status, .deprecation = status & 1 };
	char buf[HTTP_HEAD_MAX + 2048];
	int n;

	if (status == 405)
		resp.allow = "GET, PUT, PATCH";
	check(http__set_fault(&resp, status, "%s", msg) == 0);
	check_json_ascii(resp.body, resp.body_len);
	n = http__format_head(buf, HTTP_HEAD_MAX, &resp, keep_alive);
	check(n > 0 && n <= HTTP_HEAD_MAX);
	n = http__format_response(buf, sizeof(buf), &resp, keep_alive);
	check(n > 0 || resp.body_len > sizeof(buf) - HTTP_HEAD_MAX);
	free(resp.body);
}

static void check_request(const struct http_parser *p, const struct http_request *r,
			  struct record *rec)
{
	check(r->path[0] == '/');
	check(strlen(r->path) + strlen(r->query) + r->has_query <= HTTP_TARGET_MAX);
	check(!strstr(r->path, "/../") && !strchr(r->path, '%') && !strchr(r->path, '#'));
	check(r->body_len <= p->body_limit && r->body[r->body_len] == '\0');
	check(strlen(r->content_type) <= HTTP_CONTENT_TYPE_MAX);
	rec->method = r->method;
	rec->keep_alive = r->keep_alive;
	rec->expect_continue = r->expect_continue;
	rec->body_len = r->body_len;
	rec->hash = fnv(0xcbf29ce484222325ULL, r->method_name, strlen(r->method_name) + 1);
	rec->hash = fnv(rec->hash, r->path, strlen(r->path) + 1);
	rec->hash = fnv(rec->hash, r->query, strlen(r->query) + 1);
	rec->hash = fnv(rec->hash, r->content_type, strlen(r->content_type) + 1);
	rec->hash = fnv(rec->hash, r->body, r->body_len);
	respond(r->method == HTTP_METHOD_OTHER ? 405 : 200 + (int)(r->body_len % 2), r->path,
		r->keep_alive);
}

static size_t chunk_size(unsigned int mode, size_t call, size_t left)
{
	static const size_t sizes[] = { 1, 2, 3, 7, 16, 61, 256 };
	size_t n;

	if (mode < 7)
		n = sizes[mode];
	else
		n = (call * 2654435761u >> 7) % 37 + 1; /* varying, deterministic */
	return n < left ? n : left;
}

/* Parses the stream; chunked with mode, or whole when mode is 8. */
static size_t run(struct http_parser *p, const uint8_t *d, size_t len, unsigned int mode,
		  struct record *recs)
{
	size_t off = 0, n = 0, call = 0;

	http_parser__reset(p);
	while (off < len && n < MAX_REQUESTS) {
		size_t chunk = mode == 8 ? len - off : chunk_size(mode, call++, len - off);
		size_t used;
		enum http_parse_result r = http_parser__feed(p, d + off, chunk, &used);
		const char *msg;

		check(used <= chunk);
		off += used;
		if (r == HTTP_PARSE_NEED_MORE) {
			check(used == chunk);
			if (http_parser__in_progress(p))
				(void)http_parser__take_continue(p);
			continue;
		}
		check(used > 0);
		memset(&recs[n], 0, sizeof(recs[n]));
		recs[n].end = off;
		if (r == HTTP_PARSE_ERROR) {
			recs[n].status = http_parser__error(p, &msg);
			check(recs[n].status >= 400 && recs[n].status <= 505);
			respond(recs[n++].status, msg, false);
			break;
		}
		check_request(p, http_parser__request(p), &recs[n++]);
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_parser def, small;
	static struct record whole[MAX_REQUESTS], chunked[MAX_REQUESTS];
	static bool ready;
	struct http_parser *p;
	size_t nw, nc;

	if (!ready) {
		check(http_parser__init(&def, 0, 0) == 0);
		check(http_parser__init(&small, 96, 32) == 0);
		ready = true;
	}
	if (size < 1)
		return 0;
	p = data[0] & 0x80 ? &small : &def;
	nw = run(p, data + 1, size - 1, 8, whole);
	nc = run(p, data + 1, size - 1, data[0] & 7, chunked);
	check(nw == nc);
	check(!memcmp(whole, chunked, nw * sizeof(whole[0])));
	return 0;
}
