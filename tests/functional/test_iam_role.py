"""iam_role against moto: create, drift of each managed attribute, policy normalization."""
import json

import pytest
from moto_harness import LAMBDA_BASIC, LAMBDA_TRUST, STACK, USER_TAGS, least_privilege_policy, seed_guide_policy

from reconciler.errors import PlanError
from reconciler.normalize import canonical_policy, policy_identity
from reconciler.plan import Action

DATABASE_POLICY = "S3DatabaseAccessPolicy"
S3_READ_ONLY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
EVERYTHING_IN_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def _grant(value):
    """Policy documents compared by what they grant; anything else as it is."""
    return policy_identity(value) if isinstance(value, dict) and "Statement" in value else value


def _inline_policy(console, name=DATABASE_POLICY) -> dict:
    return console.iam.get_role_policy(RoleName=console.names.role, PolicyName=name)["PolicyDocument"]


def _actions(document) -> set[str]:
    return {action for s in canonical_policy(document)["Statement"] for action in s["Action"]}


def test_create_from_nothing_then_converged(canvas, console):
    change = canvas.change(canvas.plan(), "iam_role")

    assert change.action is Action.CREATE
    assert change.address == f"iam_role.{canvas.names.role}"
    assert [a.path for a in change.attributes] == [
        "trust_policy", "managed_policies", f"inline_policies.{DATABASE_POLICY}",
        "tags.canvas:stack", "tags.cost-centre", "tags.team"]
    assert all(a.before is None for a in change.attributes)
    after = {a.path: a.after for a in change.attributes}
    assert after["trust_policy"] == canonical_policy(LAMBDA_TRUST)
    assert after["managed_policies"] == [LAMBDA_BASIC]
    database = after[f"inline_policies.{DATABASE_POLICY}"]
    assert database == canonical_policy(database), "policies are shown in canonical form"
    assert policy_identity(database) == policy_identity(least_privilege_policy(canvas.names.bucket))
    assert (after["tags.canvas:stack"], after["tags.team"]) == (STACK, "canvas")

    canvas.converge()

    assert {"CreateRole", "AttachRolePolicy", "PutRolePolicy"} <= set(canvas.calls.mutating_in("iam"))
    role = canvas.names.role
    attached = console.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [LAMBDA_BASIC]
    assert console.iam.list_role_policies(RoleName=role)["PolicyNames"] == [DATABASE_POLICY]
    # Least privilege: the guide's s3:HeadObject (not an IAM action) is not written.
    assert _actions(_inline_policy(console)) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                                "s3:AbortMultipartUpload", "s3:ListBucket"}
    assert console.role_tags() == {**USER_TAGS, "canvas:stack": STACK}


def _set_trust(document):
    return lambda console: console.iam.update_assume_role_policy(
        RoleName=console.names.role, PolicyDocument=json.dumps(document))


def _put_inline(name, document):
    return lambda console: console.iam.put_role_policy(
        RoleName=console.names.role, PolicyName=name, PolicyDocument=json.dumps(document))


def _detach_basic(console):
    console.iam.detach_role_policy(RoleName=console.names.role, PolicyArn=LAMBDA_BASIC)


def _attach_s3_read_only(console):
    console.iam.attach_role_policy(RoleName=console.names.role, PolicyArn=S3_READ_ONLY)


def _untag_stack(console):
    console.iam.untag_role(RoleName=console.names.role, TagKeys=["canvas:stack"])


def _retag_team(console):
    console.iam.tag_role(RoleName=console.names.role, Tags=[{"Key": "team", "Value": "platform"}])


# before/after of a policy are compared by grant; "derived" stands for the least-privilege policy.
DERIVED = object()
DRIFTS = [
    pytest.param(_set_trust(EC2_TRUST), "trust_policy", EC2_TRUST, LAMBDA_TRUST, "UpdateAssumeRolePolicy",
                 id="trust-policy"),
    pytest.param(_detach_basic, "managed_policies", [], [LAMBDA_BASIC], "AttachRolePolicy",
                 id="managed-policy-detached"),
    pytest.param(_attach_s3_read_only, "managed_policies", sorted([LAMBDA_BASIC, S3_READ_ONLY]), [LAMBDA_BASIC],
                 "DetachRolePolicy", id="managed-policy-extra"),
    pytest.param(_put_inline(DATABASE_POLICY, EVERYTHING_IN_S3), f"inline_policies.{DATABASE_POLICY}",
                 EVERYTHING_IN_S3, DERIVED, "PutRolePolicy", id="inline-policy-modified"),
    pytest.param(_put_inline("Backdoor", EVERYTHING_IN_S3), "inline_policies.Backdoor",
                 EVERYTHING_IN_S3, None, "DeleteRolePolicy", id="inline-policy-extra-purged"),
    pytest.param(_untag_stack, "tags.canvas:stack", None, STACK, "TagRole", id="ownership-tag-removed"),
    pytest.param(_retag_team, "tags.team", "platform", "canvas", "TagRole", id="user-tag-changed"),
]


@pytest.mark.parametrize("drift, path, before, after, repair_call", DRIFTS)
def test_drift_is_detected_and_repaired(canvas, console, drift, path, before, after, repair_call):
    canvas.converge()
    drift(console)
    if after is DERIVED:
        after = least_privilege_policy(canvas.names.bucket)

    canvas.assert_repaired("iam_role", (path, _grant(before), _grant(after)), repair_call, shown=_grant)


def _actions_in_other_case(bucket):
    policy = least_privilege_policy(bucket)
    policy["Statement"][2]["Action"] = ["S3:GetObject", "s3:putobject"]
    return policy


SAME_GRANT = [
    pytest.param(DATABASE_POLICY, least_privilege_policy, id="inline-order-string-vs-list-no-sid"),
    pytest.param(DATABASE_POLICY, _actions_in_other_case, id="inline-action-case"),
    pytest.param(None, lambda bucket: {
        "Version": "2012-10-17",
        "Statement": {"Sid": "", "Effect": "Allow", "Action": ["sts:AssumeRole"],
                      "Principal": {"Service": ["lambda.amazonaws.com"]}},
    }, id="trust-single-statement-object-and-lists"),
]


@pytest.mark.parametrize("policy_name, document", SAME_GRANT)
def test_policy_written_differently_by_hand_is_not_drift(canvas, console, policy_name, document):
    canvas.converge()
    written = document(canvas.names.bucket)
    if policy_name:
        _put_inline(policy_name, written)(console)
        stored = _inline_policy(console, policy_name)
    else:
        _set_trust(written)(console)
        stored = console.iam.get_role(RoleName=canvas.names.role)["Role"]["AssumeRolePolicyDocument"]
    assert stored == written, "the emulator keeps the document as written, as IAM does"

    assert not canvas.plan().has_changes


def test_seed_guide_policy_is_drift(canvas, console):
    canvas.converge()
    seed = seed_guide_policy(canvas.names.bucket)
    _put_inline(DATABASE_POLICY, seed)(console)

    change = canvas.change(canvas.plan(), "iam_role")

    assert [a.path for a in change.attributes] == [f"inline_policies.{DATABASE_POLICY}"]
    [attr] = change.attributes
    assert attr.before == canonical_policy(seed)
    assert policy_identity(attr.after) == policy_identity(least_privilege_policy(canvas.names.bucket))

    assert canvas.apply().result.ok
    repaired = _inline_policy(console)
    assert "s3:HeadObject" not in _actions(repaired)
    assert f"arn:aws:s3:::{canvas.names.bucket}/*" not in json.dumps(repaired)
    assert not canvas.plan().has_changes


MISSING_POLICY = "arn:aws:iam::aws:policy/AWSLambdaBasicExecutionRoleTypo"


def _declare_policies(*arns):
    def edit(data):
        data["role"]["managed_policies"] = list(arns)
    return edit


def test_a_managed_policy_that_does_not_exist_is_a_plan_error_not_a_failed_apply(canvas, console):
    canvas.write(_declare_policies(LAMBDA_BASIC, MISSING_POLICY))

    with pytest.raises(PlanError) as raised:
        canvas.plan()

    [problem] = raised.value.problems
    assert problem.startswith(f"iam_role.{canvas.names.role}: role.managed_policies: {MISSING_POLICY} does not exist")
    assert "iam:GetPolicy answered NoSuchEntity" in problem
    assert canvas.calls.mutating == []
    assert canvas.calls.operations.count("GetPolicy") == 2  # both checked, before anything is created


def test_policies_already_attached_cost_no_get_policy_call(canvas, console):
    canvas.converge()
    canvas.calls.clear()
    assert not canvas.plan().has_changes
    assert "GetPolicy" not in canvas.calls.operations
    # One newly declared: only it is looked up.
    canvas.write(_declare_policies(LAMBDA_BASIC, S3_READ_ONLY))
    canvas.calls.clear()
    assert canvas.change(canvas.plan(), "iam_role").changed_paths == ("managed_policies",)
    assert canvas.calls.operations.count("GetPolicy") == 1
