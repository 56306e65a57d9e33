"""iam_role: the function's execution role.

Manages the trust policy (Lambda may assume it), managed policy attachments, inline policies
and tags. The inline policy S3DatabaseAccessPolicy is derived from `bucket:`, least
privilege: read and write the one database object, list the bucket — nothing else, so the
runtime can never reach the tool's own records under canvas/.
"""
from __future__ import annotations

import functools
import json

from reconciler.aws import absent_on, at_once, fan_out
from reconciler.diff import Field
from reconciler.errors import ReconcileError
from reconciler.kinds.defaults import keep_desired, no_note
from reconciler.normalize import (
    canonical_policy,
    changed_tags,
    desired_tags,
    partition,
    policy_identity,
    tags_from_aws,
    tags_to_aws,
)

TYPE = "iam_role"
SERVICE = "iam"
DATABASE_POLICY = "S3DatabaseAccessPolicy"

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }],
}

# What CreateRole itself sets: an existing role without them is not our create (recreate.py).
CREATE_CALL_FIELDS = ("tags", "trust_policy")
FIELDS = (
    Field("trust_policy", compare_as=policy_identity),
    Field("managed_policies", unordered=True),
    # The role exists for this function alone: an inline policy nobody declared is a grant
    # someone added by hand, so it is drift (purge) rather than unmanaged.
    Field("inline_policies", per_key=True, purge=True, compare_as=policy_identity),
    Field("tags", per_key=True),
)



def database_policy(bucket: str, key: str, region: str) -> dict:
    """Exactly what the runtime's page-delta layout uses (runtime/layout.py): the manifest at
    ``key`` and the immutable blobs under ``<key>.canvas/``, which garbage collection deletes."""
    arn = f"arn:{partition(region)}:s3:::{bucket}"
    blobs = f"{arn}/{key}.canvas/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadWriteDatabase",
                "Effect": "Allow",
                # HEAD is authorised by s3:GetObject; there is no s3:HeadObject action.
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": [f"{arn}/{key}", blobs],
            },
            # Garbage collection deletes blobs; a multipart upload that fails is aborted.
            {"Sid": "CollectDatabaseGarbage", "Effect": "Allow",
             "Action": ["s3:DeleteObject", "s3:AbortMultipartUpload"], "Resource": blobs},
            {"Sid": "ListDatabaseBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
        ],
    }


def desired(spec, target) -> dict:
    role = spec.role
    managed = role.get("managed_policies")
    return {
        "name": role["name"],
        "trust_policy": canonical_policy(TRUST_POLICY),
        "managed_policies": sorted(managed) if managed is not None else None,
        "inline_policies": {
            DATABASE_POLICY: canonical_policy(
                database_policy(spec.bucket["name"], spec.bucket["database_key"], target.region)),
        },
        "tags": desired_tags(spec),
    }


def read(clients, want: dict) -> dict | None:
    live = _read_role(clients.iam, want["name"])
    # After the role's own reads, the policy check: one more round trip, but only for a policy
    # not attached yet (a plan that changes nothing makes no GetPolicy call).
    _check_policies_exist(clients.iam, want, live)
    return live


def _check_policies_exist(iam, want: dict, live: dict | None) -> None:
    """A managed policy apply would attach must exist, or apply fails half-way through; plan says
    so first (iam:GetPolicy, read-only). Attached ones exist, so a converged plan makes no call."""
    attached = set((live or {}).get("managed_policies") or ())
    to_attach = sorted(set(want.get("managed_policies") or ()) - attached)
    if not to_attach:
        return
    found = fan_out({arn: functools.partial(_policy, iam, arn) for arn in to_attach})
    missing = [arn for arn in to_attach if found[arn] is None]
    if missing:
        raise ReconcileError(
            f"role.managed_policies: {', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not exist in "
            "this account (iam:GetPolicy answered NoSuchEntity); check the ARN — AWS managed policies are "
            "arn:aws:iam::aws:policy/..., yours arn:aws:iam::<account>:policy/...")


def _policy(iam, arn: str) -> dict | None:
    return absent_on(("NoSuchEntity",), lambda: iam.get_policy(PolicyArn=arn))


def _read_role(iam, role_name: str) -> dict | None:
    # The role and both its lists by name in one round trip; the lists count only if it exists.
    reads = at_once({
        "role": lambda: iam.get_role(RoleName=role_name),
        "managed": lambda: _attached_policies(iam, role_name),
        "inline": lambda: _inline_policy_names(iam, role_name),
    })
    answer = absent_on(("NoSuchEntity",), reads["role"].result)
    if answer is None:
        return None
    role = answer["Role"]
    lists = {"managed": reads["managed"].result(), "inline": reads["inline"].result()}
    inline = fan_out({policy: functools.partial(_inline_document, iam, role_name, policy)
                      for policy in lists["inline"]})
    return {
        "name": role["RoleName"],
        "arn": role["Arn"],
        "trust_policy": canonical_policy(role.get("AssumeRolePolicyDocument")),
        "managed_policies": sorted(lists["managed"]),
        "inline_policies": {policy: canonical_policy(document) for policy, document in inline.items()},
        # GetRole carries the role's tags (up to 50, IAM's limit), saving a ListRoleTags round trip.
        "tags": tags_from_aws(role.get("Tags")),
    }


def _inline_document(iam, role_name: str, policy: str) -> dict:
    return iam.get_role_policy(RoleName=role_name, PolicyName=policy)["PolicyDocument"]


def _attached_policies(iam, role_name: str) -> list[str]:
    pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name)
    return [p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]]


def _inline_policy_names(iam, role_name: str) -> list[str]:
    pages = iam.get_paginator("list_role_policies").paginate(RoleName=role_name)
    return [name for page in pages for name in page["PolicyNames"]]


def create(clients, want: dict) -> None:
    clients.iam.create_role(
        RoleName=want["name"],
        AssumeRolePolicyDocument=json.dumps(want["trust_policy"]),
        Description="Execution role for a canvas-reconcile Lambda function",
        Tags=tags_to_aws(want["tags"]),
    )
    paths = ["managed_policies"] if want.get("managed_policies") else []
    paths += [f"inline_policies.{name}" for name in want["inline_policies"]]
    update(clients, want, {"managed_policies": [], "inline_policies": {}, "tags": want["tags"]}, paths)


def update(clients, want: dict, have: dict, paths) -> None:
    iam, role_name = clients.iam, want["name"]
    paths = set(paths)
    if "trust_policy" in paths:
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(want["trust_policy"]))
    if "managed_policies" in paths:
        _sync_managed_policies(iam, role_name, want["managed_policies"], have.get("managed_policies") or [])
    for path in sorted(p for p in paths if p.startswith("inline_policies.")):
        policy = path.split(".", 1)[1]
        document = want["inline_policies"].get(policy)
        if document is None:
            iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
        else:
            iam.put_role_policy(RoleName=role_name, PolicyName=policy, PolicyDocument=json.dumps(document))
    tags = changed_tags(want["tags"], paths)
    if tags:
        iam.tag_role(RoleName=role_name, Tags=tags_to_aws(tags))


def _sync_managed_policies(iam, role_name: str, want: list[str], have: list[str]) -> None:
    for arn in sorted(set(want) - set(have)):
        iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)
    for arn in sorted(set(have) - set(want)):
        iam.detach_role_policy(RoleName=role_name, PolicyArn=arn)


def delete(clients, have: dict) -> None:
    """IAM refuses to delete a role with policies attached: detach and delete them first."""
    iam, role_name = clients.iam, have["name"]
    for arn in _attached_policies(iam, role_name):
        iam.detach_role_policy(RoleName=role_name, PolicyArn=arn)
    for policy in _inline_policy_names(iam, role_name):
        iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
    iam.delete_role(RoleName=role_name)


# The interface's optional members this kind has no use for (kinds.Kind).
CREATE_ON_CHANGE = False
REPLACE_ON_CHANGE = False
resolve = keep_desired
note = no_note
