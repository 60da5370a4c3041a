#!/usr/bin/env bash
# Pre-job hook for the modelship self-hosted runner: the runner runs it before every job
# (ACTIONS_RUNNER_HOOK_JOB_STARTED=<absolute path of this file> in the runner's .env) and a non-zero
# exit fails the job before any of its steps runs. It admits only this repository's deploy, rollback
# and drift workflows as they are on main, whatever a branch, fork or new workflow file asks for.
# Workflow YAML cannot switch this off: it lives on the host, outside the repository checkout.
#
# Runner .env:
#   ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/modelship/runner-job-guard.sh   (a root-owned copy)
#   MODELSHIP_RUNNER_REPOSITORY=owner/name
#   MODELSHIP_RUNNER_WORKFLOWS="deploy.yml rollback.yml drift.yml"      (optional; this is the default)
set -euo pipefail

repo=${MODELSHIP_RUNNER_REPOSITORY:-}
allowed=${MODELSHIP_RUNNER_WORKFLOWS:-deploy.yml rollback.yml drift.yml}
workflow_ref=${GITHUB_WORKFLOW_REF:-}
ref=${GITHUB_REF:-}

if [ -z "$repo" ]; then
  echo "::error::modelship runner guard: MODELSHIP_RUNNER_REPOSITORY is not set in the runner's .env; refusing every job"
  exit 1
fi
if [ "${GITHUB_REPOSITORY:-}" = "$repo" ] && [ "$ref" = "refs/heads/main" ]; then
  for wf in $allowed; do
    if [ "$workflow_ref" = "$repo/.github/workflows/$wf@refs/heads/main" ]; then
      echo "modelship runner guard: $wf on main admitted (${GITHUB_EVENT_NAME:-?} by ${GITHUB_ACTOR:-?})"
      exit 0
    fi
  done
fi
echo "::error::modelship runner guard: this runner runs only $repo's $allowed on refs/heads/main; refused ${workflow_ref:-an unknown workflow} (ref ${ref:-?}, event ${GITHUB_EVENT_NAME:-?}, actor ${GITHUB_ACTOR:-?})"
exit 1
