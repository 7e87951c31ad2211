#!/usr/bin/env bash
# Install the headless browser the dashboard tests drive: Debian's chromium (/usr/bin/chromium).
# Idempotent: does nothing when it is already there. Needs root (CI runs as root) or sudo.
# When apt is busy (an unattended upgrade holds its lock), wait for it, at most
# FLAGOPS_APT_LOCK_TIMEOUT seconds (default 300), instead of failing at once.
set -euo pipefail
CHROMIUM="${FLAGOPS_CHROMIUM:-/usr/bin/chromium}"
LOCK_TIMEOUT="${FLAGOPS_APT_LOCK_TIMEOUT:-300}"
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
fail() {
  echo "install-browser: $1 (if apt stayed busy for ${LOCK_TIMEOUT}s, retry later or raise FLAGOPS_APT_LOCK_TIMEOUT)" >&2
  exit 1
}
deadline=$((SECONDS + LOCK_TIMEOUT))
# apt-get update does not wait for the package lists lock: retry while only the lock is in the way.
until out="$($SUDO apt-get update -qq 2>&1)"; do
  if ! grep -qE "Could not get lock|Unable to lock" <<<"$out" || [ "$SECONDS" -ge "$deadline" ]; then
    echo "$out" >&2
    fail "apt-get update failed"
  fi
  sleep 1
done
# apt-get install waits for the dpkg frontend lock itself, for the time that is left.
left=$((deadline - SECONDS)); [ "$left" -gt 0 ] || left=1
if ! $SUDO apt-get -o "DPkg::Lock::Timeout=$left" install -y -qq chromium >/dev/null; then
  fail "apt-get install chromium failed"
fi
"$CHROMIUM" --version >&2
