"""image.build as a user runs it: `reconcile apply` building with the fake docker
(tests/fakes/docker) on PATH, the registry password kept out of sight, and no Docker at all."""
from __future__ import annotations

import base64
import re

from tests.e2e.conftest import FUNCTION, REPO, TAG

IMAGE = f"container_image.{REPO}:{TAG}"


def ecr_password(aws) -> str:
    token = aws.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().partition(":")[2]


def test_apply_builds_streams_docker_output_and_never_shows_the_password(reconcile, canvas_file, aws, fake_docker):
    password = ecr_password(aws)
    assert len(password) >= 8

    run = reconcile("apply", "--auto-approve")

    assert run.code == 0, run.out + run.err
    [login] = [c for c in fake_docker.calls if c["argv"][0] == "login"]
    registry = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin", registry]
    assert login["stdin"] == password  # on stdin, and only there
    assert not [c["argv"] for c in fake_docker.calls if any(password in arg for arg in c["argv"])]
    assert password not in run.out and password not in run.err
    # The build's output is indented under the image step, whose status line closes it.
    block = re.search(rf"\[4/8\] create {re.escape(IMAGE)} … \n((?:      .*\n)+?)      SUCCESS \(", run.out)
    assert block, run.out
    assert "      Login Succeeded\n" in block.group(1)
    assert "      $ docker buildx build --platform linux/amd64 --provenance=false --load -f " in block.group(1)
    assert re.search(rf"      {TAG}: digest: sha256:[0-9a-f]{{64}} size: 528\n", block.group(1))
    [image] = aws.ecr.describe_images(repositoryName=REPO)["imageDetails"]
    assert TAG in image["imageTags"] and any(t.startswith("canvas-") for t in image["imageTags"])
    code = aws.lambda_.get_function(FunctionName=FUNCTION)["Code"]
    assert code["ResolvedImageUri"].endswith("@" + image["imageDigest"])

    fake_docker.forget_calls()
    again = reconcile("apply", "--auto-approve")
    assert again.code == 0, again.out + again.err
    assert "No changes." in again.out and "SUCCESS" not in again.out
    assert fake_docker.calls == []


def test_without_docker_plan_still_works_and_apply_names_both_ways_forward(reconcile, canvas_file, aws, no_docker):
    plan = reconcile("plan", "--detailed-exitcode")
    assert plan.code == 2, plan.out + plan.err
    assert f"+ {IMAGE} will be created" in plan.out and "content_hash:" in plan.out

    run = reconcile("apply", "--auto-approve")

    assert run.code == 1, run.out + run.err
    assert f"create {IMAGE} … FAIL: image.build needs Docker, but there is no `docker` command on PATH" in run.out
    assert "install and start Docker" in run.out and "remove image.build from canvas.yaml" in run.out
    assert "Traceback" not in run.err
    assert f"not run:  create lambda_function.{FUNCTION}" in run.err
    assert aws.lambda_.list_functions()["Functions"] == []


def test_docker_without_a_running_engine_is_named_as_such(reconcile, canvas_file, aws, fake_docker):
    fake_docker.behave(daemon="down")

    run = reconcile("apply", "--auto-approve")

    assert run.code == 1, run.out + run.err
    assert ("FAIL: image.build needs Docker, but its engine is not reachable (`docker info`: "
            "Cannot connect to the Docker daemon") in run.out
    assert "install and start Docker" in run.out
    assert fake_docker.commands == ["info"]  # no login, no build, no push
    assert aws.ecr.describe_images(repositoryName=REPO)["imageDetails"] == []
