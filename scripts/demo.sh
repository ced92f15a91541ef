#!/usr/bin/env bash
# Quick start 1: set up, then run the demo (emulator in-process, drop folder, pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/itglue-ingest demo "$@"
