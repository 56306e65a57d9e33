"""The Lambda side as a user drives it: the whole stack from nothing, a new image pushed under
the same tag, changes made by hand, and a URL switched from public to AWS_IAM."""
from __future__ import annotations

import json
import re

from tests.e2e.conftest import BUCKET, DB_KEY, FUNCTION, REPO, ROLE, STACK, TAG
from tests.ecr_images import register_image

IMAGE = f"container_image.{REPO}:{TAG}"
URL = f"lambda_function_url.{FUNCTION}"
URL_ACCESS = "lambda_permission.FunctionURLAllowPublicAccess"
URL_INVOKE = "lambda_permission.FunctionURLInvokeAllowPublicAccess"


def changes_of(output: str) -> dict[str, dict]:
    return {c["address"]: c for c in json.loads(output)["changes"]}


def attributes_of(change: dict) -> dict[str, tuple]:
    return {a["path"]: (a["before"], a["after"]) for a in change["attributes"]}


def policy_sids(aws) -> list[str]:
    try:
        policy = aws.lambda_.get_policy(FunctionName=FUNCTION)["Policy"]
    except aws.lambda_.exceptions.ResourceNotFoundException:
        return []
    return sorted(s["Sid"] for s in json.loads(policy)["Statement"])


def running_digest(aws) -> str:
    # rpartition: after an update by digest, moto 5.x reports `repo@sha256@sha256:<hex>`.
    return aws.lambda_.get_function(FunctionName=FUNCTION)["Code"]["ResolvedImageUri"].rpartition("@")[2]


def test_stack_from_nothing_waits_for_its_image_then_follows_a_new_push(reconcile, prebuilt_canvas, aws):
    first = reconcile("apply", "--auto-approve")
    assert first.code == 1, first.out + first.err
    refused = rf"\] \w+ {re.escape(IMAGE)} … FAIL: .*not found in the emulator.s ECR .*stand-in-image"
    assert re.search(refused, first.out), first.out
    assert "Traceback" not in first.err
    plan_shown = first.out.split("[1/")[0]
    assert f"{IMAGE} will be created" in plan_shown and "not in ECR" in plan_shown  # said plainly up front
    # What does not need the image was made; the function was not attempted.
    assert aws.s3.head_bucket(Bucket=BUCKET)
    assert aws.ecr.describe_repositories(repositoryNames=[REPO])["repositories"]
    assert aws.iam.get_role(RoleName=ROLE)
    assert aws.lambda_.list_functions()["Functions"] == []

    first_digest = register_image(aws.ecr, REPO, TAG, b"image one")
    second = reconcile("apply", "--auto-approve")
    assert second.code == 0, second.out + second.err
    steps = [f"lambda_function.{FUNCTION}", URL, URL_ACCESS, URL_INVOKE]
    function_at, url_at, *permissions_at = [second.out.find(f"create {address} … SUCCESS") for address in steps]
    assert -1 not in (function_at, url_at, *permissions_at), second.out
    assert function_at < url_at < min(permissions_at), second.out  # dependency order

    config = aws.lambda_.get_function_configuration(FunctionName=FUNCTION)
    assert (config["PackageType"], config["MemorySize"], config["Timeout"], config["EphemeralStorage"]["Size"]) == (
        "Image", 2048, 900, 1024)
    assert config["Role"] == aws.iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    assert config["Environment"]["Variables"] == {
        "NODE_ENV": "production", "PORT": "8080", "S3_BUCKET_NAME": BUCKET, "S3_DB_KEY": DB_KEY}
    assert aws.lambda_.list_tags(Resource=config["FunctionArn"])["Tags"].get("canvas:stack") == STACK
    assert running_digest(aws) == first_digest
    url = aws.lambda_.get_function_url_config(FunctionName=FUNCTION)
    assert url["AuthType"] == "NONE" and url["Cors"]["AllowOrigins"] == ["*"]
    assert policy_sids(aws) == ["FunctionURLAllowPublicAccess", "FunctionURLInvokeAllowPublicAccess"]

    third = reconcile("apply", "--auto-approve")
    assert third.code == 0, third.err
    assert "SUCCESS" not in third.out and "No changes." in third.out

    second_digest = register_image(aws.ecr, REPO, TAG, b"image two")
    assert second_digest != first_digest
    drift = reconcile("plan", "--json", "--detailed-exitcode")
    assert drift.code == 2, drift.out + drift.err
    changes = changes_of(drift.out)
    assert changes[f"lambda_function.{FUNCTION}"]["action"] == "update"
    assert changes[f"lambda_function.{FUNCTION}"]["attributes"] == [
        {"path": "image_digest", "before": first_digest, "after": second_digest, "cause": "spec"}]
    assert [c["address"] for c in changes.values() if c["action"] != "no-op"] == [f"lambda_function.{FUNCTION}"]
    # The public-URL warning goes to stderr, once, and never into the JSON on stdout.
    assert drift.err.count("Warning:") == 1 and "public" in drift.err, drift.err

    repair = reconcile("apply", "--auto-approve")
    assert repair.code == 0, repair.out + repair.err
    assert f"update lambda_function.{FUNCTION} … SUCCESS" in repair.out
    assert running_digest(aws) == second_digest
    assert reconcile("plan", "--detailed-exitcode").code == 0


def test_changes_made_by_hand_are_detected_with_their_path_and_repaired(reconcile, deployed, aws):
    variables = aws.lambda_.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    aws.lambda_.update_function_configuration(FunctionName=FUNCTION, MemorySize=1024,
                                              Environment={"Variables": {**variables, "NODE_ENV": "development"}})
    aws.lambda_.update_function_url_config(FunctionName=FUNCTION, AuthType="AWS_IAM", Cors={
        "AllowOrigins": ["https://evil.example"], "AllowMethods": ["*"], "AllowHeaders": ["*"]})
    aws.lambda_.remove_permission(FunctionName=FUNCTION, StatementId="FunctionURLInvokeAllowPublicAccess")

    plan = reconcile("plan", "--json", "--detailed-exitcode")
    assert plan.code == 2, plan.out + plan.err
    changes = changes_of(plan.out)
    assert attributes_of(changes[f"lambda_function.{FUNCTION}"]) == {
        "memory": (1024, 2048), "environment.NODE_ENV": ("development", "production")}
    assert changes[URL]["action"] == "update"
    assert attributes_of(changes[URL]) == {
        "auth_type": ("AWS_IAM", "NONE"), "cors.allow_origins": (["https://evil.example"], ["*"])}
    assert changes[URL_INVOKE]["action"] == "create"
    assert changes[URL_ACCESS]["action"] == "no-op"
    assert {a for a, c in changes.items() if c["action"] != "no-op"} == {f"lambda_function.{FUNCTION}", URL, URL_INVOKE}

    repair = reconcile("apply", "--auto-approve")
    assert repair.code == 0, repair.out + repair.err
    config = aws.lambda_.get_function_configuration(FunctionName=FUNCTION)
    assert config["MemorySize"] == 2048 and config["Environment"]["Variables"]["NODE_ENV"] == "production"
    url = aws.lambda_.get_function_url_config(FunctionName=FUNCTION)
    assert url["AuthType"] == "NONE" and url["Cors"]["AllowOrigins"] == ["*"]
    assert policy_sids(aws) == ["FunctionURLAllowPublicAccess", "FunctionURLInvokeAllowPublicAccess"]
    after = reconcile("plan", "--detailed-exitcode")
    assert after.code == 0, after.out


def test_url_switched_to_aws_iam_deletes_both_public_permissions(reconcile, deployed, prebuilt_canvas, aws):
    text = prebuilt_canvas.read_text()
    assert "auth_type: NONE" in text
    prebuilt_canvas.write_text(text.replace("auth_type: NONE", "auth_type: AWS_IAM"))

    plan = reconcile("plan", "--json", "--detailed-exitcode")
    assert plan.code == 2, plan.out + plan.err
    changes = changes_of(plan.out)
    assert changes[URL_ACCESS]["action"] == "delete" and changes[URL_INVOKE]["action"] == "delete"
    assert attributes_of(changes[URL]) == {"auth_type": ("NONE", "AWS_IAM")}
    assert "public" not in plan.err  # no public-URL warning once it is not public

    applied = reconcile("apply", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    for address in (URL_ACCESS, URL_INVOKE):
        assert f"delete {address} … SUCCESS" in applied.out
    assert aws.lambda_.get_function_url_config(FunctionName=FUNCTION)["AuthType"] == "AWS_IAM"
    assert policy_sids(aws) == []
    after = reconcile("plan", "--detailed-exitcode")
    assert after.code == 0, after.out
