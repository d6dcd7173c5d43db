// SPDX-License-Identifier: Apache-2.0
/*
 * The guest's main line: read the boot information, print the banner, run the tests the
 * command line names (tests=a,b,c), print the summary, and exit as asked (exit=...).
 */
#include "guest.h"

#define DEBUG_EXIT_PORT 0xf4
#define I8042_COMMAND_PORT 0x64
#define I8042_STATUS_INPUT_FULL 0x02
#define I8042_CMD_RESET_CPU 0xfe
#define I8042_POLLS 1000
#define WARM_RESET_FLAG_ADDR 0x472
#define WARM_RESET_MAGIC 0x1234
#define TEST_NAME_MAX 64

enum exit_mode { EXIT_RESET, EXIT_PORT, EXIT_PANIC, EXIT_TRIPLE, EXIT_HANG, EXIT_AUTO };

struct guest_test {
	const char *name;
	guest_test_fn run;
};

static const struct guest_test guest_tests[] = {
#define GUEST_TEST(n) { #n, test_##n },
#include "tests.def"
#undef GUEST_TEST
};

static struct {
	enum exit_mode exit_mode;
	uint8_t exit_code;
	const char *tests; /* inside boot_info.cmdline, not NUL-terminated */
	size_t tests_len;
} opts;

static unsigned int nr_passed, nr_failed;
static char current_test[TEST_NAME_MAX]; /* empty between tests */
static char fail_reason[256];
unsigned int boot_cpu_apic_id;

const char *fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnformat(fail_reason, sizeof(fail_reason), fmt, ap);
	va_end(ap);
	return fail_reason;
}

static bool token_is(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);

	return len == n && !memcmp(s, word, n);
}

static void parse_exit(const char *v, size_t len)
{
	uint64_t code;

	if (token_is(v, len, "reset"))
		opts.exit_mode = EXIT_RESET;
	else if (token_is(v, len, "panic"))
		opts.exit_mode = EXIT_PANIC;
	else if (token_is(v, len, "triple"))
		opts.exit_mode = EXIT_TRIPLE;
	else if (token_is(v, len, "hang"))
		opts.exit_mode = EXIT_HANG;
	else if (token_is(v, len, "auto"))
		opts.exit_mode = EXIT_AUTO;
	else if (len > 5 && str_has_prefix(v, "port:") && parse_uint(v + 5, len - 5, 255, &code)) {
		opts.exit_mode = EXIT_PORT;
		opts.exit_code = (uint8_t)code;
	} else {
		report("warning: unknown exit=%.*s, using exit=reset", (int)len, v);
		opts.exit_mode = EXIT_RESET;
	}
}

static void parse_cmdline(const char *s)
{
	opts.exit_mode = EXIT_RESET;
	while (*s) {
		size_t len = 0;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		while (s[len] && s[len] != ' ' && s[len] != '\t' && s[len] != '\n')
			len++;
		if (len > 6 && str_has_prefix(s, "tests=")) {
			opts.tests = s + 6;
			opts.tests_len = len - 6;
		} else if (len > 5 && str_has_prefix(s, "exit=")) {
			parse_exit(s + 5, len - 5);
		}
		s += len;
	}
}

static void run_test(const char *name, size_t len)
{
	const char *why = "unknown test";

	if (len >= TEST_NAME_MAX)
		len = TEST_NAME_MAX - 1;
	memcpy(current_test, name, len);
	current_test[len] = 0;
	for (unsigned int i = 0; i < ARRAY_SIZE(guest_tests); i++) {
		if (token_is(name, len, guest_tests[i].name)) {
			why = guest_tests[i].run();
			break;
		}
	}
	if (why) {
		report("FAIL %s: %s", current_test, why);
		nr_failed++;
	} else {
		report("PASS %s", current_test);
		nr_passed++;
	}
	current_test[0] = 0;
}

static void run_tests(void)
{
	const char *s = opts.tests, *end = opts.tests + opts.tests_len;

	while (s && s < end) {
		const char *comma = s;

		while (comma < end && *comma != ',')
			comma++;
		if (comma > s)
			run_test(s, (size_t)(comma - s));
		s = comma + 1;
	}
}

void guest_main(unsigned int protocol, uint64_t info_paddr)
{
	console__init();
	boot_cpu_apic_id = cpu_apic_id();
	report("boot protocol=%s cpu=%u", boot__protocol_name(protocol), boot_cpu_apic_id);
	boot__init(protocol, info_paddr);
	memory__init();
	report("cmdline %s", boot_info.cmdline);
	parse_cmdline(boot_info.cmdline);
	run_tests();
	report("done passed=%u failed=%u", nr_passed, nr_failed);
	guest__exit(nr_failed == 0);
}

_Noreturn void guest__abort(const char *why)
{
	if (current_test[0]) {
		report("FAIL %s: %s", current_test, why);
		nr_failed++;
	}
	report("done passed=%u failed=%u", nr_passed, nr_failed);
	guest__exit(false);
}

static void i8042_reset(void)
{
	for (unsigned int i = 0; i < I8042_POLLS; i++) {
		if (!(inb(I8042_COMMAND_PORT) & I8042_STATUS_INPUT_FULL))
			break;
	}
	outb(I8042_COMMAND_PORT, I8042_CMD_RESET_CPU);
}

/* An empty IDT: the #UD cannot be delivered, nor can the #GP and #DF that follow. Not
 * int3: a hypervisor that emulates ring 0 may fail to emulate a software interrupt
 * (KVM internal error) instead of faulting. */
_Noreturn void guest__triple_fault(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = { 0, 0 };

	__asm__ volatile("lidt %0; ud2" : : "m"(empty));
	cpu_halt();
}

_Noreturn void guest__exit(bool passed)
{
	switch (opts.exit_mode) {
	case EXIT_PORT:
		outb(DEBUG_EXIT_PORT, opts.exit_code);
		break;
	case EXIT_AUTO:
		outb(DEBUG_EXIT_PORT, passed ? 0 : 1);
		break;
	case EXIT_PANIC:
		*(volatile uint16_t *)WARM_RESET_FLAG_ADDR = WARM_RESET_MAGIC;
		break;
	case EXIT_TRIPLE:
		guest__triple_fault();
	case EXIT_HANG:
		cpu_halt();
	case EXIT_RESET:
		break;
	}
	/* Still running: the port was not there, or this is the reset path anyway. */
	i8042_reset();
	guest__triple_fault();
}
