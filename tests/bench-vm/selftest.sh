#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Tests the real-KVM bench itself (make bench-vm-selftest): a command's status comes back,
# a hung command is killed at the timeout with 124, the L1 has KVM, the cwd and EMBER_*
# variables come through, writes to the checkout come back, and writes elsewhere stay in
# the L1's overlay.
set -u
here=$(cd "$(dirname "$0")" && pwd)
run="$here/run-in-l1"
top=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
scratch="$top/build/bench-vm/selftest"
failed=0

check() { # check NAME EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then
		echo "bench-vm-selftest: PASS $1"
	else
		echo "bench-vm-selftest: FAIL $1: expected $2, got $3"
		failed=$((failed + 1))
	fi
}

rm -rf "$scratch" && mkdir -p "$scratch"
cd "$scratch" || exit 1

"$run" -q -- sh -c 'exit 42'
check "a failing command's status is the script's status" 42 $?

start=$(date +%s)
"$run" -q --timeout 25 -- sleep 3600
rc=$?
took=$(($(date +%s) - start))
check "a hung command is killed at --timeout with 124" 124 $rc
check "the timeout fires on time (under 60 s)" yes "$([ $took -lt 60 ] && echo yes || echo "no, ${took} s")"

host_marker=/var/tmp/ember-selftest-$$
EMBER_SELFTEST_VALUE="a 'quoted' value" "$run" -q -- sh -c "
	set -e
	test -c /dev/kvm
	grep -qw svm /proc/cpuinfo
	test \"\$(pwd)\" = '$scratch'
	test \"\$EMBER_SELFTEST_VALUE\" = \"a 'quoted' value\"
	test \"\$EMBER_IN_L1\" = 1
	echo from-l1 > '$scratch/result'
	echo overlay > '$host_marker'
	/usr/bin/python3 -c 'import pytest'
"
check "L1 has /dev/kvm+svm, the cwd, EMBER_* and python3+pytest" 0 $?
check "a file written in the checkout comes back" from-l1 "$(cat "$scratch/result" 2>/dev/null)"
check "a file written outside the checkout stays in L1" absent "$([ -e "$host_marker" ] && echo present || echo absent)"
rm -f "$host_marker"

# What later issues need from the L1 kernel (jailer, network, snapshot, memory).
"$run" -q -- sh -c '
	set -e
	for c in cpuset cpu memory pids; do grep -qw $c /sys/fs/cgroup/cgroup.controllers; done
	unshare -n -p -m -u -i -U -r -f true
	ip tuntap add dev ember-tap0 mode tap
	ip link add ember-v0 type veth peer name ember-v1
	tc qdisc add dev ember-tap0 clsact
	test -c /dev/userfaultfd && test -c /dev/net/tun
	echo 8 > /proc/sys/vm/nr_hugepages && grep -q "HugePages_Total: *8" /proc/meminfo
	test -e /sys/kernel/mm/transparent_hugepage/enabled && test -e /sys/kernel/mm/ksm/run
	zcat /proc/config.gz | grep -qx CONFIG_IO_URING=y
	zcat /proc/config.gz | grep -qx CONFIG_SECCOMP_FILTER=y
	zcat /proc/config.gz | grep -qx CONFIG_BPF_JIT=y
'
check "L1 has cgroup v2 controllers, namespaces, TAP, veth, clsact, uffd, huge pages, KSM" 0 $?
"$run" -q --cgroup v1 -- sh -c 'for c in cpu,cpuacct cpuset memory pids; do
	grep -q " /sys/fs/cgroup/$c cgroup " /proc/mounts || exit 1; done'
check "--cgroup v1 mounts the v1 controllers" 0 $?

if [ "$failed" -ne 0 ]; then
	echo "bench-vm-selftest: $failed check(s) failed; L1 logs are in $top/build/bench-vm/"
	exit 1
fi
echo "bench-vm-selftest: all checks passed"
