"""The reconcile CLI as a user runs it: plan, apply, drift, exit codes, refusals."""
from __future__ import annotations

import json

import jsonschema

from tests.e2e.conftest import FUNCTION, ROOT, contract_resources
from tests.ecr_images import register_image

PLAN_SCHEMA = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
BUCKET, REPO, ROLE = "code-canvas-astro-db", "python-repl-container-lambda", "code-canvas-astro-lambda-role"


def test_plan_from_nothing_lists_every_create_and_exits_2(reconcile, canvas_file, moto_endpoint):
    run = reconcile("plan", "--detailed-exitcode")
    assert run.code == 2, run.err
    assert f"+ s3_bucket.{BUCKET} will be created" in run.out
    assert f"+ ecr_repository.{REPO} will be created" in run.out
    assert f"+ iam_role.{ROLE} will be created" in run.out
    assert "+ versioning: Enabled" in run.out
    assert "+ lambda_function.code-canvas-astro-lambda will be created" in run.out
    # The image is not there yet, and the plan says so in words.
    assert "image python-repl-container-lambda:v1.2 is not in ECR yet" in run.out
    assert run.out.rstrip().endswith(f"Plan: {contract_resources()} to create, 0 to update, 0 to replace, 0 to delete.")


def test_plan_json_matches_its_schema_and_lists_every_resource(reconcile, canvas_file, moto_endpoint):
    run = reconcile("plan", "--json")
    assert run.code == 0, run.err
    document = json.loads(run.out)
    jsonschema.validate(document, PLAN_SCHEMA)
    assert [c["address"] for c in document["changes"]] == [
        f"s3_bucket.{BUCKET}", f"ecr_repository.{REPO}", f"iam_role.{ROLE}", f"container_image.{REPO}:v1.2",
        f"lambda_function.{FUNCTION}", f"lambda_function_url.{FUNCTION}",
        "lambda_permission.FunctionURLAllowPublicAccess", "lambda_permission.FunctionURLInvokeAllowPublicAccess"]
    assert document["summary"] == {"create": 8, "update": 0, "replace": 0, "delete": 0, "no-op": 0}
    bucket = document["changes"][0]
    # Nothing was applied before, so there is no record: every difference is a pending change.
    assert {"path": "tags.canvas:stack", "before": None, "after": "code-canvas-astro", "cause": "spec"} \
        in bucket["attributes"]


def test_first_apply_stops_at_the_missing_image_then_continues_once_it_is_pushed(reconcile, prebuilt_canvas, aws):
    first = reconcile("apply", "--auto-approve")
    assert first.code == 1
    assert f"[1/8] create s3_bucket.{BUCKET} … SUCCESS (" in first.out
    assert f"[2/8] create ecr_repository.{REPO} … SUCCESS (" in first.out
    assert f"[3/8] create iam_role.{ROLE} … SUCCESS (" in first.out
    # Against an emulator on this machine the way on is the stand-in, not a docker push that cannot reach it.
    assert (f"[4/8] create container_image.{REPO}:v1.2 … FAIL: image {REPO}:v1.2 not found in the emulator's ECR — "
            f"the emulator has no registry for docker push: run `reconcile stand-in-image`") in first.out
    assert "docker push" not in first.out.replace("registry for docker push", "")
    assert f"not run:  create lambda_function.{FUNCTION}" in first.err
    assert aws.s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"

    register_image(aws.ecr, REPO, "v1.2", b"pushed by hand")
    second = reconcile("apply", "--auto-approve")
    assert second.code == 0, second.out + second.err
    assert f"[1/4] create lambda_function.{FUNCTION} … SUCCESS (" in second.out
    assert "[4/4] create lambda_permission.FunctionURLInvokeAllowPublicAccess … SUCCESS (" in second.out


def test_apply_then_plan_is_empty_and_second_apply_changes_nothing(reconcile, deployed, aws):
    plan = reconcile("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert "No changes. Live state matches canvas.yaml." in plan.out

    again = reconcile("apply", "--auto-approve")
    assert again.code == 0
    assert "SUCCESS" not in again.out and "No changes." in again.out

    json_plan = json.loads(reconcile("plan", "--json").out)
    assert json_plan["summary"]["no-op"] == contract_resources()
    assert all(c["action"] == "no-op" and c["attributes"] == [] for c in json_plan["changes"])


def test_drift_made_by_hand_is_shown_exits_2_and_apply_repairs_it(reconcile, deployed, aws):
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    aws.ecr.put_image_scanning_configuration(repositoryName=REPO, imageScanningConfiguration={"scanOnPush": False})

    plan = reconcile("plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "~ versioning: Suspended → Enabled" in plan.out
    assert "~ scan_on_push: false → true" in plan.out
    assert "Plan: 0 to create, 2 to update, 0 to replace, 0 to delete." in plan.out

    document = json.loads(reconcile("plan", "--json").out)
    by_address = {c["address"]: c for c in document["changes"]}
    assert by_address[f"s3_bucket.{BUCKET}"]["attributes"] == [
        {"path": "versioning", "before": "Suspended", "after": "Enabled", "cause": "drift"}]

    repair = reconcile("apply", "--auto-approve")
    assert repair.code == 0, repair.err
    assert f"update s3_bucket.{BUCKET} … SUCCESS" in repair.out
    assert reconcile("plan", "--detailed-exitcode").code == 0


def test_apply_without_terminal_or_auto_approve_refuses_and_changes_nothing(reconcile, canvas_file, aws):
    run = reconcile("apply")
    assert run.code == 1
    assert "--auto-approve" in run.err and "Traceback" not in run.err
    assert aws.s3.list_buckets()["Buckets"] == []
    # Nobody is there to read a plan: its summary line, not the whole plan, before the refusal.
    summary = f"Plan: {contract_resources()} to create, 0 to update, 0 to replace, 0 to delete."
    assert run.out.strip().splitlines() == [summary]


def test_resource_of_another_stack_is_refused_and_left_untouched(reconcile, canvas_file, aws):
    aws.ecr.create_repository(repositoryName=REPO, tags=[{"Key": "canvas:stack", "Value": "billing"}],
                              imageScanningConfiguration={"scanOnPush": False})
    run = reconcile("apply", "--auto-approve")
    assert run.code == 1
    assert "'billing'" in run.err and "'code-canvas-astro'" in run.err
    repo = aws.ecr.describe_repositories(repositoryNames=[REPO])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is False
    assert aws.s3.list_buckets()["Buckets"] == []  # nothing else was started either


def test_invalid_spec_exits_1_without_traceback_or_any_aws_call(reconcile, canvas_file, dead_endpoint):
    canvas_file.write_text(canvas_file.read_text().replace("memory: 2048", "memory: 64"))
    for command in ("validate", "plan", "apply"):
        run = reconcile(command, "--endpoint-url", dead_endpoint, "--auto-approve") if command == "apply" \
            else reconcile(command) if command == "validate" else reconcile(command, "--endpoint-url", dead_endpoint)
        assert run.code == 1, command
        assert "function.memory" in run.err and "128" in run.err
        assert "Traceback" not in run.err
        # A call to the dead endpoint would have surfaced as a connection error instead.
        assert "cannot reach AWS" not in run.err


def test_unreachable_endpoint_is_one_clear_error(reconcile, canvas_file, dead_endpoint):
    run = reconcile("plan", "--endpoint-url", dead_endpoint)
    assert run.code == 1
    assert run.err.count("cannot reach AWS") == 1 and "Traceback" not in run.err


def test_missing_credentials_are_explained(reconcile, canvas_file, moto_endpoint, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    run = reconcile("plan")
    assert run.code == 1
    assert "no AWS credentials found" in run.err and "Traceback" not in run.err


def test_region_override_is_validated(reconcile, canvas_file, dead_endpoint):
    run = reconcile("plan", "--region", "mars-1", "--endpoint-url", dead_endpoint)
    assert run.code == 1
    assert "--region" in run.err and "Traceback" not in run.err


def test_missing_file_is_a_clear_error(reconcile, tmp_path):
    run = reconcile("validate", "-f", "nope.yaml")
    assert run.code == 1
    assert "nope.yaml" in run.err and "Traceback" not in run.err


def test_validate_accepts_the_contract(reconcile, canvas_file):
    run = reconcile("validate")
    assert run.code == 0, run.err
    assert "canvas.yaml is valid" in run.out


def test_plain_reconcile_prints_the_help_whole_and_exits_0(reconcile):
    run = reconcile()
    assert run.code == 0, run.err
    commands = run.out.split("Commands:", 1)[1]
    assert "..." not in commands
    # Every command's summary is its docstring's whole first sentence, not one cut at 45 columns.
    assert ("Change live AWS so it matches canvas.yaml, only where it differs (or exactly as a saved plan "
            "says).") in " ".join(run.out.split())
    assert reconcile("--help").out == run.out


def test_validate_offers_only_the_options_it_uses(reconcile):
    shown = reconcile("validate", "--help").out
    assert "--file" in shown and "--region" in shown
    assert "--profile" not in shown and "--endpoint-url" not in shown
    assert "--endpoint-url" in reconcile("plan", "--help").out


def test_a_missing_canvas_yaml_says_where_it_looked_and_how_to_point_elsewhere(reconcile, tmp_path):
    run = reconcile("plan")
    assert run.code == 1
    assert f"looked for {tmp_path / 'canvas.yaml'}" in run.err and "-f FILE" in run.err


def test_stand_in_image_refuses_an_endpoint_that_is_not_on_this_machine(reconcile, canvas_file):
    # Nothing is sent: the refusal comes before any call (the address is not even resolvable).
    run = reconcile("stand-in-image", "--endpoint-url", "https://ecr.example.invalid")
    assert run.code == 1 and "Traceback" not in run.err
    assert "stand-in-image only works against a local emulator" in run.err
    assert "https://ecr.example.invalid is not on this machine" in run.err


def test_stand_in_image_run_twice_keeps_the_image_and_says_it_is_there(reconcile, prebuilt_canvas, aws):
    first = reconcile("stand-in-image")
    assert first.code == 0, first.err
    digest = aws.ecr.describe_images(repositoryName=REPO, imageIds=[{"imageTag": "v1.2"}])["imageDetails"][0][
        "imageDigest"]
    assert f"Registered a stand-in image as {REPO}:v1.2 ({digest})" in first.out

    second = reconcile("stand-in-image")
    assert second.code == 0, second.err
    assert f"The stand-in image is already {REPO}:v1.2 ({digest})" in second.out
    assert "Created ecr_repository" not in second.out
    assert [d["imageDigest"] for d in aws.ecr.describe_images(repositoryName=REPO)["imageDetails"]] == [digest]
