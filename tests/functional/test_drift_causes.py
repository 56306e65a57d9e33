"""Drift versus pending change, kind by kind, against moto: with a record of the last apply,
a change made in AWS is `drift`, a canvas.yaml edit is `spec`, the two at once `both`; with no
record every difference is `spec`.

Each case deploys the whole stack, records it as a successful apply would, then changes AWS
(the colleague's console), canvas.yaml, or both, and reads the cause off a fresh plan.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import pytest
from lambda_harness import FUNCTION, STACK_TAGS, LambdaConsole
from moto_harness import Echo

from reconciler.apply import apply_recorded
from reconciler.kinds.lambda_permission import URL_INVOKE
from reconciler.plan import Action, Cause

BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
S3_READ = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
VPC = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
EXTRA_GRANT = {"Version": "2012-10-17",
               "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def record(canvas) -> str:
    """Apply and record, as `reconcile apply` does after a fully successful run."""
    applied = apply_recorded(canvas.plan(), canvas.clients, spec=canvas.spec(), echo=Echo())
    assert applied.ok and applied.recorded, applied
    return applied.recorded


@dataclass(frozen=True)
class Case:
    """One kind's attribute, changed by hand (`drift`) and in canvas.yaml (`spec`) — each to a
    different value, so doing both leaves three values apart: last applied, live, desired."""

    kind: str  # the key of stack.address
    path: str
    drift: Callable[[LambdaConsole], None]
    spec: Callable[[dict], None]
    # A boolean has only two values: changed by hand and in canvas.yaml, live and desired agree.
    two_valued: bool = False


def _retag(console: LambdaConsole, kind: str) -> None:
    tags = {**STACK_TAGS, "team": "ops"}
    if kind == "s3_bucket":
        console.s3.put_bucket_tagging(Bucket=console.names.bucket,
                                      Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    elif kind == "ecr_repository":
        console.ecr.tag_resource(resourceArn=console.repository_arn(), tags=[{"Key": "team", "Value": "ops"}])


def _team_platform(data: dict) -> None:
    data["tags"]["team"] = "platform"


def _set(*path, value):
    def edit(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _public_url_statement_by_hand(console: LambdaConsole) -> None:
    """The second public statement replaced by hand with one for a single account."""
    console.lam.remove_permission(FunctionName=FUNCTION, StatementId=URL_INVOKE)
    console.lam.add_permission(FunctionName=FUNCTION, StatementId=URL_INVOKE, Action="lambda:InvokeFunction",
                               Principal="111122223333", InvokedViaFunctionUrl=True)


CASES = {
    "bucket": Case(
        "s3_bucket", "tags.team",
        drift=lambda c: _retag(c, "s3_bucket"), spec=_team_platform),
    "repository": Case(
        "ecr_repository", "scan_on_push",
        drift=lambda c: c.ecr.put_image_scanning_configuration(
            repositoryName=c.names.repository, imageScanningConfiguration={"scanOnPush": False}),
        spec=_set("repository", "scan_on_push", value=False), two_valued=True),
    "repository tags": Case(
        "ecr_repository", "tags.team",
        drift=lambda c: _retag(c, "ecr_repository"), spec=_team_platform),
    "role": Case(
        "iam_role", "managed_policies",
        drift=lambda c: c.iam.attach_role_policy(RoleName=c.names.role, PolicyArn=VPC),
        spec=_set("role", "managed_policies", value=[BASIC, S3_READ])),
    "role inline policy": Case(
        "iam_role", "inline_policies.S3DatabaseAccessPolicy",
        drift=lambda c: c.iam.put_role_policy(RoleName=c.names.role, PolicyName="S3DatabaseAccessPolicy",
                                              PolicyDocument=json.dumps(EXTRA_GRANT)),
        spec=_set("bucket", "database_key", value="database/other.db")),
    "function": Case(
        "lambda_function", "memory",
        drift=lambda c: c.lam.update_function_configuration(FunctionName=FUNCTION, MemorySize=1024),
        spec=_set("function", "memory", value=3008)),
    "url": Case(
        "lambda_function_url", "cors.allow_origins",
        drift=lambda c: c.set_cors(AllowOrigins=["https://evil.example"]),
        spec=_set("url", "cors", "allow_origins", value=["https://app.example"])),
    "permission": Case(
        URL_INVOKE, "principal",
        drift=_public_url_statement_by_hand,
        spec=_set("url", "auth_type", value="AWS_IAM")),
}


def cause_of(plan, address: str, path: str) -> Cause:
    [change] = [c for c in plan.changes if c.address == address]
    [attr] = [a for a in change.attributes if a.path == path]
    return attr.cause


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_drift_then_both_then_a_pending_edit(deployed, lambda_console, case):
    address = deployed.address[case.kind]
    record(deployed)

    # Changed in AWS since the last apply: drift, and nothing else is.
    case.drift(lambda_console)
    plan = deployed.plan()
    assert cause_of(plan, address, case.path) is Cause.DRIFT
    assert [c.address for c in plan.drifted] == [address]

    # canvas.yaml edited too: both — or, for a value with two states, nothing left to change.
    deployed.write(case.spec)
    plan = deployed.plan()
    if case.two_valued:
        assert case.path not in next((c.changed_paths for c in plan.changes if c.address == address), ())
    else:
        assert cause_of(plan, address, case.path) is Cause.BOTH
        assert address in [c.address for c in plan.drifted]

    # Applied (and recorded), then canvas.yaml back as it was: a pending edit, not drift.
    assert record(deployed)
    deployed.write()
    plan = deployed.plan()
    assert cause_of(plan, address, case.path) is Cause.SPEC
    assert plan.drifted == ()


def test_without_a_record_every_difference_is_spec(deployed, lambda_console):
    """The first run: every kind changed by hand at once, and none of it can be called drift."""
    for case in CASES.values():
        case.drift(lambda_console)

    plan = deployed.plan()

    assert plan.baseline.record is None and plan.baseline.problem is None
    for case in CASES.values():
        assert cause_of(plan, deployed.address[case.kind], case.path) is Cause.SPEC, case
    assert {a.cause for c in plan.changes for a in c.attributes} == {Cause.SPEC}
    assert plan.drifted == ()


def test_a_resource_deleted_by_hand_is_drift_and_one_the_last_apply_removed_is_not(deployed, lambda_console):
    record(deployed)
    lambda_console.lam.delete_function_url_config(FunctionName=FUNCTION)

    [url] = [c for c in deployed.plan().drifted]
    assert url.address == deployed.address["lambda_function_url"] and url.action is Action.CREATE
    assert {a.cause for a in url.attributes} == {Cause.DRIFT}

    # canvas.yaml drops the public URL and apply records that: the permissions are recorded
    # as absent, so one added again by hand is drift, to be removed.
    deployed.write(_set("url", "auth_type", value="AWS_IAM"))
    record(deployed)
    lambda_console.lam.add_permission(FunctionName=FUNCTION, StatementId=URL_INVOKE, Action="lambda:InvokeFunction",
                                      Principal="*", InvokedViaFunctionUrl=True)
    [permission] = deployed.plan().drifted
    assert permission.address == deployed.address[URL_INVOKE] and permission.action is Action.DELETE
    assert {a.cause for a in permission.attributes} == {Cause.DRIFT}


def test_a_new_image_pushed_under_the_tag_is_a_pending_change_not_drift(deployed, lambda_console):
    """Pushing is how a new version is deployed; pointing the function elsewhere by hand is not."""
    record(deployed)
    lambda_console.push(b"image two")

    plan = deployed.plan()
    assert cause_of(plan, deployed.address["lambda_function"], "image_digest") is Cause.SPEC
    assert plan.drifted == ()


def test_a_tag_the_last_apply_did_not_manage_is_spec_even_when_set_by_hand(deployed, lambda_console):
    """Unset means unmanaged: a tag canvas.yaml starts naming was never applied, so not drift."""
    record(deployed)
    lambda_console.s3.put_bucket_tagging(Bucket=deployed.names.bucket, Tagging={"TagSet": [
        {"Key": k, "Value": v} for k, v in {**STACK_TAGS, "owner": "alice"}.items()]})
    deployed.write(_set("tags", "owner", value="bob"))

    assert cause_of(deployed.plan(), deployed.address["s3_bucket"], "tags.owner") is Cause.SPEC
