#!/usr/bin/env bash
# The retrain workflow's last step: commit what `utilscli.py ct` promoted (the served pair,
# its registry entry, the model card: everything it changed in the checkout) on a new branch
# and open a pull request with the title and body ct wrote to PR_FILE (the title, a blank
# line, the body). Needs GH_TOKEN (the workflow's GITHUB_TOKEN) and the gh CLI of GitHub's
# runners.
set -euo pipefail
cd "$(dirname "$0")/.."

title="$(head -n 1 "$PR_FILE")"
body="$(mktemp)"
trap 'rm -f "$body"' EXIT
tail -n +3 "$PR_FILE" >"$body"

# The branch the run started from (a detached checkout has no name of its own).
base="${GITHUB_REF_NAME:-$(git rev-parse --abbrev-ref HEAD)}"
branch="ct/retrain-$(date -u +%Y%m%d)-${GITHUB_RUN_ID:-local}"
git config user.name "github-actions[bot]"
git config user.email "41898282+github-actions[bot]@users.noreply.github.com"
git switch --quiet --create "$branch"
git add --all
git commit --quiet --message "$title" --message "Made by utilscli.py ct (the retrain workflow)."
git push --quiet origin "$branch"
gh pr create --base "$base" --head "$branch" --title "$title" --body-file "$body"
