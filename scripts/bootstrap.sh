#!/usr/bin/env bash
# Set up everything itglue-ingest needs on a fresh Debian machine with Python 3.11:
# system packages (libmagic1, Tesseract with English and German; with --test also
# dovecot-imapd, systemd-analyze, prometheus's promtool and PostgreSQL), a virtualenv in
# .venv and the project installed into it in editable mode. Safe to run again: it only does what
# is missing.  Usage: scripts/bootstrap.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "itglue-ingest needs Python >= 3.11 (found $("$PYTHON" --version 2>&1))" >&2; exit 2; }

apt_packages=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib libmagic.so.1 || apt_packages+=(libmagic1)
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || apt_packages+=(python3-venv)
# OCR of images and scanned PDFs (plugins/extract/ocr.py): Tesseract with English and
# German; PDFs are rendered by pypdfium2 and made searchable by ocrmypdf (pip), which
# need no Ghostscript or Poppler for plain PDF output
command -v tesseract >/dev/null 2>&1 || apt_packages+=(tesseract-ocr)
for lang in eng deu; do
  [ -f "/usr/share/tesseract-ocr/5/tessdata/$lang.traineddata" ] \
    || [ -f "/usr/share/tesseract-ocr/4.00/tessdata/$lang.traineddata" ] \
    || apt_packages+=("tesseract-ocr-$lang")
done
if [ "$want_test" = 1 ]; then
  command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || apt_packages+=(dovecot-imapd)
  command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
  # the tests verify contrib/systemd/itglue-ingest.service (nothing is started)
  [ -x /usr/bin/systemd-analyze ] || apt_packages+=(systemd)
  # the OCR tests render pages with a font that has German letters (ä, ö, ü, ß)
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || apt_packages+=(fonts-dejavu-core)
  # the tests check contrib/prometheus/alerts.yml with promtool
  command -v promtool >/dev/null 2>&1 || apt_packages+=(prometheus)
  # the shared-state tests start their own PostgreSQL cluster (pipeline/testing/postgres.py)
  command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || apt_packages+=(postgresql)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "bootstrap: installing system packages: ${apt_packages[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >&2
fi

extra=$([ "$want_test" = 1 ] && echo dev || echo test)
stamp=".venv/.installed-$extra-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[$extra]" >&2
  rm -f .venv/.installed-* && touch "$stamp"
fi
