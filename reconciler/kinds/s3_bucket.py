"""s3_bucket: the bucket that holds the app's SQLite database.

Manages the bucket's region (checked, never changed: a bucket cannot move), versioning,
default encryption, the public access block and tags. Apply never deletes a bucket.
"""
from __future__ import annotations

from reconciler.aws import absent_on, at_once
from reconciler.diff import Field
from reconciler.errors import ReconcileError
from reconciler.kinds.defaults import keep_desired, no_note
from reconciler.normalize import desired_tags, tags_from_aws, tags_to_aws, whole_tag_set

TYPE = "s3_bucket"
SERVICE = "s3"
_PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

# create_bucket sets nothing but the name; BucketAlreadyOwnedByYou already proves the account.
CREATE_CALL_FIELDS = ()
FIELDS = (
    # A bucket that never had versioning reports no Status ("Disabled"); that satisfies
    # `versioning: false` just as "Suspended" does, so compare on "is it enabled".
    Field("versioning", compare_as=lambda v: v == "Enabled"),
    Field("encryption"),
    Field("kms_key_id"),
    Field("block_public_access"),
    Field("tags", per_key=True),
)


class RegionMismatch(ReconcileError):
    """The bucket exists, but in another region; names are global and buckets cannot move."""



def desired(spec, target) -> dict:
    bucket = spec.bucket
    return {
        "name": bucket["name"],
        "region": target.region,
        "versioning": None if bucket.get("versioning") is None
        else ("Enabled" if bucket["versioning"] else "Suspended"),
        "encryption": bucket.get("encryption"),
        "kms_key_id": bucket.get("kms_key_id"),
        "block_public_access": bucket.get("block_public_access"),
        "tags": desired_tags(spec),
    }


def read(clients, want: dict) -> dict | None:
    s3 = clients.s3
    bucket = want["name"]
    # All five by name in one round trip; the settings' answers count only if the bucket is there.
    reads = at_once({
        "location": lambda: s3.get_bucket_location(Bucket=bucket),
        "versioning": lambda: s3.get_bucket_versioning(Bucket=bucket).get("Status", "Disabled"),
        "encryption": lambda: _read_encryption(s3, bucket),
        "block_public_access": lambda: _read_public_access_block(s3, bucket),
        "tags": lambda: _read_tags(s3, bucket),
    })
    answer = absent_on(("NoSuchBucket", "404"), reads.pop("location").result)
    if answer is None:
        return None
    location = answer.get("LocationConstraint")
    region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
    if region != want["region"]:
        raise RegionMismatch(
            f"bucket {bucket} exists in {region}, but canvas.yaml puts the stack in {want['region']}; "
            "a bucket cannot move between regions — use another bucket.name or set region: " + region)
    parts = {key: future.result() for key, future in reads.items()}  # the first error, in this order
    encryption, kms_key = parts.pop("encryption")
    return {"name": bucket, "region": region, "encryption": encryption, "kms_key_id": kms_key, **parts}


def _read_encryption(s3, bucket: str) -> tuple[str | None, str | None]:
    answer = absent_on(("ServerSideEncryptionConfigurationNotFoundError",),
                       lambda: s3.get_bucket_encryption(Bucket=bucket))
    rules = answer["ServerSideEncryptionConfiguration"]["Rules"] if answer else []
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    return default.get("SSEAlgorithm"), default.get("KMSMasterKeyID")


def _read_public_access_block(s3, bucket: str):
    answer = absent_on(("NoSuchPublicAccessBlockConfiguration",), lambda: s3.get_public_access_block(Bucket=bucket))
    config = answer["PublicAccessBlockConfiguration"] if answer else {}
    flags = [config.get(flag, False) for flag in _PAB_FLAGS]
    if all(flags) or not any(flags):
        return all(flags)
    on = [flag for flag, value in zip(_PAB_FLAGS, flags, strict=True) if value]
    return "partial: " + ", ".join(on)


def _read_tags(s3, bucket: str) -> dict[str, str]:
    answer = absent_on(("NoSuchTagSet", "NoSuchTagSetError"), lambda: s3.get_bucket_tagging(Bucket=bucket))
    return tags_from_aws(answer["TagSet"] if answer else [])


def create(clients, want: dict) -> None:
    kwargs = {"Bucket": want["name"]}
    # us-east-1 is the one region that rejects an explicit LocationConstraint.
    if want["region"] != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": want["region"]}
    clients.s3.create_bucket(**kwargs)
    clients.s3.get_waiter("bucket_exists").wait(Bucket=want["name"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    paths = [f.path for f in FIELDS if want.get(f.path) is not None]
    update(clients, want, {"tags": {}}, paths)


def update(clients, want: dict, have: dict, paths) -> None:
    s3, bucket = clients.s3, want["name"]
    paths = set(paths)
    # put_bucket_tagging replaces the whole set: keep the tags canvas.yaml does not manage.
    tags = whole_tag_set(want["tags"], have.get("tags", {}), paths)
    if tags is not None:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags_to_aws(tags)})
    if "versioning" in paths:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": want["versioning"]})
    if paths & {"encryption", "kms_key_id"}:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [_encryption_rule(want)]})
    if "block_public_access" in paths:
        _apply_public_access_block(s3, bucket, want["block_public_access"])


def _encryption_rule(want: dict) -> dict:
    default = {"SSEAlgorithm": want["encryption"]}
    if want.get("kms_key_id"):
        default["KMSMasterKeyID"] = want["kms_key_id"]
    return {"ApplyServerSideEncryptionByDefault": default}


def _apply_public_access_block(s3, bucket: str, block: bool) -> None:
    if block:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={f: True for f in _PAB_FLAGS})
    else:
        s3.delete_public_access_block(Bucket=bucket)


# Deliberately not named `delete`: apply looks for `delete`, and a bucket is never deleted
# by apply. Only `reconcile destroy --delete-bucket` with the bucket's name reaches this.
def contents(clients, bucket: str) -> dict[str, int]:
    """What deleting the bucket loses, counted over every version (ListObjectVersions, not
    ListObjects, which sees only current objects and would undercount a versioned bucket)."""
    objects, versions, markers = set(), 0, 0
    for page in clients.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            versions += 1
            if version.get("IsLatest"):
                objects.add(version["Key"])
        markers += len(page.get("DeleteMarkers", []))
    return {"objects": len(objects), "versions": versions, "delete_markers": markers}


def empty_and_delete(clients, have: dict) -> None:
    s3, bucket = clients.s3, have["name"]
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:  # a page holds at most 1,000 entries, DeleteObjects' own limit
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


# The interface's optional members this kind has no use for (kinds.Kind).
CREATE_ON_CHANGE = False
REPLACE_ON_CHANGE = False
resolve = keep_desired
note = no_note
delete = None  # apply never deletes the bucket: it holds the database (destroy --delete-bucket)
