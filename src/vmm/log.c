// SPDX-License-Identifier: Apache-2.0
#include "vmm/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024
#define ERROR_MSG_MAX 512

static struct {
	int fd;
	uint64_t dropped;
	enum log_level level;
	bool show_level;
	bool show_origin;
	char id[65];
	uint64_t start_wall_us;
	uint64_t start_cpu_us;
} logger = { .fd = STDERR_FILENO, .level = LOG_LEVEL_INFO, .id = "anonymous-instance" };

static __thread char thread_tag[16] = "main";
static __thread char error_msg[ERROR_MSG_MAX];

static const char *const level_names[] = {
	[LOG_LEVEL_OFF] = "OFF",   [LOG_LEVEL_ERROR] = "ERROR", [LOG_LEVEL_WARN] = "WARN",
	[LOG_LEVEL_INFO] = "INFO", [LOG_LEVEL_DEBUG] = "DEBUG", [LOG_LEVEL_TRACE] = "TRACE",
};

static uint64_t clock_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

void log__mark_process_start(void)
{
	logger.start_wall_us = clock_us(CLOCK_MONOTONIC);
	logger.start_cpu_us = clock_us(CLOCK_PROCESS_CPUTIME_ID);
}

uint64_t log__wall_us_since_start(void)
{
	return clock_us(CLOCK_MONOTONIC) - logger.start_wall_us;
}

uint64_t log__cpu_us_since_start(void)
{
	return clock_us(CLOCK_PROCESS_CPUTIME_ID) - logger.start_cpu_us;
}

/* A pipe or terminal on stderr gets its own non-blocking open file description. */
static void unblock_stderr(void)
{
	struct stat st;
	int fd;

	if (fstat(STDERR_FILENO, &st) < 0 || S_ISREG(st.st_mode))
		return;
	fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0)
		logger.fd = fd;
}

void log__init(const char *instance_id)
{
	/* gmtime_r() reads the time zone once, on its first call: here, not on a thread
	 * under seccomp (the time stamps are UTC, but glibc looks anyway) */
	tzset();
	if (instance_id)
		snprintf(logger.id, sizeof(logger.id), "%s", instance_id);
	if (logger.fd == STDERR_FILENO)
		unblock_stderr();
}

uint64_t log__dropped(void)
{
	return __atomic_load_n(&logger.dropped, __ATOMIC_RELAXED);
}

int log__set_path(const char *path)
{
	struct stat st;
	int flags = O_WRONLY | O_APPEND | O_CREAT;
	int fd;

	/* opened read-write, a named pipe needs no reader yet and never blocks the open */
	if (!stat(path, &st) && S_ISFIFO(st.st_mode))
		flags = O_RDWR;
	fd = open(path, flags | O_CLOEXEC | O_NONBLOCK, 0640);
	if (fd < 0)
		return -errno;
	if (logger.fd != STDERR_FILENO)
		close(logger.fd);
	logger.fd = fd;
	return 0;
}

void log__close(void)
{
	if (logger.fd != STDERR_FILENO)
		close(logger.fd);
	logger.fd = STDERR_FILENO;
}

void log__set_level(enum log_level level)
{
	logger.level = level;
}

enum log_level log__level(void)
{
	return logger.level;
}

void log__set_options(bool show_level, bool show_origin)
{
	logger.show_level = show_level;
	logger.show_origin = show_origin;
}

int log__parse_level(const char *name, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "off", LOG_LEVEL_OFF },      { "error", LOG_LEVEL_ERROR },
		{ "warning", LOG_LEVEL_WARN }, { "warn", LOG_LEVEL_WARN },
		{ "info", LOG_LEVEL_INFO },    { "debug", LOG_LEVEL_DEBUG },
		{ "trace", LOG_LEVEL_TRACE },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(name, names[i].name)) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

void log__set_thread_tag(const char *tag)
{
	snprintf(thread_tag, sizeof(thread_tag), "%s", tag);
}

static size_t format_prefix(char *buf, size_t len, enum log_level level, const char *file, int line)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* by hand, not strftime(): that calls tzset() every time, which looks at
	 * /etc/localtime, a file a seccomp-filtered thread may not open */
	n = (size_t)snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09ld [%s:%s",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, ts.tv_nsec, logger.id, thread_tag);
	if (n >= len)
		return len - 1;
	if (logger.show_level)
		n += (size_t)snprintf(buf + n, len - n, ":%s", level_names[level]);
	if (logger.show_origin && n < len)
		n += (size_t)snprintf(buf + n, len - n, ":%s:%d", file, line);
	if (n < len)
		n += (size_t)snprintf(buf + n, len - n, "] ");
	return n < len ? n : len - 1;
}

void log__msg(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	char buf[LOG_LINE_MAX];
	size_t n;
	va_list ap;
	ssize_t w;

	if (level == LOG_LEVEL_OFF || level > logger.level)
		return;
	n = format_prefix(buf, sizeof(buf) - 1, level, file, line);
	va_start(ap, fmt);
	n += (size_t)vsnprintf(buf + n, sizeof(buf) - 1 - n, fmt, ap);
	va_end(ap);
	if (n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* One write per line, so lines from several threads never interleave. */
	w = write(logger.fd, buf, n);
	if (w != (ssize_t)n)
		__atomic_add_fetch(&logger.dropped, 1, __ATOMIC_RELAXED);
}

static int set_error(int ret, const char *fmt, va_list ap)
{
	vsnprintf(error_msg, sizeof(error_msg), fmt, ap);
	return ret;
}

int error__set(int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(ret, fmt, ap);
	va_end(ap);
	return ret;
}

int error__set_default(int ret, const char *fmt, ...)
{
	va_list ap;

	if (error_msg[0])
		return ret;
	va_start(ap, fmt);
	set_error(ret, fmt, ap);
	va_end(ap);
	return ret;
}

int error__add_context(int ret, const char *fmt, ...)
{
	char ctx[ERROR_MSG_MAX];
	size_t n = strlen(error_msg), len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	if (n + 4 >= sizeof(error_msg))
		return ret;
	error_msg[n++] = ' ';
	error_msg[n++] = '(';
	len = strnlen(ctx, sizeof(error_msg) - n - 2);
	memcpy(error_msg + n, ctx, len);
	n += len;
	error_msg[n++] = ')';
	error_msg[n] = '\0';
	return ret;
}

const char *error__get(void)
{
	return error_msg;
}

void error__clear(void)
{
	error_msg[0] = '\0';
}
