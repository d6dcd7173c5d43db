/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict, small, incremental HTTP/1.1 request parser and the response formatter for the
 * API socket. Like Firecracker's micro_http: no chunked bodies, origin-form targets only.
 *
 * The parser copies what it keeps, so the caller may feed any split of the stream, down to
 * one byte at a time, and reuse its own buffer at once. Its memory is fixed when it is
 * initialised: one block of header_limit + body_limit + 1 bytes, nothing per byte.
 */
#ifndef EMBER_API_HTTP_H
#define EMBER_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/log.h"

#define HTTP_HEADER_LIMIT_DEFAULT 8192 /* request line + headers + CRLFs */
#define HTTP_BODY_LIMIT_DEFAULT 51200  /* Ember's --http-api-max-payload-size default */
#define HTTP_TARGET_MAX 1024	       /* path + '?' + query; longer is 414 */
#define HTTP_METHOD_MAX 16
#define HTTP_CONTENT_TYPE_MAX 128
/* A response head always fits in this many bytes (the body is separate). */
#define HTTP_HEAD_MAX 320

enum http_method {
	HTTP_METHOD_GET,
	HTTP_METHOD_PUT,
	HTTP_METHOD_PATCH,
	HTTP_METHOD_OTHER, /* a valid token; its name is in method_name (answer 405) */
};

enum http_version {
	HTTP_VERSION_1_0,
	HTTP_VERSION_1_1,
};

/* One complete request. Valid until the next http_parser__feed() or reset. */
struct http_request {
	enum http_method method;
	char method_name[HTTP_METHOD_MAX + 1];
	enum http_version version;
	char path[HTTP_TARGET_MAX + 1];	 /* starts with '/'; no '%', no dot segments */
	char query[HTTP_TARGET_MAX + 1]; /* after the first '?', without it; "" if none */
	bool has_query;			 /* the target had a '?' (query may still be "") */
	bool keep_alive;		 /* from the version and Connection */
	bool expect_continue;		 /* Expect: 100-continue */
	bool has_content_type;
	char content_type[HTTP_CONTENT_TYPE_MAX + 1]; /* the value as sent, trimmed */
	bool has_content_length;
	const char *body; /* body_len bytes, then a NUL (the body may hold NULs itself) */
	size_t body_len;
};

/*
 * What the handler returns. The caller zeroes it and sets status to 500 first.
 * body is malloc'ed (or NULL) and owned by whoever sends the response (the server frees
 * it); when body_len is 0 and body is not NULL, strlen(body) is used.
 */
struct http_response {
	int status;
	char *body;
	size_t body_len;
	bool deprecation; /* add "Deprecation: true" */
	bool close;	  /* close the connection after this response */
	/* "Allow: <allow>" for a 405: static, "GET, PUT"; over 64 bytes or not A-Z/", ": omitted */
	const char *allow;
	/* a static Content-Type; NULL: application/json */
	const char *content_type;
	/* the request was HEAD: headers as for GET, but no body is sent */
	bool head_only;
};

enum http_parse_result {
	HTTP_PARSE_NEED_MORE, /* every byte given was consumed; feed more */
	HTTP_PARSE_DONE,      /* one request is complete: http_parser__request() */
	HTTP_PARSE_ERROR,     /* http_parser__error(): answer it, then close */
};

enum http_parser_state {
	HTTP_ST_REQUEST_LINE,
	HTTP_ST_HEADER,
	HTTP_ST_BODY,
	HTTP_ST_DONE,
	HTTP_ST_ERROR,
};

/* Fields are private to http.c. */
struct http_parser {
	size_t header_limit;
	size_t body_limit;
	char *line; /* header_limit bytes: the line being collected */
	char *body; /* body_limit + 1 bytes */
	enum http_parser_state state;
	size_t line_len;
	size_t head_len;     /* bytes of the head so far, against header_limit */
	size_t field_len;    /* bytes of the request-line field being read (method, target) */
	unsigned int spaces; /* spaces seen in the request line */
	bool cr;
	bool started; /* a byte of a request has arrived */
	bool connection_close;
	bool connection_keep_alive;
	bool transfer_encoding;
	unsigned long long content_length;
	bool continue_pending;
	size_t body_got;
	int error_status;
	char error_msg[128];
	struct http_request req;
};

/* Limits of 0 select the defaults. 0 or -ENOMEM (-EINVAL for absurd limits). */
int http_parser__init(struct http_parser *p, size_t header_limit, size_t body_limit);
void http_parser__destroy(struct http_parser *p);
/* Forget the current request; keeps the buffers and limits. */
void http_parser__reset(struct http_parser *p);

/*
 * Consumes bytes from data. *consumed is how many: all of len on NEED_MORE; up to the end of
 * the request on DONE, so the rest (a pipelined request) must be fed again; up to and
 * including the offending byte on ERROR. Feeding after DONE starts the next request; feeding
 * after ERROR keeps returning ERROR, consuming nothing, until http_parser__reset().
 */
enum http_parse_result http_parser__feed(struct http_parser *p, const void *data, size_t len,
					 size_t *consumed);

const struct http_request *http_parser__request(const struct http_parser *p);
/* After ERROR: the status (400, 413, 414, 431, 501, 505) and a one-line static message. */
int http_parser__error(const struct http_parser *p, const char **msg);
/* True while a request has started but is not complete: a slow or half-open client. */
bool http_parser__in_progress(const struct http_parser *p);
/*
 * True once per request, when the headers carried Expect: 100-continue, they passed every
 * check, and the body is still to come: the server then sends HTTP_CONTINUE.
 */
bool http_parser__take_continue(struct http_parser *p);

#define HTTP_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/* "OK", "Not Found", ...; "Unknown" for a code not in the table. */
const char *http__reason(int status);

/*
 * Writes the status line and headers, up to and including the blank line, into buf. Returns
 * the length (at most HTTP_HEAD_MAX), or -ENOSPC if size is too small. 204 has neither
 * Content-Type nor Content-Length (RFC 9110 forbids the latter), and no body.
 */
int http__format_head(char *buf, size_t size, const struct http_response *resp, bool keep_alive);
/* The head and then the body; the length, or -ENOSPC. */
int http__format_response(char *buf, size_t size, const struct http_response *resp,
			  bool keep_alive);
/* The body length that will be sent for resp (0 for 204). */
size_t http__body_len(const struct http_response *resp);

/*
 * JSON string escaping, by hand: quotes, backslashes and control characters are escaped;
 * valid UTF-8 becomes \uXXXX (surrogate pairs above U+FFFF) and each invalid byte \ufffd,
 * so the output is pure printable ASCII. Writes at most size - 1 bytes and a NUL (like
 * snprintf) and returns the full escaped length.
 */
size_t http__json_escape(char *dst, size_t size, const char *src, size_t len);

/* {"fault_message":"<escaped msg>"}, malloc'ed; *len gets its length. NULL on ENOMEM. */
char *http__fault_body(const char *msg, size_t *len);
/* Sets status and a formatted fault body; 0, or -ENOMEM (then body is NULL). */
int http__set_fault(struct http_response *resp, int status, const char *fmt, ...) LOG_PRINTF(3, 4);

#endif
