# SPDX-License-Identifier: Apache-2.0
# Snapshot tools; filled in by the tools work (see tools/README.md).
.PHONY: tools tools-test
tools:
tools-test: tools
