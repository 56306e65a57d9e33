"""The saved-plan file on its own: what is checked before anything is planned or applied."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from reconciler import __version__, saved_plan
from reconciler.plan import Action, AttributeChange, Cause, Plan, ResourceChange

SPEC = SimpleNamespace(stack="s", file="canvas.yaml", sha256="a" * 64)


def plan(memory_before=2048) -> Plan:
    change = ResourceChange("lambda_function", "f", Action.UPDATE, attributes=(
        AttributeChange("memory", memory_before, 1024, cause=Cause.DRIFT),
        AttributeChange("environment.API_TOKEN", "old-secret", "new-secret", sensitive=True)))
    return Plan(stack="s", region="eu-west-1", changes=(change,))


def saved(**changes) -> dict:
    return {**saved_plan.document(dataclasses.replace(plan(), account="111122223333"), spec=SPEC), **changes}


def test_the_account_region_and_stack_must_be_the_ones_in_use():
    saved_plan.check_matches(saved(), path="p", spec=SPEC, region="eu-west-1", account="111122223333")
    with pytest.raises(saved_plan.SavedPlanError, match="p is a plan for account '111122223333'.*'444455556666'"):
        saved_plan.check_matches(saved(), path="p", spec=SPEC, region="eu-west-1", account="444455556666")
    with pytest.raises(saved_plan.SavedPlanError, match="for region 'eu-west-1'.*'us-east-1'"):
        saved_plan.check_matches(saved(), path="p", spec=SPEC, region="us-east-1", account="111122223333")


def test_secrets_are_only_in_hashes_and_a_live_value_change_is_stale():
    document = saved()
    assert "old-secret" not in str(document) and "new-secret" not in str(document)
    assert document["tool_version"] == __version__
    saved_plan.check_fresh(document, plan(), path="p")
    with pytest.raises(saved_plan.StalePlan, match="lambda_function.f: its live values or planned change differ"):
        saved_plan.check_fresh(document, plan(memory_before=3008), path="p")


def test_revived_it_renders_the_causes_and_masked_values_it_was_saved_with():
    revived = saved_plan.revive(saved(), path="p")
    attrs = revived.changes[0].attributes
    assert [(a.path, a.before, a.after, a.cause) for a in attrs] == [
        ("memory", 2048, 1024, Cause.DRIFT), ("environment.API_TOKEN", "(sensitive)", "(sensitive)", Cause.SPEC)]


def test_a_file_too_large_to_be_a_plan_is_refused_without_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(saved_plan, "MAX_BYTES", 10)
    path = tmp_path / "big.plan"
    path.write_text("{" + " " * 20 + "}")
    with pytest.raises(saved_plan.SavedPlanError, match="is not a saved plan \\(over 10 bytes\\)"):
        saved_plan.load(str(path))


def test_a_saved_plan_whose_changes_do_not_read_back_is_one_clear_error():
    broken = saved()
    broken["plan"]["changes"][0]["action"] = "explode"
    with pytest.raises(saved_plan.SavedPlanError, match="p is not a complete saved plan \\(ValueError: "):
        saved_plan.revive(broken, path="p")
