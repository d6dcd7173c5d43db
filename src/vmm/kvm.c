// SPDX-License-Identifier: Apache-2.0
#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/log.h"

#define CPUID_MAX_ENTRIES 256
#define CPUID_1_ECX_TSC_DEADLINE (1U << 24)

static const struct {
	long cap;
	const char *name;
	const char *why;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest memory" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "the in-kernel interrupt controllers" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "the in-kernel PIT" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "the TSS address" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR", "the identity map" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "the guest CPUID" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "device notifications" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "vCPU start-up state" },
};

int kvm__check_extension(const struct kvm *kvm, long cap)
{
	int r = ioctl(kvm->fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static int open_dev(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int err = errno;

	if (fd >= 0)
		return fd;
	if (err == ENOENT)
		return error__set(-err, "cannot open %s: %s (is the kvm module loaded?)", path,
				  strerror(err));
	if (err == EACCES || err == EPERM)
		return error__set(-err, "cannot open %s: %s (is the user in the kvm group?)", path,
				  strerror(err));
	return error__set(-err, "cannot open %s: %s", path, strerror(err));
}

/*
 * KVM emulates the TSC-deadline mode of the local APIC timer whatever the host has, but
 * leaves it out of KVM_GET_SUPPORTED_CPUID for userspace to opt in. Without it Linux
 * calibrates the APIC timer against the PIT, which fails on slow or nested hosts.
 */
static void add_emulated_features(struct kvm *kvm)
{
	if (kvm__check_extension(kvm, KVM_CAP_TSC_DEADLINE_TIMER) <= 0)
		return;
	for (uint32_t i = 0; i < kvm->cpuid->nent; i++) {
		if (kvm->cpuid->entries[i].function == 1)
			kvm->cpuid->entries[i].ecx |= CPUID_1_ECX_TSC_DEADLINE;
	}
}

static int get_cpuid(struct kvm *kvm)
{
	struct kvm_cpuid2 *c;
	int err;

	c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		err = errno;
		free(c);
		return error__set(-err, "KVM_GET_SUPPORTED_CPUID: %s", strerror(err));
	}
	kvm->cpuid = c;
	add_emulated_features(kvm);
	return 0;
}

int kvm__open(struct kvm *kvm, const char *path)
{
	int ret, version;

	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = open_dev(path);
	if (kvm->fd < 0)
		return kvm->fd;
	version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		ret = error__set(-ENOTSUP, "%s: KVM API version %d, Ember needs %d", path, version,
				 KVM_API_VERSION);
		goto err_close;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (kvm__check_extension(kvm, required_caps[i].cap) <= 0) {
			ret = error__set(-ENOTSUP, "%s lacks %s, which Ember needs for %s", path,
					 required_caps[i].name, required_caps[i].why);
			goto err_close;
		}
	}
	kvm->vcpu_mmap_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->vcpu_mmap_size <= 0) {
		ret = error__set(-EINVAL, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		goto err_close;
	}
	kvm->max_vcpus = kvm__check_extension(kvm, KVM_CAP_MAX_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = kvm__check_extension(kvm, KVM_CAP_NR_VCPUS);
	ret = get_cpuid(kvm);
	if (ret)
		goto err_close;
	return 0;
err_close:
	close(kvm->fd);
	kvm->fd = -1;
	return ret;
}

void kvm__close_cpuid(struct kvm *kvm)
{
	free(kvm->cpuid);
	kvm->cpuid = NULL;
}

void kvm__close(struct kvm *kvm)
{
	kvm__close_cpuid(kvm);
	if (kvm->fd >= 0)
		close(kvm->fd);
	kvm->fd = -1;
}
