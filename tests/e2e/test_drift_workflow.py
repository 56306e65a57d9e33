"""The scheduled drift job's own commands, not GitHub: the `run:` script of the step in
.github/workflows/drift.yml that calls `reconcile drift`, run with bash as GitHub runs it
(`shell: bash`), against moto on loopback, with a fake GITHUB_STEP_SUMMARY.

No drift passes (0); drift fails the step (2) with the table in the summary; a check that
could not run fails it too (1), with a different message and the error in the summary.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import BUCKET, ROOT, reconcile_command

DRIFT_YML = ROOT / ".github" / "workflows" / "drift.yml"
# What GitHub runs for a step with `shell: bash`.
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


def drift_step() -> dict:
    steps = yaml.safe_load(DRIFT_YML.read_text())["jobs"]["drift"]["steps"]
    [step] = [s for s in steps if "reconcile drift" in s.get("run", "")]
    assert step.get("shell") == "bash"
    return step


@pytest.fixture
def run_step(tmp_path):
    """Run the drift step in tmp_path (where canvas.yaml is); returns (exit code, summary, log)."""
    script = tmp_path / "step.sh"
    script.write_text(drift_step()["run"])
    summary = tmp_path / "summary.md"

    def run(**env: str) -> tuple[int, str, str]:
        summary.write_text("")
        # The step finds `reconcile` on PATH, as it does after the job's install step.
        path = os.pathsep.join([str(Path(reconcile_command()[0]).parent), os.environ["PATH"]])
        proc = subprocess.run(GITHUB_BASH + [str(script)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PATH": path, "GITHUB_STEP_SUMMARY": str(summary),
                                                "CANVAS_FILE": "", **env})
        return proc.returncode, summary.read_text(), proc.stdout + proc.stderr
    return run


def test_the_drift_job_passes_without_drift_fails_on_drift_and_on_an_error(run_step, deployed, aws, dead_endpoint):
    code, summary, log = run_step()
    assert code == 0, log
    assert summary.startswith("### No drift in `code-canvas-astro` (us-west-2)")
    assert "::error" not in log

    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    code, summary, log = run_step()
    assert code == 2, log
    assert f"| `s3_bucket.{BUCKET}` | `versioning` | `Enabled` | `Suspended` |" in summary.splitlines()
    assert "::error title=Drift detected::" in log and "Drift check failed" not in log
    assert "> [!WARNING]" in summary

    code, summary, log = run_step(AWS_ENDPOINT_URL=dead_endpoint)
    assert code == 1, log
    assert "::error title=Drift check failed::" in log and "Drift detected" not in log
    assert summary.startswith("### Drift check failed")
    assert "cannot reach AWS" in summary
