#!/usr/bin/env bash
# The whole check: ruff, mypy, then pytest (arguments go to pytest).
# Every step runs even if an earlier one failed, so one CI run shows all problems;
# the exit status is non-zero if any step failed (pytest's 5 = "no tests" included).
set -uo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SENTINEL_ROOT" || exit 1

failed=()
step() {
  local name=$1 start=$SECONDS rc
  shift
  echo "==> $*"
  "$@"
  rc=$?
  echo "<== $name: exit $rc after $((SECONDS - start)) s"
  if [[ $rc != 0 ]]; then
    [[ $name == pytest && $rc == 5 ]] && echo "pytest collected no tests" >&2
    failed+=("$name (exit $rc)")
  fi
}

step ruff ruff check
step mypy mypy
step pytest pytest --durations=10 "$@"

if (( ${#failed[@]} )); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "All checks passed."
