"""Drift as the plan, `reconcile drift` and its markdown show it, built from hand-made Plans;
and the guard that keeps the runtime's role away from the tool's records under canvas/."""
from __future__ import annotations

import fnmatch
import json

import click
import jsonschema
import pytest

from reconciler.kinds.iam_role import database_policy
from reconciler.plan import Action, AttributeChange, Baseline, Cause, Plan, ResourceChange
from reconciler.record import record_key
from reconciler.render import render_drift_markdown, render_drift_text, render_json, render_text
from reconciler.spec import SpecError, load_spec
from tests.e2e.conftest import CONTRACT, ROOT

RECORD = {"applied_at": "2026-01-02T03:04:05Z", "caller_arn": "arn:aws:sts::123456789012:assumed-role/ci/gh",
          "spec_sha256": "ab" * 32, "tool_version": "0.1.0", "desired": {}}
WHERE = "s3://db/canvas/app/last-applied.json"
CHOICES = "apply to put it back as canvas.yaml says, or change canvas.yaml to accept it."


def plan_of(*changes: ResourceChange, record: dict | None = RECORD, problem: str | None = None) -> Plan:
    return Plan(stack="app", region="us-west-2", changes=changes,
                baseline=Baseline(WHERE, record=record, problem=problem))


BUCKET = ResourceChange("s3_bucket", "db", Action.UPDATE, attributes=(
    AttributeChange("versioning", "Suspended", "Enabled", cause=Cause.DRIFT, last_applied="Enabled"),
))
FUNCTION = ResourceChange("lambda_function", "fn", Action.UPDATE, attributes=(
    AttributeChange("memory", 1024, 3008, cause=Cause.BOTH, last_applied=2048),
    AttributeChange("timeout", 900, 60, cause=Cause.SPEC, last_applied=900),
    AttributeChange("environment.API_TOKEN", "stolen", None, sensitive=True, cause=Cause.DRIFT),
    AttributeChange("environment.NOTE", "a|b", "c", cause=Cause.DRIFT, last_applied="c"),
))
URL = ResourceChange("lambda_function_url", "fn", Action.CREATE, attributes=(
    AttributeChange("auth_type", None, "NONE", cause=Cause.DRIFT, last_applied="NONE"),
))
REPOSITORY = ResourceChange("ecr_repository", "repo", Action.UPDATE, attributes=(
    AttributeChange("scan_on_push", False, True),
))


def plain(text: str) -> str:
    return click.unstyle(text)


def test_text_plan_marks_drift_lines_and_ends_a_drifted_block_with_the_two_choices():
    text = plain(render_text(plan_of(BUCKET, FUNCTION, REPOSITORY)))
    lines = text.splitlines()
    assert lines[1] == f"Last apply: {RECORD['applied_at']} by {RECORD['caller_arn']}; (drift) marks what " \
                       "changed in AWS since then."
    assert "      ~ versioning: Suspended → Enabled  (drift)" in lines
    assert "      ~ memory: 1024 → 3008  (drift; canvas.yaml changed too)" in lines
    assert "      ~ timeout: 900 → 60" in lines  # a pending change carries no mark
    assert "      - environment.API_TOKEN: (sensitive)  (drift)" in lines
    assert "stolen" not in text
    block = text.split("  ~ lambda_function.fn will be updated in place\n")[1].split("\n\n")[0]
    assert block.splitlines()[-1] == f"      Drift: {CHOICES}"
    repository = text.split("  ~ ecr_repository.repo will be updated in place\n")[1].split("\n\n")[0]
    assert repository == "      ~ scan_on_push: false → true"  # spec only: no mark, no advice


def test_drift_in_colour_is_marked_in_its_own_colour():
    line = next(text for text in render_text(plan_of(BUCKET)).splitlines() if "versioning" in text)
    assert click.style("(drift)", fg="cyan", bold=True) in line


def test_json_plan_carries_a_cause_on_every_attribute_and_the_last_apply():
    document = json.loads(render_json(plan_of(BUCKET, FUNCTION, REPOSITORY)))
    jsonschema.validate(document, json.loads((ROOT / "schemas" / "plan.schema.json").read_text()))
    causes = {(c["address"], a["path"]): a["cause"] for c in document["changes"] for a in c["attributes"]}
    assert causes == {
        ("s3_bucket.db", "versioning"): "drift", ("lambda_function.fn", "memory"): "both",
        ("lambda_function.fn", "timeout"): "spec", ("lambda_function.fn", "environment.API_TOKEN"): "drift",
        ("lambda_function.fn", "environment.NOTE"): "drift", ("ecr_repository.repo", "scan_on_push"): "spec"}
    assert document["last_applied"] == {k: RECORD[k] for k in ("applied_at", "caller_arn", "spec_sha256",
                                                                "tool_version")}
    assert document["format_version"] == 1


def test_drift_text_lists_only_drift_with_last_applied_and_live_values():
    text = plain(render_drift_text(plan_of(BUCKET, FUNCTION, URL, REPOSITORY)))
    assert text.splitlines()[0] == (f"Drift in stack app in us-west-2: changed in AWS since the last apply "
                                    f"({RECORD['applied_at']} by {RECORD['caller_arn']}).")
    assert "      versioning: last applied Enabled, live now Suspended" in text
    assert "      memory (canvas.yaml changed too): last applied 2048, live now 1024" in text
    assert "      environment.API_TOKEN: last applied (none), live now (sensitive)" in text
    assert "      (the whole resource): last applied present, live now deleted" in text
    assert "timeout" not in text and "scan_on_push" not in text and "stolen" not in text
    assert text.count(f"Drift: {CHOICES}") == 3
    assert "5 drifted attribute(s) in 3 resource(s)." in text
    assert text.splitlines()[-1] == ("Not drift: 2 resource(s) with changes from canvas.yaml not applied yet "
                                     "(`reconcile plan` shows them).")


def test_drift_markdown_is_a_table_of_resource_attribute_last_applied_and_live():
    markdown = render_drift_markdown(plan_of(BUCKET, FUNCTION, URL, REPOSITORY))
    lines = markdown.splitlines()
    assert lines[0] == "### Drift in `app` (us-west-2)"
    header = lines.index("| resource | attribute | last applied | live now |")
    assert lines[header + 1] == "| --- | --- | --- | --- |"
    assert lines[header + 2:header + 7] == [
        "| `s3_bucket.db` | `versioning` | `Enabled` | `Suspended` |",
        "| `lambda_function.fn` | `memory` (canvas.yaml changed too) | `2048` | `1024` |",
        "| `lambda_function.fn` | `environment.API_TOKEN` | `(none)` | `(sensitive)` |",
        "| `lambda_function.fn` | `environment.NOTE` | `c` | `a\\|b` |",
        "| `lambda_function_url.fn` | `(the whole resource)` | `present` | `deleted` |",
    ]
    assert lines[header + 7] == ""
    assert CHOICES in markdown and "\x1b[" not in markdown and "stolen" not in markdown


def test_drift_report_without_drift_or_without_a_record():
    assert plain(render_drift_text(plan_of(REPOSITORY))).splitlines() == [
        f"No drift in stack app in us-west-2: live AWS matches the last apply ({RECORD['applied_at']} by "
        f"{RECORD['caller_arn']}).",
        "Not drift: 1 resource(s) with changes from canvas.yaml not applied yet (`reconcile plan` shows them)."]
    assert render_drift_markdown(plan_of()).splitlines()[0] == "### No drift in `app` (us-west-2)"
    first_run = render_drift_markdown(plan_of(REPOSITORY, record=None))
    assert first_run.splitlines()[0] == "### Drift check of `app` (us-west-2): no apply recorded yet"
    assert f"`{WHERE}`" in first_run
    assert plain(render_drift_text(plan_of(record=None))).startswith(
        f"No drift can be told for stack app in us-west-2 yet: no apply is recorded at {WHERE}")


def test_long_values_are_shortened_in_the_markdown_table():
    policy = {"Statement": [{"Action": [f"s3:Action{i}" for i in range(30)]}]}
    role = ResourceChange("iam_role", "r", Action.UPDATE, attributes=(
        AttributeChange("inline_policies.Extra", policy, None, cause=Cause.DRIFT),))
    [row] = [text for text in render_drift_markdown(plan_of(role)).splitlines() if text.startswith("| `iam_role.r`")]
    assert len(row) < 200 and "…" in row
    assert "Long values are shortened here" in render_drift_markdown(plan_of(role))


# ---- the runtime's role never reaches canvas/ ---------------------------------------------

def _object_grants(policy: dict) -> list[str]:
    resources = []
    for statement in policy["Statement"]:
        found = statement["Resource"]
        resources += [r for r in ([found] if isinstance(found, str) else found) if "/" in r.split(":::", 1)[1]]
    return resources


@pytest.mark.parametrize("database_key", ["database/taskManagement.db", "app.db", "canvasx/app.db",
                                          "canvas.db", "data/canvas/app/last-applied.json"])
def test_the_runtime_policy_cannot_match_the_record(database_key):
    policy = database_policy("db-bucket", database_key, "us-west-2")
    record = f"arn:aws:s3:::db-bucket/{record_key('code-canvas-astro')}"
    grants = _object_grants(policy)
    assert grants == [f"arn:aws:s3:::db-bucket/{database_key}", f"arn:aws:s3:::db-bucket/{database_key}.canvas/*",
                      f"arn:aws:s3:::db-bucket/{database_key}.canvas/*"]
    # IAM matches Resource with * and ? as wildcards; fnmatchcase's extra [] classes never occur in keys here.
    assert not any(fnmatch.fnmatchcase(record, grant) for grant in grants)
    assert not any(fnmatch.fnmatchcase(f"arn:aws:s3:::db-bucket/canvas/{s}/last-applied.json", grant)
                   for grant in grants for s in ("code-canvas-astro", "other"))


@pytest.mark.parametrize("database_key, reason", [
    ("canvas/code-canvas-astro/last-applied.json", "is under canvas/"),
    ("canvas/app.db", "is under canvas/"),
    ("c*", 'contains "*"'),
    ("*", 'contains "*"'),
    ("database/app?.db", 'contains "?"'),
    ("${aws:userid}.db", 'contains "${"'),
])
def test_validate_refuses_a_database_key_that_could_reach_the_record(tmp_path, database_key, reason):
    """Wildcards first: a key like `c*` would become a policy Resource matching canvas/ too."""
    path = tmp_path / "canvas.yaml"
    path.write_text(CONTRACT.read_text().replace("database_key: database/taskManagement.db",
                                                 f"database_key: '{database_key}'"))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    [problem] = raised.value.problems
    assert problem.path == "bucket.database_key" and reason in problem.message


def test_pending_changes_are_counted_in_resources_as_the_plan_counts_them():
    # After a destroy every resource is a create of many attributes: the plan says "2 to create",
    # and drift must not say "5 pending change(s)".
    created = [ResourceChange(kind, "x", Action.CREATE, attributes=tuple(
        AttributeChange(name, None, 1) for name in names))
        for kind, names in (("s3_bucket", ("versioning", "encryption", "tags")),
                            ("iam_role", ("trust_policy", "tags")))]
    assert plain(render_drift_text(plan_of(*created))).splitlines()[-1] == (
        "Not drift: 2 resource(s) with changes from canvas.yaml not applied yet (`reconcile plan` shows them).")
