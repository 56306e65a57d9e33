"""ecr_repository against moto: create, drift of each managed attribute, unmanaged attributes."""
import pytest
from moto_harness import STACK, USER_TAGS

from reconciler.plan import Action


def test_create_from_nothing_then_converged(canvas, console):
    change = canvas.change(canvas.plan(), "ecr_repository")

    assert change.action is Action.CREATE
    assert change.address == f"ecr_repository.{canvas.names.repository}"
    assert {a.path: (a.before, a.after) for a in change.attributes} == {
        "scan_on_push": (None, True),
        "tag_mutability": (None, "MUTABLE"),
        "tags.canvas:stack": (None, STACK),
        "tags.cost-centre": (None, "42"),
        "tags.team": (None, "canvas"),
    }

    canvas.converge()

    assert "CreateRepository" in canvas.calls.mutating_in("ecr")
    [repo] = console.ecr.describe_repositories(repositoryNames=[canvas.names.repository])["repositories"]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["imageTagMutability"] == "MUTABLE"
    assert console.repository_tags() == {**USER_TAGS, "canvas:stack": STACK}


def _scan_off(console):
    console.ecr.put_image_scanning_configuration(
        repositoryName=console.names.repository, imageScanningConfiguration={"scanOnPush": False})


def _immutable(console):
    console.ecr.put_image_tag_mutability(repositoryName=console.names.repository, imageTagMutability="IMMUTABLE")


def _untag_stack(console):
    console.ecr.untag_resource(resourceArn=console.repository_arn(), tagKeys=["canvas:stack"])


def _retag_team(console):
    console.ecr.tag_resource(resourceArn=console.repository_arn(), tags=[{"Key": "team", "Value": "platform"}])


DRIFTS = [
    pytest.param(_scan_off, "scan_on_push", False, True, "PutImageScanningConfiguration", id="scan-on-push-off"),
    pytest.param(_immutable, "tag_mutability", "IMMUTABLE", "MUTABLE", "PutImageTagMutability",
                 id="tag-mutability"),
    pytest.param(_untag_stack, "tags.canvas:stack", None, STACK, "TagResource", id="ownership-tag-removed"),
    pytest.param(_retag_team, "tags.team", "platform", "canvas", "TagResource", id="user-tag-changed"),
]


@pytest.mark.parametrize("drift, path, before, after, repair_call", DRIFTS)
def test_drift_is_detected_and_repaired(canvas, console, drift, path, before, after, repair_call):
    canvas.converge()
    drift(console)

    canvas.assert_repaired("ecr_repository", (path, before, after), repair_call)


def test_attributes_left_out_of_canvas_yaml_are_unmanaged(canvas, console):
    def unmanage(spec):
        del spec["repository"]["scan_on_push"]
        del spec["repository"]["tag_mutability"]
    canvas.write(unmanage)
    assert [a.path for a in canvas.change(canvas.plan(), "ecr_repository").attributes] == [
        "tags.canvas:stack", "tags.cost-centre", "tags.team"]
    canvas.converge()
    created = canvas.change(canvas.plan(), "ecr_repository").live

    # Both flipped away from whatever the repository was created with.
    console.ecr.put_image_scanning_configuration(repositoryName=canvas.names.repository,
                                                 imageScanningConfiguration={"scanOnPush": not created["scan_on_push"]})
    console.ecr.put_image_tag_mutability(
        repositoryName=canvas.names.repository,
        imageTagMutability="IMMUTABLE" if created["tag_mutability"] == "MUTABLE" else "MUTABLE")
    canvas.calls.clear()

    plan = canvas.plan()

    change = canvas.change(plan, "ecr_repository")
    assert change.action is Action.NOOP
    assert change.live["scan_on_push"] != created["scan_on_push"]
    assert change.live["tag_mutability"] != created["tag_mutability"]
    assert canvas.apply(plan).result.done == []
    assert canvas.calls.mutating == []
