"""ecr_repository: the ECR repository the function's image lives in.

Manages scan on push, tag mutability and tags. Images inside it belong to container_image.
"""
from __future__ import annotations

from reconciler.aws import absent_on
from reconciler.diff import Field
from reconciler.normalize import desired_tags, tags_from_aws, tags_to_aws

TYPE = "ecr_repository"
SERVICE = "ecr"

FIELDS = (
    Field("scan_on_push"),
    Field("tag_mutability"),
    Field("tags", per_key=True),
)


def name(spec) -> str:
    return spec.repository["name"]


def desired(spec, target) -> dict:
    repo = spec.repository
    return {
        "name": repo["name"],
        "scan_on_push": repo.get("scan_on_push"),
        "tag_mutability": repo.get("tag_mutability"),
        "tags": desired_tags(spec),
    }


def read(clients, want: dict) -> dict | None:
    ecr = clients.ecr
    answer = absent_on(("RepositoryNotFoundException",),
                       lambda: ecr.describe_repositories(repositoryNames=[want["name"]]))
    if answer is None:
        return None
    repo = answer["repositories"][0]
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
    return {
        "name": repo["repositoryName"],
        "arn": repo["repositoryArn"],
        "uri": repo["repositoryUri"],
        "scan_on_push": repo.get("imageScanningConfiguration", {}).get("scanOnPush", False),
        "tag_mutability": repo.get("imageTagMutability", "MUTABLE"),
        "tags": tags_from_aws(tags),
    }


def create(clients, want: dict) -> None:
    kwargs = {
        "repositoryName": want["name"],
        "tags": tags_to_aws(want["tags"]),
        "imageScanningConfiguration": {"scanOnPush": bool(want.get("scan_on_push"))},
    }
    if want.get("tag_mutability"):
        kwargs["imageTagMutability"] = want["tag_mutability"]
    clients.ecr.create_repository(**kwargs)


def update(clients, want: dict, have: dict, paths) -> None:
    ecr, repo = clients.ecr, want["name"]
    paths = set(paths)
    if "scan_on_push" in paths:
        ecr.put_image_scanning_configuration(
            repositoryName=repo, imageScanningConfiguration={"scanOnPush": want["scan_on_push"]})
    if "tag_mutability" in paths:
        ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability=want["tag_mutability"])
    tag_keys = sorted(p.split(".", 1)[1] for p in paths if p.startswith("tags."))
    if tag_keys:
        tags = {k: want["tags"][k] for k in tag_keys}
        ecr.tag_resource(resourceArn=have["arn"], tags=tags_to_aws(tags))


def image_count(clients, have: dict) -> int:
    pages = clients.ecr.get_paginator("list_images").paginate(repositoryName=have["name"])
    return sum(len(page["imageIds"]) for page in pages)


def delete(clients, have: dict) -> None:
    # `force` is set only by destroy --force; without it ECR refuses a repository holding images.
    clients.ecr.delete_repository(repositoryName=have["name"], force=bool(have.get("force")))
