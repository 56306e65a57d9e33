"""The planner against moto: ownership, adoption, foreign stacks, region, read errors."""
import threading

import botocore.exceptions
import pytest
from moto_harness import OTHER_REGION, REGION, STACK, USER_TAGS

from reconciler.errors import PlanError, ReconcileError
from reconciler.plan import Action, AttributeChange
from reconciler.reserved import STACK_TAG

KINDS = ["s3_bucket", "ecr_repository", "iam_role"]
SERVICE = {"s3_bucket": "s3", "ecr_repository": "ecr", "iam_role": "iam"}
TAG_CALL = {"s3_bucket": "PutBucketTagging", "ecr_repository": "TagResource", "iam_role": "TagRole"}
FIRST_READ = {"s3_bucket": "GetBucketLocation", "ecr_repository": "DescribeRepositories", "iam_role": "GetRole"}


@pytest.mark.parametrize("kind", KINDS)
def test_untagged_resource_is_adopted_by_adding_the_ownership_tag(canvas, console, kind):
    console.make(kind, tags={**USER_TAGS, "owner": "alice"})

    plan = canvas.plan()

    change = canvas.change(plan, kind)
    assert change.action is Action.UPDATE
    assert change.attributes == (AttributeChange("tags.canvas:stack", None, STACK),)
    assert {c.action for c in plan.changes if c.type != kind} == {Action.CREATE}

    canvas.calls.clear()
    assert canvas.apply(plan).result.ok
    assert canvas.calls.mutating_in(SERVICE[kind]) == [TAG_CALL[kind]]
    assert console.tags_of(kind) == {**USER_TAGS, "owner": "alice", STACK_TAG: STACK}
    assert not canvas.plan().has_changes


@pytest.mark.parametrize("kind", KINDS)
def test_resource_of_another_stack_is_refused_and_left_untouched(canvas, console, kind):
    foreign_tags = {**USER_TAGS, STACK_TAG: "billing-prod"}
    console.make(kind, tags=foreign_tags)

    with pytest.raises(PlanError) as raised:
        canvas.plan()

    [problem] = raised.value.problems
    address = canvas.names.addresses[kind]
    assert problem.startswith(f"{address} belongs to stack 'billing-prod'")
    assert f"not to '{STACK}'" in problem
    assert FIRST_READ[kind] in canvas.calls.operations
    assert canvas.calls.mutating == []
    assert console.tags_of(kind) == foreign_tags


def test_bucket_in_another_region_is_an_error(canvas, console):
    console.make_bucket({**USER_TAGS, STACK_TAG: STACK}, region=OTHER_REGION)

    with pytest.raises(PlanError) as raised:
        canvas.plan()

    [problem] = raised.value.problems
    assert problem.startswith(f"s3_bucket.{canvas.names.bucket}: bucket {canvas.names.bucket} exists in "
                              f"{OTHER_REGION}, but canvas.yaml puts the stack in {REGION}")
    assert canvas.calls.mutating == []


def test_every_problem_found_while_reading_is_reported_together(canvas, console, faults):
    console.make_bucket({}, region=OTHER_REGION)
    console.make_role({STACK_TAG: "billing-prod"})
    faults(canvas.clients.ecr, "DescribeRepositories", "AccessDeniedException",
           "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecr:DescribeRepositories")

    with pytest.raises(PlanError) as raised:
        canvas.plan()

    bucket, repository, role = raised.value.problems
    assert f"exists in {OTHER_REGION}" in bucket
    assert repository == (
        f"reading ecr_repository.{canvas.names.repository} failed: AccessDeniedException: User: "
        "arn:aws:iam::123456789012:user/ci is not authorized to perform: ecr:DescribeRepositories"
        " — the plan needs read access to it (see README: permissions)")
    assert role.startswith(f"iam_role.{canvas.names.role} belongs to stack 'billing-prod'")


def test_resources_are_read_concurrently(canvas):
    # Each kind's first read waits until the other two have started theirs: read one after
    # another, the first would wait alone and the barrier would break.
    barrier = threading.Barrier(len(KINDS), timeout=10)

    def wait_for_the_others(**_) -> None:
        barrier.wait()

    waiters = []
    for kind, operation in FIRST_READ.items():
        client = getattr(canvas.clients, SERVICE[kind])
        event = f"before-call.{SERVICE[kind]}.{operation}"
        client.meta.events.register(event, wait_for_the_others, unique_id="barrier")
        waiters.append((client, event))
    try:
        plan = canvas.plan()
    finally:
        for client, event in waiters:
            client.meta.events.unregister(event, unique_id="barrier")

    assert not barrier.broken
    assert [c.action for c in plan.changes] == [Action.CREATE] * 3


def test_unreachable_endpoint_is_one_message_not_one_per_resource(canvas):
    def unreachable(**_):
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://iam.amazonaws.com/")

    for service in ("s3", "ecr", "iam"):
        canvas.clients.client(service).meta.events.register("before-call", unreachable, unique_id="offline")
    try:
        with pytest.raises(ReconcileError) as raised:
            canvas.plan()
    finally:
        for service in ("s3", "ecr", "iam"):
            canvas.clients.client(service).meta.events.unregister("before-call", unique_id="offline")

    assert not isinstance(raised.value, PlanError)
    message = str(raised.value)
    assert message.startswith("cannot reach AWS: Could not connect to the endpoint URL")
    assert message.count("cannot reach AWS") == 1
