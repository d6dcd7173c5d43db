// SPDX-License-Identifier: Apache-2.0
/*
 * ember-seccompiler: compiles seccomp rules (JSON, resources/seccomp/x86_64.json is the
 * built-in set) into the BPF file Ember loads (seccomp_format.h), with libseccomp. The
 * Makefile runs it at build time, so that Ember parses no rules at run time; users run it
 * to make a file for `ember --seccomp-filter`. docs/seccomp.md has the rules' format:
 *
 *   { "vcpu": { "default_action": "kill_process", "filter_action": "allow",
 *               "filter": [ { "syscall": "ioctl",
 *                             "args": [ { "index": 1, "type": "dword", "op": "eq",
 *                                         "val": "KVM_RUN" } ] }, ... ] },
 *     "api": {...}, "vmm": {...} }
 *
 * An entry allows its syscall when all its args conditions hold; several entries for one
 * syscall are alternatives. Values are numbers, or names this tool knows (KVM_RUN,
 * PROT_EXEC, AF_UNIX, ...) joined with '|'.
 *
 *   ember-seccompiler INPUT.json OUTPUT.bpf     compile
 *   ember-seccompiler --report INPUT.json        the allowed syscalls per thread
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "jail/seccomp_format.h"

#define NAMED(x) { #x, (uint64_t)(x) }

static const struct {
	const char *name;
	uint64_t value;
} names[] = {
	/* KVM */
	NAMED(KVM_GET_API_VERSION), NAMED(KVM_CREATE_VM), NAMED(KVM_CHECK_EXTENSION),
	NAMED(KVM_GET_VCPU_MMAP_SIZE), NAMED(KVM_GET_SUPPORTED_CPUID), NAMED(KVM_GET_MSR_INDEX_LIST),
	NAMED(KVM_CREATE_VCPU), NAMED(KVM_SET_USER_MEMORY_REGION), NAMED(KVM_SET_TSS_ADDR),
	NAMED(KVM_SET_IDENTITY_MAP_ADDR), NAMED(KVM_CREATE_IRQCHIP), NAMED(KVM_CREATE_PIT2),
	NAMED(KVM_IRQFD), NAMED(KVM_IOEVENTFD), NAMED(KVM_IRQ_LINE), NAMED(KVM_IRQ_LINE_STATUS),
	NAMED(KVM_SET_GSI_ROUTING), NAMED(KVM_GET_CLOCK), NAMED(KVM_SET_CLOCK),
	NAMED(KVM_GET_IRQCHIP), NAMED(KVM_SET_IRQCHIP), NAMED(KVM_GET_PIT2), NAMED(KVM_SET_PIT2),
	NAMED(KVM_GET_DIRTY_LOG), NAMED(KVM_ENABLE_CAP), NAMED(KVM_RUN), NAMED(KVM_GET_REGS),
	NAMED(KVM_SET_REGS), NAMED(KVM_GET_SREGS), NAMED(KVM_SET_SREGS), NAMED(KVM_GET_FPU),
	NAMED(KVM_SET_FPU), NAMED(KVM_GET_MSRS), NAMED(KVM_SET_MSRS), NAMED(KVM_SET_CPUID2),
	NAMED(KVM_GET_CPUID2), NAMED(KVM_GET_LAPIC), NAMED(KVM_SET_LAPIC), NAMED(KVM_GET_MP_STATE),
	NAMED(KVM_SET_MP_STATE), NAMED(KVM_GET_VCPU_EVENTS), NAMED(KVM_SET_VCPU_EVENTS),
	NAMED(KVM_GET_DEBUGREGS), NAMED(KVM_SET_DEBUGREGS), NAMED(KVM_GET_XSAVE),
	NAMED(KVM_SET_XSAVE), NAMED(KVM_GET_XCRS), NAMED(KVM_SET_XCRS), NAMED(KVM_SET_TSC_KHZ),
	NAMED(KVM_GET_TSC_KHZ), NAMED(KVM_KVMCLOCK_CTRL), NAMED(KVM_SET_SIGNAL_MASK),
	NAMED(KVM_NMI), NAMED(KVM_INTERRUPT),
	/* TAP, terminals, files */
	NAMED(TUNSETIFF), NAMED(TUNSETOFFLOAD), NAMED(TUNSETVNETHDRSZ), NAMED(TUNGETIFF),
	NAMED(TCGETS), NAMED(TCSETS), NAMED(TCSETSW), NAMED(TCSETSF), NAMED(TIOCGWINSZ),
	NAMED(FIONBIO), NAMED(FIONREAD), NAMED(FIOCLEX), NAMED(BLKGETSIZE64),
	NAMED(UFFDIO_API), NAMED(UFFDIO_REGISTER), NAMED(UFFDIO_COPY), NAMED(UFFDIO_ZEROPAGE),
	NAMED(UFFDIO_WAKE), NAMED(UFFDIO_UNREGISTER),
	/* memory */
	NAMED(PROT_NONE), NAMED(PROT_READ), NAMED(PROT_WRITE), NAMED(PROT_EXEC),
	NAMED(MAP_SHARED), NAMED(MAP_PRIVATE), NAMED(MAP_ANONYMOUS), NAMED(MAP_FIXED),
	NAMED(MAP_NORESERVE), NAMED(MAP_POPULATE), NAMED(MAP_STACK), NAMED(MAP_HUGETLB),
	NAMED(MADV_DONTNEED), NAMED(MADV_REMOVE), NAMED(MADV_HUGEPAGE), NAMED(MADV_NOHUGEPAGE),
	NAMED(MADV_DONTDUMP), NAMED(MADV_MERGEABLE), NAMED(MADV_FREE), NAMED(MADV_WILLNEED),
	{ "MADV_POPULATE_READ", 22 },
	/* sockets, fcntl */
	NAMED(AF_UNIX), NAMED(AF_INET), NAMED(AF_INET6), NAMED(AF_NETLINK), NAMED(AF_PACKET),
	NAMED(SOCK_STREAM), NAMED(SOCK_DGRAM), NAMED(SOCK_SEQPACKET), NAMED(SOCK_NONBLOCK),
	NAMED(SOCK_CLOEXEC), NAMED(F_GETFL), NAMED(F_SETFL), NAMED(F_GETFD), NAMED(F_SETFD),
	NAMED(F_DUPFD_CLOEXEC), NAMED(O_NONBLOCK), NAMED(O_CLOEXEC),
};

static const char *const thread_names[SECCOMP_THREADS] = SECCOMP_THREAD_NAMES;

static int fail(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const char *where, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ember-seccompiler: %s: ", where);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -EINVAL;
}

/* A value: a number, or names (and numbers) joined with '|'. */
static int value_of(const cJSON *v, const char *where, uint64_t *out)
{
	char buf[256], *save = NULL, *tok;

	if (cJSON_IsNumber(v)) {
		if (v->valuedouble < 0 || v->valuedouble > 18446744073709549568.0 ||
		    v->valuedouble != (double)(uint64_t)v->valuedouble)
			return fail(where, "%g: must be a whole number from 0", v->valuedouble);
		*out = (uint64_t)v->valuedouble;
		return 0;
	}
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(buf))
		return fail(where, "must be a number or a name such as \"KVM_RUN\"");
	snprintf(buf, sizeof(buf), "%s", v->valuestring);
	*out = 0;
	for (tok = strtok_r(buf, "| ", &save); tok; tok = strtok_r(NULL, "| ", &save)) {
		char *end;
		size_t i;
		uint64_t n = strtoull(tok, &end, 0);

		if (*end) {
			for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
				if (!strcmp(names[i].name, tok))
					break;
			}
			if (i == sizeof(names) / sizeof(names[0]))
				return fail(where, "unknown name \"%s\"", tok);
			n = names[i].value;
		}
		*out |= n;
	}
	return 0;
}

static int action_of(const cJSON *v, const char *where, uint32_t *out)
{
	const char *s = cJSON_GetStringValue(v);
	int e;

	if (!s)
		return fail(where, "must be a string");
	if (!strcmp(s, "kill_process"))
		*out = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(s, "kill_thread"))
		*out = SCMP_ACT_KILL_THREAD;
	else if (!strcmp(s, "trap"))
		*out = SCMP_ACT_TRAP;
	else if (!strcmp(s, "log"))
		*out = SCMP_ACT_LOG;
	else if (!strcmp(s, "allow"))
		*out = SCMP_ACT_ALLOW;
	else if (sscanf(s, "errno:%d", &e) == 1 && e > 0 && e < 4096)
		*out = SCMP_ACT_ERRNO((uint32_t)e);
	else
		return fail(where, "\"%s\": must be kill_process, kill_thread, trap, log, allow "
			    "or errno:N", s);
	return 0;
}

static int arg_of(const cJSON *a, const char *where, struct scmp_arg_cmp *c)
{
	const cJSON *idx = cJSON_GetObjectItemCaseSensitive(a, "index");
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "type"));
	const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "op"));
	const cJSON *val = cJSON_GetObjectItemCaseSensitive(a, "val");
	const cJSON *mask = cJSON_GetObjectItemCaseSensitive(a, "mask");
	uint64_t v, m = UINT64_MAX;
	bool dword;
	const cJSON *e;

	cJSON_ArrayForEach (e, a) {
		if (strcmp(e->string, "index") && strcmp(e->string, "type") &&
		    strcmp(e->string, "op") && strcmp(e->string, "val") &&
		    strcmp(e->string, "mask") && strcmp(e->string, "comment"))
			return fail(where, "unknown field \"%s\"", e->string);
	}
	if (!cJSON_IsNumber(idx) || idx->valueint < 0 || idx->valueint > 5)
		return fail(where, "index: must be 0 to 5");
	if (!type || (strcmp(type, "dword") && strcmp(type, "qword")))
		return fail(where, "type: must be \"dword\" or \"qword\"");
	dword = !strcmp(type, "dword");
	if (!op || !val || value_of(val, where, &v))
		return fail(where, "needs op and val");
	if (mask && value_of(mask, where, &m))
		return -EINVAL;
	if (dword)
		m &= 0xffffffffu;
	c->arg = (unsigned int)idx->valueint;
	if (!strcmp(op, "eq") || !strcmp(op, "masked_eq")) {
		if (!strcmp(op, "eq") && mask)
			return fail(where, "mask goes with op masked_eq");
		c->op = m == UINT64_MAX ? SCMP_CMP_EQ : SCMP_CMP_MASKED_EQ;
		c->datum_a = m == UINT64_MAX ? v : m;
		c->datum_b = v & m;
		return 0;
	}
	if (dword || mask)
		return fail(where, "op %s works on qword arguments without a mask only", op);
	if (!strcmp(op, "ne"))
		c->op = SCMP_CMP_NE;
	else if (!strcmp(op, "lt"))
		c->op = SCMP_CMP_LT;
	else if (!strcmp(op, "le"))
		c->op = SCMP_CMP_LE;
	else if (!strcmp(op, "gt"))
		c->op = SCMP_CMP_GT;
	else if (!strcmp(op, "ge"))
		c->op = SCMP_CMP_GE;
	else
		return fail(where, "op \"%s\": must be eq, masked_eq, ne, lt, le, gt or ge", op);
	c->datum_a = v;
	c->datum_b = 0;
	return 0;
}

/* One thread's rules into ctx; *nsys gets the number of distinct syscalls allowed. */
static int thread_rules(scmp_filter_ctx *out, const cJSON *t, const char *name, int *nsys,
			bool report)
{
	const cJSON *filter = cJSON_GetObjectItemCaseSensitive(t, "filter"), *r;
	uint32_t def, act = SCMP_ACT_ALLOW;
	char where[128], seen[4096] = " ";
	scmp_filter_ctx ctx;
	int i = 0;

	snprintf(where, sizeof(where), "%s.default_action", name);
	if (action_of(cJSON_GetObjectItemCaseSensitive(t, "default_action"), where, &def))
		return -EINVAL;
	if (cJSON_GetObjectItemCaseSensitive(t, "filter_action")) {
		snprintf(where, sizeof(where), "%s.filter_action", name);
		if (action_of(cJSON_GetObjectItemCaseSensitive(t, "filter_action"), where, &act))
			return -EINVAL;
	}
	if (!cJSON_IsArray(filter))
		return fail(name, "filter: must be an array");
	ctx = seccomp_init(def);
	if (!ctx)
		return fail(name, "seccomp_init failed");
	/* Ember sets no_new_privs itself, on the thread that installs the filter. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	*nsys = 0;
	cJSON_ArrayForEach (r, filter) {
		const char *sys = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "syscall"));
		const cJSON *args = cJSON_GetObjectItemCaseSensitive(r, "args"), *a;
		struct scmp_arg_cmp cmp[6];
		unsigned int n = 0;
		char key[70];
		int nr, ret;

		snprintf(where, sizeof(where), "%s.filter[%d]", name, i++);
		if (!sys)
			goto bad_syscall;
		nr = seccomp_syscall_resolve_name(sys);
		if (nr == __NR_SCMP_ERROR) {
			seccomp_release(ctx);
			return fail(where, "unknown syscall \"%s\"", sys);
		}
		if (args && !cJSON_IsArray(args)) {
			seccomp_release(ctx);
			return fail(where, "args: must be an array");
		}
		cJSON_ArrayForEach (a, args) {
			if (n == 6 || arg_of(a, where, &cmp[n])) {
				seccomp_release(ctx);
				return n == 6 ? fail(where, "at most 6 args") : -EINVAL;
			}
			n++;
		}
		ret = seccomp_rule_add_exact_array(ctx, act, nr, n, cmp);
		if (ret) {
			seccomp_release(ctx);
			return fail(where, "%s: %s", sys, strerror(-ret));
		}
		snprintf(key, sizeof(key), " %s ", sys);
		if (!strstr(seen, key) && strlen(seen) + strlen(key) < sizeof(seen)) {
			strcat(seen, key + 1);
			(*nsys)++;
		}
	}
	if (report)
		printf("%-5s %3d syscalls:%s\n", name, *nsys, seen);
	*out = ctx;
	return 0;
bad_syscall:
	seccomp_release(ctx);
	return fail(where, "syscall: must be a name");
}

static void put32(FILE *f, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	fwrite(b, 1, 4, f);
}

/* ctx's BPF program, as libseccomp makes it, appended to out with its name. */
static int emit(FILE *out, scmp_filter_ctx ctx, const char *name)
{
	char field[SECCOMP_FILE_NAME_LEN] = { 0 };
	FILE *tmp = tmpfile();
	long size;
	uint8_t *buf;

	if (!tmp)
		return fail(name, "tmpfile: %s", strerror(errno));
	if (seccomp_export_bpf(ctx, fileno(tmp)) || (size = ftell(tmp), fseek(tmp, 0, SEEK_END)))
		goto fail;
	size = ftell(tmp);
	if (size <= 0 || size % SECCOMP_FILE_INSN_BYTES ||
	    size / SECCOMP_FILE_INSN_BYTES > SECCOMP_FILE_MAX_INSNS)
		goto fail;
	buf = malloc((size_t)size);
	rewind(tmp);
	if (!buf || fread(buf, 1, (size_t)size, tmp) != (size_t)size) {
		free(buf);
		goto fail;
	}
	memcpy(field, name, strlen(name));
	fwrite(field, 1, sizeof(field), out);
	put32(out, (uint32_t)(size / SECCOMP_FILE_INSN_BYTES));
	fwrite(buf, 1, (size_t)size, out); /* struct sock_filter, little-endian on x86_64 */
	free(buf);
	fclose(tmp);
	return 0;
fail:
	fclose(tmp);
	return fail(name, "exporting the BPF program failed (or it is over %d instructions)",
		    SECCOMP_FILE_MAX_INSNS);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = 0;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	bool report = argc == 3 && !strcmp(argv[1], "--report");
	const char *in = report ? argv[2] : argv[1], *outpath = argv[2];
	scmp_filter_ctx ctx[SECCOMP_THREADS] = { 0 };
	char *text, tmppath[4096];
	cJSON *root, *e;
	FILE *out = NULL;
	int code = 1, nsys;

	if (argc != 3) {
		fprintf(stderr, "usage: ember-seccompiler RULES.json OUTPUT.bpf\n"
				"       ember-seccompiler --report RULES.json\n");
		return 2;
	}
	text = read_all(in);
	if (!text) {
		fprintf(stderr, "ember-seccompiler: %s: %s\n", in, strerror(errno));
		return 1;
	}
	root = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(root)) {
		fprintf(stderr, "ember-seccompiler: %s: not a JSON object\n", in);
		goto out;
	}
	cJSON_ArrayForEach (e, root) {
		int t;

		for (t = 0; t < SECCOMP_THREADS; t++) {
			if (!strcmp(e->string, thread_names[t]))
				break;
		}
		if (t == SECCOMP_THREADS) {
			fail(in, "\"%s\": not a thread type (api, vmm, vcpu)", e->string);
			goto out;
		}
	}
	for (int t = 0; t < SECCOMP_THREADS; t++) {
		const cJSON *th = cJSON_GetObjectItemCaseSensitive(root, thread_names[t]);

		if (!cJSON_IsObject(th)) {
			fail(in, "no rules for the %s thread", thread_names[t]);
			goto out;
		}
		if (thread_rules(&ctx[t], th, thread_names[t], &nsys, report))
			goto out;
	}
	if (report) {
		code = 0;
		goto out;
	}
	snprintf(tmppath, sizeof(tmppath), "%s.tmp", outpath);
	out = fopen(tmppath, "wb");
	if (!out) {
		fprintf(stderr, "ember-seccompiler: %s: %s\n", tmppath, strerror(errno));
		goto out;
	}
	fwrite(SECCOMP_FILE_MAGIC, 1, SECCOMP_FILE_MAGIC_LEN, out);
	put32(out, SECCOMP_THREADS);
	for (int t = 0; t < SECCOMP_THREADS; t++) {
		if (emit(out, ctx[t], thread_names[t]))
			goto out;
	}
	if (fclose(out) || rename(tmppath, outpath)) {
		out = NULL;
		fprintf(stderr, "ember-seccompiler: %s: %s\n", outpath, strerror(errno));
		goto out;
	}
	out = NULL;
	code = 0;
out:
	if (out) {
		fclose(out);
		unlink(tmppath);
	}
	for (int t = 0; t < SECCOMP_THREADS; t++)
		seccomp_release(ctx[t]);
	cJSON_Delete(root);
	return code;
}
