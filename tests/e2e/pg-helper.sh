#!/bin/bash
# tests/e2e/pg-helper.sh: tests/e2e/helper.sh, the same file, on a private
# PostgreSQL cluster (FCGIQ_TEST_BACKEND=pg: tests/backend.sh).
FCGIQ_TEST_BACKEND=pg exec bash "$(dirname "$0")/helper.sh" "$@"
