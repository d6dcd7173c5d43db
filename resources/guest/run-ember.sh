#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# run-ember.sh: what `make run` does. Installs what is missing, builds Ember and the guest
# images (cached), boots the default Linux guest with Ember and shows its console; at the
# end it prints Ember's boot-timer figure. On a host without vmx/svm it does all that
# inside the real-KVM bench (tests/bench-vm/run-in-l1), and says so.
#
# On a terminal you get the guest's shell (type `exit` to end the VM); otherwise, or with
# EMBER_RUN_CMD set, the guest runs that command and powers off.
#   EMBER_RUN_CMD="..."     a command for the guest instead of the shell
#   EMBER_RUN_VCPUS=2       vCPUs          EMBER_RUN_MEM_MIB=256   memory
#   EMBER_RUN_KERNEL=vmlinux|bzImage       EMBER_RUN_VIA=bench     use the bench anyway
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${BUILD:-build}
make=${MAKE:-make}
rundir="$build/run"
say() { echo "run: $*" >&2; }

# ---- inside (the host, or the bench's L1): start Ember, keep its log, report ----
if [ "${1:-}" = "--in-vm" ]; then
	config=$2
	set +e
	"$build/ember" --config-file "$config" --no-api --boot-timer 2> >(tee "$rundir/ember.log" >&2)
	rc=$?
	set -e
	wait # for tee
	line=$(grep -o 'Guest-boot-time = .*' "$rundir/ember.log" | head -n 1 || true)
	if [ -n "$line" ]; then
		say "boot time: ${line#Guest-boot-time = } (process start to the guest's boot-complete write)"
	else
		say "Ember logged no Guest-boot-time line (the guest never signalled boot-complete)"
	fi
	say "Ember exited with $rc; its log is $rundir/ember.log"
	exit "$rc"
fi

# ---- outside: prepare, then run here or in the bench ----
scripts/deps.sh >&2
$make --no-print-directory all >&2
eval "$(resources/guest/guest-images.sh --build)"
mkdir -p "$rundir"

case ${EMBER_RUN_KERNEL:-vmlinux} in
bzImage) kernel=$GUEST_BZIMAGE ;;
*) kernel=$GUEST_VMLINUX ;;
esac
args="console=ttyS0 reboot=k panic=1 pci=off"
interactive=0
if [ -n "${EMBER_RUN_CMD:-}" ]; then
	args="$args ember_cmd_b64=$(printf '%s' "$EMBER_RUN_CMD" | base64 -w0)"
elif [ -t 0 ]; then
	interactive=1
else
	cmd='echo "Hello from the Ember guest: $(uname -sr), $(nproc) vCPUs, $(free -m | awk "/Mem:/ { print \$2 }") MiB"'
	args="$args ember_cmd_b64=$(printf '%s' "$cmd" | base64 -w0)"
fi
config="$rundir/vm.json"
cat >"$config" <<EOF
{
  "boot-source": {
    "kernel_image_path": "$kernel",
    "initrd_path": "$GUEST_INITRAMFS",
    "boot_args": "$args"
  },
  "machine-config": {
    "vcpu_count": ${EMBER_RUN_VCPUS:-2},
    "mem_size_mib": ${EMBER_RUN_MEM_MIB:-256}
  }
}
EOF
say "config: $config ($(basename "$kernel"), ${EMBER_RUN_VCPUS:-2} vCPUs, ${EMBER_RUN_MEM_MIB:-256} MiB)"
[ "$interactive" = 1 ] && say "the guest's shell is on this terminal; type 'exit' to end the VM"

if [ "${EMBER_RUN_VIA:-auto}" != bench ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ -c /dev/kvm ]; then
	exec "$0" --in-vm "$config"
fi
say "no vmx/svm on this host: running Ember inside the real-KVM bench (docs/bench-vm.md)"
flags=(-q)
[ "$interactive" = 1 ] && flags+=(--interactive --timeout 0)
exec tests/bench-vm/run-in-l1 "${flags[@]}" -- "resources/guest/run-ember.sh" --in-vm "$config"
