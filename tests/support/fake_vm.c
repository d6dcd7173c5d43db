// SPDX-License-Identifier: Apache-2.0
#include "fake_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm/log.h"

static int register_memory(struct fake_vm *vm)
{
	for (unsigned int i = 0; i < vm->mem.gm.nr_regions; i++) {
		const struct gmem_region *r = &vm->mem.gm.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->host,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return error__set(-errno, "KVM_SET_USER_MEMORY_REGION: %s",
					  strerror(errno));
	}
	return 0;
}

static void on_stop(struct event_handler *eh, uint32_t events)
{
	struct fake_vm *vm = container_of(eh, struct fake_vm, stop_h);
	uint64_t n;
	ssize_t r = read(eh->fd, &n, sizeof(n));

	(void)r;
	(void)events;
	__atomic_store_n(&vm->stop, true, __ATOMIC_RELAXED);
}

static int setup_loop(struct fake_vm *vm)
{
	int ret = event_loop__init(&vm->loop);

	if (ret)
		return error__set(ret, "event loop: %s", strerror(-ret));
	vm->stop_h = (struct event_handler){ eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), on_stop };
	if (vm->stop_h.fd < 0)
		return error__set(-errno, "eventfd: %s", strerror(errno));
	ret = event_loop__add(&vm->loop, &vm->stop_h, EPOLLIN);
	if (ret)
		return error__set(ret, "event loop: %s", strerror(-ret));
	return 0;
}

int fake_vm__create(struct fake_vm *vm, uint64_t mem_bytes)
{
	int ret;

	*vm = (struct fake_vm){ .kvm_fd = -1, .vm_fd = -1, .loop.epfd = -1, .stop_h.fd = -1 };
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return error__set(-errno, "/dev/kvm: %s", strerror(errno));
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return error__set(-errno, "KVM_CREATE_VM: %s", strerror(errno));
	ret = fake_gmem__create(&vm->mem, mem_bytes);
	if (ret)
		return ret;
	/* memory before the irqchip, as vm.c does */
	ret = register_memory(vm);
	if (ret)
		return ret;
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return error__set(-errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	return setup_loop(vm);
}

static void *vmm_thread(void *arg)
{
	struct fake_vm *vm = arg;

	log__set_thread_tag("vmm");
	while (!__atomic_load_n(&vm->stop, __ATOMIC_RELAXED)) {
		if (event_loop__run_once(&vm->loop, vm->busy_poll ? 0 : -1) < 0)
			break;
	}
	return NULL;
}

int fake_vm__start(struct fake_vm *vm)
{
	int ret = pthread_create(&vm->vmm, NULL, vmm_thread, vm);

	if (ret)
		return error__set(-ret, "pthread_create: %s", strerror(ret));
	vm->vmm_running = true;
	return 0;
}

void fake_vm__stop(struct fake_vm *vm)
{
	uint64_t one = 1;

	if (!vm->vmm_running)
		return;
	while (write(vm->stop_h.fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(vm->vmm, NULL);
	vm->vmm_running = false;
}

void fake_vm__destroy(struct fake_vm *vm)
{
	fake_vm__stop(vm);
	if (vm->stop_h.fd >= 0)
		close(vm->stop_h.fd);
	if (vm->loop.epfd >= 0)
		event_loop__destroy(&vm->loop);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	fake_gmem__destroy(&vm->mem);
	vm->stop_h.fd = vm->loop.epfd = vm->vm_fd = vm->kvm_fd = -1;
}

int fake_vm__take_irqfd(struct fake_vm *vm, int irq_fd, uint32_t gsi)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)irq_fd,
		.gsi = gsi,
		.flags = KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
		return error__set(-errno, "KVM_IRQFD deassign: %s", strerror(errno));
	return 0;
}

int fake_vm__vmm_clock(const struct fake_vm *vm, clockid_t *clock)
{
	int ret = pthread_getcpuclockid(vm->vmm, clock);

	return ret ? error__set(-ret, "pthread_getcpuclockid: %s", strerror(ret)) : 0;
}
