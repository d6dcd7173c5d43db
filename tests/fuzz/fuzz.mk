# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets: tests/fuzz/fuzz_<parser>.c, each defines LLVMFuzzerTestOneInput.
# The library is rebuilt with clang, ASan and UBSan under $(BUILD)/fuzz/.
# `make fuzz` runs each target for FUZZ_SECONDS; `make fuzz-smoke` (part of `make test`)
# runs each for FUZZ_SMOKE_RUNS inputs from its seed corpus in tests/fuzz/corpus/<name>/.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_RUNS ?= 20000
FUZZ_FLAGS := -std=gnu11 -D_GNU_SOURCE -g -O1 -Isrc -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o) $(LIB_BLOBS)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(quiet) FUZZCC $@
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(quiet) FUZZLD $@
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(LIBS) -pthread

.SECONDARY: $(FUZZ_LIB_OBJS)

fuzz-build: $(FUZZ_BINS)

fuzz-smoke: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
		c=tests/fuzz/corpus/$${n#fuzz_}; mkdir -p $(BUILD)/fuzz/work/$$n; \
		echo "== fuzz smoke $$n ($(FUZZ_SMOKE_RUNS) runs)"; \
		$$f -runs=$(FUZZ_SMOKE_RUNS) -max_len=65536 $(BUILD)/fuzz/work/$$n $$c \
			> $(BUILD)/fuzz/work/$$n.log 2>&1 || { tail -40 $(BUILD)/fuzz/work/$$n.log; exit 1; }; \
	done

fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
		c=tests/fuzz/corpus/$${n#fuzz_}; mkdir -p $(BUILD)/fuzz/work/$$n; \
		echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 $(BUILD)/fuzz/work/$$n $$c; \
	done
