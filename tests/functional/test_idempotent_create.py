"""A create refused because the resource exists (a lost response, a concurrent apply) is
adopted when it is this stack's, and refused as in plan when it is another's."""
import pytest
from moto_harness import STACK, USER_TAGS

from reconciler.plan import Action
from reconciler.reserved import STACK_TAG

OURS = {**USER_TAGS, STACK_TAG: STACK}
KINDS = ("s3_bucket", "ecr_repository", "iam_role")


@pytest.mark.parametrize("kind", KINDS)
def test_a_create_that_finds_this_stacks_resource_continues_as_an_update(canvas, console, kind):
    plan = canvas.plan()  # everything still to create
    assert canvas.change(plan, kind).action is Action.CREATE
    console.make(kind, {STACK_TAG: STACK})  # made meanwhile, by our lost create or another apply

    applied = canvas.apply(plan)

    assert applied.result.ok, applied.lines
    assert any("already exists" in line and "this stack's" in line for line in applied.lines), applied.lines
    assert console.tags_of(kind) == OURS  # the user's tags were still missing: the update added them
    assert not canvas.plan().has_changes


@pytest.mark.parametrize("kind", KINDS)
def test_a_create_that_finds_another_stacks_resource_fails_as_plan_would(canvas, console, kind):
    plan = canvas.plan()
    console.make(kind, {STACK_TAG: "someone-else"})

    applied = canvas.apply(plan)

    assert applied.result.failed.type == kind
    assert f"belongs to stack 'someone-else' (tag {STACK_TAG}), not to '{STACK}'" in applied.lines[-1]
    assert console.tags_of(kind) == {STACK_TAG: "someone-else"}  # left untouched


def test_an_untagged_bucket_is_adopted_because_the_create_call_sets_nothing_but_its_name(canvas, console):
    plan = canvas.plan()
    console.make("s3_bucket", {})  # our create_bucket worked, its answer was lost before the tagging

    applied = canvas.apply(plan)

    assert applied.result.ok, applied.lines
    assert console.bucket_tags() == OURS


def test_an_untagged_role_is_not_adopted_the_create_call_would_have_tagged_it(canvas, console):
    plan = canvas.plan()
    console.make("iam_role", {})

    applied = canvas.apply(plan)

    assert applied.result.failed.type == "iam_role"
    assert "already exists, untagged, and differs from canvas.yaml in tags." in applied.lines[-1]
    assert console.role_tags() == {}
