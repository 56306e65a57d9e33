"""apply against moto: step lines, idempotence, stopping at the first failure, no deletes."""
import itertools

import pytest
from botocore.stub import Stubber
from moto_harness import REGION, STACK

from reconciler.apply import failure_report
from reconciler.plan import Action, AttributeChange, Plan, ResourceChange

READS_OF_A_CONVERGED_STACK = {
    "GetBucketLocation", "GetBucketVersioning", "GetBucketEncryption", "GetPublicAccessBlock", "GetBucketTagging",
    "DescribeRepositories", "ListTagsForResource",
    "GetRole", "ListAttachedRolePolicies", "ListRolePolicies", "GetRolePolicy",
}


def clock_ticking(seconds: float):
    """A clock that advances by `seconds` each time it is read."""
    return itertools.count(0, seconds).__next__


def test_each_step_prints_one_line_with_its_outcome_and_duration(canvas):
    applied = canvas.apply(clock=clock_ticking(0.4))

    bucket, repository, role = canvas.names.addresses.values()
    assert applied.lines == [
        f"[1/3] create {bucket} … SUCCESS (0.4s)",
        f"[2/3] create {repository} … SUCCESS (0.4s)",
        f"[3/3] create {role} … SUCCESS (0.4s)",
    ]
    assert [c.address for c in applied.result.done] == [bucket, repository, role]


def test_apply_on_a_converged_stack_makes_no_mutating_call(canvas):
    canvas.converge()
    assert canvas.calls.mutating, "the recorder sees the calls the first apply made"
    canvas.calls.clear()

    plan = canvas.plan()
    applied = canvas.apply(plan)

    assert [(c.type, c.action) for c in plan.changes] == [
        ("s3_bucket", Action.NOOP), ("ecr_repository", Action.NOOP), ("iam_role", Action.NOOP)]
    assert applied.result.ok and applied.result.done == [] and applied.lines == []
    assert READS_OF_A_CONVERGED_STACK <= set(canvas.calls.operations)
    assert canvas.calls.mutating == []


def test_first_failure_stops_the_run_and_the_next_run_continues(canvas, console, faults):
    denied = "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecr:CreateRepository"
    allow_again = faults(canvas.clients.ecr, "CreateRepository", "AccessDeniedException", denied)
    bucket, repository, role = canvas.names.addresses.values()

    applied = canvas.apply(clock=clock_ticking(0.4))

    assert applied.lines == [
        f"[1/3] create {bucket} … SUCCESS (0.4s)",
        f"[2/3] create {repository} … FAIL: AccessDeniedException: {denied}",
    ]
    result = applied.result
    assert not result.ok
    assert ([c.address for c in result.done], result.failed.address, [c.address for c in result.remaining]) == (
        [bucket], repository, [role])
    assert failure_report(result) == [
        "Apply stopped at a failure: 1 of 3 change(s) done.",
        f"  done:     create {bucket}",
        f"  failed:   create {repository}",
        f"  not run:  create {role}",
        "Fix the cause and run `reconcile apply` again: it plans afresh from live state "
        "and continues where this run stopped.",
    ]
    assert console.iam.list_roles()["Roles"] == [], "a step after the failure never ran"

    allow_again()
    plan = canvas.plan()
    assert [c.action for c in plan.changes] == [Action.NOOP, Action.CREATE, Action.CREATE]
    assert canvas.apply(plan, clock=clock_ticking(0.4)).lines == [
        f"[1/2] create {repository} … SUCCESS (0.4s)",
        f"[2/2] create {role} … SUCCESS (0.4s)",
    ]
    assert not canvas.plan().has_changes


def test_failure_inside_a_step_leaves_the_rest_of_it_to_the_next_plan(canvas, faults):
    allow_again = faults(canvas.clients.s3, "PutBucketVersioning", "AccessDenied", "Access Denied", status=403)

    applied = canvas.apply()

    address = canvas.names.addresses["s3_bucket"]
    assert applied.lines == [f"[1/3] create {address} … FAIL: AccessDenied: Access Denied"]
    allow_again()
    plan = canvas.plan()
    bucket = canvas.change(plan, "s3_bucket")
    assert bucket.action is Action.UPDATE, "the bucket was created; only its settings are missing"
    assert "versioning" in bucket.changed_paths
    assert [c.action for c in plan.changes if c.type != "s3_bucket"] == [Action.CREATE, Action.CREATE]
    canvas.converge()


def test_apply_carries_out_the_plan_it_is_given_without_reading_again(canvas):
    """A Plan is data: apply works from it alone, one call per changed aspect (Stubber fails on
    any call it was not told about, a describe included)."""
    arn = "arn:aws:ecr:us-west-2:123456789012:repository/repl"
    change = ResourceChange(
        type="ecr_repository", name="repl", action=Action.UPDATE,
        attributes=(AttributeChange("scan_on_push", False, True),
                    AttributeChange("tag_mutability", "IMMUTABLE", "MUTABLE")),
        desired={"name": "repl", "scan_on_push": True, "tag_mutability": "MUTABLE", "tags": {"canvas:stack": STACK}},
        live={"name": "repl", "arn": arn, "scan_on_push": False, "tag_mutability": "IMMUTABLE",
              "tags": {"canvas:stack": STACK}},
    )
    missing = "The repository with name 'repl' does not exist in the registry with id '123456789012'"

    with Stubber(canvas.clients.ecr) as ecr:
        ecr.add_response("put_image_scanning_configuration", {},
                         {"repositoryName": "repl", "imageScanningConfiguration": {"scanOnPush": True}})
        ecr.add_client_error("put_image_tag_mutability", "RepositoryNotFoundException", missing,
                             expected_params={"repositoryName": "repl", "imageTagMutability": "MUTABLE"})
        applied = canvas.apply(Plan(stack=STACK, region=REGION, changes=(change,)), clock=clock_ticking(0.1))
        ecr.assert_no_pending_responses()

    assert applied.lines == [f"[1/1] update ecr_repository.repl … FAIL: RepositoryNotFoundException: {missing}"]
    assert applied.result.failed is change


@pytest.mark.parametrize("action", [Action.DELETE, Action.REPLACE])
def test_a_bucket_is_never_deleted(canvas, console, action):
    canvas.converge()
    canvas.calls.clear()
    name = canvas.names.bucket
    change = ResourceChange(type="s3_bucket", name=name, action=action, desired={"name": name}, live={"name": name})

    applied = canvas.apply(Plan(stack=STACK, region=REGION, changes=(change,)))

    assert applied.lines == [
        f"[1/1] {action.value} s3_bucket.{name} … FAIL: {action.value} is not supported for s3_bucket"]
    assert canvas.calls.mutating == []
    assert name in [b["Name"] for b in console.s3.list_buckets()["Buckets"]]
