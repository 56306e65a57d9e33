"""`reconcile drift` and `reconcile history` as a user runs them, against moto on loopback:
drift told apart from a pending canvas.yaml edit, its exit codes and markdown; the applies
listed newest first; destroy recording what it removed."""
from __future__ import annotations

import json

import yaml

from tests.e2e.conftest import BUCKET, FUNCTION, STACK

RECORD_KEY = f"canvas/{STACK}/last-applied.json"


def edit(canvas_file, change) -> None:
    document = yaml.safe_load(canvas_file.read_text())
    change(document)
    canvas_file.write_text(yaml.safe_dump(document, sort_keys=False))


def causes(run) -> dict[tuple[str, str], str]:
    return {(c["address"], a["path"]): a["cause"] for c in json.loads(run.out)["changes"] for a in c["attributes"]}


def test_drift_reports_what_changed_in_aws_not_a_pending_edit(reconcile, deployed, prebuilt_canvas, aws):
    clean = reconcile("drift")
    assert clean.code == 0, clean.out + clean.err
    assert clean.out.startswith(f"No drift in stack {STACK} in us-west-2: live AWS matches the last apply (")

    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    edit(prebuilt_canvas, lambda d: d["function"].update(memory=3008))

    plan = reconcile("plan", "--json")
    assert causes(plan) == {(f"s3_bucket.{BUCKET}", "versioning"): "drift",
                            (f"lambda_function.{FUNCTION}", "memory"): "spec"}
    text = reconcile("drift")
    assert text.code == 2, text.out + text.err
    assert "      versioning: last applied Enabled, live now Suspended" in text.out
    assert "memory" not in text.out.split("drifted attribute(s)")[0]
    assert "Not drift: 1 resource(s) with changes from canvas.yaml" in text.out
    markdown = reconcile("drift", "--format", "markdown")
    assert markdown.code == 2
    assert f"| `s3_bucket.{BUCKET}` | `versioning` | `Enabled` | `Suspended` |" in markdown.out.splitlines()


def test_drift_that_cannot_be_checked_exits_1(reconcile, canvas_file, dead_endpoint):
    run = reconcile("drift", "--endpoint-url", dead_endpoint)
    assert run.code == 1
    assert "cannot reach AWS" in run.err and run.out == "" and "Traceback" not in run.err


def test_an_unreadable_record_makes_drift_an_error(reconcile, deployed, aws):
    aws.s3.put_object(Bucket=BUCKET, Key=RECORD_KEY, Body=b"not json")

    drift = reconcile("drift")
    assert drift.code == 1 and "Traceback" not in drift.err
    assert f"s3://{BUCKET}/{RECORD_KEY}) could not be read: the record is not JSON" in drift.err


def test_history_lists_applies_newest_first(reconcile, deployed, prebuilt_canvas, aws):
    edit(prebuilt_canvas, lambda d: d["function"].update(memory=3008))
    assert reconcile("apply", "--auto-approve").code == 0

    run = reconcile("history")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == f"Applies of stack {STACK} recorded in s3://{BUCKET}/{RECORD_KEY}, newest first:"
    heads = [i for i, line in enumerate(lines) if line.startswith("20")]
    assert len(heads) == 2
    caller = aws.sts.get_caller_identity()["Arn"]
    assert all(f"  {caller}  spec " in lines[i] for i in heads)
    assert lines[heads[0] + 1:heads[1]] == [f"    update lambda_function.{FUNCTION}"]
    assert f"    create lambda_function.{FUNCTION}" in lines[heads[1]:]
    spec_hashes = [lines[i].split("  spec ")[1].split()[0] for i in heads]
    assert spec_hashes[0] != spec_hashes[1]  # canvas.yaml changed between the two


def test_history_of_an_account_never_applied(reconcile, canvas_file, moto_endpoint):
    run = reconcile("history")
    assert (run.code, run.out.strip()) == (0, "No applies recorded."), run.err


def test_destroy_records_what_it_removed_so_none_of_it_is_drift(reconcile, deployed, aws):
    assert reconcile("destroy", "--auto-approve").code == 0

    drift = reconcile("drift")
    assert drift.code == 0, drift.out + drift.err
    assert "Not drift: " in drift.out  # the deleted resources are pending creates
    history = reconcile("history").out.splitlines()
    assert history[3] == "    delete lambda_permission.FunctionURLInvokeAllowPublicAccess"
    assert f"    delete lambda_function.{FUNCTION}" in history
