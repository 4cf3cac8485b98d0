#!/usr/bin/env bash
# Installs headless Chromium and chromedriver for the browser tests in
# tests/api/browser.rs, from Debian's packages. Safe to run again.
set -euo pipefail

if [ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium chromium-driver
