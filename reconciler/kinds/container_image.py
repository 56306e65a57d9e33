"""container_image: the image `image.tag` in the repository; its live state is the digest
ECR holds for that tag.

Nothing about an image is updated in place. When the tag is missing the plan says so, and
apply refuses to go on (the function cannot be created or updated without it); building and
pushing from `image.build` is a separate step of its own.
"""
from __future__ import annotations

from reconciler.aws import absent_on
from reconciler.diff import Field
from reconciler.errors import ReconcileError

TYPE = "container_image"
SERVICE = "ecr"
FIELDS = (Field("tag"),)


def address_name(repository: str, tag: str) -> str:
    return f"{repository}:{tag}"


def desired(spec, target) -> dict:
    repository, tag = spec.repository["name"], spec.image["tag"]
    return {"name": address_name(repository, tag), "repository": repository, "tag": tag,
            "uri": f"{target.repository_uri(repository)}:{tag}", "platform": _platform(spec)}


def _platform(spec) -> str:
    build = spec.image.get("build") or {}
    if build.get("platform"):
        return build["platform"]
    return "linux/arm64" if (spec.function.get("architectures") or [None])[0] == "arm64" else "linux/amd64"


def read(clients, want: dict) -> dict | None:
    digest = tag_digest(clients, want["repository"], want["tag"])
    if digest is None:
        return None
    return {"name": want["name"], "repository": want["repository"], "tag": want["tag"], "digest": digest}


def tag_digest(clients, repository: str, tag: str) -> str | None:
    """The digest the tag points at now, or None when the tag (or the repository) is not there."""
    answer = absent_on(("ImageNotFoundException", "RepositoryNotFoundException"),
                       lambda: clients.ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}]))
    return answer["imageDetails"][0]["imageDigest"] if answer and answer["imageDetails"] else None


def note(want: dict, have: dict | None) -> str | None:
    if have is None:
        return f"image {want['name']} is not in ECR yet: push it before apply can create or update the function"
    return None


def missing_image(want: dict) -> ReconcileError:
    return ReconcileError(
        f"image {want['name']} not found in ECR — build and push it "
        f"(docker build --platform {want.get('platform', 'linux/amd64')} --provenance=false -t {want['uri']} … "
        f"&& docker push {want['uri']}), "
        "or set image.tag to a tag that exists")


def create(clients, want: dict) -> None:
    # The tag may have been pushed since the plan was made: look once more before refusing.
    if tag_digest(clients, want["repository"], want["tag"]) is None:
        raise missing_image(want)


def update(clients, want: dict, have: dict, paths) -> None:
    raise ReconcileError(f"{TYPE}.{want['name']} has nothing to update in place")
