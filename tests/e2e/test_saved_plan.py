"""Saved plans as a reviewer uses them: `plan --out FILE`, `show FILE`, `apply FILE` — exactly that
plan or nothing, with no secret in the file."""
from __future__ import annotations

import json

import yaml

from tests.e2e.conftest import FUNCTION, REPO, STACK, TAG
from tests.ecr_images import register_image

SECRET = "s3cr3t-token-value-9f2c"


def declare(canvas_file, **function):
    document = yaml.safe_load(canvas_file.read_text())
    document["function"].update(function)
    canvas_file.write_text(yaml.safe_dump(document, sort_keys=False))


def memory(aws) -> int:
    return aws.lambda_.get_function_configuration(FunctionName=FUNCTION)["MemorySize"]


def history_count(reconcile) -> int:
    run = reconcile("history")
    assert run.code == 0, run.err
    return sum(1 for line in run.out.splitlines() if line.startswith("20"))


def test_a_saved_plan_shows_as_planned_holds_no_secret_and_applies_without_a_prompt(
        reconcile, prebuilt_canvas, deployed, aws, tmp_path):
    declare(prebuilt_canvas, memory=1024, environment={"API_TOKEN": SECRET, "MODE": "review"})
    planned = reconcile("plan", "--out", "review.plan")
    assert planned.code == 0, planned.err
    assert "Saved this plan to review.plan. To apply exactly it: reconcile apply review.plan" in planned.err
    text = (tmp_path / "review.plan").read_text()
    assert SECRET not in text and "(sensitive)" in text
    saved = json.loads(text)
    assert saved["stack"] == STACK and saved["account"] == "123456789012"
    assert saved["images"] == [{"address": f"container_image.{REPO}:{TAG}", "tag": TAG, "digest": deployed,
                                "content_hash": None, "content_tag": None}]

    shown = reconcile("show", "review.plan")
    assert shown.code == 0, shown.err
    assert shown.out.splitlines()[0].startswith("Saved plan review.plan: made ")
    assert shown.out.split("\n", 1)[1] == planned.out  # the same plan, as plan printed it
    as_json = reconcile("show", "review.plan", "--json")
    assert json.loads(as_json.out) == json.loads(reconcile("plan", "--json").out)

    applied = reconcile("apply", "review.plan")  # no terminal, no --auto-approve: the file was the approval
    assert applied.code == 0, applied.out + applied.err
    assert "It still matches live AWS." in applied.out and "Apply complete: 1 change(s) made." in applied.out
    assert SECRET not in applied.out + applied.err
    assert memory(aws) == 1024
    assert "No changes." in reconcile("plan").out


def test_a_change_in_aws_after_saving_makes_it_stale_and_nothing_is_written(
        reconcile, prebuilt_canvas, deployed, aws):
    declare(prebuilt_canvas, memory=1024)
    assert reconcile("plan", "--out", "review.plan").code == 0
    before = history_count(reconcile)
    aws.lambda_.update_function_configuration(FunctionName=FUNCTION, MemorySize=3008)  # by hand, meanwhile

    run = reconcile("apply", "review.plan")
    assert run.code == 1
    assert "stale plan: the stack changed after review.plan was saved" in run.err
    assert f"lambda_function.{FUNCTION}: its live values or planned change differ" in run.err
    assert "Traceback" not in run.err
    assert memory(aws) == 3008  # untouched
    assert history_count(reconcile) == before
    assert "canvas/code-canvas-astro/lock.json" not in [
        o["Key"] for o in aws.s3.list_objects_v2(Bucket="code-canvas-astro-db").get("Contents", [])]


def test_an_image_pushed_after_saving_makes_it_stale(reconcile, prebuilt_canvas, deployed, aws):
    declare(prebuilt_canvas, memory=1024)
    assert reconcile("plan", "--out", "review.plan").code == 0
    register_image(aws.ecr, REPO, TAG, b"pushed after the review")
    run = reconcile("apply", "review.plan")
    assert run.code == 1 and "stale plan" in run.err
    assert f"lambda_function.{FUNCTION}: its live values or planned change differ" in run.err
    assert memory(aws) == 2048


def test_canvas_yaml_edited_after_saving_makes_it_stale(reconcile, prebuilt_canvas, deployed, aws):
    declare(prebuilt_canvas, memory=1024)
    assert reconcile("plan", "--out", "review.plan").code == 0
    declare(prebuilt_canvas, memory=1536)
    run = reconcile("apply", "review.plan")
    assert run.code == 1
    assert "stale plan: canvas.yaml changed since review.plan was saved" in run.err
    assert memory(aws) == 2048


def test_a_plan_from_another_version_or_stack_is_refused(reconcile, prebuilt_canvas, deployed, aws, tmp_path):
    declare(prebuilt_canvas, memory=1024)
    assert reconcile("plan", "--out", "review.plan").code == 0
    path = tmp_path / "review.plan"
    saved = json.loads(path.read_text())

    path.write_text(json.dumps({**saved, "tool_version": "0.0.9"}))
    run = reconcile("apply", "review.plan")
    assert run.code == 1
    assert "review.plan was made by reconcile 0.0.9" in run.err and "make the plan again with this one" in run.err

    path.write_text(json.dumps({**saved, "stack": "another-stack"}))
    run = reconcile("apply", "review.plan")
    assert run.code == 1
    assert "review.plan is a plan for stack 'another-stack', but canvas.yaml and the credentials in use are for " \
           "stack 'code-canvas-astro'; nothing was applied" in run.err
    assert memory(aws) == 2048


def test_what_is_not_a_saved_plan_is_one_clear_message(reconcile, prebuilt_canvas, tmp_path):
    for args, message in [(("apply", "canvas.yaml"), "canvas.yaml is not a saved plan (not JSON"),
                          (("show", "missing.plan"), "cannot read the saved plan missing.plan"),
                          (("show", "half.plan"), "half.plan is not a saved plan (no \"kind\"")]:
        (tmp_path / "half.plan").write_text('{"stack": "x"}')
        run = reconcile(*args)
        assert run.code == 1, run
        assert message in run.err and "Traceback" not in run.err


def test_a_saved_plan_from_nothing_creates_the_stack_bucket_first(reconcile, prebuilt_canvas, aws):
    aws.ecr.create_repository(repositoryName=REPO, tags=[{"Key": "canvas:stack", "Value": STACK}])
    register_image(aws.ecr, REPO, TAG, b"the first image")
    assert reconcile("plan", "--out", "first.plan").code == 0
    run = reconcile("apply", "first.plan")
    assert run.code == 0, run.out + run.err
    assert "create s3_bucket.code-canvas-astro-db … SUCCESS (made first" in run.out
    assert reconcile("plan", "--detailed-exitcode").code == 0
    # Applied once, the same file is stale: what it planned against is gone.
    again = reconcile("apply", "first.plan")
    assert again.code == 1 and "stale plan" in again.err
