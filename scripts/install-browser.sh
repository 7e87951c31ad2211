#!/usr/bin/env bash
# Install the headless browser the dashboard tests drive: Debian's chromium (/usr/bin/chromium).
# Idempotent: does nothing when it is already there. Needs root (CI runs as root) or sudo.
set -euo pipefail
CHROMIUM="${FLAGOPS_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-browser: $CHROMIUM is missing and this is not root; install the Debian package chromium" >&2
    exit 1
  fi
fi
echo "install-browser: installing chromium (Debian package)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
"$CHROMIUM" --version >&2
