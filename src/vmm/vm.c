// SPDX-License-Identifier: Apache-2.0
#include "vmm/vm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/mptable.h"
#include "vmm/vcpu.h"

/* Linux writes the BIOS warm-reset flag before a panic reboot with this; see docs/boot.md. */
#define EMBER_CMDLINE_SUFFIX "reboot=panic_warm"

static int vm_ioctl(struct vm *vm, unsigned long req, unsigned long arg, const char *name)
{
	if (ioctl(vm->fd, req, arg) < 0)
		return error__set(-errno, "%s: %s", name, strerror(errno));
	return 0;
}

static int create_vm_fd(struct vm *vm)
{
	vm->fd = ioctl(vm->kvm.fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return error__set(-errno, "KVM_CREATE_VM: %s", strerror(errno));
	return 0;
}

static int create_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = LAYOUT_IDENTITY_MAP_ADDR;
	int ret;

	ret = vm_ioctl(vm, KVM_SET_TSS_ADDR, LAYOUT_TSS_ADDR, "KVM_SET_TSS_ADDR");
	if (!ret)
		ret = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, (unsigned long)&idmap,
			       "KVM_SET_IDENTITY_MAP_ADDR");
	if (!ret)
		ret = vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	if (!ret)
		ret = vm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2");
	return ret;
}

void vm__memory_backing(const struct vm_config *cfg, struct memory_backing *b)
{
	static const enum memory_huge huge[] = {
		[HUGE_PAGES_NONE] = MEMORY_HUGE_NONE,
		[HUGE_PAGES_2M] = MEMORY_HUGE_2M,
		[HUGE_PAGES_TRANSPARENT] = MEMORY_HUGE_THP,
	};

	b->huge = huge[cfg->machine.huge_pages];
	b->ksm = cfg->machine.ksm;
}

/* Fresh anonymous memory, or a restore's, already in vm->gmem (premapped). */
static int setup_memory(struct vm *vm, bool premapped)
{
	uint64_t bytes = vm->cfg->machine.mem_size_mib << 20;
	int ret = 0;

	if (!premapped) {
		struct memory_backing b;

		vm__memory_backing(vm->cfg, &b);
		ret = memory__map_backed(&vm->gmem, bytes, &b, false);
	}
	if (!ret && vm->cfg->machine.track_dirty_pages)
		ret = memory__track_dirty(&vm->gmem);
	if (ret) {
		memory__unmap(&vm->gmem);
		return ret;
	}
	for (unsigned int i = 0; i < vm->gmem.nr_regions; i++) {
		const struct gmem_region *r = &vm->gmem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.flags = vm->cfg->machine.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->host,
		};

		ret = vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&slot,
			       "KVM_SET_USER_MEMORY_REGION");
		if (ret) {
			memory__unmap(&vm->gmem);
			return ret;
		}
	}
	return 0;
}

/* An eventfd wired to a GSI through KVM_IRQFD: writing it pulses the interrupt. */
static int irq_eventfd(struct vm *vm, uint32_t gsi)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct kvm_irqfd irqfd = { .gsi = gsi };

	if (fd < 0)
		return error__set(-errno, "eventfd: %s", strerror(errno));
	irqfd.fd = (uint32_t)fd;
	if (ioctl(vm->fd, KVM_IRQFD, &irqfd) < 0) {
		int err = errno;

		close(fd);
		return error__set(-err, "KVM_IRQFD for GSI %u: %s", gsi, strerror(err));
	}
	return fd;
}

static void on_i8042_reset(void *opaque)
{
	struct vm *vm = opaque;

	log_info("guest reset through the i8042");
	vm__request_stop(vm, VM_STOP_RESET, 0);
}

static void on_debug_exit(void *opaque, uint8_t code)
{
	struct vm *vm = opaque;

	log_info("guest wrote %u to the debug-exit port at %llu us", code,
		 (unsigned long long)log__wall_us_since_start());
	vm__request_stop(vm, VM_STOP_DEBUG_EXIT, code);
}

static int open_serial_out(struct vm *vm)
{
	const char *path = vm->cfg->serial.serial_out_path;

	if (!path) {
		vm->serial_out_fd = STDOUT_FILENO;
		return 0;
	}
	vm->serial_out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (vm->serial_out_fd < 0)
		return error__set(-errno, "serial.serial_out_path %s: %s", path, strerror(errno));
	return 0;
}

/* The VM generation ID page, always there; a restore gives it a new ID and generation. */
static int setup_vmgenid(struct vm *vm)
{
	int ret = vmgenid__init(&vm->vmgenid);

	if (ret)
		return ret;
	ret = bus__register(&vm->mmio, LAYOUT_VMGENID_ADDR, LAYOUT_VMGENID_SIZE, &vmgenid__ops,
			    &vm->vmgenid, "vmgenid");
	if (ret)
		return error__set(ret, "cannot place the VM generation ID page");
	return 0;
}

static int setup_legacy_devices(struct vm *vm)
{
	int ret = open_serial_out(vm);

	if (ret)
		return ret;
	vm->serial_irq_fd = irq_eventfd(vm, LAYOUT_COM1_IRQ);
	if (vm->serial_irq_fd < 0)
		return vm->serial_irq_fd;
	vm->serial_rx_ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->serial_rx_ready_fd < 0)
		return error__set(-errno, "eventfd: %s", strerror(errno));
	vm->serial_out_kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->serial_out_kick_fd < 0)
		return error__set(-errno, "eventfd: %s", strerror(errno));
	serial__init(&vm->serial, vm->serial_out_fd, vm->serial_irq_fd, vm->serial_rx_ready_fd);
	serial__set_out_kick(&vm->serial, vm->serial_out_kick_fd);
	ret = bus__register(&vm->pio, LAYOUT_COM1_PORT, 8, &serial__ops, &vm->serial, "serial");
	if (ret)
		return error__set(ret, "cannot place the serial port");

	vm->i8042_irq_fd = irq_eventfd(vm, LAYOUT_I8042_IRQ);
	if (vm->i8042_irq_fd < 0)
		return vm->i8042_irq_fd;
	i8042__init(&vm->i8042, vm->i8042_irq_fd, on_i8042_reset, vm);
	ret = bus__register(&vm->pio, LAYOUT_I8042_DATA_PORT, 1, &i8042__data_ops, &vm->i8042,
			    "i8042");
	if (!ret)
		ret = bus__register(&vm->pio, LAYOUT_I8042_CMD_PORT, 1, &i8042__cmd_ops, &vm->i8042,
				    "i8042");
	vm->boot_timer.origin_wall_us = vm->opts.boot_timer_origin_us;
	if (!ret && vm->opts.boot_timer)
		ret = bus__register(&vm->mmio, LAYOUT_BOOT_TIMER_ADDR, LAYOUT_BOOT_TIMER_SIZE,
				    &boot_timer__ops, &vm->boot_timer, "boot-timer");
	if (!ret && vm->opts.debug_exit) {
		vm->debug_exit = (struct debug_exit){ on_debug_exit, vm };
		ret = bus__register(&vm->pio, LAYOUT_DEBUG_EXIT_PORT, 4, &debug_exit__ops,
				    &vm->debug_exit, "debug-exit");
	}
	if (ret)
		return error__set(ret, "cannot place the legacy devices");
	return setup_vmgenid(vm);
}

/*
 * Where init's arguments start: the first bare "--" token, as Linux's own parser finds it
 * (whitespace-separated, double quotes group). Returns strlen(args) when there is none.
 */
static size_t init_args_offset(const char *args)
{
	size_t i = 0, n = strlen(args);

	while (i < n) {
		size_t start;
		bool quoted = false;

		while (i < n && isspace((unsigned char)args[i]))
			i++;
		start = i;
		while (i < n && (quoted || !isspace((unsigned char)args[i]))) {
			if (args[i] == '"')
				quoted = !quoted;
			i++;
		}
		if (i - start == 2 && args[start] == '-' && args[start + 1] == '-')
			return start;
	}
	return n;
}

uint64_t vm__device_base(unsigned int slot)
{
	return LAYOUT_VIRTIO_MMIO_START + slot * LAYOUT_VIRTIO_MMIO_SIZE;
}

uint32_t vm__device_irq(unsigned int slot)
{
	return LAYOUT_VIRTIO_IRQ_FIRST + slot;
}

/*
 * The virtio devices: the drives, the interfaces, the vsock, the entropy device, one slot
 * each in that order.
 */
static unsigned int nr_devices(const struct vm_config *cfg)
{
	return cfg->nr_drives + cfg->nr_net + (cfg->has_vsock ? 1 : 0) +
	       (cfg->has_entropy ? 1 : 0) + (cfg->has_balloon ? 1 : 0);
}

/*
 * What Ember adds: its devices for virtio_mmio's command-line discovery, the root, the
 * VMGenID page (with `vmgenid`).
 */
static int ember_params(const struct vm_config *cfg, bool vmgenid, char *buf, size_t size)
{
	size_t n = 0;

	/* in the order setup_devices() places them */
	for (unsigned int i = 0; i < nr_devices(cfg); i++)
		n += (size_t)snprintf(buf + n, size - n, "virtio_mmio.device=4K@0x%llx:%u ",
				      (unsigned long long)vm__device_base(i), vm__device_irq(i));
	if (cfg->nr_drives && cfg->drives[0].is_root_device) {
		const struct drive_config *d = &cfg->drives[0];

		if (d->partuuid)
			n += (size_t)snprintf(buf + n, size - n, "root=PARTUUID=%s ", d->partuuid);
		else
			n += (size_t)snprintf(buf + n, size - n, "root=/dev/vda ");
		n += (size_t)snprintf(buf + n, size - n, "%s ", d->is_read_only ? "ro" : "rw");
	}
	if (vmgenid)
		n += (size_t)snprintf(buf + n, size - n, VMGENID_CMDLINE_PARAM "=0x%llx ",
				      (unsigned long long)LAYOUT_VMGENID_ADDR);
	n += (size_t)snprintf(buf + n, size - n, "%s", EMBER_CMDLINE_SUFFIX);
	return n < size ? 0 : -E2BIG;
}

/* A device's transport on the MMIO bus, in its slot. */
static int place(struct vm *vm, unsigned int slot, struct virtio_mmio *t, const char *name)
{
	return bus__register(&vm->mmio, vm__device_base(slot), LAYOUT_VIRTIO_MMIO_SIZE,
			     &virtio_mmio__bus_ops, t, name);
}

/* The devices a VM has at most one of, from slot on: vsock, entropy, the balloon. */
static int setup_single_devices(struct vm *vm, unsigned int slot)
{
	const struct vm_config *c = vm->cfg;
	int ret = 0;

	if (c->has_vsock) {
		ret = virtio_vsock__create(&vm->vsock, &c->vsock, vm->fd, &vm->gmem,
					   vm__device_base(slot), vm__device_irq(slot));
		ret = ret ? ret : place(vm, slot++, &vm->vsock->t, "virtio-vsock");
	}
	if (!ret && c->has_entropy) {
		ret = virtio_rng__create(&vm->rng, &c->entropy, vm->fd, &vm->gmem,
					 vm__device_base(slot), vm__device_irq(slot));
		ret = ret ? ret : place(vm, slot++, &vm->rng->t, "virtio-rng");
	}
	if (!ret && c->has_balloon) {
		ret = virtio_balloon__create(&vm->balloon, &c->balloon, vm->fd, &vm->gmem,
					     vm__device_base(slot), vm__device_irq(slot));
		ret = ret ? ret : place(vm, slot, &vm->balloon->t, "virtio-balloon");
	}
	return ret;
}

/*
 * The virtio devices, one slot each: the drives (root first), the interfaces, vsock, the
 * entropy device, the balloon.
 */
static int setup_devices(struct vm *vm)
{
	unsigned int slot = 0;
	int ret;

	for (unsigned int i = 0; i < vm->cfg->nr_drives; i++, slot++) {
		ret = virtio_blk__create(&vm->blks[i], &vm->cfg->drives[i], vm->fd, &vm->gmem,
					 vm__device_base(slot), vm__device_irq(slot));
		if (ret)
			return ret;
		vm->nr_blks = i + 1;
		ret = place(vm, slot, &vm->blks[i]->t, "virtio-blk");
		if (ret)
			return error__set(ret, "cannot place drive %s", vm->cfg->drives[i].drive_id);
	}
	for (unsigned int i = 0; i < vm->cfg->nr_net; i++, slot++) {
		ret = virtio_net__create(&vm->nets[i], &vm->cfg->net[i], vm->fd, &vm->gmem,
					 vm__device_base(slot), vm__device_irq(slot));
		if (ret)
			return ret;
		vm->nr_nets = i + 1;
		ret = place(vm, slot, &vm->nets[i]->t, "virtio-net");
		if (ret)
			return error__set(ret, "cannot place network interface %s",
					  vm->cfg->net[i].iface_id);
	}
	return setup_single_devices(vm, slot);
}

int vm__watch_devices(struct vm *vm, struct event_loop *loop)
{
	int ret = 0;

	for (unsigned int i = 0; !ret && i < vm->nr_blks; i++)
		ret = virtio_blk__watch(vm->blks[i], loop);
	for (unsigned int i = 0; !ret && i < vm->nr_nets; i++)
		ret = virtio_net__watch(vm->nets[i], loop);
	if (!ret && vm->vsock)
		ret = virtio_vsock__watch(vm->vsock, loop);
	if (!ret && vm->rng)
		ret = virtio_rng__watch(vm->rng, loop);
	if (!ret && vm->balloon)
		ret = virtio_balloon__watch(vm->balloon, loop);
	return ret;
}

struct virtio_blk *vm__find_drive(struct vm *vm, const char *id)
{
	for (unsigned int i = 0; i < vm->nr_blks; i++) {
		if (!strcmp(vm->blks[i]->id, id))
			return vm->blks[i];
	}
	return NULL;
}

struct virtio_net *vm__find_net(struct vm *vm, const char *id)
{
	for (unsigned int i = 0; i < vm->nr_nets; i++) {
		if (!strcmp(vm->nets[i]->id, id))
			return vm->nets[i];
	}
	return NULL;
}

static int build_cmdline(const struct vm_config *cfg, bool vmgenid, char **out)
{
	const char *args = cfg->boot.boot_args ? cfg->boot.boot_args : VM_DEFAULT_BOOT_ARGS;
	size_t split = init_args_offset(args), head = split;
	char ours[1024];
	char *s;
	int n;

	if (ember_params(cfg, vmgenid, ours, sizeof(ours)))
		return -E2BIG;
	/* Ember's own parameters go before "--": everything after it is init's */
	while (head && isspace((unsigned char)args[head - 1]))
		head--;
	n = asprintf(&s, "%.*s%s%s%s%s", (int)head, args, head ? " " : "", ours,
		     args[split] ? " " : "", args + split);
	if (n < 0)
		return -ENOMEM;
	*out = s;
	return 0;
}

int vm__build_cmdline(const struct vm_config *cfg, char **out)
{
	return build_cmdline(cfg, false, out);
}

static int open_ro(const char *path, const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return error__set(-errno, "%s %s: %s", what, path, strerror(errno));
	return fd;
}

static int load_kernel(struct vm *vm)
{
	const struct boot_source_config *b = &vm->cfg->boot;
	int fd, ret;

	fd = open_ro(b->kernel_image_path, "kernel image");
	if (fd < 0)
		return fd;
	ret = boot_x86__load_kernel(&vm->gmem, fd, &vm->kernel);
	close(fd);
	if (ret)
		return error__add_context(ret, "%s", b->kernel_image_path);
	log_debug("loaded %s: [0x%llx, 0x%llx), entry 0x%llx",
		  boot_x86__format_name(vm->kernel.format),
		  (unsigned long long)vm->kernel.load_start,
		  (unsigned long long)vm->kernel.load_end, (unsigned long long)vm->kernel.entry);
	if (b->initrd_path) {
		fd = open_ro(b->initrd_path, "initrd");
		if (fd < 0)
			return fd;
		ret = boot_x86__load_initrd(&vm->gmem, fd, &vm->kernel, &vm->initrd);
		close(fd);
		if (ret)
			return error__add_context(ret, "%s", b->initrd_path);
	}
	ret = build_cmdline(vm->cfg, true, &vm->cmdline);
	if (ret)
		return ret;
	ret = boot_x86__setup(&vm->gmem, &vm->kernel, vm->cmdline, &vm->initrd);
	if (!ret)
		ret = mptable__write(&vm->gmem, vm->nr_vcpus);
	return ret;
}

static int create_vcpus(struct vm *vm)
{
	int ret;

	if (vm->kvm.max_vcpus > 0 && vm->nr_vcpus > (uint32_t)vm->kvm.max_vcpus)
		return error__set(-EINVAL, "machine-config.vcpu_count: KVM allows at most %d vCPUs",
				  vm->kvm.max_vcpus);
	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		ret = vcpu__create(vm, &vm->vcpus[i], i);
		if (ret)
			return ret;
		vm->nr_started = i + 1;
	}
	return vm->restoring ? 0 : vcpu__set_boot_regs(&vm->vcpus[0]);
}

static void vm_init_fields(struct vm *vm, const struct vm_config *cfg,
			   const struct vm_options *opts)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm.fd = -1;
	vm->fd = -1;
	vm->cfg = cfg;
	vm->opts = *opts;
	vm->nr_vcpus = cfg->machine.vcpu_count;
	vm->serial_out_fd = -1;
	vm->serial_irq_fd = -1;
	vm->serial_rx_ready_fd = -1;
	vm->serial_out_kick_fd = -1;
	vm->i8042_irq_fd = -1;
	vm->stop_evt = -1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	bus__init(&vm->pio, "pio");
	bus__init(&vm->mmio, "mmio");
}

int vm__check_config(const struct vm_config *cfg)
{
	if (!cfg->boot.kernel_image_path)
		return error__set(-EINVAL, "no kernel: configure boot-source first");
	if (nr_devices(cfg) > LAYOUT_VIRTIO_IRQ_LAST - LAYOUT_VIRTIO_IRQ_FIRST + 1)
		return error__set(-EINVAL,
				  "drives, network-interfaces, vsock, entropy, balloon: too many "
				  "devices");
	return 0;
}

static int create(struct vm *vm, const struct vm_config *cfg, const struct vm_options *opts,
		  struct gmem *premapped)
{
	int ret;

	vm_init_fields(vm, cfg, opts);
	vm->restoring = premapped != NULL;
	if (premapped) { /* taken over, also on failure */
		vm->gmem = *premapped;
		memset(premapped, 0, sizeof(*premapped));
	}
	ret = vm->restoring ? 0 : vm__check_config(cfg);
	if (ret)
		return ret;
	vm->stop_evt = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_evt < 0) {
		ret = error__set(-errno, "eventfd: %s", strerror(errno));
		memory__unmap(&vm->gmem);
		return ret;
	}
	ret = kvm__open(&vm->kvm, "/dev/kvm");
	if (!ret)
		ret = create_vm_fd(vm);
	/* memory before the irqchip: a memslot change once the irqchip exists costs more */
	if (!ret)
		ret = setup_memory(vm, premapped != NULL);
	if (!ret)
		ret = create_irqchip(vm);
	if (!ret)
		ret = setup_legacy_devices(vm);
	if (!ret)
		ret = setup_devices(vm);
	/* a restored guest has its kernel in its memory already */
	if (!ret && !vm->restoring)
		ret = load_kernel(vm);
	if (!ret)
		ret = create_vcpus(vm);
	if (ret) {
		vm__destroy(vm);
		return ret;
	}
	bus__freeze(&vm->pio);
	bus__freeze(&vm->mmio);
	return 0;
}

int vm__create(struct vm *vm, const struct vm_config *cfg, const struct vm_options *opts)
{
	return create(vm, cfg, opts, NULL);
}

int vm__create_restored(struct vm *vm, const struct vm_config *cfg,
			const struct vm_options *opts, struct gmem *mem)
{
	if (mem)
		return create(vm, cfg, opts, mem);
	return error__set(-EINVAL, "a restored VM needs its memory");
}

int vm__get_dirty_log(struct vm *vm, unsigned int region, uint64_t *bitmap)
{
	struct kvm_dirty_log log = { .slot = region, .dirty_bitmap = bitmap };

	if (region >= vm->gmem.nr_regions || !vm->cfg->machine.track_dirty_pages)
		return error__set(-EINVAL, "no dirty log for memory region %u", region);
	return vm_ioctl(vm, KVM_GET_DIRTY_LOG, (unsigned long)&log, "KVM_GET_DIRTY_LOG");
}

int vm__start(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		int ret = vcpu__start(&vm->vcpus[i]);

		if (ret) {
			vm__request_stop(vm, VM_STOP_ERROR, EMBER_EXIT_ERROR);
			return ret;
		}
	}
	return 0;
}

static bool warm_reset_flag(struct vm *vm)
{
	uint16_t flag = 0;

	gmem__read(&vm->gmem, LAYOUT_WARM_RESET_FLAG_ADDR, &flag, sizeof(flag));
	return flag == LAYOUT_WARM_RESET_MAGIC;
}

void vm__request_stop(struct vm *vm, enum vm_stop_reason reason, int code)
{
	uint64_t one = 1;
	ssize_t r;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stop_reason == VM_STOP_NONE) {
		if (reason == VM_STOP_RESET && warm_reset_flag(vm)) {
			log_error("the guest panicked: it reset with the warm-reset flag set");
			reason = VM_STOP_PANIC;
			code = EMBER_EXIT_GUEST_PANIC;
		}
		vm->stop_reason = reason;
		vm->stop_code = code;
	}
	__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->stop_lock);
	r = write(vm->stop_evt, &one, sizeof(one));
	(void)r;
}

int vm__pause(struct vm *vm, int timeout_ms)
{
	struct timespec until;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&vm->run_lock);
	vm->pause_requested = true;
	pthread_mutex_unlock(&vm->run_lock);
	for (uint32_t i = 0; i < vm->nr_started; i++)
		vcpu__kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->run_lock);
	while (vm->nr_parked < vm->nr_started && !vm->stopping && !ret)
		ret = pthread_cond_timedwait(&vm->run_cond, &vm->run_lock, &until);
	pthread_mutex_unlock(&vm->run_lock);
	return ret ? -ret : 0;
}

void vm__resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	vm->pause_requested = false;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

void vm__start_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	vm->pause_requested = true;
	pthread_mutex_unlock(&vm->run_lock);
	/* the first KVM_RUN returns at once, before a guest instruction, and the thread parks */
	for (uint32_t i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].run->immediate_exit = 1;
}

void vm__vcpu_checkpoint(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	if (vm->pause_requested && !vm->stopping) {
		vm->nr_parked++;
		pthread_cond_broadcast(&vm->run_cond);
		while (vm->pause_requested && !vm->stopping)
			pthread_cond_wait(&vm->run_cond, &vm->run_lock);
		vm->nr_parked--;
	}
	pthread_mutex_unlock(&vm->run_lock);
}

void vm__send_ctrl_alt_del(struct vm *vm)
{
	i8042__send_ctrl_alt_del(&vm->i8042);
}

void vm__stop_vcpus(struct vm *vm)
{
	__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&vm->run_lock);
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	for (uint32_t i = 0; i < vm->nr_started; i++)
		vcpu__kick(&vm->vcpus[i]);
	for (uint32_t i = 0; i < vm->nr_started; i++)
		vcpu__join(&vm->vcpus[i]);
}

int vm__exit_code(const struct vm *vm)
{
	switch (vm->stop_reason) {
	case VM_STOP_RESET:
		return EMBER_EXIT_OK;
	case VM_STOP_PANIC:
		return EMBER_EXIT_GUEST_PANIC;
	default:
		return vm->stop_code;
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void free_userspace(struct vm *vm)
{
	vm__stop_vcpus(vm);
	for (unsigned int i = 0; i < vm->nr_blks; i++)
		virtio_blk__destroy(vm->blks[i]);
	vm->nr_blks = 0;
	for (unsigned int i = 0; i < vm->nr_nets; i++)
		virtio_net__destroy(vm->nets[i]);
	vm->nr_nets = 0;
	virtio_vsock__destroy(vm->vsock);
	vm->vsock = NULL;
	virtio_rng__destroy(vm->rng);
	vm->rng = NULL;
	virtio_balloon__destroy(vm->balloon);
	vm->balloon = NULL;
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->nr_started = 0;
	free(vm->cmdline);
	vm->cmdline = NULL;
	bus__destroy(&vm->pio);
	bus__destroy(&vm->mmio);
	kvm__close_cpuid(&vm->kvm);
}

void vm__destroy_for_exit(struct vm *vm)
{
	free_userspace(vm);
}

void vm__destroy(struct vm *vm)
{
	vm__stop_vcpus(vm);
	for (uint32_t i = 0; i < vm->nr_started; i++)
		vcpu__destroy(&vm->vcpus[i]);
	free_userspace(vm);
	close_fd(&vm->serial_irq_fd);
	close_fd(&vm->serial_rx_ready_fd);
	close_fd(&vm->serial_out_kick_fd);
	close_fd(&vm->i8042_irq_fd);
	if (vm->serial_out_fd != STDOUT_FILENO)
		close_fd(&vm->serial_out_fd);
	memory__unmap(&vm->gmem);
	close_fd(&vm->fd);
	kvm__close(&vm->kvm);
	close_fd(&vm->stop_evt);
}

/* ---- snapshots: every device's state, through its own save and restore ---- */

int vm__save_devices(struct vm *vm, struct snapshot_file_writer *w)
{
	int ret = serial__save(&vm->serial, w);

	if (!ret)
		ret = i8042__save(&vm->i8042, w);
	for (unsigned int i = 0; !ret && i < vm->nr_blks; i++)
		ret = virtio_blk__save(vm->blks[i], w);
	for (unsigned int i = 0; !ret && i < vm->nr_nets; i++)
		ret = virtio_net__save(vm->nets[i], w);
	if (!ret && vm->vsock)
		ret = virtio_vsock__save(vm->vsock, w);
	if (!ret && vm->rng)
		ret = virtio_rng__save(vm->rng, w);
	if (!ret && vm->balloon)
		ret = virtio_balloon__save(vm->balloon, w);
	if (!ret)
		ret = vmgenid__save(&vm->vmgenid, w);
	return ret;
}

int vm__restore_devices(struct vm *vm, const struct snapshot_file_reader *r)
{
	int ret = serial__restore(&vm->serial, r);

	if (!ret)
		ret = i8042__restore(&vm->i8042, r);
	for (unsigned int i = 0; !ret && i < vm->nr_blks; i++)
		ret = virtio_blk__restore(vm->blks[i], r);
	for (unsigned int i = 0; !ret && i < vm->nr_nets; i++)
		ret = virtio_net__restore(vm->nets[i], r);
	if (!ret && vm->vsock)
		ret = virtio_vsock__restore(vm->vsock, r);
	if (!ret && vm->rng)
		ret = virtio_rng__restore(vm->rng, r);
	if (!ret && vm->balloon)
		ret = virtio_balloon__restore(vm->balloon, r);
	/* the guest is a clone now: a new generation ID (docs/clone-safety.md) */
	if (!ret)
		ret = vmgenid__restore(&vm->vmgenid, r);
	return ret;
}
