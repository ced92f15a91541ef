#!/usr/bin/env bash
# Install the example third-party plugin (examples/itglue-ingest-example-source) into the
# project's .venv as a separate, regular (non-editable) distribution, run its own tests,
# then uninstall it again so the rest of the suite sees only the built-in plugins.
# Usage: examples/run-example-tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIST=itglue-ingest-example-source
PIP=("$ROOT/.venv/bin/python" -m pip --disable-pip-version-check --quiet)
BUILD=$(mktemp -d)
cleanup() {
  "${PIP[@]}" uninstall -y "$DIST" >/dev/null 2>&1 || true
  rm -rf "$BUILD"
}
trap cleanup EXIT
# Built from a copy so the source tree gets no build/ or *.egg-info; --no-deps because
# itglue-ingest itself is already installed (editable) in this venv.
cp -r "$ROOT/examples/$DIST" "$BUILD/"
"${PIP[@]}" install --no-deps "$BUILD/$DIST"
cd "$ROOT/examples/$DIST"
# the tests import the installed distribution, not the source folder
"$ROOT/.venv/bin/pytest" -p no:cacheprovider "$@"
