# shellcheck shell=bash
# Environment for every Sentinel command run from this checkout: source it, don't execute it.
#   source scripts/env.sh
# Puts the project venv and the locally installed bun first on PATH and keeps Reflex, Ray
# and npm quiet and offline-safe (no telemetry, no version checks, the configured registry).

SENTINEL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SENTINEL_TOOLS="$SENTINEL_ROOT/.tools"
export SENTINEL_ROOT SENTINEL_TOOLS

for _dir in "$SENTINEL_TOOLS/uv/bin" "$SENTINEL_TOOLS/node_modules/.bin" "$SENTINEL_ROOT/.venv/bin"; do
  case ":$PATH:" in
    *":$_dir:"*) ;;
    *) PATH="$_dir:$PATH" ;;
  esac
done
unset _dir
export PATH

# bun normally comes from the `bun` npm package (.tools/node_modules/.bin/bun). When npm
# skipped its install script, bootstrap installs the platform package and records its path.
if [[ -z "${REFLEX_BUN_PATH:-}" && -s "$SENTINEL_TOOLS/bun-path" ]]; then
  REFLEX_BUN_PATH="$(cat "$SENTINEL_TOOLS/bun-path")"
  export REFLEX_BUN_PATH
fi

export REFLEX_TELEMETRY_ENABLED=false
export REFLEX_CHECK_LATEST_VERSION=false
export RAY_USAGE_STATS_ENABLED="${RAY_USAGE_STATS_ENABLED:-0}"
export UV_PYTHON_DOWNLOADS=never

if [[ -z "${NPM_CONFIG_REGISTRY:-}" ]]; then
  NPM_CONFIG_REGISTRY="$(npm config get registry 2>/dev/null || true)"
  export NPM_CONFIG_REGISTRY="${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org/}"
fi
