// SPDX-License-Identifier: Apache-2.0
#include "virtio/persist.h"

#include <errno.h>
#include <string.h>

#include "vmm/log.h"

static const char *section_name(uint32_t id)
{
	const char *name = snapshot_file__section_name(id);

	return name ? name : "unknown";
}

/* Does section s start with id (and which)? 1, 0, or -EINVAL when it cannot be read. */
static int section_is(const struct snapshot_file_section *s, const char *id, int64_t which,
		      bool which_u32, struct snapshot_file_cursor *c)
{
	char buf[VIRTIO_PERSIST_ID_MAX + 1];
	uint32_t w = 0;
	uint8_t w8 = 0;
	int ret;

	snapshot_file__cursor(s, c);
	ret = snapshot_file__get_str(c, buf, sizeof(buf));
	if (ret)
		return ret;
	if (strcmp(buf, id))
		return 0;
	if (which < 0)
		return 1;
	ret = which_u32 ? snapshot_file__get_u32(c, &w) : snapshot_file__get_u8(c, &w8);
	if (ret)
		return ret;
	return (which_u32 ? w : w8) == which;
}

int virtio_persist__find(const struct snapshot_file_reader *r, uint32_t section, const char *id,
			 int64_t which, bool which_u32, const char *label,
			 struct snapshot_file_cursor *c)
{
	struct snapshot_file_section s;
	struct snapshot_file_cursor cur;
	uint64_t pos = 0;
	unsigned int found = 0;
	int ret;

	while (snapshot_file__next(r, &pos, &s)) {
		if (s.id != section)
			continue;
		ret = section_is(&s, id, which, which_u32, &cur);
		if (ret < 0)
			return ret;
		if (ret && found++)
			return error__set(-EINVAL,
					  "%s: the snapshot has two %s sections for it (the second "
					  "at offset %llu)",
					  label, section_name(section), (unsigned long long)s.offset);
		if (ret)
			*c = cur;
	}
	if (!found)
		return error__set(-EINVAL, "%s: the snapshot has no %s section for it", label,
				  section_name(section));
	return 0;
}

int virtio_persist__next_record(struct snapshot_file_cursor *c, uint32_t max_tag, uint32_t *tag,
				struct snapshot_file_cursor *sub)
{
	uint32_t flags;
	int ret;

	while (snapshot_file__remaining(c)) {
		ret = snapshot_file__get_record(c, tag, &flags, sub);
		if (ret)
			return ret;
		if ((flags & SNAPSHOT_FILE_FLAGS_CRITICAL) ||
		    ((*tag == 0 || *tag > max_tag) && (flags & SNAPSHOT_FILE_MUST_UNDERSTAND)))
			return error__set(-EINVAL,
					  "the %s section at offset %llu holds a record (tag %u, "
					  "flags 0x%x) this Ember does not understand",
					  section_name(c->id), (unsigned long long)c->base, *tag,
					  flags);
		if (*tag && *tag <= max_tag)
			return 1;
	}
	return 0;
}
