// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/api/http.c: the incremental request parser on good and bad input in
 * every split, the response formatter's exact bytes, and the hand-made JSON escaping.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/http.h"

#define S(str) str, sizeof(str) - 1

static struct http_parser parser;

static int setup(void **state)
{
	(void)state;
	return http_parser__init(&parser, 0, 0);
}

static int teardown(void **state)
{
	(void)state;
	http_parser__destroy(&parser);
	return 0;
}

/* Feeds all of data in one call; the request must be complete and take every byte. */
static const struct http_request *parse_ok(const char *data, size_t len)
{
	size_t used = 0;

	http_parser__reset(&parser);
	assert_int_equal(http_parser__feed(&parser, data, len, &used), HTTP_PARSE_DONE);
	assert_int_equal(used, len);
	return http_parser__request(&parser);
}

/* Feeds data byte by byte and returns the error status (0 if none came). */
static int parse_status(struct http_parser *p, const char *data, size_t len)
{
	size_t used;

	http_parser__reset(p);
	for (size_t i = 0; i < len; i++) {
		enum http_parse_result r = http_parser__feed(p, data + i, 1, &used);

		assert_int_equal(used, 1);
		if (r == HTTP_PARSE_ERROR)
			return http_parser__error(p, NULL);
		if (r == HTTP_PARSE_DONE)
			return 0;
	}
	return 0;
}

/* The same input in one piece gives the same status as byte by byte. */
static void expect_status(const char *data, size_t len, int status)
{
	size_t used;
	enum http_parse_result r;

	assert_int_equal(parse_status(&parser, data, len), status);
	http_parser__reset(&parser);
	r = http_parser__feed(&parser, data, len, &used);
	assert_int_equal(r, status ? HTTP_PARSE_ERROR : HTTP_PARSE_DONE);
	assert_int_equal(http_parser__error(&parser, NULL), status);
}

#define EXPECT_STATUS(str, status) expect_status(S(str), status)

/* ---- good requests ---- */

static void test_get(void **state)
{
	const struct http_request *r =
		parse_ok(S("GET /machine-config HTTP/1.1\r\nHost: localhost\r\n"
			   "Accept: application/json\r\n\r\n"));

	(void)state;
	assert_int_equal(r->method, HTTP_METHOD_GET);
	assert_string_equal(r->method_name, "GET");
	assert_int_equal(r->version, HTTP_VERSION_1_1);
	assert_string_equal(r->path, "/machine-config");
	assert_string_equal(r->query, "");
	assert_false(r->has_query);
	assert_true(r->keep_alive);
	assert_false(r->expect_continue);
	assert_false(r->has_content_type);
	assert_false(r->has_content_length);
	assert_int_equal(r->body_len, 0);
	assert_non_null(r->body);
	assert_int_equal(r->body[0], '\0');
	assert_false(http_parser__in_progress(&parser));
}

static void test_put_with_body(void **state)
{
	static const char req[] = "PUT /drives/rootfs HTTP/1.1\r\n"
				  "content-type:  application/json \r\n"
				  "CONTENT-LENGTH: 17\r\n\r\n"
				  "{\"drive_id\": \"x\"}";
	const struct http_request *r = parse_ok(S(req));

	(void)state;
	assert_int_equal(r->method, HTTP_METHOD_PUT);
	assert_string_equal(r->path, "/drives/rootfs");
	assert_true(r->has_content_type);
	assert_string_equal(r->content_type, "application/json");
	assert_true(r->has_content_length);
	assert_int_equal(r->body_len, 17);
	assert_memory_equal(r->body, "{\"drive_id\": \"x\"}", 17);
	assert_int_equal(r->body[17], '\0');
}

static void test_patch_and_other_methods(void **state)
{
	const struct http_request *r =
		parse_ok(S("PATCH /vm HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"));

	(void)state;
	assert_int_equal(r->method, HTTP_METHOD_PATCH);
	assert_string_equal(r->body, "{}");
	r = parse_ok(S("DELETE /vm HTTP/1.1\r\n\r\n"));
	assert_int_equal(r->method, HTTP_METHOD_OTHER);
	assert_string_equal(r->method_name, "DELETE");
	/* Methods are case-sensitive: "get" is some other method. */
	r = parse_ok(S("get / HTTP/1.1\r\n\r\n"));
	assert_int_equal(r->method, HTTP_METHOD_OTHER);
	r = parse_ok(S("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n"));
	assert_string_equal(r->method_name, "ABCDEFGHIJKLMNOP");
}

static void test_query(void **state)
{
	const struct http_request *r = parse_ok(S("GET /a/b?x=1&y=/?z HTTP/1.1\r\n\r\n"));

	(void)state;
	assert_string_equal(r->path, "/a/b");
	assert_true(r->has_query);
	assert_string_equal(r->query, "x=1&y=/?z");
	r = parse_ok(S("GET /a? HTTP/1.1\r\n\r\n"));
	assert_string_equal(r->path, "/a");
	assert_true(r->has_query);
	assert_string_equal(r->query, "");
	r = parse_ok(S("GET / HTTP/1.1\r\n\r\n"));
	assert_string_equal(r->path, "/");
	/* Dots inside a segment are fine; only whole "." and ".." segments are refused. */
	r = parse_ok(S("GET /a.b/..c/.d./...?q=.. HTTP/1.1\r\n\r\n"));
	assert_string_equal(r->path, "/a.b/..c/.d./...");
}

static void test_keep_alive(void **state)
{
	(void)state;
	assert_true(parse_ok(S("GET / HTTP/1.1\r\n\r\n"))->keep_alive);
	assert_false(parse_ok(S("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))->keep_alive);
	assert_false(
		parse_ok(S("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n"))->keep_alive);
	assert_true(parse_ok(S("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"))->keep_alive);
	assert_false(parse_ok(S("GET / HTTP/1.0\r\n\r\n"))->keep_alive);
	assert_int_equal(parse_ok(S("GET / HTTP/1.0\r\n\r\n"))->version, HTTP_VERSION_1_0);
	assert_true(parse_ok(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))->keep_alive);
	assert_true(
		parse_ok(S("GET / HTTP/1.0\r\nConnection: x ,keep-alive\t\r\n\r\n"))->keep_alive);
	assert_false(
		parse_ok(S("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"))->keep_alive);
	assert_false(parse_ok(S("GET / HTTP/1.0\r\nConnection: keep-alived\r\n\r\n"))->keep_alive);
}

static void test_misc_headers(void **state)
{
	const struct http_request *r;

	(void)state;
	/* Same Content-Length twice is one value; an empty header value is fine. */
	r = parse_ok(S("PUT /x HTTP/1.1\r\nContent-Length: 3\r\nX-Empty:\r\n"
		       "Content-Length:3\r\n\r\nabc"));
	assert_int_equal(r->body_len, 3);
	/* Non-ASCII and tabs in a header value are allowed (obs-text). */
	r = parse_ok(S("GET / HTTP/1.1\r\nUser-Agent: caf\xc3\xa9\tbar\r\n\r\n"));
	assert_string_equal(r->path, "/");
	/* Empty lines before the request line are skipped. */
	r = parse_ok(S("\r\n\r\nGET /after HTTP/1.1\r\n\r\n"));
	assert_string_equal(r->path, "/after");
	/* Content-Length: 0 and leading zeros. */
	r = parse_ok(S("PUT /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
	assert_int_equal(r->body_len, 0);
	r = parse_ok(S("PUT /x HTTP/1.1\r\nContent-Length: 0002\r\n\r\nab"));
	assert_string_equal(r->body, "ab");
}

static void test_binary_body(void **state)
{
	static const char req[] = "PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\na\0\r\n\xff";
	const struct http_request *r = parse_ok(S(req));

	(void)state;
	assert_int_equal(r->body_len, 5);
	assert_memory_equal(r->body, "a\0\r\n\xff", 5);
}

static void test_pipelined(void **state)
{
	static const char two[] = "PUT /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
				  "GET /b?q HTTP/1.1\r\n\r\nGET /c";
	size_t used, off = 0;

	(void)state;
	http_parser__reset(&parser);
	assert_int_equal(http_parser__feed(&parser, S(two), &used), HTTP_PARSE_DONE);
	assert_string_equal(http_parser__request(&parser)->path, "/a");
	assert_string_equal(http_parser__request(&parser)->body, "{}");
	off += used;
	assert_int_equal(off, strlen("PUT /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"));
	assert_int_equal(http_parser__feed(&parser, two + off, sizeof(two) - 1 - off, &used),
			 HTTP_PARSE_DONE);
	assert_string_equal(http_parser__request(&parser)->path, "/b");
	assert_string_equal(http_parser__request(&parser)->query, "q");
	off += used;
	/* The third is incomplete: every byte is taken, and it is in progress. */
	assert_int_equal(http_parser__feed(&parser, two + off, sizeof(two) - 1 - off, &used),
			 HTTP_PARSE_NEED_MORE);
	assert_int_equal(used, 6);
	assert_true(http_parser__in_progress(&parser));
	assert_null(http_parser__request(&parser));
}

/* ---- splits ---- */

struct summary {
	int status; /* 0: a request */
	int method;
	char path[64];
	char query[64];
	bool keep_alive;
	size_t body_len;
	char body[64];
};

/* Parses the whole stream as consecutive requests in chunks from next_chunk(). */
static size_t parse_stream(const char *data, size_t len, size_t (*next_chunk)(size_t),
			   struct summary *out, size_t max)
{
	size_t n = 0, off = 0;

	http_parser__reset(&parser);
	while (off < len && n < max) {
		size_t chunk = next_chunk(len - off), used;
		enum http_parse_result r = http_parser__feed(&parser, data + off, chunk, &used);

		assert_true(used <= chunk);
		off += used;
		if (r == HTTP_PARSE_NEED_MORE) {
			assert_int_equal(used, chunk);
			continue;
		}
		memset(&out[n], 0, sizeof(out[n]));
		if (r == HTTP_PARSE_ERROR) {
			out[n++].status = http_parser__error(&parser, NULL);
			break;
		}
		const struct http_request *req = http_parser__request(&parser);

		out[n].method = req->method;
		snprintf(out[n].path, sizeof(out[n].path), "%.63s", req->path);
		snprintf(out[n].query, sizeof(out[n].query), "%.63s", req->query);
		out[n].keep_alive = req->keep_alive;
		out[n].body_len = req->body_len;
		snprintf(out[n].body, sizeof(out[n].body), "%.63s", req->body);
		n++;
	}
	return n;
}

static size_t chunk_all(size_t left)
{
	return left;
}

static size_t chunk_one(size_t left)
{
	(void)left;
	return 1;
}

static size_t chunk_random(size_t left)
{
	size_t n = (size_t)(rand() % 23) + 1;

	return n < left ? n : left;
}

static size_t split_at;
static size_t chunk_split(size_t left)
{
	size_t n = split_at && split_at < left ? split_at : left;

	split_at = 0;
	return n;
}

static const char stream[] =
	"PUT /drives/root HTTP/1.1\r\nContent-Type: application/json\r\n"
	"Content-Length: 24\r\n\r\n{\"path_on_host\": \"/x\"}\r\n"
	"\r\nGET /vm?a=b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	"PATCH /vm HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nZ";

static void check_stream(const struct summary *got, size_t n)
{
	assert_int_equal(n, 3);
	assert_int_equal(got[0].status, 0);
	assert_int_equal(got[0].method, HTTP_METHOD_PUT);
	assert_string_equal(got[0].path, "/drives/root");
	assert_int_equal(got[0].body_len, 24);
	assert_string_equal(got[0].body, "{\"path_on_host\": \"/x\"}\r\n");
	assert_int_equal(got[1].method, HTTP_METHOD_GET);
	assert_string_equal(got[1].path, "/vm");
	assert_string_equal(got[1].query, "a=b");
	assert_true(got[1].keep_alive);
	assert_int_equal(got[2].method, HTTP_METHOD_PATCH);
	assert_false(got[2].keep_alive);
	assert_string_equal(got[2].body, "Z");
}

static void test_every_split(void **state)
{
	struct summary got[4];

	(void)state;
	check_stream(got, parse_stream(S(stream), chunk_all, got, 4));
	check_stream(got, parse_stream(S(stream), chunk_one, got, 4));
	for (size_t i = 1; i < sizeof(stream) - 1; i++) {
		split_at = i;
		check_stream(got, parse_stream(S(stream), chunk_split, got, 4));
	}
	srand(42);
	for (int i = 0; i < 200; i++)
		check_stream(got, parse_stream(S(stream), chunk_random, got, 4));
}

/* Errors come at the same byte whatever the split. */
static void test_error_split(void **state)
{
	static const char bad[] = "GET / HTTP/1.1\r\n\r\nPUT /a HTTP/1.1\r\nContent-Length: 1x\r\n";
	struct summary got[4];

	(void)state;
	srand(7);
	for (int i = 0; i < 50; i++) {
		size_t n = parse_stream(S(bad), i ? chunk_random : chunk_one, got, 4);

		assert_int_equal(n, 2);
		assert_int_equal(got[0].status, 0);
		assert_int_equal(got[1].status, 400);
	}
}

static void test_expect_continue(void **state)
{
	static const char head[] =
		"PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n";
	size_t used;

	(void)state;
	http_parser__reset(&parser);
	assert_int_equal(http_parser__feed(&parser, S(head), &used), HTTP_PARSE_NEED_MORE);
	assert_true(http_parser__in_progress(&parser));
	assert_true(http_parser__take_continue(&parser));
	assert_false(http_parser__take_continue(&parser));
	assert_int_equal(http_parser__feed(&parser, S("ab"), &used), HTTP_PARSE_NEED_MORE);
	assert_false(http_parser__take_continue(&parser));
	assert_int_equal(http_parser__feed(&parser, S("cd"), &used), HTTP_PARSE_DONE);
	assert_true(http_parser__request(&parser)->expect_continue);
	assert_string_equal(http_parser__request(&parser)->body, "abcd");

	/* No body to wait for: nothing to continue. */
	parse_ok(S("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
	assert_false(http_parser__take_continue(&parser));
	/* The body came with the head: no need either. */
	parse_ok(S("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"));
	assert_false(http_parser__take_continue(&parser));
	/* Too large: 413 rather than an invitation. */
	http_parser__reset(&parser);
	assert_int_equal(http_parser__feed(&parser,
					   S("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\n"
					     "Content-Length: 51201\r\n\r\n"),
					   &used),
			 HTTP_PARSE_ERROR);
	assert_false(http_parser__take_continue(&parser));
	/* Never to an HTTP/1.0 client. */
	http_parser__reset(&parser);
	assert_int_equal(http_parser__feed(&parser,
					   S("PUT /x HTTP/1.0\r\nExpect: 100-continue\r\n"
					     "Content-Length: 1\r\n\r\n"),
					   &used),
			 HTTP_PARSE_NEED_MORE);
	assert_false(http_parser__take_continue(&parser));
	/* Other expectations are ignored. */
	parse_ok(S("PUT /x HTTP/1.1\r\nExpect: 100-continue-please\r\n\r\n"));
	assert_false(http_parser__request(&parser)->expect_continue);
}

/* ---- errors ---- */

static void test_bad_request_line(void **state)
{
	(void)state;
	EXPECT_STATUS("G@T / HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("G(T / HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /\r\n\r\n", 400);
	EXPECT_STATUS("GET\r\n\r\n", 400);
	EXPECT_STATUS("GET / \r\n\r\n", 400);
	EXPECT_STATUS("GET  / HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS(" GET / HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1 \r\n\r\n", 400);
	EXPECT_STATUS("GET\t/ HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET / http/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.10\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.x\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/11.1\r\n\r\n", 400);
	EXPECT_STATUS("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("G\x80T / HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("\x16\x03\x01\x02\x00", 400); /* a TLS ClientHello */
}

static void test_bad_version(void **state)
{
	(void)state;
	EXPECT_STATUS("GET / HTTP/2.0\r\n\r\n", 505);
	EXPECT_STATUS("GET / HTTP/1.2\r\n\r\n", 505);
	EXPECT_STATUS("GET / HTTP/0.9\r\n\r\n", 505);
	EXPECT_STATUS("GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505);
}

static void test_bad_target(void **state)
{
	(void)state;
	EXPECT_STATUS("GET * HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET http://localhost/ HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET vm HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a%2e HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a?b=%20 HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a#frag HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /.. HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a/../b HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a/.. HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a/..?x HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /./a HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a/\"b\" HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a{b} HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET /a\\b HTTP/1.1\r\n\r\n", 400);
}

static void test_target_length(void **state)
{
	char req[HTTP_TARGET_MAX + 64];
	int n;

	(void)state;
	/* Exactly the limit is fine; one more is 414, even before the line ends. */
	n = snprintf(req, sizeof(req), "GET /%0*d HTTP/1.1\r\n\r\n", HTTP_TARGET_MAX - 1, 0);
	assert_int_equal(strlen(parse_ok(req, (size_t)n)->path), HTTP_TARGET_MAX);
	n = snprintf(req, sizeof(req), "GET /%0*d", HTTP_TARGET_MAX, 0);
	expect_status(req, (size_t)n, 414);
	n = snprintf(req, sizeof(req), "GET /?%0*d HTTP/1.1\r\n\r\n", HTTP_TARGET_MAX - 2, 0);
	assert_int_equal(strlen(parse_ok(req, (size_t)n)->query), HTTP_TARGET_MAX - 2);
}

static void test_bad_headers(void **state)
{
	(void)state;
	EXPECT_STATUS("GET / HTTP/1.1\r\nHost localhost\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\n: x\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\n\tc\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX\xc3\xa9: b\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX(a): b\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\rX: b\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\nX: b\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX: b\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX: b\r\n\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 400);
	EXPECT_STATUS("GET /\0 HTTP/1.1\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n", 400);
	EXPECT_STATUS("GET / HTTP/1.1\r\nContent-Type: a\r\nContent-Type: a\r\n\r\n", 400);
}

static void test_content_type_length(void **state)
{
	char req[512];
	int n;

	(void)state;
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nContent-Type: %0*d\r\n\r\n",
		     HTTP_CONTENT_TYPE_MAX, 0);
	assert_int_equal(strlen(parse_ok(req, (size_t)n)->content_type), HTTP_CONTENT_TYPE_MAX);
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nContent-Type: %0*d\r\n\r\n",
		     HTTP_CONTENT_TYPE_MAX + 1, 0);
	expect_status(req, (size_t)n, 400);
}

static void test_bad_content_length(void **state)
{
	(void)state;
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\nx", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 1.0\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 2\r\n"
		      "Transfer-Encoding: chunked\r\n\r\n",
		      400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		      "Content-Length: 2\r\n\r\n",
		      400);
	EXPECT_STATUS("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
	EXPECT_STATUS("PUT / HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n", 501);
	/* A huge value that does not overflow is simply too large. */
	EXPECT_STATUS("PUT / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", 413);
}

static void test_header_limit(void **state)
{
	static char req[HTTP_HEADER_LIMIT_DEFAULT + 64];
	static const char start[] = "GET / HTTP/1.1\r\nX: ";
	size_t fill = HTTP_HEADER_LIMIT_DEFAULT - (sizeof(start) - 1) - 4;

	(void)state;
	/* Exactly the limit, final CRLF included, is fine. */
	memcpy(req, start, sizeof(start) - 1);
	memset(req + sizeof(start) - 1, 'a', fill);
	memcpy(req + sizeof(start) - 1 + fill, "\r\n\r\n", 4);
	parse_ok(req, HTTP_HEADER_LIMIT_DEFAULT);
	/* One byte more is 431. */
	memset(req + sizeof(start) - 1, 'a', fill + 1);
	memcpy(req + sizeof(start) - 1 + fill + 1, "\r\n\r\n", 4);
	expect_status(req, HTTP_HEADER_LIMIT_DEFAULT + 1, 431);
	/* Many small headers add up. */
	for (size_t i = 0; i + 8 < sizeof(req); i += 8)
		memcpy(req + i, "X: abc\r\n", 8);
	memcpy(req, "GET / HT", 8);
	memcpy(req + 8, "TP/1.1\r\n", 8);
	expect_status(req, sizeof(req) - 8, 431);
}

static void test_body_limit(void **state)
{
	struct http_parser small;
	static char req[HTTP_BODY_LIMIT_DEFAULT + 128];
	int n;

	(void)state;
	n = snprintf(req, sizeof(req), "PUT /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
		     HTTP_BODY_LIMIT_DEFAULT);
	memset(req + n, 'b', HTTP_BODY_LIMIT_DEFAULT);
	assert_int_equal(parse_ok(req, (size_t)n + HTTP_BODY_LIMIT_DEFAULT)->body_len,
			 HTTP_BODY_LIMIT_DEFAULT);
	EXPECT_STATUS("PUT /x HTTP/1.1\r\nContent-Length: 51201\r\n\r\n", 413);

	assert_int_equal(http_parser__init(&small, 128, 10), 0);
	assert_int_equal(parse_status(&small, S("PUT /x HTTP/1.1\r\nContent-Length: 11\r\n\r\n")),
			 413);
	assert_int_equal(parse_status(&small, S("PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
						"0123456789")),
			 0);
	assert_string_equal(http_parser__request(&small)->body, "0123456789");
	/* A 128-byte header limit: a 129-byte head is 431. */
	memset(req, 0, 256);
	n = snprintf(req, 256, "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", 128 - 23, 0);
	assert_int_equal(n, 128);
	assert_int_equal(parse_status(&small, req, (size_t)n), 0);
	n = snprintf(req, 256, "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", 128 - 22, 0);
	assert_int_equal(parse_status(&small, req, (size_t)n), 431);
	http_parser__destroy(&small);
}

static void test_error_state(void **state)
{
	static const char bad[] = "GET / HTTP/1.1\r\nX: a\x01zzzz";
	size_t used;
	const char *msg = NULL;

	(void)state;
	http_parser__reset(&parser);
	assert_int_equal(http_parser__feed(&parser, S(bad), &used), HTTP_PARSE_ERROR);
	/* Consumed up to and including the offending byte. */
	assert_int_equal(used, strlen("GET / HTTP/1.1\r\nX: a\x01"));
	assert_int_equal(http_parser__error(&parser, &msg), 400);
	assert_non_null(strstr(msg, "0x01"));
	assert_false(http_parser__in_progress(&parser));
	assert_null(http_parser__request(&parser));
	/* Sticky until reset. */
	assert_int_equal(http_parser__feed(&parser, S("GET / HTTP/1.1\r\n\r\n"), &used),
			 HTTP_PARSE_ERROR);
	assert_int_equal(used, 0);
	parse_ok(S("GET / HTTP/1.1\r\n\r\n"));
	assert_int_equal(http_parser__error(&parser, NULL), 0);
}

static void test_init_limits(void **state)
{
	struct http_parser p;

	(void)state;
	assert_int_equal(http_parser__init(&p, 8, 0), -EINVAL);
	assert_int_equal(http_parser__init(&p, (size_t)1 << 30, 0), -EINVAL);
	assert_int_equal(http_parser__init(&p, 0, (size_t)1 << 31), -EINVAL);
	assert_int_equal(http_parser__init(&p, 0, 0), 0);
	assert_int_equal(p.header_limit, HTTP_HEADER_LIMIT_DEFAULT);
	assert_int_equal(p.body_limit, HTTP_BODY_LIMIT_DEFAULT);
	http_parser__destroy(&p);
	http_parser__destroy(&p);
}

/* ---- responses ---- */

static void test_format_200(void **state)
{
	static const char want[] = "HTTP/1.1 200 OK\r\nServer: Ember API\r\n"
				   "Connection: keep-alive\r\nContent-Type: application/json\r\n"
				   "Content-Length: 11\r\n\r\n{\"a\": true}";
	char body[] = "{\"a\": true}";
	struct http_response resp = { .status = 200, .body = body, .body_len = 11 };
	char buf[512];

	(void)state;
	assert_int_equal(http__format_response(buf, sizeof(buf), &resp, true), sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
	/* body_len 0 means strlen(body). */
	resp.body_len = 0;
	assert_int_equal(http__format_response(buf, sizeof(buf), &resp, true), sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
	/* Exactly enough room; one byte less is -ENOSPC. */
	assert_int_equal(http__format_response(buf, sizeof(want) - 1, &resp, true),
			 sizeof(want) - 1);
	assert_int_equal(http__format_response(buf, sizeof(want) - 2, &resp, true), -ENOSPC);
	assert_int_equal(http__format_head(buf, 20, &resp, true), -ENOSPC);
	assert_int_equal(http__format_head(buf, 0, &resp, true), -ENOSPC);
}

static void test_format_204_and_options(void **state)
{
	static const char want204[] = "HTTP/1.1 204 No Content\r\nServer: Ember API\r\n"
				      "Connection: close\r\n\r\n";
	static const char want405[] = "HTTP/1.1 405 Method Not Allowed\r\nServer: Ember API\r\n"
				      "Connection: keep-alive\r\nAllow: GET, PUT\r\n"
				      "Deprecation: true\r\nContent-Type: application/json\r\n"
				      "Content-Length: 0\r\n\r\n";
	char body[] = "ignored";
	struct http_response resp = { .status = 204, .body = body };
	char buf[512];

	(void)state;
	assert_int_equal(http__format_response(buf, sizeof(buf), &resp, false),
			 sizeof(want204) - 1);
	assert_memory_equal(buf, want204, sizeof(want204) - 1);
	assert_int_equal(http__body_len(&resp), 0);
	resp = (struct http_response){ .status = 405, .allow = "GET, PUT", .deprecation = true };
	assert_int_equal(http__format_head(buf, sizeof(buf), &resp, true), sizeof(want405) - 1);
	assert_string_equal(buf, want405);
	/* An Allow value that is not a short list of methods is left out. */
	resp.allow = "GET\r\nX-Evil: 1";
	http__format_head(buf, sizeof(buf), &resp, true);
	assert_null(strstr(buf, "Allow:"));
	assert_null(strstr(buf, "Evil"));
	/* Statuses outside 100..599 are refused. */
	resp.status = 99;
	assert_int_equal(http__format_head(buf, sizeof(buf), &resp, true), -EINVAL);
	resp.status = 600;
	assert_int_equal(http__format_head(buf, sizeof(buf), &resp, true), -EINVAL);
}

static void test_format_worst_case_fits(void **state)
{
	struct http_response resp = {
		.status = 431,
		.allow = "GET, PUT, PATCH, DELETE, POST, HEAD, OPTIONS, TRACE, CONNECT, XY",
		.deprecation = true,
		.body = (char *)"x",
		.body_len = SIZE_MAX
	};
	char buf[HTTP_HEAD_MAX];

	(void)state;
	assert_true(http__format_head(buf, sizeof(buf), &resp, true) > 0);
	assert_non_null(strstr(buf, "Allow: GET"));
	assert_non_null(strstr(buf, "Content-Length: 18446744073709551615\r\n\r\n"));
}

static void test_reasons(void **state)
{
	static const struct {
		int status;
		const char *reason;
	} want[] = {
		{ 200, "OK" },
		{ 201, "Created" },
		{ 204, "No Content" },
		{ 400, "Bad Request" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 408, "Request Timeout" },
		{ 413, "Payload Too Large" },
		{ 414, "URI Too Long" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
		{ 505, "HTTP Version Not Supported" },
		{ 299, "Unknown" },
	};
	char buf[HTTP_HEAD_MAX], line[64];
	struct http_response resp = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_string_equal(http__reason(want[i].status), want[i].reason);
		resp.status = want[i].status;
		http__format_head(buf, sizeof(buf), &resp, true);
		snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", want[i].status, want[i].reason);
		assert_memory_equal(buf, line, strlen(line));
	}
}

/* ---- JSON ---- */

static void expect_escape(const char *in, size_t len, const char *want)
{
	char buf[256];

	assert_int_equal(http__json_escape(buf, sizeof(buf), in, len), strlen(want));
	assert_string_equal(buf, want);
}

#define EXPECT_ESCAPE(in, want) expect_escape(S(in), want)

static void test_json_escape(void **state)
{
	char small[8];

	(void)state;
	EXPECT_ESCAPE("plain text / ok", "plain text / ok");
	EXPECT_ESCAPE("a\"b\\c", "a\\\"b\\\\c");
	EXPECT_ESCAPE("\b\f\n\r\t", "\\b\\f\\n\\r\\t");
	EXPECT_ESCAPE("\x01\x1f\x7f", "\\u0001\\u001f\\u007f");
	EXPECT_ESCAPE("nul\0here", "nul\\u0000here");
	EXPECT_ESCAPE("caf\xc3\xa9", "caf\\u00e9");
	EXPECT_ESCAPE("\xe2\x82\xac", "\\u20ac");
	EXPECT_ESCAPE("\xf0\x9f\x98\x80", "\\ud83d\\ude00");
	EXPECT_ESCAPE("\xf4\x8f\xbf\xbf", "\\udbff\\udfff");
	/* Invalid UTF-8: one U+FFFD per bad byte. */
	EXPECT_ESCAPE("\xff", "\\ufffd");
	EXPECT_ESCAPE("a\xc3", "a\\ufffd");
	EXPECT_ESCAPE("\xc3(", "\\ufffd(");
	EXPECT_ESCAPE("\xc0\xaf", "\\ufffd\\ufffd");
	EXPECT_ESCAPE("\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd");
	EXPECT_ESCAPE("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");
	EXPECT_ESCAPE("\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");
	EXPECT_ESCAPE("\xf0\x9f\x98", "\\ufffd\\ufffd\\ufffd");
	EXPECT_ESCAPE("", "");
	/* Like snprintf: truncated but terminated, and the full length returned. */
	assert_int_equal(http__json_escape(small, sizeof(small), S("\"\"\"\"\"")), 10);
	assert_string_equal(small, "\\\"\\\"\\\"\\");
	assert_int_equal(http__json_escape(NULL, 0, S("\n")), 2);
}

static void test_fault_body(void **state)
{
	struct http_response resp = { 0 };
	size_t len;
	char *body = http__fault_body("bad \"drive_id\"\n\xc3\xa9", &len);

	(void)state;
	assert_string_equal(body, "{\"fault_message\":\"bad \\\"drive_id\\\"\\n\\u00e9\"}");
	assert_int_equal(len, strlen(body));
	free(body);
	body = http__fault_body("", &len);
	assert_string_equal(body, "{\"fault_message\":\"\"}");
	free(body);

	resp.body = strdup("old");
	assert_int_equal(http__set_fault(&resp, 404, "no such %s: %d", "thing", 7), 0);
	assert_int_equal(resp.status, 404);
	assert_string_equal(resp.body, "{\"fault_message\":\"no such thing: 7\"}");
	assert_int_equal(resp.body_len, strlen(resp.body));
	free(resp.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_put_with_body),
		cmocka_unit_test(test_patch_and_other_methods),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_misc_headers),
		cmocka_unit_test(test_binary_body),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_error_split),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_bad_request_line),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_bad_target),
		cmocka_unit_test(test_target_length),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_content_type_length),
		cmocka_unit_test(test_bad_content_length),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_error_state),
		cmocka_unit_test(test_init_limits),
		cmocka_unit_test(test_format_200),
		cmocka_unit_test(test_format_204_and_options),
		cmocka_unit_test(test_format_worst_case_fits),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test(test_fault_body),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
