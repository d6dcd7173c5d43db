// SPDX-License-Identifier: Apache-2.0
/*
 * The KVM side of a snapshot: each vCPU's state and the VM-wide in-kernel devices (both
 * PICs, the IOAPIC, the PIT, kvmclock), to and from the state file's sections
 * (docs/snapshot-format.md). See snapshot_kvm.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/log.h"
#include "vmm/snapshot_kvm.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* The vcpu section's records (docs/snapshot-format.md) */
enum {
	REC_REGS = 1,
	REC_SREGS = 2,
	REC_FPU = 3,
	REC_XSAVE = 4,
	REC_XCRS = 5,
	REC_LAPIC = 6,
	REC_MSRS = 7,
	REC_DEBUGREGS = 8,
	REC_EVENTS = 9,
	REC_MP_STATE = 10,
	REC_TSC_KHZ = 11,
};

#define MSRS_MAX 1024
#define MUST SNAPSHOT_FILE_MUST_UNDERSTAND

static int vcpu_ioctl(const struct vcpu *vcpu, unsigned long req, void *arg, const char *name)
{
	if (ioctl(vcpu->fd, req, arg) < 0)
		return error__set(-errno, "vcpu%u: %s: %s", vcpu->index, name, strerror(errno));
	return 0;
}

static int put_record(struct snapshot_file_writer *w, uint32_t tag, const void *p, size_t len)
{
	snapshot_file__begin_record(w, tag, MUST);
	snapshot_file__put_bytes(w, p, len);
	return snapshot_file__end_record(w);
}

/* The MSRs KVM says it saves and restores, less those this vCPU cannot read. */
static int msr_list(const struct kvm *kvm, struct kvm_msr_list **out)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *l;

	if (ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return error__set(-errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
	if (!probe.nmsrs || probe.nmsrs > MSRS_MAX)
		return error__set(-EINVAL, "KVM_GET_MSR_INDEX_LIST: %u MSRs", probe.nmsrs);
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return error__set(-ENOMEM, "out of memory");
	l->nmsrs = probe.nmsrs;
	if (ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return error__set(-errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
	}
	*out = l;
	return 0;
}

/*
 * Reads every MSR of the list that the vCPU lets be read: KVM_GET_MSRS stops at the first
 * it cannot read (returning how many it did), which is then left out.
 */
static int read_msrs(const struct vcpu *vcpu, const struct kvm_msr_list *l,
		     struct kvm_msrs **out)
{
	size_t bytes = sizeof(struct kvm_msrs) + l->nmsrs * sizeof(struct kvm_msr_entry);
	struct kvm_msrs *m = calloc(1, bytes), *rest = calloc(1, bytes);
	uint32_t n = 0;

	if (!m || !rest) {
		free(m);
		free(rest);
		return error__set(-ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < l->nmsrs; i++)
		m->entries[i].index = l->indices[i];
	m->nmsrs = l->nmsrs;
	while (n < m->nmsrs) {
		int r;

		/* entries [n, nmsrs), read in one call */
		rest->nmsrs = m->nmsrs - n;
		memcpy(rest->entries, &m->entries[n], rest->nmsrs * sizeof(m->entries[0]));
		r = ioctl(vcpu->fd, KVM_GET_MSRS, rest);
		if (r < 0) {
			free(rest);
			free(m);
			return error__set(-errno, "vcpu%u: KVM_GET_MSRS: %s", vcpu->index,
					  strerror(errno));
		}
		memcpy(&m->entries[n], rest->entries, (size_t)r * sizeof(m->entries[0]));
		n += (uint32_t)r;
		if (n < m->nmsrs) { /* entries[n] cannot be read here: leave it out */
			memmove(&m->entries[n], &m->entries[n + 1],
				(m->nmsrs - n - 1) * sizeof(m->entries[0]));
			m->nmsrs--;
		}
	}
	free(rest);
	*out = m;
	return 0;
}

int snapshot_kvm__save_vcpu(const struct vcpu *vcpu, const struct kvm *kvm,
			    struct snapshot_file_writer *w)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_lapic_state lapic;
	struct kvm_debugregs dregs;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_xsave *xsave = NULL;
	struct kvm_xcrs xcrs;
	struct kvm_msr_list *list = NULL;
	struct kvm_msrs *msrs = NULL;
	int ret, tsc_khz;

	ret = vcpu_ioctl(vcpu, KVM_GET_REGS, &regs, "KVM_GET_REGS");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_GET_FPU, &fpu, "KVM_GET_FPU");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &dregs, "KVM_GET_DEBUGREGS");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	if (!ret)
		ret = msr_list(kvm, &list);
	if (!ret)
		ret = read_msrs(vcpu, list, &msrs);
	if (!ret && kvm__check_extension(kvm, KVM_CAP_XSAVE) > 0) {
		xsave = calloc(1, sizeof(*xsave));
		ret = xsave ? vcpu_ioctl(vcpu, KVM_GET_XSAVE, xsave, "KVM_GET_XSAVE")
			    : error__set(-ENOMEM, "out of memory");
	}
	if (!ret && kvm__check_extension(kvm, KVM_CAP_XCRS) > 0)
		ret = vcpu_ioctl(vcpu, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS");
	if (ret)
		goto out;
	tsc_khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);

	snapshot_file__begin_section(w, SNAPSHOT_SECTION_VCPU, MUST);
	snapshot_file__put_u32(w, vcpu->index);
	put_record(w, REC_MP_STATE, &mp.mp_state, sizeof(mp.mp_state));
	put_record(w, REC_REGS, &regs, sizeof(regs));
	put_record(w, REC_SREGS, &sregs, sizeof(sregs));
	put_record(w, REC_FPU, &fpu, sizeof(fpu));
	if (xsave)
		put_record(w, REC_XSAVE, xsave, sizeof(*xsave));
	if (kvm__check_extension(kvm, KVM_CAP_XCRS) > 0)
		put_record(w, REC_XCRS, &xcrs, sizeof(xcrs));
	put_record(w, REC_DEBUGREGS, &dregs, sizeof(dregs));
	put_record(w, REC_LAPIC, &lapic, sizeof(lapic));
	snapshot_file__begin_record(w, REC_MSRS, MUST);
	snapshot_file__put_u32(w, msrs->nmsrs);
	for (uint32_t i = 0; i < msrs->nmsrs; i++) {
		snapshot_file__put_u32(w, msrs->entries[i].index);
		snapshot_file__put_u32(w, 0);
		snapshot_file__put_u64(w, msrs->entries[i].data);
	}
	snapshot_file__end_record(w);
	put_record(w, REC_EVENTS, &events, sizeof(events));
	if (tsc_khz > 0) {
		snapshot_file__begin_record(w, REC_TSC_KHZ, 0);
		snapshot_file__put_u32(w, (uint32_t)tsc_khz);
		snapshot_file__end_record(w);
	}
	ret = snapshot_file__end_section(w);
out:
	free(xsave);
	free(list);
	free(msrs);
	return ret;
}

/* A record's payload of exactly len bytes into dst. */
static int get_exact(struct snapshot_file_cursor *c, const struct vcpu *vcpu, const char *what,
		     void *dst, size_t len)
{
	if (snapshot_file__remaining(c) != len)
		return error__set(-EINVAL, "vcpu%u: the snapshot's %s is %llu bytes, this Ember's "
				  "KVM has %zu", vcpu->index, what,
				  (unsigned long long)snapshot_file__remaining(c), len);
	return snapshot_file__get_bytes(c, dst, len);
}

struct vcpu_state {
	bool has[REC_TSC_KHZ + 1];
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_msrs *msrs;
	uint32_t tsc_khz;
};

static int read_msrs_record(struct snapshot_file_cursor *c, const struct vcpu *vcpu,
			    struct vcpu_state *st)
{
	uint32_t n, pad;
	int ret = snapshot_file__get_u32(c, &n);

	if (ret)
		return ret;
	if (n > MSRS_MAX || snapshot_file__remaining(c) != (uint64_t)n * 16)
		return error__set(-EINVAL, "vcpu%u: the snapshot's MSR list is damaged", vcpu->index);
	st->msrs = calloc(1, sizeof(*st->msrs) + n * sizeof(st->msrs->entries[0]));
	if (!st->msrs)
		return error__set(-ENOMEM, "out of memory");
	st->msrs->nmsrs = n;
	for (uint32_t i = 0; !ret && i < n; i++) {
		ret = snapshot_file__get_u32(c, &st->msrs->entries[i].index);
		if (!ret)
			ret = snapshot_file__get_u32(c, &pad);
		if (!ret) {
			uint64_t v;

			ret = snapshot_file__get_u64(c, &v);
			st->msrs->entries[i].data = v;
		}
	}
	return ret;
}

static int read_vcpu_state(struct snapshot_file_cursor *c, const struct vcpu *vcpu,
			   struct vcpu_state *st)
{
	int ret = 0;

	while (!ret && snapshot_file__remaining(c)) {
		struct snapshot_file_cursor sub;
		uint32_t tag, flags;

		ret = snapshot_file__get_record(c, &tag, &flags, &sub);
		if (ret)
			break;
		if (tag < 1 || tag > REC_TSC_KHZ) {
			if (flags & MUST)
				ret = error__set(-EINVAL, "vcpu%u: the snapshot has vCPU state %u that "
						 "this Ember does not know", vcpu->index, tag);
			continue;
		}
		if (st->has[tag]) {
			ret = error__set(-EINVAL, "vcpu%u: the snapshot has vCPU state %u twice",
					 vcpu->index, tag);
			break;
		}
		st->has[tag] = true;
		switch (tag) {
		case REC_MP_STATE:
			ret = get_exact(&sub, vcpu, "MP state", &st->mp.mp_state,
					sizeof(st->mp.mp_state));
			break;
		case REC_REGS:
			ret = get_exact(&sub, vcpu, "registers", &st->regs, sizeof(st->regs));
			break;
		case REC_SREGS:
			ret = get_exact(&sub, vcpu, "special registers", &st->sregs,
					sizeof(st->sregs));
			break;
		case REC_FPU:
			ret = get_exact(&sub, vcpu, "FPU", &st->fpu, sizeof(st->fpu));
			break;
		case REC_XSAVE:
			ret = get_exact(&sub, vcpu, "XSAVE area", &st->xsave, sizeof(st->xsave));
			break;
		case REC_XCRS:
			ret = get_exact(&sub, vcpu, "XCRs", &st->xcrs, sizeof(st->xcrs));
			break;
		case REC_DEBUGREGS:
			ret = get_exact(&sub, vcpu, "debug registers", &st->dregs,
					sizeof(st->dregs));
			break;
		case REC_LAPIC:
			ret = get_exact(&sub, vcpu, "local APIC", &st->lapic, sizeof(st->lapic));
			break;
		case REC_EVENTS:
			ret = get_exact(&sub, vcpu, "pending events", &st->events,
					sizeof(st->events));
			break;
		case REC_MSRS:
			ret = read_msrs_record(&sub, vcpu, st);
			break;
		case REC_TSC_KHZ:
			ret = get_exact(&sub, vcpu, "TSC frequency", &st->tsc_khz,
					sizeof(st->tsc_khz));
			break;
		}
	}
	if (!ret) {
		static const int needed[] = { REC_MP_STATE, REC_REGS, REC_SREGS, REC_FPU,
					      REC_LAPIC, REC_MSRS, REC_EVENTS };

		for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
			if (!st->has[needed[i]])
				return error__set(-EINVAL, "vcpu%u: the snapshot lacks vCPU state %d",
						  vcpu->index, needed[i]);
		}
	}
	return ret;
}

static int find_vcpu_section(const struct snapshot_file_reader *r, uint32_t index,
			     struct snapshot_file_cursor *c)
{
	struct snapshot_file_section s;
	uint64_t pos = 0;

	while (snapshot_file__next(r, &pos, &s)) {
		uint32_t i;

		if (s.id != SNAPSHOT_SECTION_VCPU)
			continue;
		snapshot_file__cursor(&s, c);
		if (!snapshot_file__get_u32(c, &i) && i == index)
			return 0;
	}
	return error__set(-EINVAL, "the snapshot has no state for vcpu%u", index);
}

int snapshot_kvm__restore_vcpu(struct vcpu *vcpu, const struct kvm *kvm,
			       const struct snapshot_file_reader *r)
{
	struct snapshot_file_cursor c;
	struct vcpu_state *st = calloc(1, sizeof(*st));
	int ret, khz;

	if (!st)
		return error__set(-ENOMEM, "out of memory");
	ret = find_vcpu_section(r, vcpu->index, &c);
	if (!ret)
		ret = read_vcpu_state(&c, vcpu, st);
	if (ret)
		goto out;
	/* the guest's TSC runs at the rate it had, if this host's KVM can scale it */
	khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
	if (st->has[REC_TSC_KHZ] && khz > 0 && (uint32_t)khz != st->tsc_khz &&
	    ioctl(vcpu->fd, KVM_SET_TSC_KHZ, (unsigned long)st->tsc_khz) < 0)
		log_warn("vcpu%u: the guest's TSC ran at %u kHz, this host's at %d; KVM cannot "
			 "scale it: the guest's clock may drift", vcpu->index, st->tsc_khz, khz);
	ret = vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &st->mp, "KVM_SET_MP_STATE");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_SET_REGS, &st->regs, "KVM_SET_REGS");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_SET_SREGS, &st->sregs, "KVM_SET_SREGS");
	if (!ret && st->has[REC_XSAVE] && kvm__check_extension(kvm, KVM_CAP_XSAVE) > 0)
		ret = vcpu_ioctl(vcpu, KVM_SET_XSAVE, &st->xsave, "KVM_SET_XSAVE");
	else if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_SET_FPU, &st->fpu, "KVM_SET_FPU");
	if (!ret && st->has[REC_XCRS] && kvm__check_extension(kvm, KVM_CAP_XCRS) > 0)
		ret = vcpu_ioctl(vcpu, KVM_SET_XCRS, &st->xcrs, "KVM_SET_XCRS");
	if (!ret && st->has[REC_DEBUGREGS])
		ret = vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, &st->dregs, "KVM_SET_DEBUGREGS");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_SET_LAPIC, &st->lapic, "KVM_SET_LAPIC");
	if (!ret) {
		int n = ioctl(vcpu->fd, KVM_SET_MSRS, st->msrs);

		if (n < 0 || (uint32_t)n != st->msrs->nmsrs)
			ret = error__set(n < 0 ? -errno : -EINVAL,
					 "vcpu%u: KVM_SET_MSRS: %d of %u MSRs set (the first refused: "
					 "0x%x)", vcpu->index, n, st->msrs->nmsrs,
					 n >= 0 ? st->msrs->entries[n].index : 0);
	}
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &st->events, "KVM_SET_VCPU_EVENTS");
out:
	free(st->msrs);
	free(st);
	return ret;
}

/* ---- the VM's in-kernel devices ---- */

static int vm_get(const struct vm *vm, unsigned long req, void *arg, const char *name)
{
	if (ioctl(vm->fd, req, arg) < 0)
		return error__set(-errno, "%s: %s", name, strerror(errno));
	return 0;
}

int snapshot_kvm__save_vm(const struct vm *vm, struct snapshot_file_writer *w)
{
	struct kvm_irqchip pic[2] = { { .chip_id = KVM_IRQCHIP_PIC_MASTER },
				      { .chip_id = KVM_IRQCHIP_PIC_SLAVE } };
	struct kvm_irqchip ioapic = { .chip_id = KVM_IRQCHIP_IOAPIC };
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };
	int ret;

	ret = vm_get(vm, KVM_GET_IRQCHIP, &pic[0], "KVM_GET_IRQCHIP (PIC master)");
	if (!ret)
		ret = vm_get(vm, KVM_GET_IRQCHIP, &pic[1], "KVM_GET_IRQCHIP (PIC slave)");
	if (!ret)
		ret = vm_get(vm, KVM_GET_IRQCHIP, &ioapic, "KVM_GET_IRQCHIP (IOAPIC)");
	if (!ret)
		ret = vm_get(vm, KVM_GET_PIT2, &pit, "KVM_GET_PIT2");
	if (!ret)
		ret = vm_get(vm, KVM_GET_CLOCK, &clock, "KVM_GET_CLOCK");
	if (ret)
		return ret;
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_PIC, MUST);
	snapshot_file__put_bytes(w, &pic[0].chip.pic, sizeof(pic[0].chip.pic));
	snapshot_file__put_bytes(w, &pic[1].chip.pic, sizeof(pic[1].chip.pic));
	snapshot_file__end_section(w);
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_IOAPIC, MUST);
	snapshot_file__put_bytes(w, &ioapic.chip.ioapic, sizeof(ioapic.chip.ioapic));
	snapshot_file__end_section(w);
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_PIT, MUST);
	snapshot_file__put_bytes(w, &pit, sizeof(pit));
	snapshot_file__end_section(w);
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_KVMCLOCK, MUST);
	snapshot_file__put_u64(w, clock.clock);
	snapshot_file__put_u32(w, clock.flags);
	return snapshot_file__end_section(w);
}

/* Section id's whole payload, which must be exactly len bytes, into dst. */
static int get_section(const struct snapshot_file_reader *r, uint32_t id, void *dst, size_t len)
{
	struct snapshot_file_section s;
	struct snapshot_file_cursor c;
	int ret = snapshot_file__find(r, id, &s);

	if (ret)
		return ret;
	snapshot_file__cursor(&s, &c);
	if (snapshot_file__remaining(&c) < len)
		return error__set(-EINVAL, "the snapshot's %s state is %llu bytes, this Ember's "
				  "KVM has %zu", snapshot_file__section_name(id),
				  (unsigned long long)snapshot_file__remaining(&c), len);
	ret = snapshot_file__get_bytes(&c, dst, len);
	return ret ? ret : snapshot_file__expect_end(&c);
}

int snapshot_kvm__restore_vm(struct vm *vm, const struct snapshot_file_reader *r)
{
	struct kvm_irqchip pic[2] = { { .chip_id = KVM_IRQCHIP_PIC_MASTER },
				      { .chip_id = KVM_IRQCHIP_PIC_SLAVE } };
	struct kvm_irqchip ioapic = { .chip_id = KVM_IRQCHIP_IOAPIC };
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };
	struct snapshot_file_section s;
	struct snapshot_file_cursor c;
	uint8_t both[2 * sizeof(pic[0].chip.pic)];
	int ret;

	ret = get_section(r, SNAPSHOT_SECTION_PIC, both, sizeof(both));
	if (!ret) {
		memcpy(&pic[0].chip.pic, both, sizeof(pic[0].chip.pic));
		memcpy(&pic[1].chip.pic, both + sizeof(pic[0].chip.pic), sizeof(pic[1].chip.pic));
		ret = get_section(r, SNAPSHOT_SECTION_IOAPIC, &ioapic.chip.ioapic,
				  sizeof(ioapic.chip.ioapic));
	}
	if (!ret)
		ret = get_section(r, SNAPSHOT_SECTION_PIT, &pit, sizeof(pit));
	if (!ret)
		ret = snapshot_file__find(r, SNAPSHOT_SECTION_KVMCLOCK, &s);
	if (!ret) {
		uint32_t flags;

		uint64_t ns = 0;

		snapshot_file__cursor(&s, &c);
		ret = snapshot_file__get_u64(&c, &ns);
		if (!ret)
			ret = snapshot_file__get_u32(&c, &flags);
		clock.clock = ns;
	}
	if (ret)
		return ret;
	ret = vm_get(vm, KVM_SET_IRQCHIP, &pic[0], "KVM_SET_IRQCHIP (PIC master)");
	if (!ret)
		ret = vm_get(vm, KVM_SET_IRQCHIP, &pic[1], "KVM_SET_IRQCHIP (PIC slave)");
	if (!ret)
		ret = vm_get(vm, KVM_SET_IRQCHIP, &ioapic, "KVM_SET_IRQCHIP (IOAPIC)");
	if (!ret)
		ret = vm_get(vm, KVM_SET_PIT2, &pit, "KVM_SET_PIT2");
	if (!ret)
		ret = vm_get(vm, KVM_SET_CLOCK, &clock, "KVM_SET_CLOCK");
	return ret;
}
