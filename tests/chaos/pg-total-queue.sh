#!/bin/bash
# tests/chaos/pg-total-queue.sh: tests/chaos/total-queue.sh, the same file,
# on a private PostgreSQL cluster (FCGIQ_TEST_BACKEND=pg: tests/backend.sh).
FCGIQ_TEST_BACKEND=pg exec bash "$(dirname "$0")/total-queue.sh" "$@"
