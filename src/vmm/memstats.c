// SPDX-License-Identifier: Apache-2.0
/* Overcommit accounting; see memstats.h. */
#include "vmm/memstats.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define KIB 1024ULL

struct mapping {
	bool guest;	 /* named guest memory */
	bool dontdump;	 /* VmFlags dd */
	bool special;	 /* [vvar], [stack], ...: never guest memory */
	struct memstats m;
};

/* A mapping's header line: "start-end perms offset dev inode [path]". */
static bool is_header(const char *line)
{
	const char *p = line;

	while (isxdigit((unsigned char)*p))
		p++;
	return p > line && *p == '-';
}

static void close_mapping(struct mapping *cur, struct memstats *out)
{
	if (!cur->guest && (!cur->dontdump || cur->special))
		return;
	out->size += cur->m.size;
	out->rss += cur->m.rss;
	out->pss += cur->m.pss;
	out->private_ += cur->m.private_;
	out->shared += cur->m.shared;
	out->swap += cur->m.swap;
	out->mappings++;
	out->named += cur->guest;
}

static void field(struct mapping *cur, const char *line)
{
	static const struct {
		const char *name;
		size_t off;
	} kb[] = {
		{ "Size:", offsetof(struct memstats, size) },
		{ "Rss:", offsetof(struct memstats, rss) },
		{ "Pss:", offsetof(struct memstats, pss) },
		{ "Private_Clean:", offsetof(struct memstats, private_) },
		{ "Private_Dirty:", offsetof(struct memstats, private_) },
		{ "Shared_Clean:", offsetof(struct memstats, shared) },
		{ "Shared_Dirty:", offsetof(struct memstats, shared) },
		{ "Swap:", offsetof(struct memstats, swap) },
	};

	if (!strncmp(line, "VmFlags:", 8)) {
		/* two-letter flags separated by spaces: "dd" is MADV_DONTDUMP */
		for (const char *p = line + 8; *p && *p != '\n'; p++) {
			if (p[0] == 'd' && p[1] == 'd' && p[-1] == ' ' &&
			    (p[2] == ' ' || p[2] == '\n' || !p[2]))
				cur->dontdump = true;
		}
		return;
	}
	for (size_t i = 0; i < sizeof(kb) / sizeof(kb[0]); i++) {
		size_t n = strlen(kb[i].name);

		if (!strncmp(line, kb[i].name, n)) {
			uint64_t *v = (uint64_t *)((char *)&cur->m + kb[i].off);

			*v += strtoull(line + n, NULL, 10) * KIB;
			return;
		}
	}
}

void memstats__parse_smaps(const char *text, struct memstats *out)
{
	struct mapping cur = { 0 };
	bool open = false;

	memset(out, 0, sizeof(*out));
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');

		if (is_header(line)) {
			if (open)
				close_mapping(&cur, out);
			memset(&cur, 0, sizeof(cur));
			open = true;
			/* named guest memory counts even where VmFlags is not shown */
			cur.guest = strstr(line, MEMSTATS_GUEST_NAME) &&
				    (!nl || strstr(line, MEMSTATS_GUEST_NAME) < nl);
			cur.special = !cur.guest && strchr(line, '[') &&
				      (!nl || strchr(line, '[') < nl);
		} else if (open) {
			field(&cur, line);
		}
		line = nl ? nl + 1 : NULL;
	}
	if (open)
		close_mapping(&cur, out);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "re");
	size_t cap = 1 << 16, len = 0;
	char *buf = NULL;

	if (!f)
		return NULL;
	for (;;) {
		char *p = realloc(buf, cap + 1);
		size_t n;

		if (!p) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = p;
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len < cap) {
			buf[len] = '\0';
			break;
		}
		cap *= 2;
	}
	fclose(f);
	return buf;
}

int memstats__of_process(pid_t pid, struct memstats *out)
{
	char path[64];
	char *text;

	snprintf(path, sizeof(path), "/proc/%ld/smaps", (long)pid);
	text = read_all(path);
	if (!text)
		return errno ? -errno : -ENOMEM;
	memstats__parse_smaps(text, out);
	free(text);
	return 0;
}

/* The --id an Ember was started with, or "-". */
static void instance_id(pid_t pid, char *id, size_t size)
{
	char path[64], buf[4096];
	FILE *f;
	size_t n;

	snprintf(id, size, "-");
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n;) {
		const char *arg = buf + i;

		i += strlen(arg) + 1;
		if (!strcmp(arg, "--id") && i < n)
			snprintf(id, size, "%s", buf + i);
	}
}

static bool is_ember(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return !strcmp(comm, "ember\n");
}

static uint64_t host_mem_total(void)
{
	char *text = read_all("/proc/meminfo");
	const char *p = text ? strstr(text, "MemTotal:") : NULL;
	uint64_t kib = p ? strtoull(p + 9, NULL, 10) : 0;

	free(text);
	return kib * KIB;
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static void print_row(FILE *out, bool json, bool first, long pid, const char *id,
		      const struct memstats *m)
{
	if (json)
		fprintf(out,
			"%s\n    {\"pid\": %ld, \"id\": \"%s\", \"guest_bytes\": %" PRIu64
			", \"rss_bytes\": %" PRIu64 ", \"pss_bytes\": %" PRIu64
			", \"private_bytes\": %" PRIu64 ", \"shared_bytes\": %" PRIu64
			", \"swap_bytes\": %" PRIu64 "}",
			first ? "" : ",", pid, id, m->size, m->rss, m->pss, m->private_, m->shared,
			m->swap);
	else
		fprintf(out, "%8ld %-20s %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", pid, id,
			mib(m->size), mib(m->rss), mib(m->pss), mib(m->private_), mib(m->shared),
			mib(m->swap));
}

int memstats__print_host(FILE *out, bool json)
{
	struct memstats total = { 0 };
	uint64_t host = host_mem_total();
	unsigned int vms = 0;
	struct dirent *e;
	DIR *d = opendir("/proc");

	if (!d)
		return -errno;
	if (json)
		fprintf(out, "{\n  \"vms\": [");
	else
		fprintf(out, "%8s %-20s %10s %10s %10s %10s %10s %10s\n", "PID", "ID", "GUEST_MIB",
			"RSS_MIB", "PSS_MIB", "PRIV_MIB", "SHARED_MIB", "SWAP_MIB");
	while ((e = readdir(d))) {
		struct memstats m;
		char id[80];
		long pid;
		char *end;

		pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || memstats__of_process((pid_t)pid, &m) || !m.mappings ||
		    (!m.named && !is_ember((pid_t)pid)))
			continue;
		instance_id((pid_t)pid, id, sizeof(id));
		print_row(out, json, !vms, pid, id, &m);
		vms++;
		total.size += m.size;
		total.rss += m.rss;
		total.pss += m.pss;
		total.private_ += m.private_;
		total.shared += m.shared;
		total.swap += m.swap;
	}
	closedir(d);
	if (json) {
		fprintf(out, "\n  ],\n  \"total\": ");
		print_row(out, true, true, 0, "total", &total);
		fprintf(out, ",\n  \"host_mem_bytes\": %" PRIu64 ",\n  \"overcommit\": %.3f,\n"
			"  \"resident_share\": %.3f\n}\n", host,
			host ? (double)total.size / (double)host : 0.0,
			host ? (double)total.pss / (double)host : 0.0);
		return 0;
	}
	fprintf(out, "%u VMs: guests were given %.1f MiB, %.1f MiB of it is resident (PSS %.1f, "
		"private %.1f, shared %.1f, swapped %.1f); host RAM %.1f MiB: overcommit %.2fx, "
		"guests hold %.1f%% of host RAM\n", vms, mib(total.size), mib(total.rss),
		mib(total.pss), mib(total.private_), mib(total.shared), mib(total.swap), mib(host),
		host ? (double)total.size / (double)host : 0.0,
		host ? 100.0 * (double)total.pss / (double)host : 0.0);
	return 0;
}
