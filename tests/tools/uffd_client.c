// SPDX-License-Identifier: Apache-2.0
/*
 * A stand-in for the VMM, to test tools/ember-uffd-handler without one: it maps guest
 * memory as two anonymous regions (the memory file's pages [0, split) and [split, end)),
 * registers them with a userfaultfd (MISSING mode, remove events on), connects to the
 * handler's socket and sends the regions as JSON with the userfaultfd (SCM_RIGHTS), exactly
 * as Ember and Firecracker do. Then it runs its actions in order:
 *
 *   --touch LIST   read these memory-file pages (e.g. 0,3,8-11; "all") and check that each
 *                  byte equals the memory file's; a page not yet there blocks in the fault
 *                  until the handler copies it in
 *   --present      print "present: LIST", the file pages already in memory (mincore)
 *   --remove LIST  madvise(MADV_DONTNEED) these pages (the handler gets remove events)
 *   --sleep MS
 *
 * --pad N pads the JSON with spaces to N bytes (the handler takes up to 64 KiB).
 * --bad json|nofd|notuffd|outside|overlap|big sends a broken message instead (not JSON; no
 * fd; the memory file's fd; a region past the end of the file; both regions at one address;
 * 70000 bytes) and waits for the handler to hang up. --old-format names the
 * page size page_size_kib, as Firecracker's older versions do. --close-conn closes the connection
 * right after the message, as Firecracker does. Exit 0 when every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
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

#define PAGE 4096UL
#define MAX_ACTIONS 64
#define MAX_MESSAGE 70000

struct action {
	int kind; /* 't' touch, 'p' present, 'r' remove, 'w' sleep */
	const char *arg;
};

struct client {
	const char *socket, *mem_file, *bad;
	bool old_format, close_conn;
	size_t pad;	     /* the message's length, with spaces after the JSON */
	size_t pages, split; /* in the memory file; region 1 starts at page split */
	uint8_t *region[2];
	int mem_fd, uffd, conn;
	struct action actions[MAX_ACTIONS];
	int nr_actions;
};

static void die(const char *what)
{
	fprintf(stderr, "uffd_client: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The address of a memory-file page in the client's regions. */
static uint8_t *page_addr(const struct client *c, size_t page)
{
	return page < c->split ? c->region[0] + page * PAGE
			       : c->region[1] + (page - c->split) * PAGE;
}

static void setup_memory(struct client *c)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };
	size_t size[2] = { c->split * PAGE, (c->pages - c->split) * PAGE };

	c->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (c->uffd < 0)
		die("userfaultfd");
	if (ioctl(c->uffd, UFFDIO_API, &api))
		die("UFFDIO_API");
	for (int i = 0; i < 2; i++) {
		struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

		c->region[i] = mmap(NULL, size[i], PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (c->region[i] == MAP_FAILED)
			die("mmap");
		reg.range.start = (uintptr_t)c->region[i];
		reg.range.len = size[i];
		if (ioctl(c->uffd, UFFDIO_REGISTER, &reg))
			die("UFFDIO_REGISTER");
	}
}

static bool bad(const struct client *c, const char *how)
{
	return c->bad && !strcmp(c->bad, how);
}

static int region_json(char *out, size_t n, uint8_t *base, size_t pages, size_t offset_pages,
		       bool old_format)
{
	return snprintf(out, n,
			"{\"base_host_virt_addr\": %lu, \"size\": %lu, \"offset\": %lu, "
			"\"%s\": 4096%s}",
			(unsigned long)(uintptr_t)base, pages * PAGE, offset_pages * PAGE,
			old_format ? "page_size_kib" : "page_size",
			old_format ? "" : ", \"page_size_kib\": 4096");
}

static void send_message(struct client *c)
{
	static char json[MAX_MESSAGE + 1];
	char r0[400], r1[400];
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { json, 0 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct cmsghdr *cm;
	/* --bad outside: region 1 claims the pages right after the end of the file */
	size_t offset1 = bad(c, "outside") ? c->pages : c->split;
	int fd = bad(c, "notuffd") ? c->mem_fd : c->uffd;

	region_json(r0, sizeof(r0), c->region[0], c->split, 0, c->old_format);
	region_json(r1, sizeof(r1), bad(c, "overlap") ? c->region[0] : c->region[1],
		    c->pages - c->split, offset1, c->old_format);
	snprintf(json, sizeof(json), "[%s, %s", r0, r1);
	if (bad(c, "big"))
		c->pad = MAX_MESSAGE;
	/* spaces inside the array, so that the JSON itself is pad bytes long */
	iov.iov_len = strlen(json);
	while (iov.iov_len + 1 < c->pad && iov.iov_len < MAX_MESSAGE - 1)
		json[iov.iov_len++] = ' ';
	json[iov.iov_len++] = ']';
	if (bad(c, "json"))
		iov.iov_len = (size_t)snprintf(json, sizeof(json), "this is not JSON");
	if (!bad(c, "nofd")) {
		mh.msg_control = control;
		mh.msg_controllen = sizeof(control);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", c->socket);
	c->conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->conn < 0 || connect(c->conn, (struct sockaddr *)&addr, sizeof(addr)))
		die(c->socket);
	if (sendmsg(c->conn, &mh, 0) != (ssize_t)iov.iov_len)
		die("sendmsg");
	if (c->close_conn)
		close(c->conn);
}

/* Calls fn for each page of a list such as "0,3,8-11" or "all". */
static void for_pages(struct client *c, const char *list, void (*fn)(struct client *, size_t))
{
	char *end;

	if (!strcmp(list, "all")) {
		for (size_t p = 0; p < c->pages; p++)
			fn(c, p);
		return;
	}
	while (*list) {
		unsigned long a = strtoul(list, &end, 10), b = a;

		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		if (end == list || b < a || b >= c->pages || (*end && *end != ',')) {
			fprintf(stderr, "uffd_client: bad page list at '%s'\n", list);
			exit(2);
		}
		for (unsigned long p = a; p <= b; p++)
			fn(c, p);
		list = *end ? end + 1 : end;
	}
}

static void touch(struct client *c, size_t page)
{
	static uint8_t want[PAGE];

	if (pread(c->mem_fd, want, PAGE, (off_t)(page * PAGE)) != (ssize_t)PAGE)
		die("reading the memory file");
	if (memcmp(page_addr(c, page), want, PAGE)) { /* faults here */
		fprintf(stderr, "uffd_client: page %zu differs from the memory file\n", page);
		exit(1);
	}
}

static void remove_page(struct client *c, size_t page)
{
	if (madvise(page_addr(c, page), PAGE, MADV_DONTNEED))
		die("madvise");
}

static void print_present(struct client *c)
{
	unsigned char v;
	bool first = true;

	printf("present:");
	for (size_t p = 0; p < c->pages; p++) {
		if (mincore(page_addr(c, p), PAGE, &v))
			die("mincore");
		if (v & 1) {
			printf("%s%zu", first ? " " : ",", p);
			first = false;
		}
	}
	printf("\n");
}

static void run_actions(struct client *c)
{
	for (int i = 0; i < c->nr_actions; i++) {
		const struct action *a = &c->actions[i];

		if (a->kind == 't') {
			for_pages(c, a->arg, touch);
			printf("touched %s: ok\n", a->arg);
		} else if (a->kind == 'r') {
			for_pages(c, a->arg, remove_page);
		} else if (a->kind == 'p') {
			print_present(c);
		} else {
			long ms = strtol(a->arg, NULL, 10);
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

			nanosleep(&ts, NULL);
		}
		fflush(stdout);
	}
}

static void parse_args(int argc, char **argv, struct client *c)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mem-file", required_argument, NULL, 'm' },
		{ "split", required_argument, NULL, 'S' },
		{ "bad", required_argument, NULL, 'b' },
		{ "old-format", no_argument, NULL, 'o' },
		{ "close-conn", no_argument, NULL, 'c' },
		{ "pad", required_argument, NULL, 'P' },
		{ "touch", required_argument, NULL, 't' },
		{ "present", no_argument, NULL, 'p' },
		{ "remove", required_argument, NULL, 'r' },
		{ "sleep", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 's')
			c->socket = optarg;
		else if (o == 'm')
			c->mem_file = optarg;
		else if (o == 'S')
			c->split = strtoul(optarg, NULL, 10);
		else if (o == 'b')
			c->bad = optarg;
		else if (o == 'o')
			c->old_format = true;
		else if (o == 'c')
			c->close_conn = true;
		else if (o == 'P')
			c->pad = strtoul(optarg, NULL, 10);
		else if (o == '?' || c->nr_actions == MAX_ACTIONS)
			exit(2);
		else
			c->actions[c->nr_actions++] = (struct action){ o, optarg };
	}
	if (!c->socket || !c->mem_file) {
		fprintf(stderr, "usage: uffd_client --socket PATH --mem-file FILE [--split N] "
				"[--bad json|nofd|notuffd|outside|overlap|big] [--old-format] "
				"[--close-conn] [--pad N] "
				"[--touch LIST | --present | --remove LIST | --sleep MS]...\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct client c = { 0 };
	struct stat st;
	char byte;

	parse_args(argc, argv, &c);
	alarm(20); /* a test's failure, not a hang, if the handler never serves a fault */
	c.mem_fd = open(c.mem_file, O_RDONLY | O_CLOEXEC);
	if (c.mem_fd < 0 || fstat(c.mem_fd, &st))
		die(c.mem_file);
	c.pages = (size_t)st.st_size / PAGE;
	if (!c.split)
		c.split = c.pages / 2;
	if (c.pages < 2 || c.split >= c.pages) {
		fprintf(stderr, "uffd_client: %zu pages cannot be split at %zu\n", c.pages,
			c.split);
		return 2;
	}
	setup_memory(&c);
	send_message(&c);
	if (c.bad) {
		/* the handler refuses the message and hangs up */
		while (read(c.conn, &byte, 1) > 0)
			;
		printf("hung up\n");
		return 0;
	}
	run_actions(&c);
	return 0;
}
