"""What the functional tests share: the canvas.yaml they start from, the policies people
write by hand, a recorder of the engine's AWS calls, fault injection, and a colleague's
console for out-of-band changes.

A module of its own, not conftest.py: `from conftest import …` picks whichever conftest.py
was loaded last when several test directories are collected together.
"""
from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml
from botocore.awsrequest import AWSResponse

from reconciler.apply import ApplyResult, apply_plan
from reconciler.aws import Clients
from reconciler.kinds import FOUNDATION
from reconciler.plan import Action, Plan, ResourceChange
from reconciler.planner import build_plan
from reconciler.spec import load_spec

REGION = "us-west-2"
OTHER_REGION = "eu-west-1"
FAKE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
STACK = "code-canvas-astro"
DATABASE_KEY = "database/taskManagement.db"
LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
USER_TAGS = {"team": "canvas", "cost-centre": "42"}
READ_PREFIXES = ("Get", "List", "Describe", "Head")

# canvas.yaml from the repository, every managed field written out (so nothing depends on
# the schema's defaults), plus tag_mutability and tags; the names are filled in per test.
CANVAS_YAML = """\
version: 1
stack: code-canvas-astro
region: us-west-2

tags:
  team: canvas
  cost-centre: "42"

bucket:
  name: {bucket}
  versioning: true
  encryption: AES256
  block_public_access: true
  database_key: database/taskManagement.db

repository:
  name: {repository}
  scan_on_push: true
  tag_mutability: MUTABLE

image:
  tag: v1.2
  build:
    dockerfile: Dockerfile.lambda
    context: .
    platform: linux/amd64

role:
  name: {role}
  managed_policies:
    - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole

function:
  name: code-canvas-astro-lambda
  memory: 2048
  timeout: 900
  ephemeral_storage: 1024
  environment:
    NODE_ENV: production
    PORT: "8080"

url:
  auth_type: NONE
  cors:
    allow_origins: ["*"]
    allow_methods: ["*"]
    allow_headers: ["*"]
"""

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


def least_privilege_policy(bucket: str) -> dict:
    """The derived S3DatabaseAccessPolicy as a person would type it: statements in another
    order, strings where the engine has lists and the reverse, no Sids."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject"],
             "Resource": f"arn:aws:s3:::{bucket}/{DATABASE_KEY}.canvas/*"},
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
             "Resource": [f"arn:aws:s3:::{bucket}/{DATABASE_KEY}.canvas/*", f"arn:aws:s3:::{bucket}/{DATABASE_KEY}"]},
        ],
    }


def seed_guide_policy(bucket: str) -> dict:
    """The inline policy exactly as the seed deployment guide's step 4 puts it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:HeadObject"],
             "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"},
        ],
    }


def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


class CallRecorder:
    """Every API call the engine's clients make, as (service, operation), in call order."""

    def __init__(self, clients: Clients):
        self.calls: list[tuple[str, str]] = []
        for service, client in clients.services().items():
            client.meta.events.register("before-call", functools.partial(self._record, service))

    def _record(self, service: str, model, **_) -> None:
        self.calls.append((service, model.name))  # list.append is atomic: reads run in threads

    @property
    def operations(self) -> list[str]:
        return [operation for _, operation in self.calls]

    @property
    def mutating(self) -> list[str]:
        return [operation for operation in self.operations if is_mutating(operation)]

    def mutating_in(self, service: str) -> list[str]:
        return [op for svc, op in self.calls if svc == service and is_mutating(op)]

    def clear(self) -> None:
        self.calls.clear()


def inject_error(client, operation: str, code: str, message: str, *, status: int = 400) -> Callable[[], None]:
    """Make `operation` on this client answer with an AWS error instead of reaching moto.

    A before-call handler that returns a response short-circuits the request, exactly as
    botocore's Stubber does. Returns a function that removes the fault again.
    """
    event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    unique_id = f"inject-{uuid.uuid4()}"

    def answer(**_):
        return AWSResponse(None, status, {}, None), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    client.meta.events.register(event, answer, unique_id=unique_id)
    return lambda: client.meta.events.unregister(event, unique_id=unique_id)


class Echo:
    """Collects what apply prints, honouring click.echo's nl=False."""

    def __init__(self):
        self.text = ""

    def __call__(self, message: str = "", nl: bool = True) -> None:
        self.text += message + ("\n" if nl else "")

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


@dataclass
class Applied:
    result: ApplyResult
    lines: list[str]


@dataclass
class Names:
    bucket: str
    repository: str
    role: str

    @property
    def addresses(self) -> dict[str, str]:
        return {"s3_bucket": f"s3_bucket.{self.bucket}",
                "ecr_repository": f"ecr_repository.{self.repository}",
                "iam_role": f"iam_role.{self.role}"}


@dataclass
class Canvas:
    """One test's canvas.yaml, the engine's clients on it, and the calls they make."""

    path: Path
    names: Names
    clients: Clients
    calls: CallRecorder

    def write(self, edit: Callable[[dict], None] | None = None) -> None:
        data = yaml.safe_load(CANVAS_YAML.format(**vars(self.names)))
        if edit:
            edit(data)
        self.path.write_text(yaml.safe_dump(data, sort_keys=False))

    def spec(self):
        return load_spec(self.path)

    def plan(self) -> Plan:
        spec = self.spec()
        return build_plan(spec, self.clients, region=spec.region, kinds=FOUNDATION)

    def apply(self, plan: Plan | None = None, **kwargs) -> Applied:
        echo = Echo()
        result = apply_plan(plan or self.plan(), self.clients, echo=echo, **kwargs)
        return Applied(result, echo.lines)

    def converge(self) -> None:
        applied = self.apply()
        assert applied.result.ok, applied.lines
        assert not self.plan().has_changes

    def assert_repaired(self, kind: str, expected: tuple, repair_call: str, *,
                        shown: Callable = lambda value: value) -> None:
        """After an out-of-band change: the plan shows exactly `expected` (path, before, after)
        on `kind` and nothing elsewhere; apply repairs it with the one write `repair_call`, and
        the next plan is empty. `shown` projects before/after for comparison (policies by grant)."""
        plan = self.plan()
        change = self.change(plan, kind)
        assert change.action is Action.UPDATE
        assert [(a.path, shown(a.before), shown(a.after)) for a in change.attributes] == [expected]
        assert [c.action for c in plan.changes if c.type != kind] == [Action.NOOP, Action.NOOP]

        self.calls.clear()
        applied = self.apply(plan)

        assert applied.result.ok, applied.lines
        assert self.calls.mutating == [repair_call]
        assert not self.plan().has_changes

    @staticmethod
    def change(plan: Plan, kind: str) -> ResourceChange:
        [change] = [c for c in plan.changes if c.type == kind]
        return change


class Console:
    """A colleague's plain boto3 clients, for changes made out of band."""

    def __init__(self, names: Names, clients: dict):
        self.names = names
        self._clients = clients
        self.s3, self.ecr, self.iam = clients[("s3", REGION)], clients[("ecr", REGION)], clients[("iam", REGION)]

    def bucket_tags(self) -> dict[str, str]:
        tag_set = self.s3.get_bucket_tagging(Bucket=self.names.bucket)["TagSet"]
        return {t["Key"]: t["Value"] for t in tag_set}

    def repository_arn(self) -> str:
        repos = self.ecr.describe_repositories(repositoryNames=[self.names.repository])["repositories"]
        return repos[0]["repositoryArn"]

    def repository_tags(self) -> dict[str, str]:
        tags = self.ecr.list_tags_for_resource(resourceArn=self.repository_arn())["tags"]
        return {t["Key"]: t["Value"] for t in tags}

    def role_tags(self) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.iam.list_role_tags(RoleName=self.names.role)["Tags"]}

    def tags_of(self, kind: str) -> dict[str, str]:
        return {"s3_bucket": self.bucket_tags, "ecr_repository": self.repository_tags,
                "iam_role": self.role_tags}[kind]()

    def make(self, kind: str, tags: dict[str, str]) -> None:
        """The resource as canvas.yaml describes it, made by hand, with these tags only."""
        {"s3_bucket": self.make_bucket, "ecr_repository": self.make_repository,
         "iam_role": self.make_role}[kind](tags)

    def make_bucket(self, tags: dict[str, str], *, region: str = REGION, versioning: bool = True) -> None:
        s3 = self._clients[("s3", region)]
        bucket = self.names.bucket
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        if versioning:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        if tags:
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tag_list(tags)})

    def make_repository(self, tags: dict[str, str]) -> None:
        kwargs = {"tags": _tag_list(tags)} if tags else {}
        self.ecr.create_repository(repositoryName=self.names.repository, imageTagMutability="MUTABLE",
                                   imageScanningConfiguration={"scanOnPush": True}, **kwargs)

    def make_role(self, tags: dict[str, str]) -> None:
        role = self.names.role
        kwargs = {"Tags": _tag_list(tags)} if tags else {}
        self.iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST), **kwargs)
        self.iam.attach_role_policy(RoleName=role, PolicyArn=LAMBDA_BASIC)
        self.iam.put_role_policy(RoleName=role, PolicyName="S3DatabaseAccessPolicy",
                                 PolicyDocument=json.dumps(least_privilege_policy(self.names.bucket)))


def _tag_list(tags: dict[str, str]) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]
