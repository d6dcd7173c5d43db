// SPDX-License-Identifier: Apache-2.0
/*
 * ember-uffd-handler: the example page-fault handler for the Uffd memory backend
 * (tools/README.md). It speaks Firecracker's protocol, so Firecracker's handlers and this
 * one are interchangeable:
 *
 * - it listens on a Unix stream socket (the load request's mem_backend.backend_path);
 * - the VMM connects and sends one message: a JSON array with one object per guest memory
 *   region, {"base_host_virt_addr", "size", "offset" (in the memory file), "page_size"}
 *   ("page_size_kib" in Firecracker's older versions, in bytes too), and, as SCM_RIGHTS
 *   ancillary data, the userfaultfd on which it registered every region (MISSING mode);
 * - the handler answers each page fault with UFFDIO_COPY of that page from the memory
 *   file, until the VM's process is gone.
 *
 * The VM is gone when the peer process (SO_PEERCRED, watched through a pidfd) has exited:
 * a userfaultfd reports nothing when its process exits, and Firecracker closes the
 * connection right after the message. Without a pidfd, a UFFDIO_COPY of a page that is
 * already there is a harmless probe: it fails with ESRCH once the process is gone.
 *
 * With --prefetch, the ranges of a working-set file (src/vmm/working_set.h) are copied in
 * right after the userfaultfd arrives, in chunks, serving pending faults between chunks;
 * with --record, the faulting pages are noted in order and saved as a working-set file.
 *
 * One thread; SIGTERM and SIGINT are blocked except inside ppoll(), so they are seen
 * between events and the handler exits cleanly.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/working_set.h"

#define PAGE ((uint64_t)WORKING_SET_PAGE_SIZE)
#define MSG_MAX (64 * 1024)		   /* the largest message from the VMM */
#define MSG_MORE_MS 200			   /* how long to wait for the rest of a message */
#define MSG_FIRST_MS 10000		   /* how long to wait for a message at all */
#define MAX_FDS 8			   /* fds taken from one message (the first is used) */
#define PREFETCH_CHUNK ((uint64_t)2 << 20) /* bytes per UFFDIO_COPY while prefetching */
#define MAX_DEFERRED 256		   /* faults waiting for a retry after EAGAIN */
#define PROBE_MS 500			   /* without a pidfd: how often to probe */

struct options {
	const char *socket, *mem_file, *record, *prefetch;
	int64_t record_ms; /* -1: until the VM is gone */
	bool once;
};

struct region {
	uint64_t base, size, offset; /* host address in the VMM, bytes, offset in the file */
	uint64_t page;		     /* its page size: 4 KiB, or 2 MiB (hugetlb memory) */
};

#define HUGE_PAGE (2ULL << 20)

/* The events that are noted, not acted on. */
enum note_kind { NOTE_REMOVE, NOTE_UNMAP, NOTE_REMAP, NOTE_FORK, NOTE_OTHER, NR_NOTES };

static const char *const note_names[NR_NOTES] = { "remove", "unmap", "remap", "fork", "unknown" };

/* One VM: one connection. */
struct vm {
	int uffd, pidfd; /* pidfd -1: none, probe instead */
	struct region *regions;
	size_t nr_regions;
	bool gone;
	uint64_t deferred[MAX_DEFERRED]; /* page addresses whose UFFDIO_COPY said EAGAIN */
	size_t nr_deferred;
	/* --record */
	bool recording;
	int64_t record_end_ms; /* -1: until the VM is gone */
	uint64_t *pages;       /* memory-file offsets, in fault order */
	size_t nr_pages, cap_pages;
	/* counters */
	uint64_t faults, prefetched, notes[NR_NOTES];
	int64_t next_probe_ms;
};

struct handler {
	struct options opt;
	const uint8_t *mem; /* the memory file, mapped read-only */
	uint64_t mem_size;
	int listen_fd;
	int status; /* main's exit code */
};

static volatile sig_atomic_t stop_signal;
static sigset_t ppoll_mask; /* the mask inside ppoll(): SIGTERM and SIGINT let through */

__attribute__((format(printf, 2, 3))) static int fail(int ret, const char *fmt, ...)
{
	va_list ap;

	fputs("ember-uffd-handler: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ppoll() that lets SIGTERM/SIGINT in; timeout_ms -1 waits forever. 0, or -EINTR. */
static int wait_fds(struct pollfd *fds, nfds_t n, int64_t timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000 };

	if (ppoll(fds, n, timeout_ms < 0 ? NULL : &ts, &ppoll_mask) < 0)
		return -errno;
	return 0;
}

/* ---- the message ---- */

/* Takes the fds of every SCM_RIGHTS header: the first is kept, the others closed. */
static int take_fds(struct msghdr *mh)
{
	int first = -1;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (first < 0)
				first = fd;
			else
				close(fd);
		}
	}
	return first;
}

/*
 * Receives the message: the JSON (NUL-terminated in buf) and the fd. A stream may deliver
 * a large message in pieces, so more is read while the JSON does not parse yet and more
 * comes within MSG_MORE_MS.
 */
static int recv_message(int conn, char *buf, cJSON **json, int *fd)
{
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { buf, MSG_MAX };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pollfd pfd = { conn, POLLIN, 0 };
	size_t len = 0;
	ssize_t n;
	int ret;

	*fd = -1;
	*json = NULL;
	for (int64_t wait = MSG_FIRST_MS;; wait = MSG_MORE_MS) {
		ret = wait_fds(&pfd, 1, wait);
		if (ret)
			return ret;
		if (!pfd.revents && !len)
			return fail(-EPROTO, "no message within %d s", MSG_FIRST_MS / 1000);
		if (!pfd.revents)
			break; /* nothing more came */
		iov = (struct iovec){ buf + len, MSG_MAX - len };
		mh.msg_control = *fd < 0 ? control.buf : NULL;
		mh.msg_controllen = *fd < 0 ? sizeof(control.buf) : 0;
		n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return fail(-errno, "receiving the message: %s", strerror(errno));
		if (*fd < 0)
			*fd = take_fds(&mh);
		len += (size_t)n;
		buf[len] = '\0';
		/* one JSON value and nothing but whitespace after it (up to the NUL) */
		*json = cJSON_ParseWithLengthOpts(buf, len + 1, NULL, true);
		if (*json || !n || len == MSG_MAX)
			break; /* parsed, or the peer closed, or the buffer is full */
	}
	if (!len)
		return fail(-EPROTO, "the connection closed without a message");
	if (!*json)
		return fail(-EPROTO, "the message is not JSON%s: %.200s",
			    len == MSG_MAX ? " (or longer than 64 KiB)" : "", buf);
	if (*fd < 0)
		return fail(-EPROTO, "the message carries no file descriptor (the userfaultfd, "
				     "as SCM_RIGHTS)");
	return 0;
}

/* A JSON integer from 0 to 2^53 (a double holds every one exactly). */
static int get_u64(const cJSON *obj, const char *name, int i, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	double d;

	if (!cJSON_IsNumber(v))
		return fail(-EPROTO, "region %d: \"%s\" is missing or not a number", i, name);
	d = v->valuedouble;
	if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d)
		return fail(-EPROTO, "region %d: \"%s\" is not an integer from 0 to 2^53", i, name);
	*out = (uint64_t)d;
	return 0;
}

static int parse_region(const cJSON *obj, int i, struct region *r)
{
	uint64_t page_size;
	int ret;

	if (!cJSON_IsObject(obj))
		return fail(-EPROTO, "region %d is not an object", i);
	ret = get_u64(obj, "base_host_virt_addr", i, &r->base);
	if (!ret)
		ret = get_u64(obj, "size", i, &r->size);
	if (!ret)
		ret = get_u64(obj, "offset", i, &r->offset);
	if (ret)
		return ret;
	/* page_size; Firecracker's older versions call it page_size_kib, and give bytes */
	if (cJSON_HasObjectItem(obj, "page_size"))
		ret = get_u64(obj, "page_size", i, &page_size);
	else if (cJSON_HasObjectItem(obj, "page_size_kib"))
		ret = get_u64(obj, "page_size_kib", i, &page_size);
	else
		ret = fail(-EPROTO, "region %d: no \"page_size\"", i);
	if (ret)
		return ret;
	if (page_size != PAGE && page_size != HUGE_PAGE)
		return fail(-EPROTO,
			    "region %d: page size %" PRIu64 ", this handler serves 4 KiB and "
			    "2 MiB pages",
			    i, page_size);
	r->page = page_size;
	return 0;
}

static int check_region(const struct vm *vm, size_t i, uint64_t mem_size)
{
	const struct region *r = &vm->regions[i];

	if (!r->size || r->size % r->page || r->base % r->page || r->offset % PAGE ||
	    r->base + r->size < r->base)
		return fail(-EPROTO,
			    "region %zu (address 0x%" PRIx64 ", size %" PRIu64 ", offset %" PRIu64
			    ") is not made of whole pages",
			    i, r->base, r->size, r->offset);
	if (r->offset > mem_size || r->size > mem_size - r->offset)
		return fail(-EPROTO,
			    "region %zu (offset %" PRIu64 ", size %" PRIu64
			    ") lies beyond the %" PRIu64 "-byte memory file",
			    i, r->offset, r->size, mem_size);
	for (size_t j = 0; j < i; j++) {
		const struct region *o = &vm->regions[j];

		if (r->base < o->base + o->size && o->base < r->base + r->size)
			return fail(-EPROTO, "regions %zu and %zu overlap in memory", j, i);
	}
	return 0;
}

static int parse_regions(const cJSON *json, uint64_t mem_size, struct vm *vm)
{
	const cJSON *obj;
	int n = cJSON_GetArraySize(json), i = 0, ret;

	if (!cJSON_IsArray(json) || !n)
		return fail(-EPROTO, "the message is not a non-empty JSON array of regions");
	vm->regions = calloc((size_t)n, sizeof(*vm->regions));
	if (!vm->regions)
		return fail(-ENOMEM, "out of memory");
	cJSON_ArrayForEach (obj, json) {
		ret = parse_region(obj, i, &vm->regions[i]);
		if (!ret)
			ret = check_region(vm, (size_t)i, mem_size);
		if (ret)
			return ret;
		vm->nr_regions = (size_t)++i;
	}
	return 0;
}

/* The fd must be a userfaultfd; /proc may be missing (a jail): then it is not checked. */
static int check_uffd(int fd)
{
	char path[64], target[128] = "";
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n > 0 && strcmp(target, "anon_inode:[userfaultfd]"))
		return fail(-EPROTO, "the file descriptor in the message is %s, not a userfaultfd",
			    target);
	/* poll() works only on a non-blocking userfaultfd */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		return fail(-errno, "userfaultfd: %s", strerror(errno));
	return 0;
}

/* A pidfd of the process at the other end of the connection; -1 if there is none. */
static int peer_pidfd(int conn, bool *gone)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.pid <= 0)
		return -1; /* e.g. a peer in a PID namespace this one cannot see */
	fd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
	if (fd < 0 && errno == ESRCH)
		*gone = true;
	return fd;
}

/* ---- copying pages in ---- */
static const struct region *find_region(const struct vm *vm, uint64_t addr)
{
	for (size_t i = 0; i < vm->nr_regions; i++)
		if (addr - vm->regions[i].base < vm->regions[i].size)
			return &vm->regions[i];
	return NULL;
}

/*
 * UFFDIO_COPY of len bytes at dst from src, adding to *copied what it copied. A page that
 * is already there (EEXIST) is skipped and the rest copied: the kernel stops at such a
 * page and reports what it copied before it, so a chunk falls back to going around the
 * pages that exist. -EAGAIN: the VMM's memory map is changing; read its events, then retry.
 * -ESRCH: the process is gone.
 */
static int uffd_copy(int uffd, uint64_t dst, const uint8_t *src, uint64_t len, uint64_t page,
		     uint64_t *copied)
{
	while (len) {
		struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len };
		uint64_t step;

		if (!ioctl(uffd, UFFDIO_COPY, &c)) {
			*copied += len;
			return 0;
		}
		if (c.copy > 0) { /* a part, then a page that exists, or EAGAIN */
			step = (uint64_t)c.copy;
			*copied += step;
		} else if (errno == EEXIST) {
			step = page;
		} else {
			return -errno;
		}
		dst += step;
		src += step;
		len -= step;
	}
	return 0;
}

static int copy_fault(struct handler *h, struct vm *vm, uint64_t page)
{
	const struct region *r = find_region(vm, page);
	uint64_t copied = 0;
	int ret;

	ret = uffd_copy(vm->uffd, page, h->mem + r->offset + (page - r->base), r->page, r->page,
			&copied);
	if (!ret && !copied) {
		/* already there (prefetched): make sure the faulting thread goes on */
		struct uffdio_range range = { page, r->page };

		ioctl(vm->uffd, UFFDIO_WAKE, &range);
	}
	if (ret == -EAGAIN) {
		if (vm->nr_deferred == MAX_DEFERRED)
			return fail(-EOVERFLOW, "more than %d faults wait for a retry",
				    MAX_DEFERRED);
		vm->deferred[vm->nr_deferred++] = page;
		return 0;
	}
	if (ret == -ESRCH)
		vm->gone = true;
	else if (ret == -ENOENT)
		vm->notes[NOTE_UNMAP]++; /* no longer registered: unmapped meanwhile */
	else if (ret)
		return fail(ret, "UFFDIO_COPY at 0x%" PRIx64 ": %s", page, strerror(-ret));
	return 0;
}

static void record_page(struct vm *vm, uint64_t offset)
{
	if (!vm->recording || (vm->record_end_ms >= 0 && now_ms() >= vm->record_end_ms))
		return;
	if (vm->nr_pages == vm->cap_pages) {
		size_t cap = vm->cap_pages ? 2 * vm->cap_pages : 4096;
		uint64_t *p = realloc(vm->pages, cap * sizeof(*p));

		if (!p) {
			fail(0, "out of memory: recording stops here");
			vm->record_end_ms = 0;
			return;
		}
		vm->pages = p;
		vm->cap_pages = cap;
	}
	vm->pages[vm->nr_pages++] = offset;
}

static int serve_fault(struct handler *h, struct vm *vm, uint64_t addr)
{
	const struct region *r = find_region(vm, addr);
	uint64_t page;

	if (!r)
		return fail(-EPROTO, "a page fault at 0x%" PRIx64 ", outside every region", addr);
	page = addr & ~(r->page - 1);
	vm->faults++;
	record_page(vm, r->offset + (page - r->base));
	return copy_fault(h, vm, page);
}

static void note(struct vm *vm, enum note_kind kind, const struct uffd_msg *m)
{
	if (!vm->notes[kind]++)
		fail(0, "note: a %s event (event %u; later ones are only counted)",
		     note_names[kind], m->event);
	if (kind == NOTE_FORK)
		close((int)m->arg.fork.ufd); /* the child's userfaultfd: not served */
}

static int handle_msg(struct handler *h, struct vm *vm, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		return serve_fault(h, vm, m->arg.pagefault.address);
	case UFFD_EVENT_REMOVE:
		/* e.g. a balloon gave pages back; a later fault gets the file's page again */
		note(vm, NOTE_REMOVE, m);
		return 0;
	case UFFD_EVENT_UNMAP:
		note(vm, NOTE_UNMAP, m);
		return 0;
	case UFFD_EVENT_REMAP:
		note(vm, NOTE_REMAP, m);
		return 0;
	case UFFD_EVENT_FORK:
		note(vm, NOTE_FORK, m);
		return 0;
	default:
		note(vm, NOTE_OTHER, m);
		return 0;
	}
}

static int retry_deferred(struct handler *h, struct vm *vm)
{
	size_t n = vm->nr_deferred;
	uint64_t pages[MAX_DEFERRED];
	int ret = 0;

	memcpy(pages, vm->deferred, n * sizeof(pages[0]));
	vm->nr_deferred = 0;
	for (size_t i = 0; i < n && !ret && !vm->gone; i++)
		ret = copy_fault(h, vm, pages[i]); /* defers it again on EAGAIN */
	return ret;
}

/* Reads and handles every message waiting on the userfaultfd, then retries deferred faults. */
static int drain(struct handler *h, struct vm *vm)
{
	struct uffd_msg msgs[32];
	int ret;

	while (!vm->gone) {
		ssize_t n = read(vm->uffd, msgs, sizeof(msgs));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return fail(-errno, "reading the userfaultfd: %s", strerror(errno));
		if (!n) {
			vm->gone = true;
			break;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]) && !vm->gone; i++) {
			ret = handle_msg(h, vm, &msgs[i]);
			if (ret)
				return ret;
		}
	}
	return vm->gone ? 0 : retry_deferred(h, vm);
}

/*
 * Waits up to timeout_ms (-1: forever) for a fault or the end of the VM, and handles what
 * came. Returns 0 also when a signal came (the caller checks stop_signal).
 */
static int wait_events(struct handler *h, struct vm *vm, int64_t timeout_ms)
{
	struct pollfd fds[2] = { { vm->uffd, POLLIN, 0 }, { vm->pidfd, POLLIN, 0 } };
	int ret;

	ret = wait_fds(fds, vm->pidfd >= 0 ? 2 : 1, timeout_ms);
	if (ret == -EINTR)
		return 0;
	if (ret)
		return fail(ret, "poll: %s", strerror(-ret));
	if (fds[0].revents & (POLLHUP | POLLERR) || fds[1].revents)
		vm->gone = true;
	if (fds[0].revents & POLLIN && !vm->gone)
		return drain(h, vm);
	return 0;
}

/* Without a pidfd: UFFDIO_COPY of the first page, there already or due anyway. */
static void probe(struct handler *h, struct vm *vm)
{
	uint64_t copied = 0;
	const struct region *r = &vm->regions[0];

	if (uffd_copy(vm->uffd, r->base, h->mem + r->offset, r->page, r->page, &copied) == -ESRCH)
		vm->gone = true;
}

/* ---- --record and --prefetch ---- */
static void finish_recording(struct handler *h, struct vm *vm)
{
	struct working_set ws;
	int ret;

	if (!vm->recording)
		return;
	vm->recording = false;
	ret = working_set__from_pages(vm->pages, vm->nr_pages, h->mem_size, &ws);
	if (!ret)
		ret = working_set__save(h->opt.record, &ws);
	if (ret) {
		fail(ret, "recording the working set: %s", error__get());
		h->status = 1;
		return;
	}
	printf("recorded %zu faults: %u ranges, %" PRIu64 " bytes, to %s\n", vm->nr_pages, ws.nr,
	       working_set__bytes(&ws), h->opt.record);
	working_set__free(&ws);
}

/* Copies memory-file bytes [offset, offset + len) into the regions that hold them. */
static int prefetch_range(struct handler *h, struct vm *vm, uint64_t offset, uint64_t len)
{
	for (size_t i = 0; i < vm->nr_regions && !vm->gone && !stop_signal; i++) {
		const struct region *r = &vm->regions[i];
		uint64_t start = offset > r->offset ? offset : r->offset;
		uint64_t end =
			offset + len < r->offset + r->size ? offset + len : r->offset + r->size;

		/* whole pages of the region's size (a working set is in 4 KiB pages) */
		start = r->offset + ((start - r->offset) & ~(r->page - 1));
		end = end > start ? r->offset + ((end - r->offset + r->page - 1) & ~(r->page - 1))
				  : end;
		while (start < end && !vm->gone && !stop_signal) {
			uint64_t n = end - start < PREFETCH_CHUNK ? end - start : PREFETCH_CHUNK;
			uint64_t dst = r->base + (start - r->offset);
			int ret = uffd_copy(vm->uffd, dst, h->mem + start, n, r->page,
					    &vm->prefetched);

			if (!ret)
				start += n;
			else if (ret == -ESRCH)
				vm->gone = true;
			else if (ret != -EAGAIN) /* EAGAIN: the events first, then again */
				return fail(ret, "prefetch: UFFDIO_COPY at 0x%" PRIx64 ": %s", dst,
					    strerror(-ret));
			/* the guest never waits behind the prefetch: its faults go first */
			ret = wait_events(h, vm, ret == -EAGAIN ? 1 : 0);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int prefetch(struct handler *h, struct vm *vm)
{
	struct working_set ws;
	int ret = 0;

	/* only a hint: without it the VM still runs, each page on demand */
	if (working_set__load(h->opt.prefetch, h->mem_size, &ws)) {
		fail(0, "warning: no prefetch: %s", error__get());
		return 0;
	}
	for (uint32_t i = 0; i < ws.nr; i++) {
		ret = prefetch_range(h, vm, ws.ranges[i].offset, ws.ranges[i].length);
		if (ret)
			break;
	}
	working_set__free(&ws);
	printf("prefetched %" PRIu64 " pages\n", vm->prefetched / PAGE);
	return ret;
}

/* ---- one VM ---- */

/* How long run_vm() may wait for events: until a retry, the next probe, or the end of the
 * recording; -1: until something happens. */
static int64_t next_timeout(const struct vm *vm, int64_t now)
{
	int64_t t = vm->pidfd < 0 ? vm->next_probe_ms - now : -1;

	if (vm->nr_deferred)
		return 1;
	if (vm->recording && vm->record_end_ms >= 0 && (t < 0 || vm->record_end_ms - now < t))
		t = vm->record_end_ms - now;
	return t < 0 ? -1 : t;
}

static int run_vm(struct handler *h, struct vm *vm)
{
	int64_t now;
	int ret = 0;

	vm->recording = h->opt.record != NULL;
	vm->record_end_ms = h->opt.record_ms < 0 ? -1 : now_ms() + h->opt.record_ms;
	vm->next_probe_ms = now_ms() + PROBE_MS;
	if (h->opt.prefetch)
		ret = prefetch(h, vm);
	while (!ret && !vm->gone && !stop_signal) {
		now = now_ms();
		if (vm->recording && vm->record_end_ms >= 0 && now >= vm->record_end_ms)
			finish_recording(h, vm);
		if (vm->pidfd < 0 && now >= vm->next_probe_ms) {
			probe(h, vm);
			vm->next_probe_ms = now + PROBE_MS;
		}
		ret = wait_events(h, vm, next_timeout(vm, now));
	}
	finish_recording(h, vm);
	return ret;
}

static int serve_vm(struct handler *h, int conn)
{
	static char buf[MSG_MAX + 1];
	struct vm vm = { .uffd = -1, .pidfd = -1 };
	cJSON *json;
	int ret;

	ret = recv_message(conn, buf, &json, &vm.uffd);
	if (!ret)
		ret = parse_regions(json, h->mem_size, &vm);
	if (!ret)
		ret = check_uffd(vm.uffd);
	cJSON_Delete(json);
	if (ret == -EINTR && stop_signal)
		ret = 0; /* stopped while waiting for the message */
	if (ret || stop_signal)
		goto out;
	vm.pidfd = peer_pidfd(conn, &vm.gone);
	printf("serving %zu regions%s\n", vm.nr_regions,
	       vm.pidfd < 0 ? " (peer process unknown: probing for its end)" : "");
	ret = run_vm(h, &vm);
	printf("vm done: %" PRIu64 " faults, %" PRIu64 " pages prefetched", vm.faults,
	       vm.prefetched / PAGE);
	for (int k = 0; k < NR_NOTES; k++)
		if (vm.notes[k])
			printf(", %" PRIu64 " %s events", vm.notes[k], note_names[k]);
	printf("%s\n", stop_signal ? " (stopped by a signal)" : "");
out:
	if (vm.pidfd >= 0)
		close(vm.pidfd);
	if (vm.uffd >= 0)
		close(vm.uffd);
	free(vm.regions);
	free(vm.pages);
	return ret;
}

/* ---- set-up ---- */
static int map_memory(struct handler *h)
{
	struct stat st;
	void *p;
	int fd, ret = 0;

	fd = open(h->opt.mem_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(-errno, "%s: %s", h->opt.mem_file, strerror(errno));
	if (fstat(fd, &st)) {
		ret = fail(-errno, "%s: %s", h->opt.mem_file, strerror(errno));
	} else if (!S_ISREG(st.st_mode) || !st.st_size || (uint64_t)st.st_size % PAGE) {
		ret = fail(-EINVAL, "%s: not a regular file of whole pages", h->opt.mem_file);
	} else {
		h->mem_size = (uint64_t)st.st_size;
		p = mmap(NULL, h->mem_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			ret = fail(-errno, "mapping %s: %s", h->opt.mem_file, strerror(errno));
		else
			h->mem = p;
	}
	close(fd);
	return ret;
}

static int listen_socket(struct handler *h)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(h->opt.socket) >= sizeof(addr.sun_path))
		return fail(-ENAMETOOLONG, "%s: socket path too long", h->opt.socket);
	strcpy(addr.sun_path, h->opt.socket);
	h->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->listen_fd < 0)
		return fail(-errno, "socket: %s", strerror(errno));
	unlink(h->opt.socket); /* a stale one */
	if (bind(h->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(h->listen_fd, 8)) {
		int ret = fail(-errno, "%s: %s", h->opt.socket, strerror(errno));

		close(h->listen_fd);
		return ret;
	}
	return 0;
}

/* The next connection, or -1 after a signal or an error (h->status says which). */
static int accept_vm(struct handler *h)
{
	struct pollfd pfd = { h->listen_fd, POLLIN, 0 };
	int fd;

	while (!stop_signal) {
		if (wait_fds(&pfd, 1, -1) || !pfd.revents)
			continue;
		fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
			h->status = fail(1, "accept: %s", strerror(errno));
			return -1;
		}
	}
	return -1;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_signal = 1;
}

/* SIGTERM and SIGINT are blocked, and let in only inside ppoll(). */
static void setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &ppoll_mask);
	sigdelset(&ppoll_mask, SIGTERM);
	sigdelset(&ppoll_mask, SIGINT);
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: ppoll() returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *out)
{
	fputs("usage: ember-uffd-handler --socket PATH --mem-file FILE [--record WS_FILE "
	      "[--record-ms N]]\n"
	      "                          [--prefetch WS_FILE] [--once]\n"
	      "  serves the page faults of VMs restored with the Uffd memory backend from FILE;\n"
	      "  --record writes the pages they touch first (in the first N ms), --prefetch\n"
	      "  copies such a working set in before the guest asks; --once: one VM, then exit.\n",
	      out);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mem-file", required_argument, NULL, 'm' },
		{ "record", required_argument, NULL, 'r' },
		{ "record-ms", required_argument, NULL, 't' },
		{ "prefetch", required_argument, NULL, 'p' },
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	o->record_ms = -1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket = optarg;
			break;
		case 'm':
			o->mem_file = optarg;
			break;
		case 'r':
			o->record = optarg;
			break;
		case 't':
			errno = 0;
			o->record_ms = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || o->record_ms < 0)
				return fail(-EINVAL, "--record-ms: not a number of ms: %s", optarg);
			break;
		case 'p':
			o->prefetch = optarg;
			break;
		case 'o':
			o->once = true;
			break;
		case 'h':
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (optind < argc)
		return fail(-EINVAL, "unexpected argument '%s'", argv[optind]);
	if (!o->socket || !o->mem_file)
		return fail(-EINVAL, "--socket and --mem-file are required");
	if (o->record_ms >= 0 && !o->record)
		return fail(-EINVAL, "--record-ms needs --record");
	return 0;
}

int main(int argc, char **argv)
{
	struct handler h = { .listen_fd = -1 };
	int ret, conn;

	setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, even into a pipe */
	ret = parse_args(argc, argv, &h.opt);
	if (ret) {
		usage(ret > 0 ? stdout : stderr);
		return ret > 0 ? 0 : 1;
	}
	setup_signals();
	if (map_memory(&h) || listen_socket(&h))
		return 1;
	printf("ready\n");
	while ((conn = accept_vm(&h)) >= 0) {
		ret = serve_vm(&h, conn);
		close(conn);
		if (ret)
			h.status = 1;
		if (ret || h.opt.once || stop_signal)
			break;
	}
	close(h.listen_fd);
	unlink(h.opt.socket);
	munmap((void *)h.mem, h.mem_size);
	return h.status;
}
