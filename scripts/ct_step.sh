#!/usr/bin/env bash
# The retrain workflow's training step: run `utilscli.py ct`, turn its exit code into the
# step's `outcome` output (promoted, nothing-to-do, refused) and write what it said to the
# run's summary. Any other exit code fails the step with that code.
# Environment: DATA_URL_INPUT (empty: the Makefile's DATA_URL), FORCE_INPUT ("true" forces),
# PR_FILE, CT_LOG, and GitHub's GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${DATA_URL_INPUT:-}"
if [[ -z "$url" ]]; then
  url="$(make --no-print-directory -s print-data-url)"
fi
args=(ct --data-url "$url" --pr-file "$PR_FILE")
if [[ "${FORCE_INPUT:-false}" == "true" ]]; then
  args+=(--force)
fi

set +e
.venv/bin/python utilscli.py "${args[@]}" 2>&1 | tee "$CT_LOG"
code=${PIPESTATUS[0]}
set -e

case "$code" in
  0) outcome=promoted ;;
  3) outcome=nothing-to-do ;;
  4) outcome=refused ;;
  *) outcome=failed ;;
esac
echo "outcome=$outcome" >>"$GITHUB_OUTPUT"
{
  echo "## Continuous training: $outcome"
  echo
  echo '```'
  cat "$CT_LOG"
  echo '```'
  if [[ "$outcome" == promoted ]]; then
    echo
    cat "$PR_FILE"
  fi
} >>"$GITHUB_STEP_SUMMARY"
if [[ "$outcome" == failed ]]; then
  exit "$code"
fi
