#!/usr/bin/env bash
# A headless browser for the documentation check (docs/check_site.py opens the built pages in
# Debian's chromium). Idempotent: returns at once when chromium is already installed.
set -euo pipefail
if command -v chromium >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
