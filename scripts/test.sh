#!/usr/bin/env bash
# Quick start 2: set up (system packages included), lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
echo "== ruff"; .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== example plugin distribution"; examples/run-example-tests.sh -q
# Most tests wait on real servers, timers and file events rather than on the CPU (a
# serial run uses one core a quarter of the time), so four workers fit two cores.
echo "== pytest"; exec .venv/bin/pytest -n "${PYTEST_WORKERS:-4}" "$@"
