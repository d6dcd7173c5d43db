// SPDX-License-Identifier: Apache-2.0
/*
 * The API socket's HTTP/1.1: a byte-at-a-time request parser and the response formatter.
 *
 * Every check that decides an error is made on a byte as it arrives or on a line as it ends,
 * never on how the input was split, so a request fed in any chunks gives the same result
 * (tests/fuzz/fuzz_http.c checks exactly that).
 */
#include "api/http.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_LIMIT_MIN 64
#define HEADER_LIMIT_MAX (1u << 20)
#define BODY_LIMIT_MAX (1u << 30)
#define VERSION_LEN 8 /* "HTTP/1.1" */
#define ALLOW_MAX 64

static void fail(struct http_parser *p, int status, const char *fmt, ...) LOG_PRINTF(3, 4);

static void fail(struct http_parser *p, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->error_msg, sizeof(p->error_msg), fmt, ap);
	va_end(ap);
	p->error_status = status;
	p->state = HTTP_ST_ERROR;
}

int http_parser__init(struct http_parser *p, size_t header_limit, size_t body_limit)
{
	memset(p, 0, sizeof(*p));
	if (!header_limit)
		header_limit = HTTP_HEADER_LIMIT_DEFAULT;
	if (!body_limit)
		body_limit = HTTP_BODY_LIMIT_DEFAULT;
	if (header_limit < HEADER_LIMIT_MIN || header_limit > HEADER_LIMIT_MAX ||
	    body_limit > BODY_LIMIT_MAX)
		return -EINVAL;
	p->line = malloc(header_limit + body_limit + 1);
	if (!p->line)
		return -ENOMEM;
	p->body = p->line + header_limit;
	p->header_limit = header_limit;
	p->body_limit = body_limit;
	http_parser__reset(p);
	return 0;
}

void http_parser__destroy(struct http_parser *p)
{
	free(p->line);
	p->line = NULL;
	p->body = NULL;
}

void http_parser__reset(struct http_parser *p)
{
	size_t header_limit = p->header_limit, body_limit = p->body_limit;
	char *line = p->line, *body = p->body;

	memset(p, 0, sizeof(*p));
	p->header_limit = header_limit;
	p->body_limit = body_limit;
	p->line = line;
	p->body = body;
	p->state = HTTP_ST_REQUEST_LINE;
}

const struct http_request *http_parser__request(const struct http_parser *p)
{
	return p->state == HTTP_ST_DONE ? &p->req : NULL;
}

int http_parser__error(const struct http_parser *p, const char **msg)
{
	if (p->state != HTTP_ST_ERROR)
		return 0;
	if (msg)
		*msg = p->error_msg;
	return p->error_status;
}

bool http_parser__in_progress(const struct http_parser *p)
{
	return p->started && p->state < HTTP_ST_DONE;
}

bool http_parser__take_continue(struct http_parser *p)
{
	bool pending = p->continue_pending && p->state == HTTP_ST_BODY;

	p->continue_pending = false;
	return pending;
}

/* ---- character classes (RFC 9110 token, RFC 3986 path and query) ---- */

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_tchar(unsigned char c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* pchar without pct-encoded, plus '/' and '?'. */
static bool is_target_char(unsigned char c)
{
	return is_alnum(c) || (c && strchr("-._~!$&'()*+,;=:@/?", c));
}

/* ---- the request line ---- */

static void target_byte(struct http_parser *p, unsigned char c)
{
	if (++p->field_len > HTTP_TARGET_MAX)
		fail(p, 414, "request target longer than %d bytes", HTTP_TARGET_MAX);
	else if (p->field_len == 1 && c != '/')
		fail(p, 400, "request target must be an absolute path");
	else if (c == '%')
		fail(p, 400, "percent-encoding in the request target is not supported");
	else if (c == '#')
		fail(p, 400, "fragment in the request target");
	else if (!is_target_char(c))
		fail(p, 400, "invalid character in the request target");
}

/* Checks one request-line byte as it arrives; moves p to ERROR if it is bad. */
static void request_line_byte(struct http_parser *p, unsigned char c)
{
	if (c >= 0x80 || c == '\t') {
		fail(p, 400, "invalid byte 0x%02x in the request line", c);
		return;
	}
	if (c == ' ') {
		if (++p->spaces > 2 || !p->field_len)
			fail(p, 400, "malformed request line");
		p->field_len = 0;
		return;
	}
	if (p->spaces == 0) {
		if (!is_tchar(c))
			fail(p, 400, "invalid method");
		else if (++p->field_len > HTTP_METHOD_MAX)
			fail(p, 400, "method longer than %d bytes", HTTP_METHOD_MAX);
	} else if (p->spaces == 1) {
		target_byte(p, c);
	} else if (++p->field_len > VERSION_LEN) {
		fail(p, 400, "malformed HTTP version");
	}
}

static void set_method(struct http_request *req, const char *m, size_t len)
{
	memcpy(req->method_name, m, len);
	req->method_name[len] = '\0';
	if (!strcmp(req->method_name, "GET"))
		req->method = HTTP_METHOD_GET;
	else if (!strcmp(req->method_name, "PUT"))
		req->method = HTTP_METHOD_PUT;
	else if (!strcmp(req->method_name, "PATCH"))
		req->method = HTTP_METHOD_PATCH;
	else
		req->method = HTTP_METHOD_OTHER;
}

static bool has_dot_segment(const char *path)
{
	for (const char *s = path; s; s = strchr(s + 1, '/')) {
		size_t n = strcspn(s + 1, "/");

		if ((n == 1 && s[1] == '.') || (n == 2 && s[1] == '.' && s[2] == '.'))
			return true;
	}
	return false;
}

static void set_target(struct http_parser *p, const char *t, size_t len)
{
	struct http_request *req = &p->req;
	const char *q = memchr(t, '?', len);
	size_t path_len = q ? (size_t)(q - t) : len;

	memcpy(req->path, t, path_len);
	req->path[path_len] = '\0';
	if (q) {
		req->has_query = true;
		memcpy(req->query, q + 1, len - path_len - 1);
		req->query[len - path_len - 1] = '\0';
	}
	if (has_dot_segment(req->path))
		fail(p, 400, "'.' and '..' path segments are not allowed");
}

static void set_version(struct http_parser *p, const char *v, size_t len)
{
	if (len != VERSION_LEN || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' ||
	    v[6] != '.' || v[7] < '0' || v[7] > '9') {
		fail(p, 400, "malformed HTTP version");
		return;
	}
	if (!memcmp(v + 5, "1.1", 3))
		p->req.version = HTTP_VERSION_1_1;
	else if (!memcmp(v + 5, "1.0", 3))
		p->req.version = HTTP_VERSION_1_0;
	else
		fail(p, 505, "HTTP version %.8s is not supported", v);
}

/* The bytes were checked as they came; what is left is the shape of the whole line. */
static void parse_request_line(struct http_parser *p)
{
	const char *line = p->line, *sp1, *sp2;
	size_t len = p->line_len;

	if (p->spaces != 2 || !p->field_len) {
		fail(p, 400, "malformed request line (expected: method target HTTP/1.x)");
		return;
	}
	sp1 = memchr(line, ' ', len);
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line));
	set_method(&p->req, line, (size_t)(sp1 - line));
	set_target(p, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	if (p->state != HTTP_ST_ERROR)
		set_version(p, sp2 + 1, len - (size_t)(sp2 + 1 - line));
	if (p->state != HTTP_ST_ERROR)
		p->state = HTTP_ST_HEADER;
}

/* ---- headers ---- */

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && !strncasecmp(name, want, len);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void parse_content_length(struct http_parser *p, const char *v, size_t len)
{
	unsigned long long n = 0;

	if (!len) {
		fail(p, 400, "empty Content-Length");
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned int d = (unsigned char)v[i] - '0';

		if (d > 9) {
			fail(p, 400, "invalid Content-Length");
			return;
		}
		if (n > (ULLONG_MAX - d) / 10) {
			fail(p, 400, "Content-Length overflows");
			return;
		}
		n = n * 10 + d;
	}
	if (p->req.has_content_length && n != p->content_length) {
		fail(p, 400, "conflicting Content-Length values");
		return;
	}
	p->req.has_content_length = true;
	p->content_length = n;
}

/* Connection is a comma-separated list of tokens. */
static void parse_connection(struct http_parser *p, const char *v, size_t len)
{
	while (len) {
		size_t n = 0, t;

		while (n < len && v[n] != ',')
			n++;
		for (t = n; t && is_ows(v[t - 1]); t--)
			;
		if (name_is(v, t, "close"))
			p->connection_close = true;
		else if (name_is(v, t, "keep-alive"))
			p->connection_keep_alive = true;
		v += n < len ? n + 1 : n;
		len -= n < len ? n + 1 : n;
		while (len && is_ows(*v)) {
			v++;
			len--;
		}
	}
}

static void parse_content_type(struct http_parser *p, const char *v, size_t len)
{
	if (p->req.has_content_type) {
		fail(p, 400, "more than one Content-Type");
		return;
	}
	if (len > HTTP_CONTENT_TYPE_MAX) {
		fail(p, 400, "Content-Type longer than %d bytes", HTTP_CONTENT_TYPE_MAX);
		return;
	}
	memcpy(p->req.content_type, v, len);
	p->req.content_type[len] = '\0';
	p->req.has_content_type = true;
}

static void header_field(struct http_parser *p, const char *name, size_t nlen, const char *v,
			 size_t vlen)
{
	if (name_is(name, nlen, "Content-Length"))
		parse_content_length(p, v, vlen);
	else if (name_is(name, nlen, "Transfer-Encoding"))
		p->transfer_encoding = true;
	else if (name_is(name, nlen, "Connection"))
		parse_connection(p, v, vlen);
	else if (name_is(name, nlen, "Content-Type"))
		parse_content_type(p, v, vlen);
	else if (name_is(name, nlen, "Expect") && name_is(v, vlen, "100-continue"))
		p->req.expect_continue = true;
}

static void parse_header(struct http_parser *p)
{
	const char *line = p->line, *colon, *v, *end;
	size_t nlen;

	if (is_ows(line[0])) {
		fail(p, 400, "folded header lines (obs-fold) are not supported");
		return;
	}
	colon = memchr(line, ':', p->line_len);
	if (!colon) {
		fail(p, 400, "header line without ':'");
		return;
	}
	nlen = (size_t)(colon - line);
	for (size_t i = 0; i < nlen; i++) {
		if (!is_tchar((unsigned char)line[i])) {
			fail(p, 400, "invalid header name");
			return;
		}
	}
	if (!nlen) {
		fail(p, 400, "empty header name");
		return;
	}
	end = line + p->line_len;
	for (v = colon + 1; v < end && is_ows(*v); v++)
		;
	while (end > v && is_ows(end[-1]))
		end--;
	header_field(p, line, nlen, v, (size_t)(end - v));
}

static void finish_body(struct http_parser *p)
{
	p->body[p->body_got] = '\0';
	p->req.body = p->body;
	p->req.body_len = p->body_got;
	p->state = HTTP_ST_DONE;
}

static void end_of_head(struct http_parser *p)
{
	struct http_request *req = &p->req;

	if (p->transfer_encoding) {
		if (req->has_content_length)
			fail(p, 400, "both Content-Length and Transfer-Encoding");
		else
			fail(p, 501, "Transfer-Encoding is not supported");
		return;
	}
	if (p->content_length > p->body_limit) {
		fail(p, 413, "request body of %llu bytes exceeds the limit of %zu bytes",
		     p->content_length, p->body_limit);
		return;
	}
	if (req->version == HTTP_VERSION_1_1)
		req->keep_alive = !p->connection_close;
	else
		req->keep_alive = p->connection_keep_alive && !p->connection_close;
	if (!p->content_length) {
		finish_body(p);
		return;
	}
	p->state = HTTP_ST_BODY;
	/* RFC 9110 10.1.1: never send 100 (Continue) to an HTTP/1.0 client. */
	p->continue_pending = req->expect_continue && req->version == HTTP_VERSION_1_1;
}

static void end_of_line(struct http_parser *p)
{
	if (p->state == HTTP_ST_REQUEST_LINE) {
		/* RFC 9112 2.2: ignore empty lines before the request line. */
		if (p->line_len || p->spaces)
			parse_request_line(p);
	} else if (!p->line_len) {
		end_of_head(p);
	} else {
		parse_header(p);
	}
	p->line_len = 0;
}

static void head_byte(struct http_parser *p, unsigned char c)
{
	p->started = true;
	if (++p->head_len > p->header_limit) {
		fail(p, 431, "request line and headers exceed %zu bytes", p->header_limit);
		return;
	}
	if (p->cr) {
		p->cr = false;
		if (c == '\n')
			end_of_line(p);
		else
			fail(p, 400, "CR not followed by LF");
		return;
	}
	if (c == '\r') {
		p->cr = true;
		return;
	}
	if (c == '\n') {
		fail(p, 400, "line ends with LF without CR");
		return;
	}
	if (c == '\0' || (c < 0x20 && c != '\t') || c == 0x7f) {
		fail(p, 400, "control byte 0x%02x in the request head", c);
		return;
	}
	if (p->state == HTTP_ST_REQUEST_LINE)
		request_line_byte(p, c);
	/* line_len < head_len <= header_limit: it fits. */
	p->line[p->line_len++] = (char)c;
}

static size_t body_bytes(struct http_parser *p, const unsigned char *d, size_t len)
{
	size_t want = (size_t)p->content_length - p->body_got;
	size_t n = len < want ? len : want;

	memcpy(p->body + p->body_got, d, n);
	p->body_got += n;
	if (p->body_got == p->content_length)
		finish_body(p);
	return n;
}

enum http_parse_result http_parser__feed(struct http_parser *p, const void *data, size_t len,
					 size_t *consumed)
{
	const unsigned char *d = data;
	size_t i = 0;

	if (p->state == HTTP_ST_DONE)
		http_parser__reset(p);
	while (i < len && p->state < HTTP_ST_DONE) {
		if (p->state == HTTP_ST_BODY)
			i += body_bytes(p, d + i, len - i);
		else
			head_byte(p, d[i++]);
	}
	*consumed = i;
	if (p->state == HTTP_ST_DONE)
		return HTTP_PARSE_DONE;
	if (p->state == HTTP_ST_ERROR)
		return HTTP_PARSE_ERROR;
	return HTTP_PARSE_NEED_MORE;
}

/* ---- responses ---- */

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 100, "Continue" },
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
};

const char *http__reason(int status)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

size_t http__body_len(const struct http_response *resp)
{
	if (resp->status == 204 || !resp->body)
		return 0;
	return resp->body_len ? resp->body_len : strlen(resp->body);
}

/* A static, short list of tokens: anything else is left out rather than sent. */
static bool allow_ok(const char *allow)
{
	size_t n = strnlen(allow, ALLOW_MAX + 1);

	return n <= ALLOW_MAX && strspn(allow, "ABCDEFGHIJKLMNOPQRSTUVWXYZ, ") == n;
}

int http__format_head(char *buf, size_t size, const struct http_response *resp, bool keep_alive)
{
	bool allow = resp->allow && allow_ok(resp->allow);
	int n, m = 0;

	if (resp->status < 100 || resp->status > 599)
		return -EINVAL;
	n = snprintf(buf, size, "HTTP/1.1 %d %s\r\nServer: Ember API\r\nConnection: %s\r\n%s%s%s%s",
		     resp->status, http__reason(resp->status), keep_alive ? "keep-alive" : "close",
		     allow ? "Allow: " : "", allow ? resp->allow : "", allow ? "\r\n" : "",
		     resp->deprecation ? "Deprecation: true\r\n" : "");
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	if (resp->status != 204)
		m = snprintf(buf + n, size - (size_t)n,
			     "Content-Type: %s\r\nContent-Length: %zu\r\n",
			     resp->content_type ? resp->content_type : "application/json",
			     http__body_len(resp));
	if (m < 0 || (size_t)(n + m) + 2 >= size)
		return -ENOSPC;
	memcpy(buf + n + m, "\r\n", 3);
	return n + m + 2;
}

int http__format_response(char *buf, size_t size, const struct http_response *resp, bool keep_alive)
{
	int n = http__format_head(buf, size, resp, keep_alive);
	size_t body_len = http__body_len(resp);

	if (n < 0)
		return n;
	if (body_len > size - (size_t)n || body_len > (size_t)INT32_MAX - (size_t)n)
		return -ENOSPC;
	if (body_len)
		memcpy(buf + n, resp->body, body_len);
	return n + (int)body_len;
}

/* ---- JSON strings ---- */

struct sink {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct sink *s, const char *str, size_t n)
{
	for (size_t i = 0; i < n; i++, s->len++)
		if (s->len + 1 < s->size)
			s->buf[s->len] = str[i];
}

static void put_u(struct sink *s, unsigned int u)
{
	char tmp[8];

	snprintf(tmp, sizeof(tmp), "\\u%04x", u & 0xffff);
	put(s, tmp, 6);
}

/* One strict UTF-8 sequence: its length, or 0 if it is not valid. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n;
	uint32_t v, min;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, v = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, v = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, v = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

static size_t put_non_ascii(struct sink *s, const unsigned char *src, size_t len)
{
	uint32_t cp;
	size_t n = utf8_decode(src, len, &cp);

	if (!n) {
		put_u(s, 0xfffd);
		return 1;
	}
	if (cp >= 0x10000) {
		put_u(s, 0xd800 + ((cp - 0x10000) >> 10));
		put_u(s, 0xdc00 + ((cp - 0x10000) & 0x3ff));
	} else {
		put_u(s, cp);
	}
	return n;
}

static void put_ascii(struct sink *s, unsigned char c)
{
	static const char short_esc[] = {
		['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'
	};
	char esc[2] = { '\\', (char)c };

	if (c == '"' || c == '\\') {
		put(s, esc, 2);
	} else if (c < sizeof(short_esc) && short_esc[c]) {
		esc[1] = short_esc[c];
		put(s, esc, 2);
	} else if (c < 0x20 || c == 0x7f) {
		put_u(s, c);
	} else {
		put(s, esc + 1, 1);
	}
}

size_t http__json_escape(char *dst, size_t size, const char *src, size_t len)
{
	const unsigned char *u = (const unsigned char *)src;
	struct sink s = { .buf = dst, .size = size };

	for (size_t i = 0; i < len;) {
		if (u[i] >= 0x80) {
			i += put_non_ascii(&s, u + i, len - i);
		} else {
			put_ascii(&s, u[i]);
			i++;
		}
	}
	if (size)
		dst[s.len < size ? s.len : size - 1] = '\0';
	return s.len;
}

char *http__fault_body(const char *msg, size_t *len)
{
	static const char pre[] = "{\"fault_message\":\"", post[] = "\"}";
	size_t mlen = strlen(msg), elen = http__json_escape(NULL, 0, msg, mlen);
	size_t total = sizeof(pre) - 1 + elen + sizeof(post) - 1;
	char *body = malloc(total + 1);

	if (!body)
		return NULL;
	memcpy(body, pre, sizeof(pre) - 1);
	http__json_escape(body + sizeof(pre) - 1, elen + 1, msg, mlen);
	memcpy(body + sizeof(pre) - 1 + elen, post, sizeof(post));
	if (len)
		*len = total;
	return body;
}

int http__set_fault(struct http_response *resp, int status, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int n;

	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = status;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	resp->body = http__fault_body(msg, &resp->body_len);
	free(msg);
	return resp->body ? 0 : -ENOMEM;
}
