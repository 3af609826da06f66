#!/usr/bin/env bash
# The two commands of the README, on a fresh clone:
#   bash scripts/run.sh demo    # the whole pipeline on local defaults, with a live view
#   bash scripts/run.sh test    # every test, against real Postgres and Kafka
# (also: bash scripts/run.sh bench)
#
# Each installs the pinned pnpm and the locked dependencies, builds, then runs. Postgres and
# Kafka are found or started by the run itself (DATABASE_URL / KAFKA_BROKERS when set,
# testcontainers when Docker answers, else the local Postgres and scripts/kafka-local.sh),
# and whatever the run started it stops.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want_pnpm="$(node -p "require('./package.json').packageManager.split('@')[1]")"
if [[ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]]; then
  echo "[run] installing pnpm@$want_pnpm" >&2
  # corepack refuses registries without signatures; npm installs the pinned version as well.
  npm install -g "pnpm@$want_pnpm" >&2
fi
pnpm install --frozen-lockfile >&2

case "${1:-}" in
  demo) shift; pnpm demo "$@" ;;
  test) shift; pnpm test "$@" ;;
  bench) shift; pnpm bench "$@" ;;
  *) echo "usage: bash scripts/run.sh demo|test|bench" >&2; exit 2 ;;
esac
