#!/usr/bin/env bash
# Run every tests/perf/bench_*.py as a module; each prints one JSON document on stdout.
# Progress goes to stderr so `make bench > results.jsonl` keeps only the JSON.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SENTINEL_ROOT"

shopt -s nullglob
benches=(tests/perf/bench_*.py)
if (( ${#benches[@]} == 0 )); then
  echo "bench: no tests/perf/bench_*.py yet" >&2
  exit 0
fi
for file in "${benches[@]}"; do
  module="${file%.py}"
  module="${module//\//.}"
  echo "bench: python -m $module" >&2
  python -m "$module"
done
