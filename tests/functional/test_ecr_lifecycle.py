"""repository.keep_images against moto: the lifecycle policy created, drift detected and
repaired, formatting ignored, and left alone when canvas.yaml does not mention it.
(moto stores and returns the policy; it never runs it, so expiry itself is not tested here.)"""
from __future__ import annotations

import json

import pytest

from reconciler.kinds import ecr_repository
from reconciler.plan import Action


def keep(count):
    def edit(spec):
        spec["repository"]["keep_images"] = count
    return edit


def live_policy(console, canvas) -> dict:
    text = console.ecr.get_lifecycle_policy(repositoryName=canvas.names.repository)["lifecyclePolicyText"]
    return json.loads(text)


def test_created_with_the_repository_then_converged(canvas, console):
    canvas.write(keep(5))
    change = canvas.change(canvas.plan(), "ecr_repository")
    assert ("lifecycle_policy", None, ecr_repository.lifecycle_policy(5)) in [
        (a.path, a.before, a.after) for a in change.attributes]

    canvas.converge()

    assert canvas.calls.mutating_in("ecr") == ["CreateRepository", "PutLifecyclePolicy"]
    assert live_policy(console, canvas) == ecr_repository.lifecycle_policy(5)


def _deleted(console, canvas):
    console.ecr.delete_lifecycle_policy(repositoryName=canvas.names.repository)


def _keeps_more(console, canvas):
    console.ecr.put_lifecycle_policy(repositoryName=canvas.names.repository,
                                     lifecyclePolicyText=json.dumps(ecr_repository.lifecycle_policy(50)))


@pytest.mark.parametrize("drift, before", [
    pytest.param(_deleted, None, id="policy-deleted"),
    pytest.param(_keeps_more, ecr_repository.lifecycle_policy(50), id="policy-edited"),
])
def test_drift_is_detected_and_repaired(canvas, console, drift, before):
    canvas.write(keep(5))
    canvas.converge()
    drift(console, canvas)

    plan = canvas.plan()
    change = canvas.change(plan, "ecr_repository")
    assert change.action is Action.UPDATE
    assert [(a.path, a.before, a.after) for a in change.attributes] == [
        ("lifecycle_policy", before, ecr_repository.lifecycle_policy(5))]

    canvas.calls.clear()
    applied = canvas.apply(plan)
    assert applied.result.ok, applied.lines
    assert canvas.calls.mutating == ["PutLifecyclePolicy"]
    assert live_policy(console, canvas) == ecr_repository.lifecycle_policy(5)


def test_the_same_policy_written_differently_is_not_drift(canvas, console):
    canvas.write(keep(5))
    canvas.converge()
    rules = ecr_repository.lifecycle_policy(5)["rules"]
    console.ecr.put_lifecycle_policy(repositoryName=canvas.names.repository,
                                     lifecyclePolicyText=json.dumps({"rules": rules[::-1]}, indent=2, sort_keys=True))
    assert canvas.change(canvas.plan(), "ecr_repository").action is Action.NOOP


def test_without_keep_images_the_policy_is_unmanaged_and_not_even_read(canvas, console):
    canvas.converge()
    _keeps_more(console, canvas)
    canvas.calls.clear()

    plan = canvas.plan()

    assert canvas.change(plan, "ecr_repository").action is Action.NOOP
    assert "GetLifecyclePolicy" not in canvas.calls.operations
