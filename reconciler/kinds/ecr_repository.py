"""ecr_repository: the ECR repository the function's image lives in.

Manages scan on push, tag mutability, tags and, with `keep_images`, a lifecycle policy that
expires untagged images and all but the newest N content-tagged (`canvas-…`) builds. Images
inside it belong to container_image.
"""
from __future__ import annotations

import json

from reconciler.aws import absent_on, fan_out
from reconciler.diff import Field
from reconciler.kinds.defaults import keep_desired, no_note
from reconciler.normalize import canonical_lifecycle_policy, changed_tags, desired_tags, tags_from_aws, tags_to_aws
from reconciler.reserved import CONTENT_TAG_PREFIX

TYPE = "ecr_repository"
SERVICE = "ecr"

# What CreateRepository itself sets: an existing repository without them is not our create (recreate.py).
CREATE_CALL_FIELDS = ("tags", "scan_on_push", "tag_mutability")
FIELDS = (
    Field("scan_on_push"),
    Field("tag_mutability"),
    Field("tags", per_key=True),
    Field("lifecycle_policy", compare_as=canonical_lifecycle_policy),
)
# Untagged images get a day's grace: a function runs its image by digest, and an image whose
# tag moved on (one pushed by hand, say) may still be running until the function follows.
UNTAGGED_GRACE_DAYS = 1



def desired(spec, target) -> dict:
    repo = spec.repository
    return {
        "name": repo["name"],
        "scan_on_push": repo.get("scan_on_push"),
        "tag_mutability": repo.get("tag_mutability"),
        "tags": desired_tags(spec),
        "lifecycle_policy": lifecycle_policy(repo["keep_images"]) if repo.get("keep_images") else None,
    }


def lifecycle_policy(keep: int) -> dict | None:
    """Expire untagged images, and content-tagged builds beyond the newest `keep`. Images that
    carry only other tags (a release tag pushed by hand) are never expired by it."""
    return canonical_lifecycle_policy({"rules": [
        {"rulePriority": 1, "description": f"canvas-reconcile: expire untagged images after {UNTAGGED_GRACE_DAYS} day",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": UNTAGGED_GRACE_DAYS},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": f"canvas-reconcile: keep the newest {keep} {CONTENT_TAG_PREFIX} builds",
         "selection": {"tagStatus": "tagged", "tagPrefixList": [CONTENT_TAG_PREFIX], "countType": "imageCountMoreThan",
                       "countNumber": keep},
         "action": {"type": "expire"}},
    ]})


def read(clients, want: dict) -> dict | None:
    ecr = clients.ecr
    answer = absent_on(("RepositoryNotFoundException",),
                       lambda: ecr.describe_repositories(repositoryNames=[want["name"]]))
    if answer is None:
        return None
    repo = answer["repositories"][0]
    reads = {"tags": lambda: ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])}
    if want.get("lifecycle_policy") is not None:  # unset means unmanaged: not even read
        reads["lifecycle_policy"] = lambda: _read_lifecycle_policy(ecr, want["name"])
    parts = fan_out(reads)
    return {
        "name": repo["repositoryName"],
        "arn": repo["repositoryArn"],
        "uri": repo["repositoryUri"],
        "scan_on_push": repo.get("imageScanningConfiguration", {}).get("scanOnPush", False),
        "tag_mutability": repo.get("imageTagMutability", "MUTABLE"),
        "tags": tags_from_aws(parts["tags"]),
        "lifecycle_policy": parts.get("lifecycle_policy"),
    }


def _read_lifecycle_policy(ecr, repository: str) -> dict | None:
    answer = absent_on(("LifecyclePolicyNotFoundException",),
                       lambda: ecr.get_lifecycle_policy(repositoryName=repository))
    return canonical_lifecycle_policy(answer["lifecyclePolicyText"]) if answer else None


def create(clients, want: dict) -> None:
    kwargs = {
        "repositoryName": want["name"],
        "tags": tags_to_aws(want["tags"]),
        "imageScanningConfiguration": {"scanOnPush": bool(want.get("scan_on_push"))},
    }
    if want.get("tag_mutability"):
        kwargs["imageTagMutability"] = want["tag_mutability"]
    clients.ecr.create_repository(**kwargs)
    if want.get("lifecycle_policy") is not None:
        update(clients, want, {}, ["lifecycle_policy"])


def update(clients, want: dict, have: dict, paths) -> None:
    ecr, repo = clients.ecr, want["name"]
    paths = set(paths)
    if "scan_on_push" in paths:
        ecr.put_image_scanning_configuration(
            repositoryName=repo, imageScanningConfiguration={"scanOnPush": want["scan_on_push"]})
    if "tag_mutability" in paths:
        ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability=want["tag_mutability"])
    tags = changed_tags(want["tags"], paths)
    if tags:
        ecr.tag_resource(resourceArn=have["arn"], tags=tags_to_aws(tags))
    if "lifecycle_policy" in paths:
        ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=json.dumps(want["lifecycle_policy"]))


def image_count(clients, have: dict) -> int:
    pages = clients.ecr.get_paginator("list_images").paginate(repositoryName=have["name"])
    return sum(len(page["imageIds"]) for page in pages)


def delete(clients, have: dict) -> None:
    # `force` is set only by destroy --force; without it ECR refuses a repository holding images.
    clients.ecr.delete_repository(repositoryName=have["name"], force=bool(have.get("force")))


# The interface's optional members this kind has no use for (kinds.Kind).
CREATE_ON_CHANGE = False
REPLACE_ON_CHANGE = False
resolve = keep_desired
note = no_note
