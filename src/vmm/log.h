/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging with a level and a thread tag, and the one-line error reason that main() prints.
 */
#ifndef EMBER_VMM_LOG_H
#define EMBER_VMM_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_OFF,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_TRACE,
};

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/*
 * Sets the instance id. Logging never blocks: when stderr is a pipe or a terminal, the log
 * gets its own non-blocking handle on it; a line that does not fit is dropped and counted.
 */
void log__init(const char *instance_id);
/* Appends to a file (created if missing) or a named pipe, never blocking; -errno. */
int log__set_path(const char *path);
/* Lines dropped because the log's pipe was full or a write failed. */
uint64_t log__dropped(void);
void log__set_level(enum log_level level);
enum log_level log__level(void);
void log__set_options(bool show_level, bool show_origin);
/* Firecracker's names, any case: Off, Error, Warning (or Warn), Info, Debug, Trace. */
int log__parse_level(const char *name, enum log_level *out);
/* A short name for the calling thread ("main", "vcpu0", "api"). */
void log__set_thread_tag(const char *tag);
void log__close(void);

void log__msg(enum log_level level, const char *file, int line, const char *fmt, ...)
	LOG_PRINTF(4, 5);

#define log_error(...) log__msg(LOG_LEVEL_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log__msg(LOG_LEVEL_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log__msg(LOG_LEVEL_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log__msg(LOG_LEVEL_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

/*
 * The reason for the last failure on this thread, kept for main() to print as its one line
 * on stderr. error__set() returns ret, so a failing path can `return error__set(-EINVAL,
 * "...")`. A later error__set() on the same thread replaces the message, so set it where
 * the detail is known and do not overwrite it higher up (use error__set_default() there).
 */
int error__set(int ret, const char *fmt, ...) LOG_PRINTF(2, 3);
/* Sets the message only if none is set yet. */
int error__set_default(int ret, const char *fmt, ...) LOG_PRINTF(2, 3);
/* Appends " (context)" to the current message; returns ret. */
int error__add_context(int ret, const char *fmt, ...) LOG_PRINTF(2, 3);
const char *error__get(void);
void error__clear(void);

/* Microseconds since process start (wall clock and CPU), for the boot timer. */
void log__mark_process_start(void);
uint64_t log__wall_us_since_start(void);
uint64_t log__cpu_us_since_start(void);

#endif
