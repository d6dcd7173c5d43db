// SPDX-License-Identifier: Apache-2.0
#include "fake_gmem.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fake_gmem__create(struct fake_gmem *f, uint64_t bytes)
{
	int ret = memory__map(&f->gm, bytes);

	if (ret) {
		f->mem = NULL;
		return ret;
	}
	f->mem = f->gm.regions[0].host;
	f->bytes = bytes;
	return 0;
}

void fake_gmem__destroy(struct fake_gmem *f)
{
	memory__unmap(&f->gm);
	f->mem = NULL;
}

void *fake_gmem__ptr(const struct fake_gmem *f, uint64_t gpa, uint64_t len)
{
	void *p = gmem__ptr(&f->gm, gpa, len);

	if (!p) {
		fprintf(stderr, "fake_gmem: [0x%llx, +%llu) is not guest RAM: a bug in the test\n",
			(unsigned long long)gpa, (unsigned long long)len);
		abort();
	}
	return p;
}

void fake_gmem__clear(struct fake_gmem *f, uint64_t gpa, uint64_t len)
{
	memset(fake_gmem__ptr(f, gpa, len), 0, len);
}

void fake_gmem__put16(struct fake_gmem *f, uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(fake_gmem__ptr(f, gpa, sizeof(v)), &v, sizeof(v));
}

void fake_gmem__put32(struct fake_gmem *f, uint64_t gpa, uint32_t v)
{
	v = htole32(v);
	memcpy(fake_gmem__ptr(f, gpa, sizeof(v)), &v, sizeof(v));
}

void fake_gmem__put64(struct fake_gmem *f, uint64_t gpa, uint64_t v)
{
	v = htole64(v);
	memcpy(fake_gmem__ptr(f, gpa, sizeof(v)), &v, sizeof(v));
}

uint16_t fake_gmem__get16(const struct fake_gmem *f, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, fake_gmem__ptr(f, gpa, sizeof(v)), sizeof(v));
	return le16toh(v);
}

uint32_t fake_gmem__get32(const struct fake_gmem *f, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, fake_gmem__ptr(f, gpa, sizeof(v)), sizeof(v));
	return le32toh(v);
}

uint64_t fake_gmem__get64(const struct fake_gmem *f, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, fake_gmem__ptr(f, gpa, sizeof(v)), sizeof(v));
	return le64toh(v);
}

void fake_gmem__store16_release(struct fake_gmem *f, uint64_t gpa, uint16_t v)
{
	uint16_t *p = fake_gmem__ptr(f, gpa, sizeof(v));

	__atomic_store_n(p, htole16(v), __ATOMIC_RELEASE);
}

uint16_t fake_gmem__load16_acquire(const struct fake_gmem *f, uint64_t gpa)
{
	const uint16_t *p = fake_gmem__ptr(f, gpa, sizeof(uint16_t));

	return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

void fake_gmem__set_desc(struct fake_gmem *f, uint64_t table, unsigned int i, uint64_t addr,
			 uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t at = table + 16ULL * i;

	fake_gmem__put64(f, at, addr);
	fake_gmem__put32(f, at + 8, len);
	fake_gmem__put16(f, at + 12, flags);
	fake_gmem__put16(f, at + 14, next);
}
