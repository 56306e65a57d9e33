"""container_image against moto: the tag's digest is the image's live state. A missing tag is
said plainly and stops apply before the function; a new image pushed under the same tag is
`image_digest` drift of the function, repaired by digest."""
from __future__ import annotations

import json

from lambda_harness import FUNCTION, STACK_TAGS, TAG

from reconciler.plan import Action, AttributeChange
from reconciler.render import render_json, render_text
from tests.ecr_images import register_image


def test_a_missing_tag_is_said_plainly_in_both_renderings(stack, lambda_console):
    lambda_console.make_repository(STACK_TAGS)  # the repository is there, the tag is not

    plan = stack.plan()

    image = stack.change(plan, "container_image")
    assert (image.action, image.attributes) == (Action.CREATE, (AttributeChange("tag", None, TAG),))
    note = (f"image {lambda_console.names.repository}:{TAG} is not in ECR yet: "
            "push it before apply can create or update the function")
    assert image.note == note
    assert f"      ({note})" in render_text(plan).splitlines()
    [as_json] = [c for c in json.loads(render_json(plan))["changes"] if c["type"] == "container_image"]
    assert as_json["note"] == note
    function = stack.change(plan, "lambda_function")
    assert "image_digest" not in function.changed_paths, "no digest to promise yet"


def test_a_plan_made_before_the_push_applies_after_it(stack, lambda_console):
    """apply looks at the tag once more, so a plan made while the image was being pushed still works."""
    lambda_console.make_repository(STACK_TAGS)
    plan = stack.plan()
    digest = lambda_console.push(b"image one")

    applied = stack.apply(plan)

    assert applied.result.ok, applied.lines
    assert lambda_console.running_digest() == digest
    assert not stack.plan().has_changes


def test_the_missing_image_hint_names_the_platform_the_function_needs(stack, lambda_console):
    def arm64_without_build(data: dict) -> None:
        data["function"]["architectures"] = ["arm64"]
        del data["image"]["build"]
    stack.write(arm64_without_build)
    lambda_console.make_repository(STACK_TAGS)

    applied = stack.apply()

    uri = f"{lambda_console.repository_uri()}:{TAG}"
    assert applied.lines[-1].endswith(
        f"FAIL: image {lambda_console.names.repository}:{TAG} not found in ECR — build and push it "
        f"(docker build --platform linux/arm64 --provenance=false -t {uri} … && docker push {uri}), "
        "or set image.tag to a tag that exists")


def test_a_new_image_under_the_same_tag_is_image_digest_drift_repaired_by_digest(deployed, lambda_console):
    old = deployed.first_digest
    new = lambda_console.push(b"image two")
    assert new != old

    plan = deployed.plan()

    assert stack_actions(plan) == {"container_image": Action.NOOP, "lambda_function": Action.UPDATE}
    assert deployed.change(plan, "lambda_function").attributes == (AttributeChange("image_digest", old, new),)
    applied = deployed.apply(plan)
    assert applied.result.ok, applied.lines
    [sent] = deployed.calls.params("UpdateFunctionCode")
    # By digest on the bare repository: Lambda rejects `repo:tag@sha256:…`.
    assert sent == {"FunctionName": FUNCTION, "ImageUri": f"{lambda_console.repository_uri()}@{new}"}
    assert f":{TAG}" not in sent["ImageUri"]
    assert deployed.calls.params("UpdateFunctionConfiguration") == [], "only the code changed"
    assert lambda_console.running_digest() == new
    assert not deployed.plan().has_changes


def test_apply_deploys_the_digest_the_plan_showed_even_if_the_tag_moved_since(deployed, lambda_console):
    shown = lambda_console.push(b"image two")
    # On AWS an image whose tag moves on stays in the repository, untagged; moto deletes it.
    # A second tag keeps it there, as AWS would.
    register_image(lambda_console.ecr, deployed.names.repository, "kept", b"image two")
    plan = deployed.plan()
    assert deployed.change(plan, "lambda_function").attributes == (
        AttributeChange("image_digest", deployed.first_digest, shown),)
    lambda_console.push(b"image three")  # a colleague pushes again between plan and apply

    assert deployed.apply(plan).result.ok
    assert lambda_console.running_digest() == shown


def test_a_tag_deleted_after_deploy_stops_apply_and_leaves_the_function_running(deployed, lambda_console):
    lambda_console.ecr.batch_delete_image(repositoryName=deployed.names.repository, imageIds=[{"imageTag": TAG}])

    plan = deployed.plan()

    assert stack_actions(plan) == {"container_image": Action.CREATE, "lambda_function": Action.NOOP}
    applied = deployed.apply(plan)
    assert "not found in ECR" in applied.lines[-1]
    assert deployed.calls.mutating_in("lambda") == []
    assert lambda_console.running_digest() == deployed.first_digest


def stack_actions(plan) -> dict[str, Action]:
    return {c.type: c.action for c in plan.changes if c.type in ("container_image", "lambda_function")}
