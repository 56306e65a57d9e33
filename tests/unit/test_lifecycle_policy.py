"""repository.keep_images: the lifecycle policy it stands for, compared by meaning."""
from __future__ import annotations

import json

from reconciler.diff import diff
from reconciler.kinds import ecr_repository
from reconciler.normalize import canonical_lifecycle_policy


def test_the_policy_expires_untagged_images_and_content_tagged_builds_beyond_n():
    rules = ecr_repository.lifecycle_policy(5)["rules"]
    assert [(r["rulePriority"], r["selection"]["tagStatus"], r["action"]["type"]) for r in rules] == [
        (1, "untagged", "expire"), (2, "tagged", "expire")]
    assert rules[0]["selection"] == {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                         "countUnit": "days", "countNumber": 1}
    assert rules[1]["selection"] == {"tagStatus": "tagged", "tagPrefixList": ["canvas-"],
                                     "countType": "imageCountMoreThan", "countNumber": 5}


def test_formatting_rule_order_and_tag_list_order_are_not_drift():
    policy = ecr_repository.lifecycle_policy(3)
    as_typed = json.dumps({"rules": list(reversed(policy["rules"]))}, indent=4, sort_keys=True)
    assert canonical_lifecycle_policy(as_typed) == policy
    fields = ecr_repository.FIELDS
    assert diff(fields, {"lifecycle_policy": policy}, {"lifecycle_policy": as_typed}) == []
    other = ecr_repository.lifecycle_policy(4)
    [change] = diff(fields, {"lifecycle_policy": other}, {"lifecycle_policy": policy})
    assert change.path == "lifecycle_policy"
