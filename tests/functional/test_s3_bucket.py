"""s3_bucket against moto: create, drift of each managed attribute, repair."""
import pytest
from moto_harness import STACK, USER_TAGS

from reconciler.plan import Action

ALL_BLOCKED = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
               "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def test_create_from_nothing_then_converged(canvas, console):
    change = canvas.change(canvas.plan(), "s3_bucket")

    assert change.action is Action.CREATE
    assert change.address == f"s3_bucket.{canvas.names.bucket}"
    assert {a.path: (a.before, a.after) for a in change.attributes} == {
        "versioning": (None, "Enabled"),
        "encryption": (None, "AES256"),
        "block_public_access": (None, True),
        "tags.canvas:stack": (None, STACK),
        "tags.cost-centre": (None, "42"),
        "tags.team": (None, "canvas"),
    }

    canvas.converge()

    assert {"CreateBucket", "PutBucketVersioning", "PutBucketEncryption", "PutPublicAccessBlock",
            "PutBucketTagging"} <= set(canvas.calls.mutating_in("s3"))
    bucket = canvas.names.bucket
    assert console.s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = console.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert console.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == ALL_BLOCKED
    assert console.bucket_tags() == {**USER_TAGS, "canvas:stack": STACK}


def _suspend_versioning(console):
    console.s3.put_bucket_versioning(Bucket=console.names.bucket, VersioningConfiguration={"Status": "Suspended"})


def _encrypt_with_kms(console):
    console.s3.put_bucket_encryption(Bucket=console.names.bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})


def _remove_public_access_block(console):
    console.s3.delete_public_access_block(Bucket=console.names.bucket)


def _partial_public_access_block(console):
    console.s3.put_public_access_block(Bucket=console.names.bucket, PublicAccessBlockConfiguration={
        **ALL_BLOCKED, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})


def _retag(console, **tags):
    console.s3.put_bucket_tagging(Bucket=console.names.bucket, Tagging={
        "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


DRIFTS = [
    pytest.param(_suspend_versioning, "versioning", "Suspended", "Enabled", "PutBucketVersioning",
                 id="versioning-suspended"),
    pytest.param(_encrypt_with_kms, "encryption", "aws:kms", "AES256", "PutBucketEncryption",
                 id="encryption-kms"),
    pytest.param(_remove_public_access_block, "block_public_access", False, True, "PutPublicAccessBlock",
                 id="public-access-block-removed"),
    pytest.param(_partial_public_access_block, "block_public_access",
                 "partial: BlockPublicAcls, IgnorePublicAcls", True, "PutPublicAccessBlock",
                 id="public-access-block-partial"),
    pytest.param(lambda c: _retag(c, **USER_TAGS), "tags.canvas:stack", None, STACK, "PutBucketTagging",
                 id="ownership-tag-removed"),
    pytest.param(lambda c: _retag(c, **{**USER_TAGS, "team": "platform", "canvas:stack": STACK}),
                 "tags.team", "platform", "canvas", "PutBucketTagging", id="user-tag-changed"),
]


@pytest.mark.parametrize("drift, path, before, after, repair_call", DRIFTS)
def test_drift_is_detected_and_repaired(canvas, console, drift, path, before, after, repair_call):
    canvas.converge()
    drift(console)

    canvas.assert_repaired("s3_bucket", (path, before, after), repair_call)


def test_tags_canvas_yaml_does_not_mention_are_neither_drift_nor_lost(canvas, console):
    canvas.converge()
    _retag(console, **{**USER_TAGS, "canvas:stack": STACK, "owner": "alice", "team": "platform"})

    change = canvas.change(canvas.plan(), "s3_bucket")
    assert [a.path for a in change.attributes] == ["tags.team"]

    assert canvas.apply().result.ok
    # put_bucket_tagging replaces the whole set; the engine must carry the unmanaged tag over.
    assert console.bucket_tags() == {**USER_TAGS, "canvas:stack": STACK, "owner": "alice"}


def test_never_versioned_bucket_satisfies_versioning_false(canvas, console):
    canvas.write(lambda spec: spec["bucket"].update(versioning=False))
    console.make_bucket({**USER_TAGS, "canvas:stack": STACK}, versioning=False)
    assert "Status" not in console.s3.get_bucket_versioning(Bucket=canvas.names.bucket)

    change = canvas.change(canvas.plan(), "s3_bucket")

    assert change.action is Action.NOOP
    assert change.live["versioning"] == "Disabled"
