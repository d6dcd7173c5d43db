// SPDX-License-Identifier: Apache-2.0
#include "fake_vring.h"

#include "virtio/queue.h"

void fake_vring__init(struct fake_vring *r, struct fake_gmem *mem, uint64_t gpa, uint16_t size,
		      bool event_idx)
{
	*r = (struct fake_vring){
		.mem = mem,
		.desc = gpa,
		.avail = gpa + 0x1000,
		.used = gpa + 0x2000,
		.size = size,
		.event_idx = event_idx,
	};
	fake_gmem__clear(mem, gpa, FAKE_VRING_BYTES);
}

uint16_t fake_vring__add(struct fake_vring *r, const uint64_t *gpas, const uint32_t *lens,
			 unsigned int n, bool write)
{
	bool w[FAKE_VRING_MAX];

	for (unsigned int k = 0; k < n && k < FAKE_VRING_MAX; k++)
		w[k] = write;
	return fake_vring__add_chain(r, gpas, lens, w, n);
}

uint16_t fake_vring__add_chain(struct fake_vring *r, const uint64_t *gpas, const uint32_t *lens,
			       const bool *write, unsigned int n)
{
	uint16_t head = r->next_desc;

	for (unsigned int k = 0; k < n; k++) {
		unsigned int i = (head + k) % r->size;
		uint16_t flags =
			(write[k] ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);

		fake_gmem__set_desc(r->mem, r->desc, i, gpas[k], lens[k], flags,
				    (uint16_t)((i + 1) % r->size));
	}
	r->next_desc = (uint16_t)((head + n) % r->size);
	fake_gmem__put16(r->mem, r->avail + 4 + 2ULL * (r->avail_idx % r->size), head);
	r->avail_idx++;
	return head;
}

/* vring_need_event() */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool fake_vring__publish(struct fake_vring *r)
{
	uint16_t old = r->published;

	if (old == r->avail_idx)
		return false;
	fake_gmem__store16_release(r->mem, r->avail + 2, r->avail_idx);
	r->published = r->avail_idx;
	/* avail->idx is visible before we read what the device asked for */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (r->event_idx)
		return need_event(fake_gmem__load16_acquire(r->mem, r->used + 4 + 8ULL * r->size),
				  r->avail_idx, old);
	return !(fake_gmem__load16_acquire(r->mem, r->used) & VIRTQ_USED_F_NO_NOTIFY);
}

bool fake_vring__next_used(struct fake_vring *r, uint32_t *id, uint32_t *len)
{
	uint64_t at = r->used + 4 + 8ULL * (r->last_used % r->size);

	if (fake_gmem__load16_acquire(r->mem, r->used + 2) == r->last_used)
		return false;
	*id = fake_gmem__get32(r->mem, at);
	*len = fake_gmem__get32(r->mem, at + 4);
	r->last_used++;
	return true;
}

void fake_vring__want_interrupt(struct fake_vring *r)
{
	if (r->event_idx)
		fake_gmem__store16_release(r->mem, r->avail + 4 + 2ULL * r->size, r->last_used);
}
