#!/usr/bin/env bash
# Install everything Fangorn Sentinel needs into this checkout. Idempotent: a second run
# with nothing changed takes well under a second.
#
#   scripts/bootstrap.sh            runtime: uv, .venv (no dev extra), bun
#   scripts/bootstrap.sh --dev      also the `dev` extra (pytest, ruff, mypy, playwright, ...)
#   scripts/bootstrap.sh --browser  also Debian's chromium (for the browser tests)
#
# Needs python3 (3.11+), npm, and for --browser apt-get (root or sudo). Everything else
# goes into .tools/ (uv, bun) and .venv/ (the project), both gitignored.
set -euo pipefail

UV_VERSION=0.13.9
BUN_VERSION=1.4.4

DEV=0
BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    --browser) BROWSER=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SENTINEL_ROOT"
mkdir -p "$SENTINEL_TOOLS"

say() { echo "bootstrap: $*"; }

# --- uv, in its own small venv so nothing depends on a global install -------------------
UV="$SENTINEL_TOOLS/uv/bin/uv"
if [[ "$("$UV" --version 2>/dev/null)" != "uv $UV_VERSION"* ]]; then
  say "installing uv $UV_VERSION into .tools/uv"
  rm -rf "$SENTINEL_TOOLS/uv"
  python3 -m venv "$SENTINEL_TOOLS/uv"
  "$SENTINEL_TOOLS/uv/bin/pip" install --quiet "uv==$UV_VERSION"
fi

# --- the project venv, synced exactly to uv.lock ------------------------------------------
# The stamp records the hash of uv.lock + pyproject.toml and the extras. The dev extra is
# sticky: once installed it stays on later syncs, so `make run` after `make test` (or
# after a lock change) never uninstalls pytest and friends from under a developer.
STAMP=.venv/.sentinel-sync
lock_hash="$(cat uv.lock pyproject.toml | sha256sum | cut -c1-64)"
read -r have_hash have_mode 2>/dev/null < "$STAMP" || { have_hash=""; have_mode=""; }
# A venv synced by hand with the dev extra (no stamp yet) counts as dev too.
if [[ -z $have_mode && -x .venv/bin/pytest ]]; then have_mode=dev; fi
mode=base
if [[ $DEV == 1 || $have_mode == dev ]]; then mode=dev; fi
if [[ -x .venv/bin/python && $have_hash == "$lock_hash" && $have_mode == "$mode" ]]; then
  :
else
  extras=()
  if [[ $mode == dev ]]; then extras=(--extra dev); fi
  say "syncing .venv with uv.lock ($mode)"
  "$UV" sync --frozen --python "$(command -v python3)" "${extras[@]}"
  echo "$lock_hash $mode" > "$STAMP"
fi

# --- bun, from the npm registry (Reflex would otherwise download it from the web) ---------
bun_ok() { [[ "$("$1" --version 2>/dev/null)" == "$BUN_VERSION" ]]; }
BUN_BIN="$SENTINEL_TOOLS/node_modules/.bin/bun"
case "$(uname -m)" in
  aarch64|arm64) BUN_PLATFORM=bun-linux-aarch64 ;;
  *) BUN_PLATFORM=bun-linux-x64 ;;
esac
BUN_PLATFORM_BIN="$SENTINEL_TOOLS/node_modules/@oven/$BUN_PLATFORM/bin/bun"
if [[ -s "$SENTINEL_TOOLS/bun-path" ]] && bun_ok "$(cat "$SENTINEL_TOOLS/bun-path")"; then
  :
elif bun_ok "$BUN_BIN"; then
  :
else
  say "installing bun $BUN_VERSION from $NPM_CONFIG_REGISTRY"
  rm -f "$SENTINEL_TOOLS/bun-path"
  npm install --prefix "$SENTINEL_TOOLS" --no-fund --no-audit --loglevel=error "bun@$BUN_VERSION" </dev/null
  if ! bun_ok "$BUN_BIN"; then
    # npm skipped bun's install script, which swaps the placeholder for the native binary:
    # take the platform package directly, point Reflex (REFLEX_BUN_PATH) and PATH at it.
    say "bun's install script did not run; using @oven/$BUN_PLATFORM"
    npm install --prefix "$SENTINEL_TOOLS" --no-fund --no-audit --loglevel=error --ignore-scripts \
      "@oven/$BUN_PLATFORM@$BUN_VERSION" </dev/null
    bun_ok "$BUN_PLATFORM_BIN" || { echo "bootstrap: bun $BUN_VERSION does not run" >&2; exit 1; }
    echo "$BUN_PLATFORM_BIN" > "$SENTINEL_TOOLS/bun-path"
    ln -sf "$BUN_PLATFORM_BIN" "$BUN_BIN"
  fi
fi

# --- Debian packages for end-to-end tests: chromium (browser tests; never `playwright install`)
# and a real Prometheus Alertmanager (webhook tests) --------------------------------------
if [[ $BROWSER == 1 ]]; then
  missing=()
  [[ -x /usr/bin/chromium ]] || missing+=(chromium fonts-liberation fonts-dejavu-core)
  [[ -x /usr/bin/prometheus-alertmanager ]] || missing+=(prometheus-alertmanager)
  if (( ${#missing[@]} )); then
    say "installing Debian packages: ${missing[*]}"
    sudo=()
    if [[ $(id -u) != 0 ]]; then sudo=(sudo -n); fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq </dev/null
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    /usr/bin/chromium --version 2>/dev/null
  fi
fi
