#!/usr/bin/env bash
# Quick start 2: set up (system packages included), lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
echo "== ruff"; .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== example plugin distribution"; examples/run-example-tests.sh -q
echo "== pytest"; exec .venv/bin/pytest "$@"
