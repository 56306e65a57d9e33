"""`reconcile outputs` and `reconcile destroy` as a user runs them (CLI contract of issue 3)."""
from __future__ import annotations

import json
import re

import boto3
from click.testing import CliRunner

from reconciler import cli
from tests.e2e.conftest import BUCKET, DB_KEY, FUNCTION, REPO, ROLE, STACK

OUTPUT_NAMES = ["function_url", "bucket", "database_key", "role_arn", "function_arn", "image_digest"]
URL_ACCESS = "lambda_permission.FunctionURLAllowPublicAccess"
URL_INVOKE = "lambda_permission.FunctionURLInvokeAllowPublicAccess"
NOT_OURS = f"(not tagged canvas:stack={STACK})"


def text_outputs(output: str) -> list[tuple[str, str]]:
    return re.findall(r"^(\w+) = (.*)$", output, flags=re.MULTILINE)


def planned_deletes(output: str) -> list[str]:
    return re.findall(r"^\s+- (\S+) will be deleted$", output, flags=re.MULTILINE)


def object_history(aws) -> list[tuple]:
    """The app's objects; the tool's own records under canvas/ gain a version with every apply and destroy."""
    answer = aws.s3.list_object_versions(Bucket=BUCKET)
    mine = [v for v in answer.get("Versions", []) if not v["Key"].startswith("canvas/")]
    markers = [m for m in answer.get("DeleteMarkers", []) if not m["Key"].startswith("canvas/")]
    return sorted((v["Key"], v["VersionId"], v["IsLatest"], "version") for v in mine) + \
        sorted((m["Key"], m["VersionId"], m["IsLatest"], "marker") for m in markers)


def inventory(aws) -> dict:
    """Everything the stack can hold, as plain data, to show that a refused destroy changed nothing."""
    def absent_is_none(call):
        try:
            return call()
        except aws.lambda_.exceptions.ResourceNotFoundException:
            return None

    policy = absent_is_none(lambda: aws.lambda_.get_policy(FunctionName=FUNCTION)["Policy"])
    return {
        "buckets": [b["Name"] for b in aws.s3.list_buckets()["Buckets"]],
        "objects": object_history(aws) if BUCKET in [b["Name"] for b in aws.s3.list_buckets()["Buckets"]] else None,
        "repositories": {r["repositoryName"]: len(aws.ecr.list_images(repositoryName=r["repositoryName"])["imageIds"])
                         for r in aws.ecr.describe_repositories()["repositories"]},
        "roles": [r["RoleName"] for r in aws.iam.list_roles()["Roles"]],
        "functions": [f["FunctionName"] for f in aws.lambda_.list_functions()["Functions"]],
        "url": absent_is_none(lambda: aws.lambda_.get_function_url_config(FunctionName=FUNCTION)["AuthType"]),
        "permissions": sorted(s["Sid"] for s in json.loads(policy)["Statement"]) if policy else [],
    }


def write_database_history(aws) -> None:
    """Three versions of the database, one other object, and one deleted object (a marker):
    2 objects, 5 versions and 1 delete marker."""
    for generation in range(3):
        aws.s3.put_object(Bucket=BUCKET, Key=DB_KEY, Body=f"SQLite format 3 generation {generation}".encode())
    aws.s3.put_object(Bucket=BUCKET, Key="exports/tasks.csv", Body=b"id,title\n")
    aws.s3.put_object(Bucket=BUCKET, Key="notes/old.txt", Body=b"gone")
    aws.s3.delete_object(Bucket=BUCKET, Key="notes/old.txt")


# ---- outputs ---------------------------------------------------------------------------

def test_outputs_of_a_deployed_stack_agree_with_aws(reconcile, deployed, aws):
    config = aws.lambda_.get_function_configuration(FunctionName=FUNCTION)
    expected = {
        "function_url": aws.lambda_.get_function_url_config(FunctionName=FUNCTION)["FunctionUrl"],
        "bucket": BUCKET,
        "database_key": DB_KEY,
        "role_arn": aws.iam.get_role(RoleName=ROLE)["Role"]["Arn"],
        "function_arn": config["FunctionArn"],
        "image_digest": deployed,
    }

    text = reconcile("outputs")
    assert text.code == 0, text.err
    assert text_outputs(text.out) == [(name, expected[name]) for name in OUTPUT_NAMES]

    as_json = reconcile("outputs", "--json")
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out) == expected


def test_outputs_of_an_empty_account_are_all_absent(reconcile, canvas_file, aws):
    text = reconcile("outputs")
    assert text.code == 0, text.err
    assert text_outputs(text.out) == [(name, "(not deployed)") for name in OUTPUT_NAMES]

    as_json = reconcile("outputs", "--json")
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out) == {name: None for name in OUTPUT_NAMES}
    assert aws.s3.list_buckets()["Buckets"] == []  # read-only: nothing was created


# ---- destroy ---------------------------------------------------------------------------

def test_destroy_refuses_without_confirmation_and_deletes_nothing(reconcile, deployed, aws):
    before = inventory(aws)
    assert before["functions"] == [FUNCTION] and before["url"] == "NONE" and len(before["permissions"]) == 2

    no_terminal = reconcile("destroy")
    assert no_terminal.code == 1
    assert "--auto-approve" in no_terminal.err and "Traceback" not in no_terminal.err
    assert inventory(aws) == before

    for missing_or_wrong, said in (((), f"also needs --confirm-bucket {BUCKET}"),
                                   (("--confirm-bucket", BUCKET + "-typo"),
                                    f"--confirm-bucket '{BUCKET}-typo' is not this stack's bucket '{BUCKET}'")):
        run = reconcile("destroy", "--delete-bucket", "--auto-approve", *missing_or_wrong)
        assert run.code == 1, (missing_or_wrong, run.out)
        assert said in run.err and "Traceback" not in run.err  # a wrong name is told apart from a missing one
        assert "SUCCESS" not in run.out
        assert inventory(aws) == before, missing_or_wrong


def test_destroy_on_a_terminal_asks_for_the_bucket_name_not_yes(aws, canvas_file, monkeypatch):
    aws.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    aws.s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "canvas:stack", "Value": STACK}]})
    monkeypatch.chdir(canvas_file.parent)
    monkeypatch.setattr(cli, "stdin_is_tty", lambda: True)

    result = CliRunner().invoke(cli.main, ["destroy", "--delete-bucket"], input="yes\n")
    assert result.exit_code == 1
    assert "destroy cancelled; nothing was deleted" in result.output
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == [BUCKET]


def test_destroy_keeps_the_bucket_its_data_and_a_repository_holding_images(reconcile, deployed, aws):
    write_database_history(aws)
    history = object_history(aws)

    run = reconcile("destroy", "--auto-approve")
    assert run.code == 0, run.out + run.err
    deletes = planned_deletes(run.out)
    assert sorted(deletes[:2]) == [URL_ACCESS, URL_INVOKE]  # reverse dependency order
    assert deletes[2:] == [f"lambda_function_url.{FUNCTION}", f"lambda_function.{FUNCTION}", f"iam_role.{ROLE}"]
    assert f"kept: s3_bucket.{BUCKET} (it holds the database; pass --delete-bucket to delete it)" in run.out
    assert f"kept: ecr_repository.{REPO} (it holds 1 image(s); pass --force to delete them with it)" in run.out
    assert "Plan: 0 to create, 0 to update, 0 to replace, 5 to delete." in run.out
    assert re.search(rf"\[\d/5\] delete iam_role\.{ROLE} … SUCCESS \(", run.out), run.out
    assert "Destroy complete: 5 deleted." in run.out

    left = inventory(aws)
    assert left["functions"] == [] and ROLE not in left["roles"]
    assert left["repositories"] == {REPO: 1}
    assert left["buckets"] == [BUCKET] and left["objects"] == history

    forced = reconcile("destroy", "--auto-approve", "--force")
    assert forced.code == 0, forced.out + forced.err
    assert planned_deletes(forced.out) == [f"ecr_repository.{REPO}"]
    assert "Destroy complete: 1 deleted." in forced.out
    assert inventory(aws)["repositories"] == {}

    again = reconcile("destroy", "--auto-approve")
    assert again.code == 0, again.err
    assert "Nothing to destroy." in again.out and planned_deletes(again.out) == []
    assert object_history(aws) == history


def test_destroy_with_delete_bucket_counts_what_is_lost_and_removes_everything(reconcile, deployed, aws):
    write_database_history(aws)

    run = reconcile("destroy", "--auto-approve", "--force", "--delete-bucket", "--confirm-bucket", BUCKET)
    assert run.code == 0, run.out + run.err
    # The app's 2 objects and 5 versions, and the record of the deploying apply (canvas/…/last-applied.json).
    assert "3 object(s), 6 version(s) and 1 delete marker(s) will be lost" in run.out
    assert planned_deletes(run.out)[-2:] == [f"ecr_repository.{REPO}", f"s3_bucket.{BUCKET}"]
    assert "Destroy complete: 7 deleted." in run.out
    assert inventory(aws) == {"buckets": [], "objects": None, "repositories": {}, "roles": [], "functions": [],
                              "url": None, "permissions": []}


def test_destroy_leaves_resources_not_tagged_for_the_stack_alone(reconcile, deployed, aws):
    function_arn = aws.lambda_.get_function_configuration(FunctionName=FUNCTION)["FunctionArn"]
    aws.lambda_.untag_resource(Resource=function_arn, TagKeys=["canvas:stack"])
    aws.iam.tag_role(RoleName=ROLE, Tags=[{"Key": "canvas:stack", "Value": "billing"}])

    run = reconcile("destroy", "--auto-approve", "--force")
    assert run.code == 0, run.out + run.err
    assert f"left alone: lambda_function.{FUNCTION} {NOT_OURS}" in run.out
    assert f"left alone: iam_role.{ROLE} {NOT_OURS}" in run.out
    # The URL and the permissions belong to the function, so they stay with it.
    assert planned_deletes(run.out) == [f"ecr_repository.{REPO}"]
    assert "Destroy complete: 1 deleted." in run.out
    left = inventory(aws)
    assert left["functions"] == [FUNCTION] and left["url"] == "NONE" and len(left["permissions"]) == 2
    assert ROLE in left["roles"] and left["repositories"] == {}

    again = reconcile("destroy", "--auto-approve", "--force")
    assert again.code == 0, again.err
    assert "Nothing to destroy." in again.out
    assert inventory(aws) == left
