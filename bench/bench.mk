# SPDX-License-Identifier: Apache-2.0
# Block device-model benchmark (bench/blk*): built and run by `make bench-blk`.
.PHONY: bench-blk
bench-blk:
	@echo "bench-blk: not written yet"
