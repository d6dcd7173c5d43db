// SPDX-License-Identifier: Apache-2.0
/*
 * ember-agent: the guest side of Ember's vsock (and socket) tests. A static program in the
 * default guest rootfs at /usr/bin/ember-agent; it builds and runs on the host as well.
 *
 *   ember-agent [--daemon] [PORT]          serve on AF_VSOCK, any CID, PORT (default 52)
 *   ember-agent [--daemon] --unix PATH     serve on a Unix socket instead (host-side tests)
 *   ember-agent connect CID PORT [WORD...] connect out over vsock (the host is CID 2)
 *   ember-agent connect --unix PATH [WORD...]
 *   ember-agent pattern N                  write SOURCE's N-byte pattern to stdout
 *   ember-agent sha256 [FILE]              print "<bytes> <sha256 hex>" of FILE or stdin
 *   ember-agent vmgenid                    print VMGENID's line (below)
 *   ember-agent reseed                     reseed the kernel RNG; print RESEED's line
 *
 * Each accepted connection is served by a forked child. Its first line is a command:
 *
 *   ECHO            echo every byte back until EOF, then close
 *   SINK            read until EOF, then write "<bytes> <sha256 hex>\n" and close
 *   SINK N          the same, but stop after N bytes (for peers that cannot half-close)
 *   SOURCE N        write N bytes of the pattern below, then close
 *   EXEC CMD        run `/bin/sh -c CMD` with stdin, stdout and stderr on the connection
 *   VMGENID         "<counter> <32 hex digits of the ID>\n": Ember's VM generation ID page
 *   RESEED          reseed the kernel RNG from /dev/hwrng (virtio-rng), then
 *                   "OK hwrng=<bytes> added=<RNDADDENTROPY|urandom|none>
 *                   reseed=<RNDRESEEDCRNG|none>\n" (one line)
 *   anything else   "ERR unknown command\n" (or "ERR bad argument\n" for a bad N,
 *                   "ERR line too long\n" past 4095 bytes), then close
 *
 * A line ends with "\n"; one "\r" before it is ignored. The line is read a byte at a time,
 * so every byte after it belongs to the command.
 *
 * The pattern: splitmix64 seeded with N, each 64-bit output little-endian, the last word
 * cut short; docs/guest-images.md has the same in Python.
 *
 * connect sends WORDs joined by spaces plus "\n" (when there are any), then copies stdin to
 * the socket and the socket to stdout; at EOF on stdin it half-closes the socket, and it
 * exits 0 when the peer closes. --daemon returns once the socket listens (for /init).
 *
 * Clone safety (docs/clone-safety.md): the VM generation ID page is where the kernel
 * command line's ember.vmgenid=0x<address> says (read through /dev/mem). The listener
 * watches it: before it accepts a connection, and once a second when there is none, it
 * compares the ID and counter with the last ones it saw, and when they changed (the VM is a
 * restored clone) it reseeds the kernel RNG as RESEED does and logs one line on stderr,
 * before the connection's command runs. A restore resets every vsock connection, so a
 * host's first request to a clone is served after the reseed. RESEED adds 64 bytes from
 * /dev/hwrng with RNDADDENTROPY on /dev/random (writing them to /dev/urandom when that
 * ioctl fails), then forces a reseed of the CRNG (RNDRESEEDCRNG). For tests on the host,
 * EMBER_AGENT_CMDLINE, EMBER_AGENT_MEM, EMBER_AGENT_HWRNG, EMBER_AGENT_RANDOM and
 * EMBER_AGENT_URANDOM name other files in place of /proc/cmdline, /dev/mem, /dev/hwrng,
 * /dev/random and /dev/urandom.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/random.h>
#include <linux/vm_sockets.h>

#define DEFAULT_PORT 52
#define LINE_MAX_LEN 4096
#define IO_CHUNK (64 * 1024)

static const char *prog = "ember-agent";

static void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnf(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- SHA-256 (FIPS 180-4) ---- */

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t n;
};

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

static uint32_t ror32(uint32_t x, unsigned int n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++)
		w[i] = w[i - 16] + (ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
		       w[i - 7] + (ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10));
	a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
	e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
	for (i = 0; i < 64; i++) {
		t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
		     sha256_k[i] + w[i];
		t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g, g = f, f = e, e = d + t1;
		d = c, c = b, b = a, a = t1 + t2;
	}
	s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
	s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_init(struct sha256 *s)
{
	static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

	memcpy(s->h, h0, sizeof(h0));
	s->len = 0;
	s->n = 0;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t take;

	s->len += len;
	if (s->n) {
		take = 64 - s->n < len ? 64 - s->n : len;
		memcpy(s->buf + s->n, p, take);
		s->n += take;
		p += take;
		len -= take;
		if (s->n < 64)
			return;
		sha256_block(s, s->buf);
		s->n = 0;
	}
	for (; len >= 64; p += 64, len -= 64)
		sha256_block(s, p);
	memcpy(s->buf, p, len);
	s->n = len;
}

/* Writes the digest as 64 lowercase hex digits and a NUL into hex. */
static void sha256_final_hex(struct sha256 *s, char hex[65])
{
	uint64_t bits = s->len * 8;
	int i;

	s->buf[s->n++] = 0x80;
	if (s->n > 56) {
		memset(s->buf + s->n, 0, 64 - s->n);
		sha256_block(s, s->buf);
		s->n = 0;
	}
	memset(s->buf + s->n, 0, 56 - s->n);
	for (i = 0; i < 8; i++)
		s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_block(s, s->buf);
	for (i = 0; i < 8; i++)
		snprintf(hex + 8 * i, 9, "%08" PRIx32, s->h[i]);
}

/* ---- SOURCE's pattern: splitmix64 seeded with the byte count ---- */

struct pattern {
	uint64_t state;
	uint8_t word[8];
	unsigned int used; /* bytes of word already handed out */
};

static void pattern_init(struct pattern *p, uint64_t seed)
{
	p->state = seed;
	p->used = 8;
}

static uint64_t splitmix64_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void pattern_fill(struct pattern *p, uint8_t *buf, size_t len)
{
	uint64_t x;
	int i;

	while (len) {
		if (p->used == 8) {
			x = splitmix64_next(&p->state);
			for (i = 0; i < 8; i++)
				p->word[i] = (uint8_t)(x >> (8 * i));
			p->used = 0;
		}
		*buf++ = p->word[p->used++];
		len--;
	}
}

/* ---- I/O helpers ---- */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t read_some(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

static int write_str(int fd, const char *s)
{
	return write_all(fd, s, strlen(s));
}

/*
 * Reads one line a byte at a time (so nothing after it is consumed), without its "\n" and
 * an "\r" before it. Returns its length, -1 on a read error or EOF before any "\n" (with
 * *got set to the bytes read), -2 when no "\n" comes within LINE_MAX_LEN - 1 bytes.
 */
static ssize_t read_line(int fd, char *line, size_t *got)
{
	size_t n = 0;
	char c;

	for (;;) {
		if (read_some(fd, &c, 1) != 1) {
			*got = n;
			return -1;
		}
		if (c == '\n')
			break;
		if (n == LINE_MAX_LEN - 1)
			return -2;
		line[n++] = c;
	}
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	*got = n;
	return (ssize_t)n;
}

/* Parses a decimal uint64 (digits only, no sign, no overflow). */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, &v) || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* ---- clone safety: the VM generation ID and the kernel RNG ---- */

#define VMGENID_PARAM "ember.vmgenid="
#define VMGENID_PAGE 4096
#define VMGENID_ID_BYTES 16
#define RESEED_BYTES 64
#define WATCH_MS 1000

struct genid {
	uint64_t counter;
	uint8_t id[VMGENID_ID_BYTES];
};

static const char *path_of(const char *env, const char *def)
{
	const char *v = getenv(env);

	return v && *v ? v : def;
}

/* The page's address from the kernel command line: 0 when it names none. */
static uint64_t vmgenid_address(void)
{
	static char buf[LINE_MAX_LEN];
	const char *p;
	ssize_t n = -1;
	int fd = open(path_of("EMBER_AGENT_CMDLINE", "/proc/cmdline"), O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read_some(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (p = strstr(buf, VMGENID_PARAM); p; p = strstr(p + 1, VMGENID_PARAM)) {
		if (p == buf || p[-1] == ' ')
			return strtoull(p + strlen(VMGENID_PARAM), NULL, 0);
	}
	return 0;
}

static volatile const uint64_t *genid_page; /* mapped once */

static int vmgenid_map(char *err, size_t len)
{
	const char *mem = path_of("EMBER_AGENT_MEM", "/dev/mem");
	uint64_t addr = vmgenid_address();
	void *p;
	int fd;

	if (!addr || addr % VMGENID_PAGE) {
		snprintf(err, len, "no page-aligned %s0x<address> on the kernel command line",
			 VMGENID_PARAM);
		return -1;
	}
	fd = open(mem, O_RDONLY | O_SYNC | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, len, "%s: %s", mem, strerror(errno));
		return -1;
	}
	p = mmap(NULL, VMGENID_PAGE, PROT_READ, MAP_SHARED, fd, (off_t)addr);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, len, "mmap %s at 0x%" PRIx64 ": %s", mem, addr, strerror(errno));
		return -1;
	}
	genid_page = p;
	return 0;
}

/* The ID and counter, read again if a restore came between the reads. */
static int vmgenid_read(struct genid *g, char *err, size_t len)
{
	uint64_t lo, hi, again;
	int tries = 0;

	if (!genid_page && vmgenid_map(err, len))
		return -1;
	do {
		g->counter = genid_page[2];
		lo = genid_page[0];
		hi = genid_page[1];
		again = genid_page[2];
	} while (again != g->counter && ++tries < 8);
	memcpy(g->id, &lo, 8);
	memcpy(g->id + 8, &hi, 8);
	return 0;
}

static void format_genid(const struct genid *g, char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "%" PRIu64 " ", g->counter);

	for (int i = 0; i < VMGENID_ID_BYTES && n + 2 < len; i++, n += 2)
		snprintf(out + n, len - n, "%02x", g->id[i]);
}

/* Up to RESEED_BYTES from the hardware RNG; the count, or -errno. */
static ssize_t read_hwrng(uint8_t *buf)
{
	int fd = open(path_of("EMBER_AGENT_HWRNG", "/dev/hwrng"), O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n = 0;
	int err = EIO;

	if (fd < 0)
		return -errno;
	while (got < RESEED_BYTES) {
		n = read_some(fd, buf + got, RESEED_BYTES - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (n < 0)
		err = errno;
	close(fd);
	return got ? (ssize_t)got : -err;
}

/* The bytes into the kernel's input pool, credited; else mixed in through /dev/urandom. */
static const char *add_entropy(int rfd, const uint8_t *bytes, size_t n)
{
	uint32_t raw[2 + RESEED_BYTES / 4];
	struct rand_pool_info *info = (struct rand_pool_info *)raw;
	int fd;

	info->entropy_count = (int)(n * 8);
	info->buf_size = (int)n;
	memcpy(info->buf, bytes, n);
	if (rfd >= 0 && !ioctl(rfd, RNDADDENTROPY, info))
		return "RNDADDENTROPY";
	fd = open(path_of("EMBER_AGENT_URANDOM", "/dev/urandom"), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return "none";
	n = write_all(fd, bytes, n) ? 0 : n;
	close(fd);
	return n ? "urandom" : "none";
}

/* RESEED: one line into reply; 0 when the kernel RNG got something, else -1 ("ERR ..."). */
static int reseed(char *reply, size_t len)
{
	uint8_t bytes[RESEED_BYTES];
	ssize_t got = read_hwrng(bytes);
	int rfd = open(path_of("EMBER_AGENT_RANDOM", "/dev/random"), O_RDWR | O_CLOEXEC);
	const char *added = got > 0 ? add_entropy(rfd, bytes, (size_t)got) : "none";
	const char *crng = rfd >= 0 && !ioctl(rfd, RNDRESEEDCRNG) ? "RNDRESEEDCRNG" : "none";

	memset(bytes, 0, sizeof(bytes));
	if (rfd >= 0)
		close(rfd);
	if (!strcmp(added, "none") && !strcmp(crng, "none")) {
		snprintf(reply, len, "ERR cannot reseed: hwrng: %s\n",
			 got < 0 ? strerror((int)-got) : "no bytes");
		return -1;
	}
	snprintf(reply, len, "OK hwrng=%zd added=%s reseed=%s\n", got > 0 ? got : 0, added, crng);
	return 0;
}

/* The listener's watch: a new generation (a restored clone) gets the RNG reseeded. */
static struct genid seen_genid;
static int watching;

static void watch_start(void)
{
	char err[128];

	watching = !vmgenid_read(&seen_genid, err, sizeof(err));
}

static void watch_generation(void)
{
	struct genid now;
	char err[128], reply[160];

	if (!watching || vmgenid_read(&now, err, sizeof(err)))
		return;
	if (now.counter == seen_genid.counter && !memcmp(now.id, seen_genid.id, sizeof(now.id)))
		return;
	reseed(reply, sizeof(reply));
	reply[strcspn(reply, "\n")] = '\0';
	warnf("VM generation %" PRIu64 " (was %" PRIu64 "): a clone; reseeded the kernel RNG: %s",
	      now.counter, seen_genid.counter, reply);
	seen_genid = now;
}

static int do_vmgenid(int fd)
{
	struct genid g;
	char line[160], err[128];

	if (vmgenid_read(&g, err, sizeof(err))) {
		snprintf(line, sizeof(line), "ERR %s\n", err);
		return write_str(fd, line);
	}
	format_genid(&g, line, sizeof(line) - 1);
	strcat(line, "\n");
	return write_str(fd, line);
}

static int do_reseed(int fd)
{
	char reply[160];

	reseed(reply, sizeof(reply));
	return write_str(fd, reply);
}

/* ---- the commands ---- */

static int do_echo(int fd)
{
	static char buf[IO_CHUNK];
	ssize_t n;

	while ((n = read_some(fd, buf, sizeof(buf))) > 0)
		if (write_all(fd, buf, (size_t)n))
			return -1;
	return n < 0 ? -1 : 0;
}

/* Reads until EOF, or until limit bytes when has_limit, then reports count and digest. */
static int do_sink(int fd, int has_limit, uint64_t limit)
{
	static char buf[IO_CHUNK];
	struct sha256 s;
	uint64_t total = 0;
	char hex[65], reply[96];
	size_t want;
	ssize_t n;

	sha256_init(&s);
	for (;;) {
		want = sizeof(buf);
		if (has_limit && limit - total < want)
			want = (size_t)(limit - total);
		if (has_limit && !want)
			break;
		n = read_some(fd, buf, want);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		sha256_update(&s, buf, (size_t)n);
		total += (uint64_t)n;
	}
	sha256_final_hex(&s, hex);
	snprintf(reply, sizeof(reply), "%" PRIu64 " %s\n", total, hex);
	return write_str(fd, reply);
}

static int write_pattern(int fd, uint64_t n)
{
	static uint8_t buf[IO_CHUNK];
	struct pattern p;
	size_t chunk;

	pattern_init(&p, n);
	while (n) {
		chunk = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		pattern_fill(&p, buf, chunk);
		if (write_all(fd, buf, chunk))
			return -1;
		n -= chunk;
	}
	return 0;
}

static void do_exec(int fd, const char *cmd)
{
	if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		write_str(fd, "ERR cannot redirect\n");
		_exit(1);
	}
	if (fd > 2)
		close(fd);
	signal(SIGPIPE, SIG_DFL);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	write_str(1, "ERR cannot run /bin/sh\n");
	_exit(127);
}

/*
 * Closes gracefully: half-close, then read and drop what the peer still sends, for at most
 * a second, so that unread data does not turn the close into a reset (as it would on a
 * Unix socket: the peer's read fails with ECONNRESET).
 */
static void linger_close(int fd)
{
	static char buf[IO_CHUNK];
	struct timeval tv = { .tv_sec = 1 };
	time_t end = time(NULL) + 2;

	shutdown(fd, SHUT_WR);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (read_some(fd, buf, sizeof(buf)) > 0 && time(NULL) < end)
		;
	close(fd);
}

/* Serves one connection; runs in its own process. Returns the exit status. */
static int serve_command(int fd)
{
	static char line[LINE_MAX_LEN];
	uint64_t n;
	size_t got;
	ssize_t len;

	len = read_line(fd, line, &got);
	if (len == -2)
		return write_str(fd, "ERR line too long\n") ? 1 : 0;
	if (len == -1 && got == 0)
		return 0; /* closed without a command */
	if (len == -1 || memchr(line, '\0', (size_t)len))
		return write_str(fd, "ERR unknown command\n") ? 1 : 0;
	if (!strcmp(line, "ECHO"))
		return do_echo(fd) ? 1 : 0;
	if (!strcmp(line, "SINK"))
		return do_sink(fd, 0, 0) ? 1 : 0;
	if (!strncmp(line, "SINK ", 5)) {
		if (parse_u64(line + 5, &n))
			return write_str(fd, "ERR bad argument\n") ? 1 : 0;
		return do_sink(fd, 1, n) ? 1 : 0;
	}
	if (!strncmp(line, "SOURCE ", 7)) {
		if (parse_u64(line + 7, &n))
			return write_str(fd, "ERR bad argument\n") ? 1 : 0;
		return write_pattern(fd, n) ? 1 : 0;
	}
	if (!strcmp(line, "VMGENID"))
		return do_vmgenid(fd) ? 1 : 0;
	if (!strcmp(line, "RESEED"))
		return do_reseed(fd) ? 1 : 0;
	if (!strncmp(line, "EXEC ", 5) && line[5])
		do_exec(fd, line + 5); /* does not return */
	return write_str(fd, "ERR unknown command\n") ? 1 : 0;
}

static int serve(int fd)
{
	int rc = serve_command(fd);

	linger_close(fd);
	return rc;
}

/* ---- sockets ---- */

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		warnf("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa->sun_path, path);
	return 0;
}

static void vsock_addr(uint32_t cid, uint32_t port, struct sockaddr_vm *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->svm_family = AF_VSOCK;
	sa->svm_cid = cid;
	sa->svm_port = port;
}

/* Returns a listening socket on the Unix path, or on the vsock port when path is NULL. */
static int listen_on(const char *path, uint32_t port)
{
	struct sockaddr_un su;
	struct sockaddr_vm sv;
	struct sockaddr *sa = (struct sockaddr *)&sv;
	socklen_t salen = sizeof(sv);
	struct stat st;
	int fd;

	if (path) {
		if (unix_addr(path, &su))
			return -1;
		if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
			unlink(path); /* a stale socket from an earlier run */
		sa = (struct sockaddr *)&su;
		salen = sizeof(su);
	} else {
		vsock_addr(VMADDR_CID_ANY, port, &sv);
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		warnf("socket(%s): %s", path ? "AF_UNIX" : "AF_VSOCK", strerror(errno));
		return -1;
	}
	if (bind(fd, sa, salen) || listen(fd, SOMAXCONN)) {
		if (path)
			warnf("cannot listen on %s: %s", path, strerror(errno));
		else
			warnf("cannot listen on vsock port %" PRIu32 ": %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_to(const char *path, uint32_t cid, uint32_t port)
{
	struct sockaddr_un su;
	struct sockaddr_vm sv;
	struct sockaddr *sa = (struct sockaddr *)&sv;
	socklen_t salen = sizeof(sv);
	int fd;

	if (path) {
		if (unix_addr(path, &su))
			return -1;
		sa = (struct sockaddr *)&su;
		salen = sizeof(su);
	} else {
		vsock_addr(cid, port, &sv);
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		warnf("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, sa, salen)) {
		if (path)
			warnf("cannot connect to %s: %s", path, strerror(errno));
		else
			warnf("cannot connect to vsock %" PRIu32 ":%" PRIu32 ": %s", cid, port,
			      strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The accept loop: a child per connection; SIGCHLD ignored, so children reap themselves.
 * The VM generation is looked at before each accept and once a second meanwhile.
 */
static int serve_forever(int lfd)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int fd;
	pid_t pid;

	for (;;) {
		watch_generation();
		if (poll(&pfd, 1, watching ? WATCH_MS : -1) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			warnf("accept: %s", strerror(errno));
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				sleep(1);
				continue;
			}
			return 1;
		}
		pid = fork();
		if (pid == 0) {
			close(lfd);
			signal(SIGCHLD, SIG_DFL); /* EXEC's shell must be able to wait() */
			_exit(serve(fd));
		}
		if (pid < 0) {
			warnf("fork: %s", strerror(errno));
			write_str(fd, "ERR busy\n");
		}
		close(fd);
	}
}

/* connect: send the line, then copy stdin -> socket and socket -> stdout. */
static int pump(int fd)
{
	static char buf[IO_CHUNK];
	struct pollfd pfd[2] = { { .fd = 0, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
	ssize_t n;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pfd[1].revents) {
			n = read_some(fd, buf, sizeof(buf));
			if (n <= 0)
				return n < 0 && errno != ECONNRESET ? 1 : 0;
			if (write_all(1, buf, (size_t)n))
				return 1;
		}
		if (pfd[0].revents) {
			n = read_some(0, buf, sizeof(buf));
			if (n > 0) {
				if (write_all(fd, buf, (size_t)n))
					return 1;
			} else {
				shutdown(fd, SHUT_WR);
				pfd[0].fd = -1; /* poll ignores it from now on */
			}
		}
	}
}

static int cmd_connect(int argc, char **argv)
{
	const char *path = NULL;
	uint32_t cid = 0, port = 0;
	size_t len = 0, wl;
	char line[LINE_MAX_LEN];
	int i = 0, fd, rc;

	if (argc >= 2 && !strcmp(argv[0], "--unix")) {
		path = argv[1];
	} else if (argc < 2 || parse_u32(argv[0], &cid) || parse_u32(argv[1], &port)) {
		warnf("usage: connect CID PORT [WORD...] | connect --unix PATH [WORD...]");
		return 2;
	}
	for (i = 2; i < argc; i++) {
		wl = strlen(argv[i]);
		if (len + wl + 2 > sizeof(line)) {
			warnf("the line is longer than %d bytes", LINE_MAX_LEN - 1);
			return 2;
		}
		if (i > 2)
			line[len++] = ' ';
		memcpy(line + len, argv[i], wl);
		len += wl;
	}
	fd = connect_to(path, cid, port);
	if (fd < 0)
		return 1;
	if (argc > 2) {
		line[len++] = '\n';
		if (write_all(fd, line, len)) {
			warnf("send: %s", strerror(errno));
			close(fd);
			return 1;
		}
	}
	rc = pump(fd);
	close(fd);
	return rc;
}

static int cmd_listen(int argc, char **argv)
{
	const char *path = NULL;
	uint32_t port = DEFAULT_PORT;
	int daemon = 0, lfd, i;
	pid_t pid;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--daemon")) {
			daemon = 1;
		} else if (!strcmp(argv[i], "--unix") && i + 1 < argc) {
			path = argv[++i];
		} else if (parse_u32(argv[i], &port) || port == VMADDR_PORT_ANY) {
			warnf("usage: [--daemon] [PORT | --unix PATH] (bad argument '%s')",
			      argv[i]);
			return 2;
		}
	}
	signal(SIGCHLD, SIG_IGN); /* connection children are reaped by the kernel */
	lfd = listen_on(path, port);
	if (lfd < 0)
		return 1;
	watch_start();
	if (daemon) {
		pid = fork();
		if (pid < 0) {
			warnf("fork: %s", strerror(errno));
			return 1;
		}
		if (pid > 0)
			_exit(0); /* the socket listens: the caller may go on */
		setsid();
	}
	return serve_forever(lfd);
}

static int cmd_pattern(int argc, char **argv)
{
	uint64_t n;

	if (argc != 1 || parse_u64(argv[0], &n)) {
		warnf("usage: pattern N");
		return 2;
	}
	return write_pattern(1, n) ? 1 : 0;
}

/* vmgenid and reseed: the commands' line on stdout; exit 0, or 1 after an ERR line. */
static int cmd_vmgenid(int argc)
{
	if (argc) {
		warnf("usage: vmgenid");
		return 2;
	}
	do_vmgenid(1);
	return genid_page ? 0 : 1;
}

static int cmd_reseed(int argc)
{
	char line[160];
	int rc;

	if (argc) {
		warnf("usage: reseed");
		return 2;
	}
	rc = reseed(line, sizeof(line));
	write_str(1, line);
	return rc ? 1 : 0;
}

static int cmd_sha256(int argc, char **argv)
{
	static char buf[IO_CHUNK];
	struct sha256 s;
	char hex[65];
	ssize_t n;
	int fd = 0;

	if (argc > 1) {
		warnf("usage: sha256 [FILE]");
		return 2;
	}
	if (argc == 1 && (fd = open(argv[0], O_RDONLY | O_CLOEXEC)) < 0) {
		warnf("%s: %s", argv[0], strerror(errno));
		return 1;
	}
	sha256_init(&s);
	while ((n = read_some(fd, buf, sizeof(buf))) > 0)
		sha256_update(&s, buf, (size_t)n);
	if (n < 0) {
		warnf("read: %s", strerror(errno));
		return 1;
	}
	sha256_final_hex(&s, hex);
	printf("%" PRIu64 " %s\n", s.len, hex);
	return fflush(stdout) ? 1 : 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* a peer that goes away is an EPIPE, not a death */
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: %s [--daemon] [PORT | --unix PATH]\n"
		       "       %s connect CID PORT [WORD...] | connect --unix PATH [WORD...]\n"
		       "       %s pattern N | sha256 [FILE] | vmgenid | reseed\n"
		       "commands on a connection: ECHO, SINK [N], SOURCE N, EXEC CMD, VMGENID, "
		       "RESEED\n",
		       prog, prog, prog);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "connect"))
		return cmd_connect(argc - 2, argv + 2);
	if (argc > 1 && !strcmp(argv[1], "pattern"))
		return cmd_pattern(argc - 2, argv + 2);
	if (argc > 1 && !strcmp(argv[1], "sha256"))
		return cmd_sha256(argc - 2, argv + 2);
	if (argc > 1 && !strcmp(argv[1], "vmgenid"))
		return cmd_vmgenid(argc - 2);
	if (argc > 1 && !strcmp(argv[1], "reseed"))
		return cmd_reseed(argc - 2);
	return cmd_listen(argc - 1, argv + 1);
}
