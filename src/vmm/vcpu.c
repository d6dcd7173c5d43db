// SPDX-License-Identifier: Apache-2.0
#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jail/seccomp.h"
#include "vmm/cpuid.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MISC_ENABLE_FAST_STRING 0x1
#define MTRR_ENABLE_WB ((1ULL << 11) | 6)

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu__init_signals(void)
{
	struct sigaction sa = { .sa_handler = kick_handler, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return error__set(-errno, "sigaction: %s", strerror(errno));
	return 0;
}

static int set_cpuid(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct cpu_topology t = {
		.nr_vcpus = vm->nr_vcpus,
		.threads_per_core = vm->cfg->machine.smt && vm->nr_vcpus > 1 ? 2 : 1,
	};
	struct kvm_cpuid2 *c = cpuid__for_vcpu(vm->kvm.cpuid, &t, vcpu->index);
	int ret = 0;

	if (!c)
		return -ENOMEM;
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0)
		ret = error__set(-errno, "vcpu%u: KVM_SET_CPUID2: %s", vcpu->index,
				 strerror(errno));
	free(c);
	return ret;
}

static int set_msrs(struct vcpu *vcpu)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} boot_msrs[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_IA32_TSC, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB },
	};
	const unsigned int n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(boot_msrs) / sizeof(boot_msrs[0]) *
								sizeof(struct kvm_msr_entry)];
	} msrs;
	int r;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = n;
	for (unsigned int i = 0; i < n; i++) {
		msrs.hdr.entries[i].index = boot_msrs[i].index;
		msrs.hdr.entries[i].data = boot_msrs[i].value;
	}
	r = ioctl(vcpu->fd, KVM_SET_MSRS, &msrs);
	if (r < 0)
		return error__set(-errno, "vcpu%u: KVM_SET_MSRS: %s", vcpu->index, strerror(errno));
	if ((unsigned int)r != n)
		return error__set(-EINVAL, "vcpu%u: KVM refused MSR 0x%x", vcpu->index,
				  boot_msrs[r].index);
	return 0;
}

static uint32_t lvt_mode(uint32_t reg, uint32_t mode)
{
	return (reg & ~0x700U) | (mode << 8);
}

static int set_lint(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t v;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return error__set(-errno, "vcpu%u: KVM_GET_LAPIC: %s", vcpu->index,
				  strerror(errno));
	memcpy(&v, &lapic.regs[APIC_LVT_LINT0], 4);
	v = lvt_mode(v, APIC_MODE_EXTINT);
	memcpy(&lapic.regs[APIC_LVT_LINT0], &v, 4);
	memcpy(&v, &lapic.regs[APIC_LVT_LINT1], 4);
	v = lvt_mode(v, APIC_MODE_NMI);
	memcpy(&lapic.regs[APIC_LVT_LINT1], &v, 4);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		return error__set(-errno, "vcpu%u: KVM_SET_LAPIC: %s", vcpu->index,
				  strerror(errno));
	return 0;
}

static int set_fpu(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return error__set(-errno, "vcpu%u: KVM_SET_FPU: %s", vcpu->index, strerror(errno));
	return 0;
}

int vcpu__create(struct vm *vm, struct vcpu *vcpu, uint32_t index)
{
	int ret;
	void *run;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0)
		return error__set(-errno, "vcpu%u: KVM_CREATE_VCPU: %s", index, strerror(errno));
	run = mmap(NULL, (size_t)vm->kvm.vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   vcpu->fd, 0);
	if (run == MAP_FAILED) {
		ret = error__set(-errno, "vcpu%u: mmap of kvm_run: %s", index, strerror(errno));
		goto err_close;
	}
	vcpu->run = run;
	ret = set_cpuid(vcpu);
	if (!ret)
		ret = set_msrs(vcpu);
	if (!ret)
		ret = set_lint(vcpu);
	if (!ret)
		ret = set_fpu(vcpu);
	if (ret)
		goto err_unmap;
	return 0;
err_unmap:
	munmap(vcpu->run, (size_t)vm->kvm.vcpu_mmap_size);
err_close:
	close(vcpu->fd);
	vcpu->fd = -1;
	vcpu->run = NULL;
	return ret;
}

int vcpu__set_boot_regs(struct vcpu *vcpu)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return error__set(-errno, "vcpu%u: KVM_GET_SREGS: %s", vcpu->index,
				  strerror(errno));
	boot_x86__regs(&vcpu->vm->kernel, &regs, &sregs);
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return error__set(-errno, "vcpu%u: KVM_SET_SREGS: %s", vcpu->index,
				  strerror(errno));
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return error__set(-errno, "vcpu%u: KVM_SET_REGS: %s", vcpu->index, strerror(errno));
	return 0;
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint64_t total = (uint64_t)run->io.size * run->io.count;
	struct bus *pio = &vcpu->vm->pio;

	if (run->io.direction == KVM_EXIT_IO_OUT)
		vcpu->m.exit_io_out++;
	else
		vcpu->m.exit_io_in++;
	if (run->io.data_offset + total > (uint64_t)vcpu->vm->kvm.vcpu_mmap_size)
		return;
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus__write(pio, run->io.port, data, run->io.size);
		else
			bus__read(pio, run->io.port, data, run->io.size);
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;

	if (run->mmio.is_write)
		vcpu->m.exit_mmio_write++;
	else
		vcpu->m.exit_mmio_read++;
	if (!len || len > sizeof(run->mmio.data))
		return;
	if (run->mmio.is_write)
		bus__write(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	else
		bus__read(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
}

static void guest_reset(struct vcpu *vcpu, const char *how)
{
	log_info("vcpu%u: guest reset (%s)", vcpu->index, how);
	vm__request_stop(vcpu->vm, VM_STOP_RESET, 0);
}

static void system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
	case KVM_SYSTEM_EVENT_RESET:
		guest_reset(vcpu, "system event");
		break;
	default:
		log_error("vcpu%u: guest crashed (system event %u)", vcpu->index,
			  vcpu->run->system_event.type);
		vm__request_stop(vcpu->vm, VM_STOP_PANIC, EMBER_EXIT_GUEST_PANIC);
		break;
	}
}

static void fault(struct vcpu *vcpu, const char *what, unsigned long long detail)
{
	vcpu->m.failures++;
	log_error("vcpu%u: %s (0x%llx); stopping the VM", vcpu->index, what, detail);
	vm__request_stop(vcpu->vm, VM_STOP_ERROR, EMBER_EXIT_GUEST_FAULT);
}

/* Returns false when the loop must end. */
static bool handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		return true;
	case KVM_EXIT_SHUTDOWN:
		guest_reset(vcpu, "triple fault");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		system_event(vcpu);
		return false;
	case KVM_EXIT_HLT:
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		vcpu->m.exit_other++;
		return true;
	case KVM_EXIT_FAIL_ENTRY:
		fault(vcpu, "KVM entry failed",
		      (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		fault(vcpu, "KVM internal error", run->internal.suberror);
		return false;
	default:
		fault(vcpu, "unexpected KVM exit", run->exit_reason);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char tag[16];
	sigset_t set;

	snprintf(tag, sizeof(tag), "vcpu%u", vcpu->index);
	log__set_thread_tag(tag);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* before the first KVM_RUN: from here on the guest's exits are untrusted input */
	if (seccomp__apply(SECCOMP_THREAD_VCPU)) {
		log_error("vcpu%u: %s", vcpu->index, error__get());
		vm__request_stop(vm, VM_STOP_ERROR, EMBER_EXIT_ERROR);
		return NULL;
	}
	if (vcpu->index == 0)
		log_debug("first KVM_RUN at %llu us",
			  (unsigned long long)log__wall_us_since_start());
	while (!__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE)) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vcpu->run->immediate_exit = 0;
				vm__vcpu_checkpoint(vm);
				continue;
			}
			log_error("KVM_RUN: %s", strerror(errno));
			vm__request_stop(vm, VM_STOP_ERROR, EMBER_EXIT_ERROR);
			break;
		}
		if (!handle_exit(vcpu))
			break;
	}
	return NULL;
}

int vcpu__start(struct vcpu *vcpu)
{
	int ret = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	char name[16];

	if (ret)
		return error__set(-ret, "vcpu%u: cannot start its thread: %s", vcpu->index,
				  strerror(ret));
	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(vcpu->thread, name); /* in ps, top and /proc/<pid>/task/ */
	vcpu->started = true;
	return 0;
}

void vcpu__kick(struct vcpu *vcpu)
{
	if (!vcpu->started)
		return;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu__join(struct vcpu *vcpu)
{
	if (!vcpu->started)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->started = false;
}

void vcpu__destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->vm->kvm.vcpu_mmap_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}
