#!/usr/bin/env bash
# Makes sure Debian's chromium is installed (the console's browser tests drive it through
# playwright-core) and prints its path. Installs it with apt-get when absent: as root, or
# through sudo when that works without a password; otherwise says what to run.
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "$CHROMIUM"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "ensure-chromium: $CHROMIUM is missing; install it with: sudo apt-get install -y chromium" >&2
  exit 1
fi

echo "ensure-chromium: installing chromium with apt-get …" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >&2 || echo "ensure-chromium: apt-get update failed; trying the install with the cached lists" >&2
"${SUDO[@]}" apt-get install -y -qq chromium >&2
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: apt-get installed chromium but $CHROMIUM is not there" >&2
  exit 1
fi
echo "$CHROMIUM"
