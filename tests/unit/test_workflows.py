"""The GitHub workflows and the drift role's policies: actionlint (with shellcheck on the run:
scripts) passes on .github/workflows and fails on a broken workflow; the drift job runs on a
schedule and by hand with OIDC credentials only; the role trusts only this repository's
GitHub tokens meant for STS."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


# The test extra installs both into the interpreter's bin directory, which is on PATH only when
# the virtualenv is activated: `.venv/bin/pytest` run directly must find them too.
SEARCH_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("actionlint", path=SEARCH_PATH)
    assert executable, "actionlint is not installed: pip install -e '.[test]'"
    assert shutil.which("shellcheck", path=SEARCH_PATH), "shellcheck is not installed: pip install -e '.[test]'"
    # actionlint runs shellcheck from PATH.
    return subprocess.run([executable, "-no-color", *map(str, files)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "PATH": SEARCH_PATH})


def workflow(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def test_the_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["drift.yml", "tests.yml"]
    run = actionlint(*files)
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_fails_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text((WORKFLOWS / "drift.yml").read_text()
                      .replace("id-token: write", "id-token: writ")
                      .replace('reconcile drift --format markdown -f "${CANVAS_FILE:-canvas.yaml}"',
                               "reconcile drift --format markdown -f $CANVAS_FILE"))
    run = actionlint(broken)
    assert run.returncode == 1
    assert "writ" in run.stdout and "SC2086" in run.stdout  # the permission typo and the unquoted variable


def test_the_drift_job_runs_daily_and_by_hand_with_oidc_credentials_only():
    drift = workflow("drift.yml")
    assert drift["on"]["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"]
    assert "workflow_dispatch" in drift["on"]
    assert drift["permissions"] == {"id-token": "write", "contents": "read"}
    steps = drift["jobs"]["drift"]["steps"]
    [credentials] = [s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert credentials["with"]["role-to-assume"] == "${{ vars.CANVAS_DRIFT_ROLE_ARN }}"
    text = (WORKFLOWS / "drift.yml").read_text()
    assert "aws-access-key-id" not in text and "secrets." not in text
    [check] = [s for s in steps if "reconcile drift" in s.get("run", "")]
    assert "--format markdown" in check["run"] and '>>"$GITHUB_STEP_SUMMARY"' in check["run"]


def test_the_tests_run_on_every_push_and_pull_request():
    tests = workflow("tests.yml")
    assert set(tests["on"]) == {"push", "pull_request"}
    [job] = tests["jobs"].values()
    # The README's test command, Node dependencies of the Astro example included.
    command = "pip install -q -e '.[test]' && npm ci --prefix examples/astro-taskboard && pytest"
    assert command in (ROOT / "README.md").read_text()
    assert any(command in step.get("run", "") for step in job["steps"])


def test_the_drift_role_trusts_only_this_repositorys_github_tokens_for_sts():
    trust = json.loads((ROOT / ".github" / "drift-role-trust-policy.json").read_text())
    [statement] = trust["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    equals = statement["Condition"]["StringEquals"]
    assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert equals["token.actions.githubusercontent.com:sub"].startswith("repo:")
    assert "*" not in equals["token.actions.githubusercontent.com:sub"]
