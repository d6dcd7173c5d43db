/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API server: Firecracker's HTTP API on a Unix stream socket, served by one thread
 * ("api") with one epoll loop over the listener, the clients and a stop eventfd.
 *
 * Each complete request goes to the handler, synchronously on the API thread, one at a time;
 * requests on a connection are answered in order. The handler may block for a short while
 * (waiting for the VMM thread), which holds up every client for that long.
 */
#ifndef EMBER_API_SERVER_H
#define EMBER_API_SERVER_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "api/http.h"
#include "vmm/event_loop.h"

#define API_MAX_CLIENTS_DEFAULT 64
#define API_REQUEST_TIMEOUT_MS_DEFAULT 30000

/*
 * Fills resp (status preset to 500, body NULL). resp->body is malloc'ed or NULL; the server
 * frees it. req and its body are valid only during the call.
 */
typedef void (*api_handler_fn)(void *opaque, const struct http_request *req,
			       struct http_response *resp);

/* Zeroes select the defaults. */
struct api_server_config {
	const char *socket_path;
	size_t header_limit;	  /* HTTP_HEADER_LIMIT_DEFAULT */
	size_t body_limit;	  /* HTTP_BODY_LIMIT_DEFAULT (--http-api-max-payload-size) */
	unsigned int max_clients; /* API_MAX_CLIENTS_DEFAULT; beyond it: 503 and close */
	/*
	 * A request must be complete this long after its first byte (for a new connection,
	 * after accept), and a response must be taken this long after it is ready; otherwise
	 * the connection is dropped. API_REQUEST_TIMEOUT_MS_DEFAULT.
	 */
	unsigned int request_timeout_ms;
	/*
	 * An idle keep-alive connection (between requests) is closed after this long; 0 keeps
	 * it open, as Firecracker does (closing it races with a client that reuses it).
	 */
	unsigned int idle_timeout_ms;
};

/* Counters; read them with api_server__stats() from any thread. */
struct api_server_stats {
	uint64_t connections_accepted; /* includes the rejected ones */
	uint64_t connections_rejected; /* over max_clients: 503 and closed */
	uint64_t connections_timed_out;
	uint64_t connections_closed_mid_request; /* EOF or error with a request half-read */
	uint64_t requests;			 /* complete requests passed to the handler */
	uint64_t parse_errors;			 /* the sum of the next six */
	uint64_t parse_errors_400;
	uint64_t parse_errors_413;
	uint64_t parse_errors_414;
	uint64_t parse_errors_431;
	uint64_t parse_errors_501;
	uint64_t parse_errors_505;
};

struct api_client;

/* Fields are private to server.c. */
struct api_server {
	struct api_server_config cfg;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	api_handler_fn handle;
	void *opaque;
	int listen_fd;
	int stop_fd;
	struct event_loop loop;
	struct event_handler listen_h;
	struct event_handler stop_h;
	struct api_client *clients;
	unsigned int nr_clients;
	uint64_t accept_paused_until; /* ms, after EMFILE; 0 when accepting */
	bool stopping;
	bool started;
	bool initialised;
	pthread_t thread;
	sem_t thread_ready; /* posted once the thread's seccomp filter is in place, or not */
	int thread_ret;	    /* and whether it is */
	struct api_server_stats stats;
};

/*
 * Creates and binds the listening socket (a stale socket file is removed first) so clients
 * can connect as soon as this returns. 0, or -errno with error__set(): -EADDRINUSE if a live
 * server listens on the path, -EEXIST if the path is not a socket, -ENAMETOOLONG, ...
 */
int api_server__init(struct api_server *s, const struct api_server_config *cfg,
		     api_handler_fn handle, void *opaque);
/* Starts the API thread. 0 or -errno. */
int api_server__start(struct api_server *s);
/*
 * Stops the thread (if started), closes every connection and the listener, and unlinks the
 * socket. Safe after a failed init and to call twice.
 */
void api_server__stop(struct api_server *s);
void api_server__stats(const struct api_server *s, struct api_server_stats *out);

#endif
