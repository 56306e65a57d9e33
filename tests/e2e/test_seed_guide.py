"""The seed guide's hand-run deployment, then `reconcile apply` over it: adopted, never rebuilt.

Steps 1, 2, 4, 5 and 6 of the guide's "Manual Deployment" run in plain boto3 exactly as the
guide writes them (its quirks included); step 3, `docker build` + `docker push`, is replaced
by registering an image with ECR's PutImage. The tool must then bring that deployment in
line with canvas.yaml by updates alone: no replace, no delete, and nothing left to do after.
"""
from __future__ import annotations

import json

from tests.e2e.conftest import BUCKET, DB_KEY, FUNCTION, REPO, ROLE, STACK, TAG
from tests.ecr_images import register_image

REGION = "us-west-2"
LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
DATABASE = b"SQLite format 3\x00 the seed's tasks"


def deploy_by_hand(aws) -> str:
    """The guide's manual steps; returns the digest the function was created from."""
    # 1. Bucket, versioning, encryption. The guide sets no public access block.
    aws.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    aws.s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    aws.s3.put_object(Bucket=BUCKET, Key=DB_KEY, Body=DATABASE)  # the app has been running

    # 2. Repository with default settings (scan on push off, despite the guide's summary).
    aws.ecr.create_repository(repositoryName=REPO)

    # 3. docker build + push, replaced.
    digest = register_image(aws.ecr, REPO, TAG, b"seed image built from Dockerfile.lambda")

    # 4. Role: trust policy, basic execution, and the guide's S3 policy — with its bogus
    #    s3:HeadObject action and a `bucket/*` resource wider than the one database object.
    aws.iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    }))
    aws.iam.attach_role_policy(RoleName=ROLE, PolicyArn=LAMBDA_BASIC)
    aws.iam.put_role_policy(RoleName=ROLE, PolicyName="S3DatabaseAccessPolicy", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:HeadObject"],
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{BUCKET}",
            },
        ],
    }))

    # 5. Function. The guide hard-codes its account id; here it comes from STS.
    account = aws.sts.get_caller_identity()["Account"]
    aws.lambda_.create_function(
        FunctionName=FUNCTION,
        PackageType="Image",
        Code={"ImageUri": f"{account}.dkr.ecr.{REGION}.amazonaws.com/{REPO}:{TAG}"},
        Role=f"arn:aws:iam::{account}:role/{ROLE}",
        Timeout=900,
        MemorySize=2048,
        EphemeralStorage={"Size": 1024},
        # AWS_REGION is reserved: real Lambda rejects this create with
        # InvalidParameterValueException; moto accepts it, which lets the test show the tool
        # removing it (as it must, from a function someone created some other way).
        Environment={"Variables": {
            "NODE_ENV": "production",
            "S3_BUCKET_NAME": BUCKET,
            "S3_DB_KEY": DB_KEY,
            "AWS_REGION": REGION,
            "PORT": "8080",
        }},
    )

    # 6. Function URL with the guide's CORS, and the ONE permission the guide adds.
    aws.lambda_.create_function_url_config(
        FunctionName=FUNCTION, AuthType="NONE",
        Cors={"AllowOrigins": ["*"], "AllowMethods": ["*"], "AllowHeaders": ["*"]})
    aws.lambda_.add_permission(
        FunctionName=FUNCTION, StatementId="FunctionURLAllowPublicAccess", Action="lambda:InvokeFunctionUrl",
        Principal="*", FunctionUrlAuthType="NONE")
    return digest


def database_versions(aws) -> list[tuple[str, str, bool]]:
    """The app's objects; apply adds its own record under canvas/, which is not the app's data."""
    answer = aws.s3.list_object_versions(Bucket=BUCKET)
    return [(v["Key"], v["VersionId"], v["IsLatest"]) for v in answer.get("Versions", [])
            if not v["Key"].startswith("canvas/")] + \
           [(m["Key"], m["VersionId"], m["IsLatest"]) for m in answer.get("DeleteMarkers", [])
            if not m["Key"].startswith("canvas/")]


# The guide builds and pushes its image by hand, so canvas.yaml has no image.build here: the
# image is adopted as it is. (With image.build, apply would rebuild it once: nothing tells
# an image pushed by hand from one built from this context.)
def test_apply_over_the_seed_guides_deployment_only_updates_and_converges(reconcile, prebuilt_canvas, aws):
    digest = deploy_by_hand(aws)
    versions_before = database_versions(aws)

    planned = reconcile("plan", "--json")
    assert planned.code == 0, planned.err
    changes = {c["address"]: c for c in json.loads(planned.out)["changes"]}
    actions = {address: c["action"] for address, c in changes.items()}
    assert not [a for a, action in actions.items() if action in ("replace", "delete")], actions

    def paths(address: str) -> set[str]:
        assert changes[address]["action"] == "update", (address, changes[address])
        return {a["path"] for a in changes[address]["attributes"]}

    def attribute(address: str, path: str) -> dict:
        return next(a for a in changes[address]["attributes"] if a["path"] == path)

    # Every resource made by hand is adopted: tagged for the stack, not recreated.
    for address in (f"s3_bucket.{BUCKET}", f"ecr_repository.{REPO}", f"iam_role.{ROLE}",
                    f"lambda_function.{FUNCTION}"):
        assert attribute(address, "tags.canvas:stack") == {
            "path": "tags.canvas:stack", "before": None, "after": STACK, "cause": "spec"}, address
    assert {"block_public_access"} <= paths(f"s3_bucket.{BUCKET}")
    assert attribute(f"ecr_repository.{REPO}", "scan_on_push") == {
        "path": "scan_on_push", "before": False, "after": True, "cause": "spec"}
    # The guide's policy (s3:HeadObject, bucket/*) gives way to the least-privilege one.
    assert "inline_policies.S3DatabaseAccessPolicy" in paths(f"iam_role.{ROLE}")
    assert attribute(f"lambda_function.{FUNCTION}", "environment.AWS_REGION") == {
        "path": "environment.AWS_REGION", "before": REGION, "after": None, "cause": "spec"}
    # The function already runs the digest the tag points to: no code update.
    assert "image_digest" not in paths(f"lambda_function.{FUNCTION}")
    # The guide's CORS and its one permission already match (moto's flat permission fields
    # normalized); the second permission AWS now requires is the only thing created.
    assert actions[f"lambda_function_url.{FUNCTION}"] == "no-op", changes[f"lambda_function_url.{FUNCTION}"]
    assert actions["lambda_permission.FunctionURLAllowPublicAccess"] == "no-op"
    assert actions["lambda_permission.FunctionURLInvokeAllowPublicAccess"] == "create"
    assert [a for a, action in actions.items() if action == "create"] == [
        "lambda_permission.FunctionURLInvokeAllowPublicAccess"]

    applied = reconcile("apply", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert "create lambda_permission.FunctionURLInvokeAllowPublicAccess … SUCCESS" in applied.out

    after = reconcile("plan", "--detailed-exitcode")
    assert after.code == 0, after.out + after.err
    assert "No changes" in after.out

    # The database and its history are untouched, and the function still runs the seed image.
    assert database_versions(aws) == versions_before
    assert aws.s3.get_object(Bucket=BUCKET, Key=DB_KEY)["Body"].read() == DATABASE
    code = aws.lambda_.get_function(FunctionName=FUNCTION)["Code"]
    assert code["ResolvedImageUri"].endswith("@" + digest)
    environment = aws.lambda_.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    assert "AWS_REGION" not in environment and environment["S3_DB_KEY"] == DB_KEY
    statements = json.loads(aws.lambda_.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    assert sorted(s["Sid"] for s in statements) == [
        "FunctionURLAllowPublicAccess", "FunctionURLInvokeAllowPublicAccess"]
    policy = aws.iam.get_role_policy(RoleName=ROLE, PolicyName="S3DatabaseAccessPolicy")["PolicyDocument"]
    assert "s3:HeadObject" not in json.dumps(policy) and f"{BUCKET}/*" not in json.dumps(policy)
    block = aws.s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()), block
