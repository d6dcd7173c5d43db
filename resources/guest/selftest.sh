#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Tests the image builders' failure paths and cache (make guest-images-selftest). Each
# failure must name its step, exit non-zero and leave nothing half-written in the cache.
# Then tests the guest agent's protocol on the host (agent/test_agent.py, over a Unix socket).
# Needs the guest images cached already (make guest-images); takes about a minute.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bk="$here/build-kernel.sh"
br="$here/build-rootfs.sh"
frag="$here/kernel.fragment"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

check() { # check NAME CONDITION-RESULT(yes/no) [DETAIL]
	if [ "$2" = yes ]; then
		echo "guest-images-selftest: PASS $1"
	else
		echo "guest-images-selftest: FAIL $1 ${3:-}"
		failed=$((failed + 1))
	fi
}
yes_if() { if "$@"; then echo yes; else echo no; fi; }
entries() { ls -1 "$EMBER_CACHE/kernel" "$EMBER_CACHE/rootfs" "$EMBER_CACHE/tmp" 2>/dev/null | sort; }

# A cache hit is instant.
"$bk" guest "$frag" >/dev/null 2>&1 || { echo "guest-images-selftest: run make guest-images first"; exit 1; }
start=$(date +%s%N)
"$bk" guest "$frag" >/dev/null 2>&1
ms=$((($(date +%s%N) - start) / 1000000))
check "a cached kernel is found in ${ms} ms (< 1000)" "$(yes_if [ "$ms" -lt 1000 ])"

# expect_failure NAME STEP TEXT CMD...: CMD fails, says it failed at STEP, mentions TEXT,
# and the cache's kernel/ and tmp/ directories are as before.
expect_failure() {
	name=$1 step=$2 text=$3
	shift 3
	before=$(entries)
	"$@" >"$work/out" 2>&1
	rc=$?
	check "$name: exits non-zero" "$(yes_if [ $rc -ne 0 ])" "(exit $rc)"
	check "$name: names the step \"$step\"" \
		"$(yes_if grep -q "FAILED at step \"$step\"" "$work/out")" "$(tail -n 3 "$work/out")"
	check "$name: mentions '$text'" "$(yes_if grep -qF -- "$text" "$work/out")"
	check "$name: leaves the cache as it was" "$(yes_if [ "$before" = "$(entries)" ])"
}

expect_failure "missing linux-source" "check linux-source-9.99" "not installed" \
	env EMBER_LINUX_SRC_PKG=linux-source-9.99 "$bk" guest "$frag"

expect_failure "no disk space" "check disk space" "no disk space" \
	env EMBER_TEST_FREE_MIB=10 "$bk" selftest-space "$frag"

{
	cat "$frag"
	echo "CONFIG_EMBER_SELFTEST_NO_SUCH_OPTION=y"
	echo "CONFIG_KVM_AMD=y"
} >"$work/bad.fragment"
expect_failure "bad config fragment" "check config" "CONFIG_EMBER_SELFTEST_NO_SUCH_OPTION=y" \
	"$bk" selftest-bad "$work/bad.fragment"
check "bad config fragment: lists every dropped option" \
	"$(yes_if grep -qF "CONFIG_KVM_AMD=y" "$work/out")"

# A compiler that fails on the first kernel object makes `make` fail.
mkdir "$work/bin"
cat >"$work/bin/gcc" <<'EOF'
#!/bin/sh
case " $* " in *" -D__KERNEL__ "*" -c "*) echo "selftest: refusing to compile" >&2; exit 1 ;; esac
exec /usr/bin/gcc "$@"
EOF
chmod +x "$work/bin/gcc"
{
	cat "$frag"
	echo "# selftest: a different key"
} >"$work/make.fragment"
expect_failure "failing make" "compile" "make vmlinux bzImage exited" \
	env PATH="$work/bin:$PATH" "$bk" selftest-make "$work/make.fragment"

# The rootfs compiles the guest agent: a missing compiler, a missing static libc and a
# failing compile each stop the build with a clear message. (A new NAME, so no cache hit.)
"$br" guest "$here/init" >/dev/null 2>&1 || { echo "guest-images-selftest: run make guest-images first"; exit 1; }
expect_failure "agent: no compiler" "check compiler" "apt-get install build-essential" \
	env EMBER_AGENT_CC=/nonexistent/gcc "$br" selftest-agent "$here/init"
cat >"$work/bin/nolibc-gcc" <<'EOF'
#!/bin/sh
case "$1" in -print-file-name=libc.a) echo libc.a; exit 0 ;; esac
exec /usr/bin/gcc "$@"
EOF
cat >"$work/bin/broken-gcc" <<'EOF'
#!/bin/sh
case "$1" in --version | -print-file-name=*) exec /usr/bin/gcc "$@" ;; esac
echo "agent.c:1: selftest: refusing to compile" >&2
exit 1
EOF
chmod +x "$work/bin/nolibc-gcc" "$work/bin/broken-gcc"
expect_failure "agent: no static libc" "compile agent" "libc6-dev" \
	env EMBER_AGENT_CC="$work/bin/nolibc-gcc" "$br" selftest-agent "$here/init"
expect_failure "agent: failing compile" "compile agent" "selftest: refusing to compile" \
	env EMBER_AGENT_CC="$work/bin/broken-gcc" "$br" selftest-agent "$here/init"

# The agent's protocol, on the host, with the binary the rootfs holds.
agent=$("$br" guest "$here/init" 2>/dev/null)/ember-agent
${PYTHON:-python3} "$here/agent/test_agent.py" "$agent" >"$work/agent.out" 2>&1
rc=$?
grep -v ': PASS ' "$work/agent.out" | sed 's/^/    | /'
check "agent protocol ($(grep -c ': PASS ' "$work/agent.out") checks, agent/test_agent.py)" \
	"$(yes_if [ $rc -eq 0 ])" "(exit $rc)"

if [ "$failed" -ne 0 ]; then
	echo "guest-images-selftest: $failed check(s) failed"
	exit 1
fi
echo "guest-images-selftest: all checks passed"
