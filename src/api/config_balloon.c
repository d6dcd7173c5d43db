// SPDX-License-Identifier: Apache-2.0
/*
 * The balloon's part of Firecracker's config schema: the "balloon" section (PUT /balloon and
 * the config file), PATCH /balloon (amount_mib) and PATCH /balloon/statistics
 * (stats_polling_interval_s). The target must fit the guest's memory, whichever of the two
 * changes; free_page_hinting is refused (free_page_reporting is supported).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/config.h"
#include "api/config_internal.h"

int config_balloon__fits(uint64_t mem_size_mib, uint32_t amount_mib, const char *path,
			 bool amount_side)
{
	if (amount_mib <= mem_size_mib)
		return 0;
	if (amount_side)
		return error__set(-EINVAL,
				  "%s: must be at most the guest's memory "
				  "(machine-config.mem_size_mib %" PRIu64 "), got %" PRIu32,
				  path, mem_size_mib, amount_mib);
	return error__set(-EINVAL,
			  "%s: must be at least the balloon's target (balloon.amount_mib "
			  "%" PRIu32 "), got %" PRIu64,
			  path, amount_mib, mem_size_mib);
}

static int check_balloon(void *obj, const char *path)
{
	const struct balloon_config *b = obj;
	char fpath[PATH_SHOW_MAX];

	if (b->free_page_hinting)
		return error__set(-EINVAL, "%s: not supported yet (free_page_reporting is)",
				  join_path(fpath, sizeof(fpath), path, "free_page_hinting"));
	return 0;
}

#define BALLOON struct balloon_config

/* In the order of Firecracker's Balloon object. */
static const struct field balloon_fields[] = {
	F_U32("amount_mib", BALLOON, amount_mib, FIELD_REQUIRED, 0, UINT32_MAX),
	F_BOOL("deflate_on_oom", BALLOON, deflate_on_oom, FIELD_REQUIRED),
	F_U32("stats_polling_interval_s", BALLOON, stats_polling_interval_s, 0, 0,
	      VM_BALLOON_STATS_INTERVAL_MAX),
	F_BOOL("free_page_hinting", BALLOON, free_page_hinting, 0),
	F_BOOL("free_page_reporting", BALLOON, free_page_reporting, 0),
};

const struct section config_balloon__section = {
	SECTION_OF("balloon", BALLOON, balloon_fields),
	.check = check_balloon,
};

static const struct field balloon_patch_fields[] = {
	F_U32("amount_mib", BALLOON, amount_mib, FIELD_REQUIRED, 0, UINT32_MAX),
};

static const struct section balloon_patch_section = {
	SECTION_OF("balloon", BALLOON, balloon_patch_fields),
};

static const struct field balloon_stats_fields[] = {
	F_U32("stats_polling_interval_s", BALLOON, stats_polling_interval_s, FIELD_REQUIRED, 0,
	      VM_BALLOON_STATS_INTERVAL_MAX),
};

static const struct section balloon_stats_section = {
	SECTION_OF("balloon", BALLOON, balloon_stats_fields),
};

/* A PATCH body (no strings) over a copy of the balloon; kept only when there is one. */
static int patch_balloon(struct vm_config *cfg, const struct section *sec, const char *json,
			 size_t len, unsigned int *changed)
{
	struct balloon_config b = cfg->balloon;
	int ret;

	if (changed)
		*changed = 0;
	ret = config__parse_body(&b, sec, json, len);
	if (!ret && cfg->has_balloon)
		ret = config_balloon__fits(cfg->machine.mem_size_mib, b.amount_mib, "amount_mib",
					   true);
	if (ret || !cfg->has_balloon)
		return ret;
	cfg->balloon = b;
	if (changed)
		*changed = CONFIG_CHANGED_BALLOON;
	return 0;
}

int config__patch_balloon(struct vm_config *cfg, const char *json, size_t len,
			  unsigned int *changed)
{
	return patch_balloon(cfg, &balloon_patch_section, json, len, changed);
}

int config__patch_balloon_stats(struct vm_config *cfg, const char *json, size_t len,
				unsigned int *changed)
{
	return patch_balloon(cfg, &balloon_stats_section, json, len, changed);
}
