"""canvas.yaml loading and validation: the contract file, every check both ways, positions
of problems, and bad input of every kind ending in SpecError rather than a traceback."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from reconciler.spec import (
    DERIVED_ENV_KEYS,
    RESERVED_ENV_KEYS,
    Problem,
    Spec,
    SpecError,
    check_region,
    load_spec,
    schema,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "canvas.yaml"
CONTRACT_TEXT = CONTRACT.read_text(encoding="utf-8")

MINIMAL = """\
version: 1
stack: demo
region: eu-central-1
bucket:
  name: demo-db
  database_key: app.db
repository:
  name: demo
image:
  tag: latest
role:
  name: demo-role
function:
  name: demo-fn
"""


@pytest.fixture
def write(tmp_path):
    """Write YAML text (or bytes) to a file and return its path as a string."""
    def _write(content: str | bytes, name: str = "canvas.yaml") -> str:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return str(path)
    return _write


def edited(old: str, new: str, text: str = CONTRACT_TEXT) -> str:
    """The contract canvas.yaml with one exact piece of text replaced."""
    assert old in text, f"{old!r} is not in the base text"
    return text.replace(old, new, 1)


def problems_of(path: str) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return caught.value.problems


def messages(path: str) -> list[str]:
    return [f"{p.path}: {p.message}" for p in problems_of(path)]


def only_problem(path: str) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


# --- the contract file ---------------------------------------------------------------


def test_contract_canvas_yaml_loads_with_its_values():
    spec = load_spec(CONTRACT)
    assert spec.stack == "code-canvas-astro"
    assert spec.region == "us-west-2"
    assert spec.bucket["name"] == "code-canvas-astro-db"
    assert spec.bucket["database_key"] == "database/taskManagement.db"
    assert spec.repository == {"name": "python-repl-container-lambda", "scan_on_push": True}
    assert spec.image["tag"] == "v1.2"
    assert spec.role["managed_policies"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    assert spec.function["memory"] == 2048 and spec.function["timeout"] == 900
    assert spec.function["environment"] == {"NODE_ENV": "production", "PORT": "8080"}
    assert spec.url["cors"]["allow_origins"] == ["*"]


def test_file_is_the_path_as_given(write, tmp_path, monkeypatch):
    write(CONTRACT_TEXT, "spec.yaml")
    monkeypatch.chdir(tmp_path)
    assert load_spec("spec.yaml").file == "spec.yaml"
    assert load_spec(pathlib.Path("spec.yaml")).file == "spec.yaml"
    assert load_spec("./spec.yaml").file == "./spec.yaml"


def test_contract_only_warning_is_the_public_url():
    spec = load_spec(CONTRACT)
    assert len(spec.warnings) == 1
    warning = spec.warnings[0]
    assert warning.startswith(f"{CONTRACT}:38:14: url.auth_type: NONE makes the function public")
    assert "AWS_IAM" in warning


def test_contract_defaults_are_filled_in():
    spec = load_spec(CONTRACT)
    assert spec.url["invoke_mode"] == "BUFFERED"
    assert spec.tags is None


def test_sha256_is_of_the_raw_bytes_and_stable(write):
    assert load_spec(CONTRACT).sha256 == hashlib.sha256(CONTRACT.read_bytes()).hexdigest()
    assert load_spec(CONTRACT).sha256 == load_spec(CONTRACT).sha256
    commented = load_spec(write(CONTRACT_TEXT + "# a comment\n"))
    assert commented.sha256 != load_spec(CONTRACT).sha256
    assert commented.data == load_spec(CONTRACT).data


def test_no_field_of_a_spec_can_be_reassigned_or_deleted():
    # Shallow, as a frozen dataclass is: `data` is a plain dict the engine treats as read-only.
    spec = load_spec(CONTRACT)
    for field in dataclasses.fields(spec):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(spec, field.name, getattr(spec, field.name))
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(spec, field.name)
    assert isinstance(spec.warnings, tuple)


def test_minimal_spec_gets_schema_defaults_and_leaves_the_rest_unmanaged(write):
    spec = load_spec(write(MINIMAL))
    assert spec.bucket == {
        "name": "demo-db", "database_key": "app.db",
        "versioning": True, "encryption": "AES256", "block_public_access": True,
    }
    assert spec.repository == {"name": "demo"}  # scan_on_push, tag_mutability unmanaged
    assert spec.image == {"tag": "latest"}  # no build section: never builds
    assert spec.function == {"name": "demo-fn"}
    assert spec.url is None and spec.tags is None
    assert spec.warnings == ()


def test_build_defaults_apply_when_build_is_present(write):
    spec = load_spec(write(edited("  tag: latest\n", "  tag: latest\n  build: {}\n", MINIMAL)))
    assert spec.image["build"] == {
        "dockerfile": "Dockerfile.lambda", "context": ".", "platform": "linux/amd64",
    }


def test_aws_iam_url_has_no_warning(write):
    spec = load_spec(write(edited("auth_type: NONE", "auth_type: AWS_IAM")))
    assert spec.warnings == ()
    assert spec.url["auth_type"] == "AWS_IAM"


def test_every_optional_key_accepted(write):
    full = MINIMAL.replace("region: eu-central-1\n", "region: eu-central-1\ntags: {team: web, cost-center: '42'}\n")
    full = full.replace("  database_key: app.db\n", (
        "  database_key: app.db\n  versioning: false\n  encryption: aws:kms\n"
        "  kms_key_id: alias/demo\n  block_public_access: false\n"))
    full = full.replace("  name: demo\n",
                        "  name: team/demo\n  scan_on_push: false\n  tag_mutability: MUTABLE\n  keep_images: 3\n")
    full = full.replace("  tag: latest\n", (
        "  tag: latest\n  build:\n    dockerfile: Dockerfile\n    context: app\n"
        "    platform: linux/arm64\n    args: {PY: '3.12'}\n"))
    full = full.replace("  name: demo-role\n", "  name: demo-role\n  managed_policies: []\n")
    full = full.replace("  name: demo-fn\n", (
        "  name: demo-fn\n  memory: 10240\n  timeout: 1\n  ephemeral_storage: 512\n"
        "  environment: {A1: x}\n  architectures: [arm64]\n  reserved_concurrency: 0\n"))
    full += ("url:\n  auth_type: AWS_IAM\n  invoke_mode: RESPONSE_STREAM\n  cors:\n"
             "    allow_origins: [https://example.com]\n    allow_methods: [GET, POST]\n"
             "    allow_headers: [x-api-key]\n    expose_headers: [etag]\n    max_age: 86400\n"
             "    allow_credentials: true\n")
    spec = load_spec(write(full))
    assert spec.tags == {"team": "web", "cost-center": "42"}
    assert spec.bucket["kms_key_id"] == "alias/demo" and spec.bucket["versioning"] is False
    assert spec.image["build"]["args"] == {"PY": "3.12"}
    assert spec.repository["keep_images"] == 3
    assert spec.function["reserved_concurrency"] == 0
    assert spec.url["cors"]["max_age"] == 86400


def test_yaml_1_1_yes_is_a_boolean(write):
    spec = load_spec(write(edited("  versioning: true", "  versioning: yes")))
    assert spec.bucket["versioning"] is True


def test_public_constants():
    assert DERIVED_ENV_KEYS == frozenset({"S3_BUCKET_NAME", "S3_DB_KEY"})
    assert {"AWS_REGION", "AWS_ACCESS_KEY_ID", "_HANDLER", "LAMBDA_TASK_ROOT"} <= RESERVED_ENV_KEYS
    assert len(RESERVED_ENV_KEYS) == 18


# --- Problem and SpecError -----------------------------------------------------------


@pytest.mark.parametrize("problem, text", [
    (Problem("canvas.yaml", 26, 11, "function.memory", "64 is below the minimum 128 (MB)"),
     "canvas.yaml:26:11: function.memory: 64 is below the minimum 128 (MB)"),
    (Problem("canvas.yaml", None, None, "", "file not found"), "canvas.yaml: file not found"),
    (Problem("x/canvas.yaml", 1, 1, "", "oops"), "x/canvas.yaml:1:1: oops"),
    (Problem("canvas.yaml", None, None, "region", "bad"), "canvas.yaml: region: bad"),
])
def test_problem_str(problem, text):
    assert str(problem) == text


def test_spec_error_sorts_problems_by_position_and_prints_one_per_line():
    error = SpecError([
        Problem("c.yaml", 9, 3, "b", "second"),
        Problem("c.yaml", 2, 7, "a", "first"),
        Problem("c.yaml", 9, 1, "c", "between"),
    ])
    assert [p.message for p in error.problems] == ["first", "between", "second"]
    assert str(error) == "c.yaml:2:7: a: first\nc.yaml:9:1: c: between\nc.yaml:9:3: b: second"


# --- ranges, types, enums ------------------------------------------------------------


@pytest.mark.parametrize("old, new, message", [
    ("memory: 2048", "memory: 127", "function.memory: 127 is below the minimum 128 (MB)"),
    ("memory: 2048", "memory: 10241", "function.memory: 10241 is above the maximum 10240 (MB)"),
    ("timeout: 900", "timeout: 0", "function.timeout: 0 is below the minimum 1 (seconds)"),
    ("timeout: 900", "timeout: 901", "function.timeout: 901 is above the maximum 900 (seconds)"),
    ("ephemeral_storage: 1024", "ephemeral_storage: 511",
     "function.ephemeral_storage: 511 is below the minimum 512 (MB)"),
    ("ephemeral_storage: 1024", "ephemeral_storage: 10241",
     "function.ephemeral_storage: 10241 is above the maximum 10240 (MB)"),
    ("memory: 2048", "memory: true", "function.memory: expected an integer, got boolean true"),
    ("memory: 2048", "memory: 2048.0", "function.memory: expected an integer, got number 2048.0"),
    ("memory: 2048", 'memory: "2048"',
     'function.memory: expected an integer, got string "2048"; remove the quotes'),
    ("  versioning: true", '  versioning: "true"',
     'bucket.versioning: expected true or false, got string "true"; remove the quotes'),
    ("  versioning: true", "  versioning: maybe", 'bucket.versioning: expected true or false, got string "maybe"'),
    ("  encryption: AES256", "  encryption: KMS",
     'bucket.encryption: must be one of: AES256, aws:kms; got string "KMS"'),
    ("  encryption: AES256", "  encryption: 256",
     "bucket.encryption: expected a string, got integer 256; quote it to make it a string: \"256\""),
    ("auth_type: NONE", "auth_type: none",
     'url.auth_type: must be one of: NONE, AWS_IAM; got string "none" (did you mean "NONE"?)'),
    ("version: 1", "version: 2", "version: must be 1 (the only format version there is); got integer 2"),
    ("version: 1", 'version: "1"', 'version: expected an integer, got string "1"; remove the quotes'),
    ("  tag: v1.2", "  tag: .hidden",
     'image.tag: ".hidden" is not a valid Docker tag: 1–128 letters, digits, "_", "." or "-", '
     'not starting with "." or "-"'),
    ("  tag: v1.2", "  tag: 2024-01-01",
     'image.tag: expected a string, got a date 2024-01-01; quote it to make it a string: "2024-01-01"'),
    ("stack: code-canvas-astro", "stack: code canvas",
     'stack: "code canvas" is not a valid stack name: 1–128 letters, digits, "-", "_" or "." '
     "(it becomes a tag value)"),
    ("    platform: linux/amd64", "    platform: linux/386",
     'image.build.platform: must be one of: linux/amd64, linux/arm64; got string "linux/386"'),
    ("  scan_on_push: true", "  scan_on_push: true\n  tag_mutability: immutable",
     'repository.tag_mutability: must be one of: MUTABLE, IMMUTABLE; got string "immutable" '
     '(did you mean "IMMUTABLE"?)'),
    ("  ephemeral_storage: 1024", "  ephemeral_storage: 1024\n  reserved_concurrency: -1",
     "function.reserved_concurrency: -1 is below the minimum 0"),
    ("  ephemeral_storage: 1024", "  ephemeral_storage: 1024\n  architectures: [x86_64, arm64]",
     "function.architectures: lists 2 items; at most 1 allowed (a Lambda function has exactly one architecture)"),
    ("  ephemeral_storage: 1024", "  ephemeral_storage: 1024\n  architectures: []",
     "function.architectures: must list at least 1 item (a Lambda function has exactly one architecture)"),
    ("  ephemeral_storage: 1024", "  ephemeral_storage: 1024\n  architectures: [amd64]",
     'function.architectures[0]: must be one of: x86_64, arm64; got string "amd64"'),  # no "arm64?" guess
    ('    allow_headers: ["*"]', '    allow_headers: ["*"]\n    max_age: 86401',
     "url.cors.max_age: 86401 is above the maximum 86400 (seconds)"),
    ('    allow_methods: ["*"]', '    allow_methods: ["get"]',
     'url.cors.allow_methods[0]: must be one of: *, GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS; '
     'got string "get" (did you mean "GET"?)'),
    ("  auth_type: NONE", "  invoke_mode: BUFFERED",
     'url: missing required key "auth_type"'),
    ("    - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
     "    - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole\n"
     "    - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
     'role.managed_policies[1]: string "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole" '
     "is listed more than once"),
    ("  managed_policies:\n    - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
     "  managed_policies: arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
     'role.managed_policies: expected a list, got string "arn:aws:iam::aws:policy/service-role/'
     'AWSLambdaBasicExecutionRole"'),
])
def test_schema_rule_message(write, old, new, message):
    assert messages(write(edited(old, new))) == [message]


# --- semantic checks -----------------------------------------------------------------


@pytest.mark.parametrize("region", [
    "us-west-2", "eu-central-1", "ap-southeast-3", "il-central-1", "us-gov-west-1",
    "us-iso-east-1", "us-isob-east-1", "cn-north-1", "mx-central-1",
])
def test_valid_regions(region):
    assert check_region(region) is None


@pytest.mark.parametrize("region", ["us-west", "US-WEST-2", "uswest2", "us-west-2a", "", "us-west-2 "])
def test_invalid_regions(region):
    assert check_region(region) == (
        f'"{region}" is not an AWS region code; expected one like us-west-2 or eu-central-1'
    )


def test_region_check_applies_to_the_file(write):
    assert messages(write(edited("region: us-west-2", "region: Oregon"))) == [
        'region: "Oregon" is not an AWS region code; expected one like us-west-2 or eu-central-1'
    ]


@pytest.mark.parametrize("name", [
    "abc", "my-bucket", "my.bucket.name", "a" * 63, "1bucket", "code-canvas-astro-db", "xn-ok",
])
def test_valid_bucket_names(write, name):
    assert load_spec(write(edited("name: code-canvas-astro-db", f"name: {name}"))).bucket["name"] == name


@pytest.mark.parametrize("name, reason", [
    ("ab", "it must be 3–63 characters long (it is 2)"),
    ("a" * 64, "it must be 3–63 characters long (it is 64)"),
    ("My-bucket", "uppercase letters are not allowed"),
    ("my_bucket", 'only lowercase letters, digits, "." and "-" are allowed (found "_")'),
    ("-bucket", "it must start and end with a lowercase letter or digit"),
    ("bucket.", "it must start and end with a lowercase letter or digit"),
    ("my..bucket", "it must not contain two adjacent periods"),
    ("192.168.5.4", "it must not look like an IP address"),
    ("xn--bucket", 'the prefix "xn--" is reserved by AWS'),
    ("sthree-bucket", 'the prefix "sthree-" is reserved by AWS'),
    ("amzn-s3-demo-bucket", 'the prefix "amzn-s3-demo-" is reserved by AWS'),
    ("bucket-s3alias", 'the suffix "-s3alias" is reserved by AWS'),
    ("bucket--ol-s3", 'the suffix "--ol-s3" is reserved by AWS'),
    ("bucket.mrap", 'the suffix ".mrap" is reserved by AWS'),
    ("bucket--x-s3", 'the suffix "--x-s3" is reserved by AWS'),
    ("bucket--table-s3", 'the suffix "--table-s3" is reserved by AWS'),
])
def test_invalid_bucket_names(write, name, reason):
    (problem,) = problems_of(write(edited("name: code-canvas-astro-db", f"name: '{name}'")))
    assert problem.path == "bucket.name"
    assert problem.message.startswith(f'"{name}" is not a valid S3 bucket name: ')
    assert reason in problem.message.split(": ", 1)[1].split("; ")


@pytest.mark.parametrize("name", ["ab", "team/app", "a.b_c-d", "x/y/z", "python-repl-container-lambda"])
def test_valid_repository_names(write, name):
    text = edited("name: python-repl-container-lambda", f"name: {name}")
    assert load_spec(write(text)).repository["name"] == name


@pytest.mark.parametrize("name, reason", [
    ("a", "it must be 2–256 characters long (it is 1)"),
    ("Team/app", "uppercase letters are not allowed"),
    ("my repo", 'only lowercase letters, digits, ".", "_", "-" and "/" are allowed (found space)'),
    ("a--b", '".", "_", "-" and "/" may only sit between letters or digits, one at a time (like team/my-app)'),
    ("app/", '".", "_", "-" and "/" may only sit between letters or digits, one at a time (like team/my-app)'),
    ("-app", '".", "_", "-" and "/" may only sit between letters or digits, one at a time (like team/my-app)'),
])
def test_invalid_repository_names(write, name, reason):
    (problem,) = problems_of(write(edited("name: python-repl-container-lambda", f"name: '{name}'")))
    assert problem.path == "repository.name"
    assert problem.message == f'"{name}" is not a valid ECR repository name: {reason}'


@pytest.mark.parametrize("name", ["f", "My_Function-2", "a" * 64])
def test_valid_function_names(write, name):
    assert load_spec(write(edited("name: code-canvas-astro-lambda\n", f"name: {name}\n"))).function["name"] == name


@pytest.mark.parametrize("name, reason", [
    ("", "it must be 1–64 characters long (it is 0)"),
    ("a" * 65, "it must be 1–64 characters long (it is 65)"),
    ("my.function", 'only letters, digits, "-" and "_" are allowed (found ".")'),
    ("fn:prod", 'only letters, digits, "-" and "_" are allowed (found ":")'),
])
def test_invalid_function_names(write, name, reason):
    (problem,) = problems_of(write(edited("name: code-canvas-astro-lambda\n", f"name: '{name}'\n")))
    assert problem.path == "function.name"
    assert problem.message == f'"{name}" is not a valid Lambda function name: {reason}'


@pytest.mark.parametrize("name", ["r", "role+=,.@_-x", "a" * 64])
def test_valid_role_names(write, name):
    assert load_spec(write(edited("name: code-canvas-astro-lambda-role", f"name: '{name}'"))).role["name"] == name


@pytest.mark.parametrize("name, reason", [
    ("a" * 65, "it must be 1–64 characters long (it is 65)"),
    ("my role!", 'only letters, digits and "+=,.@_-" are allowed (found space, "!")'),
    ("rôle", 'only letters, digits and "+=,.@_-" are allowed (found "ô")'),
])
def test_invalid_role_names(write, name, reason):
    (problem,) = problems_of(write(edited("name: code-canvas-astro-lambda-role", f"name: '{name}'")))
    assert problem.path == "role.name"
    assert problem.message == f'"{name}" is not a valid IAM role name: {reason}'


@pytest.mark.parametrize("arn", [
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::123456789012:policy/my-policy",
    "arn:aws:iam::123456789012:policy/team/app/my-policy",
    "arn:aws-us-gov:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws-cn:iam::aws:policy/ReadOnlyAccess",
])
def test_valid_policy_arns(write, arn):
    text = edited("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole", arn)
    assert load_spec(write(text)).role["managed_policies"] == [arn]


@pytest.mark.parametrize("arn", [
    "arn:aws:iam::12345:policy/x",
    "arn:aws:iam::aws:role/x",
    "arn:aws:s3:::bucket",
    "arn:aws:iam::aws:policy/",
    "arn:aws:iam:us-east-1:aws:policy/x",
    "AWSLambdaBasicExecutionRole",
])
def test_invalid_policy_arns(write, arn):
    text = edited("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole", arn)
    (problem,) = problems_of(write(text))
    assert problem.path == "role.managed_policies[0]"
    assert problem.message.startswith(
        f'"{arn}" is not an IAM managed policy ARN; expected arn:aws:iam::aws:policy/NAME'
    )


@pytest.mark.parametrize("key", sorted(RESERVED_ENV_KEYS))
def test_every_reserved_env_key_is_rejected(write, key):
    (problem,) = problems_of(write(edited('PORT: "8080"', f'PORT: "8080"\n    {key}: x')))
    assert problem.path == f"function.environment.{key}"
    assert problem.message == (
        f"{key} is reserved: Lambda sets it itself and rejects a function that defines it; remove it"
    )


@pytest.mark.parametrize("key, source", [("S3_BUCKET_NAME", "bucket.name"), ("S3_DB_KEY", "bucket.database_key")])
def test_derived_env_keys_are_rejected(write, key, source):
    (problem,) = problems_of(write(edited('PORT: "8080"', f'PORT: "8080"\n    {key}: x')))
    assert problem.message == (
        f"{key} is set by canvas-reconcile from {source}; remove it here (change {source} instead)"
    )


@pytest.mark.parametrize("key", ["A", "1ABC", "MY-VAR", "MY.VAR", "_PRIVATE", "ÄPFEL"])
def test_invalid_env_key_names(write, key):
    (problem,) = problems_of(write(edited('PORT: "8080"', f'PORT: "8080"\n    "{key}": x')))
    assert problem.path == f"function.environment.{key}"
    assert problem.message.startswith(f'"{key}" is not a valid environment variable name')


@pytest.mark.parametrize("key", ["AB", "my_var", "Z9", "LOG_LEVEL"])
def test_valid_env_key_names(write, key):
    assert key in load_spec(write(edited('PORT: "8080"', f'PORT: "8080"\n    {key}: x'))).function["environment"]


def _env_with_total(total: int) -> str:
    """The contract file with one extra variable so that the environment totals `total` bytes."""
    derived = len("S3_BUCKET_NAME") + len("code-canvas-astro-db") + len("S3_DB_KEY") + len("database/taskManagement.db")
    user = len("NODE_ENV") + len("production") + len("PORT") + len("8080")
    padding = total - derived - user - len("BIG")
    # "é" is two UTF-8 bytes: the limit counts bytes, not characters.
    value = "é" * (padding // 2) + "x" * (padding % 2)
    return edited('PORT: "8080"', f'PORT: "8080"\n    BIG: "{value}"')


def test_environment_of_exactly_4096_bytes_is_allowed(write):
    assert load_spec(write(_env_with_total(4096))).function["environment"]["BIG"]


def test_environment_over_4096_bytes_is_rejected(write):
    (problem,) = problems_of(write(_env_with_total(4097)))
    assert problem.path == "function.environment"
    assert problem.message.startswith("the variables take 4097 bytes, over Lambda's 4 KB limit (4096 bytes")
    assert (problem.line, problem.column) == (33, 3)


def test_derived_variables_count_towards_the_limit(write):
    long_key = "d/" + "k" * 1000
    text = edited("database_key: database/taskManagement.db", f"database_key: {long_key}")
    almost = 4096 - 1000 - len("BIG")  # fits without the derived variables, not with them
    problems = messages(write(edited('PORT: "8080"', f'PORT: "8080"\n    BIG: "{"x" * (almost - 60)}"', text)))
    assert len(problems) == 1 and problems[0].startswith("function.environment: the variables take")


@pytest.mark.parametrize("key, message", [
    ("/database/app.db", '"/database/app.db" must not start with "/": '
                         "object keys are relative to the bucket (write database/app.db)"),
    ("canvas/app.db", '"canvas/app.db" is under canvas/, which canvas-reconcile reserves for its own records; '
                      "choose another prefix, such as database/"),
    ("database/", '"database/" ends with "/", which names a folder; '
                  "give the database file's key, such as database/app.db"),
    ("k" * 1025, "is 1025 bytes long; S3 object keys are at most 1024 bytes"),
    ("", "must not be empty"),
])
def test_invalid_database_keys(write, key, message):
    text = edited("database_key: database/taskManagement.db", f"database_key: '{key}'")
    assert messages(write(text)) == [f"bucket.database_key: {message}"]


@pytest.mark.parametrize("key", ["canvas", "canvasdb/app.db", "Canvas/app.db", "app.db"])
def test_valid_database_keys(write, key):
    text = edited("database_key: database/taskManagement.db", f"database_key: {key}")
    assert load_spec(write(text)).bucket["database_key"] == key


def test_kms_key_id_allowed_with_aws_kms(write):
    text = edited("  encryption: AES256", "  encryption: aws:kms\n  kms_key_id: alias/db")
    assert load_spec(write(text)).bucket["kms_key_id"] == "alias/db"


def test_kms_key_id_rejected_without_aws_kms_even_when_encryption_is_defaulted(write):
    text = edited("  encryption: AES256", "  kms_key_id: alias/db")
    assert messages(write(text)) == ["bucket.kms_key_id: only allowed with encryption: aws:kms (encryption is AES256)"]


def test_cors_wildcard_origin_with_credentials_is_rejected(write):
    text = edited('allow_headers: ["*"]', 'allow_headers: ["*"]\n    allow_credentials: true')
    (problem,) = problems_of(write(text))
    assert problem.path == "url.cors.allow_credentials"
    assert problem.message.startswith('true cannot be combined with "*" in url.cors.allow_origins')


@pytest.mark.parametrize("origins, credentials", [('["https://a.example"]', "true"), ('["*"]', "false")])
def test_cors_credentials_allowed_otherwise(write, origins, credentials):
    text = edited('allow_origins: ["*"]', f"allow_origins: {origins}")
    text = edited('allow_headers: ["*"]', f'allow_headers: ["*"]\n    allow_credentials: {credentials}', text)
    assert load_spec(write(text)).url["cors"]["allow_credentials"] is (credentials == "true")


def test_platform_must_match_architecture(write):
    text = edited("  ephemeral_storage: 1024", "  ephemeral_storage: 1024\n  architectures: [arm64]")
    assert messages(write(text)) == [
        "image.build.platform: linux/amd64 does not match function.architectures [arm64]; "
        "the image would not start — set image.build.platform: linux/arm64"
    ]
    text = edited("platform: linux/amd64", "platform: linux/arm64", text)
    assert load_spec(write(text)).function["architectures"] == ["arm64"]


def test_defaulted_platform_mismatch_points_at_the_build_section(write):
    text = edited("    platform: linux/amd64\n", "", CONTRACT_TEXT)
    text = edited("  ephemeral_storage: 1024", "  ephemeral_storage: 1024\n  architectures: [arm64]", text)
    (problem,) = problems_of(write(text))
    assert (problem.line, problem.column, problem.path) == (18, 3, "image.build.platform")


def test_arm64_without_a_build_section_is_fine(write):
    text = edited("  ephemeral_storage: 1024", "  ephemeral_storage: 1024\n  architectures: [arm64]")
    text = text.replace("  build:\n    dockerfile: Dockerfile.lambda\n    context: .\n    platform: linux/amd64\n", "")
    assert load_spec(write(text)).image == {"tag": "v1.2"}


@pytest.mark.parametrize("tags, expected", [
    ("{canvas:stack: x}", "tags.canvas:stack: canvas:stack is set by canvas-reconcile to the stack name "
                          "(code-canvas-astro); remove it here"),
    ("{aws:cloudformation: x}", 'tags.aws:cloudformation: tag names starting with "aws:" are reserved by AWS'),
    ("{AWS:x: y}", 'tags.AWS:x: tag names starting with "aws:" are reserved by AWS'),
    (f"{{{'k' * 129}: v}}",
     f"tags.{'k' * 60}… (129 characters): tag names must be 1–128 characters long (this one is 129)"),
    ('{"team!": v}', 'tags.team!: in tag names, only letters, digits, spaces and "_.:/=+-@" are allowed (found "!")'),
    ('{team: "a;b"}', 'tags.team: only letters, digits, spaces and "_.:/=+-@" are allowed (found ";")'),
    (f"{{team: {'v' * 257}}}", "tags.team: is 257 characters long; the maximum is 256"),
    ("{team: 5}", 'tags.team: expected a string, got integer 5; quote it to make it a string: "5"'),
    ("[team]", "tags: expected a mapping, got a list"),
])
def test_invalid_tags(write, tags, expected):
    assert messages(write(edited("region: us-west-2\n", f"region: us-west-2\ntags: {tags}\n"))) == [expected]


_TAG_CHARACTERS = 'only letters, digits, spaces and "_.:/=+-@" are allowed'
_TRIMMED = "must not start or end with a space: AWS trims it, so the tag would show as drift after every apply"


@pytest.mark.parametrize("tags, expected", [
    # AWS allows only ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$: no control characters, which \s let through.
    ('{"te\\tam": web}', f'tags."te\\tam": in tag names, {_TAG_CHARACTERS} (found U+0009 (tab))'),
    ('{team: "we\\nb"}', f"tags.team: {_TAG_CHARACTERS} (found U+000A (line break))"),
    ('{team: "we\\rb"}', f"tags.team: {_TAG_CHARACTERS} (found U+000D (carriage return))"),
    ('{team: "we\\tb"}', f"tags.team: {_TAG_CHARACTERS} (found U+0009 (tab))"),
    ('{team: "e\\u0301"}', f"tags.team: {_TAG_CHARACTERS} (found U+0301 (combining acute accent))"),
    ('{team: "rocket 🚀"}', f'tags.team: {_TAG_CHARACTERS} (found "🚀")'),
    # AWS trims these, so the stored tag never equals the declared one: a perpetual diff.
    ('{team: "web "}', f"tags.team: {_TRIMMED}"),
    ('{team: " web"}', f"tags.team: {_TRIMMED}"),
    ('{"team ": web}', f"tags.team : tag names {_TRIMMED}"),
    ('{" team": web}', f"tags. team: tag names {_TRIMMED}"),
])
def test_tags_aws_would_refuse_or_rewrite(write, tags, expected):
    assert messages(write(edited("region: us-west-2\n", f"region: us-west-2\ntags: {tags}\n"))) == [expected]


def test_tag_problems_are_positioned(write):
    text = edited("region: us-west-2\n", 'region: us-west-2\ntags:\n  team: "web "\n  "a\\tb": x\n')
    path = write(text)
    assert [str(p) for p in problems_of(path)] == [
        f"{path}:5:9: tags.team: {_TRIMMED}",
        f'{path}:6:3: tags."a\\tb": in tag names, {_TAG_CHARACTERS} (found U+0009 (tab))',
    ]


def test_tags_in_any_script_are_fine(write):
    text = edited("region: us-west-2\n", "region: us-west-2\ntags: {équipe: 東京 ٣, Ωmega: 'a b_c'}\n")
    assert load_spec(write(text)).tags == {"équipe": "東京 ٣", "Ωmega": "a b_c"}


def test_at_most_49_tags(write):
    tags = "".join(f"  t{i}: v\n" for i in range(50))
    assert messages(write(edited("region: us-west-2\n", f"region: us-west-2\ntags:\n{tags}"))) == [
        "tags: has 50 entries; at most 49 allowed "
        "(AWS allows 50 tags per resource and canvas-reconcile adds canvas:stack)"
    ]
    tags = "".join(f"  t{i}: v\n" for i in range(49))
    assert len(load_spec(write(edited("region: us-west-2\n", f"region: us-west-2\ntags:\n{tags}"))).tags) == 49


def test_valid_tags(write):
    text = edited("region: us-west-2\n", "region: us-west-2\ntags: {Team Name: 'web/ops', 'a.b:c=d+e-f@g': ''}\n")
    assert load_spec(write(text)).tags == {"Team Name": "web/ops", "a.b:c=d+e-f@g": ""}


# --- positions of problems -----------------------------------------------------------


def test_value_problems_point_at_the_value(write):
    problem = only_problem(write(edited("memory: 2048", "memory: 64")))
    assert (problem.line, problem.column) == (30, 11)


def test_flow_list_items_point_at_the_item(write):
    problem = only_problem(write(edited('allow_methods: ["*"]', 'allow_methods: ["GET", "FETCH"]')))
    assert (problem.line, problem.column, problem.path) == (41, 28, "url.cors.allow_methods[1]")


def test_missing_key_points_at_the_parent_key(write):
    problem = only_problem(write(edited("  name: code-canvas-astro-lambda\n", "")))
    assert (problem.line, problem.column, problem.path) == (28, 1, "function")
    assert problem.message == 'missing required key "name"'


def test_missing_section_points_at_the_document(write):
    text = "# leading comment\n" + edited("stack: code-canvas-astro\n", "")
    problem = only_problem(write(text))
    assert (problem.line, problem.column, problem.path) == (2, 1, "")
    assert problem.message == 'missing required section "stack"'


def test_unknown_key_points_at_the_key_and_suggests(write):
    problem = only_problem(write(edited("  scan_on_push: true", "  scan_on_pusk: true")))
    assert (problem.line, problem.column, problem.path) == (14, 3, "repository.scan_on_pusk")
    assert problem.message == ('unknown key; did you mean "scan_on_push"? '
                               '(allowed: name, scan_on_push, tag_mutability, keep_images)')


def test_unknown_key_without_a_close_match_lists_what_is_allowed(write):
    problem = only_problem(write(edited("  scan_on_push: true", "  lifecycle: 30d")))
    assert problem.message == "unknown key (allowed: name, scan_on_push, tag_mutability, keep_images)"


def test_empty_value_points_at_its_key(write):
    problem = only_problem(write(edited("memory: 2048", "memory:")))
    assert (problem.line, problem.column) == (30, 3)
    assert problem.message == "expected an integer, got an empty value (null)"


def test_env_key_problems_point_at_the_key(write):
    problem = only_problem(write(edited('PORT: "8080"', 'PORT: "8080"\n    AWS_REGION: us-east-1')))
    assert (problem.line, problem.column) == (36, 5)


def test_duplicate_key_points_at_the_second_and_names_the_first(write):
    text = edited("  timeout: 900\n", "  timeout: 900\n  memory: 4096\n")
    problem = only_problem(write(text))
    assert (problem.line, problem.column, problem.path) == (32, 3, "function.memory")
    assert problem.message == "duplicate key (first defined at line 30)"


def test_duplicate_top_level_key(write):
    problem = only_problem(write(CONTRACT_TEXT + "region: us-east-1\n"))
    assert (problem.line, problem.column, problem.path) == (43, 1, "region")
    assert problem.message == "duplicate key (first defined at line 3)"


def test_duplicate_key_in_a_flow_mapping(write):
    text = edited('  environment:\n    NODE_ENV: production\n    PORT: "8080"\n', "  environment: {AB: x, AB: y}\n")
    problem = only_problem(write(text))
    assert (problem.line, problem.column, problem.path) == (33, 24, "function.environment.AB")
    assert problem.message == "duplicate key (first defined at line 33)"


def test_duplicate_inside_an_anchor_used_twice_is_reported_once(write):
    text = ANCHORED.replace('&any ["*"]', '&any ["*"]\n    expose_headers: &h {a: 1, a: 2}\n    max_age: *h')
    problems = problems_of(write(text))
    assert [(p.line, p.message) for p in problems if "duplicate" in p.message] == [
        (41, "duplicate key (first defined at line 41)")
    ]


def test_all_problems_reported_at_once_sorted_by_line(write):
    text = edited("memory: 2048", 'memory: "2048"')
    text = edited("region: us-west-2", "region: mars", text)
    text = edited("name: code-canvas-astro-db", "name: Bad_Bucket", text)
    text = edited("  scan_on_push: true", "  scan_on_push: true\n  colour: blue", text)
    text = edited('PORT: "8080"', "PORT: 8080\n    AWS_REGION: x", text)
    problems = problems_of(write(text))
    assert [(p.line, p.path) for p in problems] == [
        (3, "region"),
        (6, "bucket.name"),
        (15, "repository.colour"),
        (31, "function.memory"),
        (36, "function.environment.PORT"),
        (37, "function.environment.AWS_REGION"),
    ]


def test_semantic_checks_run_beside_schema_errors(write):
    text = edited("  timeout: 900", "  timeout: lots")  # schema error
    text = edited("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole", "ReadOnly", text)
    assert [p.path for p in problems_of(write(text))] == ["role.managed_policies[0]", "function.timeout"]


# --- anchors, aliases, merge keys ----------------------------------------------------


ANCHORED = edited("""url:
  auth_type: NONE
  cors:
    allow_origins: ["*"]
    allow_methods: ["*"]
    allow_headers: ["*"]
""", """url:
  auth_type: NONE
  cors:
    allow_origins: &any ["*"]
    allow_methods: *any
    allow_headers: *any
""")


def test_aliases_work(write):
    spec = load_spec(write(ANCHORED))
    assert spec.url["cors"] == {"allow_origins": ["*"], "allow_methods": ["*"], "allow_headers": ["*"]}


def test_problem_through_an_alias_points_at_the_alias(write):
    text = ANCHORED.replace('&any ["*"]', '&any ["*", 5]')
    problems = problems_of(write(text))
    assert [(p.line, p.column, p.path) for p in problems] == [
        (40, 31, "url.cors.allow_origins[1]"),
        (41, 20, "url.cors.allow_methods[1]"),  # at the alias: the item itself is written at the anchor
        (42, 20, "url.cors.allow_headers[1]"),
    ]


def test_merge_keys_work_and_explicit_keys_win_without_a_duplicate_report(write):
    text = edited("""function:
  name: code-canvas-astro-lambda
  memory: 2048
""", """function:
  <<: [{memory: 512, timeout: 30}, {memory: 1, ephemeral_storage: 2048}]
  name: code-canvas-astro-lambda
  memory: 2048
""")
    text = edited("  timeout: 900\n", "", text)
    spec = load_spec(write(text))
    assert spec.function["memory"] == 2048  # explicit beats merged
    assert spec.function["timeout"] == 30
    assert spec.function["ephemeral_storage"] == 1024  # explicit beats merged


def test_first_merge_source_wins_and_its_problem_points_into_it(write):
    text = edited("""function:
  name: code-canvas-astro-lambda
  memory: 2048
""", """function:
  <<: [{memory: 64}, {memory: 4096}]
  name: code-canvas-astro-lambda
""")
    problem = only_problem(write(text))
    assert (problem.line, problem.column, problem.path) == (29, 17, "function.memory")
    assert problem.message == "64 is below the minimum 128 (MB)"


def test_recursive_alias_is_an_error_not_a_hang(write):
    problem = only_problem(write(edited("region: us-west-2\n", "region: us-west-2\ntags: &t {a: *t}\n")))
    assert (problem.line, problem.column) == (4, 14)
    assert problem.message == ("this alias refers to a mapping or list that contains it; "
                               "canvas.yaml cannot hold a recursive structure")


def test_mapping_that_merges_itself_is_an_error_not_a_hang(write):
    problem = only_problem(write(edited("region: us-west-2\n", "region: us-west-2\ntags: &t {<<: *t}\n")))
    assert problem.line == 4 and "recursive structure" in problem.message


def test_alias_bomb_is_reported_quickly(write):
    bomb = 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
    for i in range(1, 9):
        bomb += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    text = edited('allow_origins: ["*"]', "allow_origins: *a8", edited("version: 1\n", "version: 1\n" + bomb))
    started = time.monotonic()
    problem = only_problem(write(text))
    assert time.monotonic() - started < 5
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message == (
        "aliases expand this document to more than 100000 values, far more than any canvas.yaml needs"
    )


def test_moderate_alias_reuse_is_validated_normally(write):
    text = edited('allow_origins: ["*"]', "allow_origins: [*o, *o]", edited("version: 1\n", "version: 1\no: &o [x]\n"))
    assert [p.path for p in problems_of(write(text))] == [
        "o", "url.cors.allow_origins[0]", "url.cors.allow_origins[1]",
    ]


# --- bad files -----------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.yaml")
    assert str(only_problem(path)) == (f"{path}: file not found (looked for {path}) — run reconcile in the "
                                       f"directory that holds canvas.yaml, or give its path with -f FILE")


def test_directory_instead_of_file(tmp_path):
    assert str(only_problem(str(tmp_path))) == (
        f"{tmp_path}: is a directory; give the path of the canvas.yaml file itself"
    )


_NOT_REGULAR = "not a regular file; give the path of the canvas.yaml file itself"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_link_to_dev_zero_is_refused_without_reading(tmp_path):
    link = tmp_path / "canvas.yaml"
    link.symlink_to("/dev/zero")
    assert str(only_problem(str(link))) == f"{link}: is a character device (/dev/zero), {_NOT_REGULAR}"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "canvas.yaml"
    os.mkfifo(fifo)
    outcome: list[str] = []
    # Opening a FIFO for reading blocks until a writer comes; a thread keeps a regression
    # from hanging the suite.
    worker = threading.Thread(target=lambda: outcome.append(str(only_problem(str(fifo)))), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert outcome == [f"{fifo}: is a named pipe (FIFO), {_NOT_REGULAR}"]


def test_file_over_one_mib_is_refused_by_its_size(write):
    path = write(CONTRACT_TEXT + "#" * (1024 * 1024 - len(CONTRACT_TEXT.encode())) + "\n")
    assert str(only_problem(path)) == (
        f"{path}: is {1024 * 1024 + 1} bytes; canvas.yaml may be at most 1 MiB (1048576 bytes) — "
        "one for a single deployment is a few kilobytes"
    )


def test_file_of_exactly_one_mib_is_read(write):
    padding = "#" * (1024 * 1024 - len(CONTRACT_TEXT.encode()) - 1) + "\n"
    path = write(CONTRACT_TEXT + padding)
    assert os.path.getsize(path) == 1024 * 1024
    assert load_spec(path).stack == "code-canvas-astro"


def _load_as_nobody(path: str) -> str:
    """str(load problem) from a forked child that dropped root, so mode 000 really denies it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here on, only os._exit
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                load_spec(path)
                text = "loaded"
            except SpecError as error:
                text = str(error)
            os.write(write_end, text.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return text


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_unreadable_file():
    # root reads any file, so as root the check runs in a child that gives up root first.
    folder = tempfile.mkdtemp()
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "canvas.yaml")
    Path(path).write_text(CONTRACT_TEXT)
    os.chmod(path, 0)
    try:
        if os.geteuid() == 0:
            assert _load_as_nobody(path) == f"{path}: cannot read the file: permission denied"
        else:
            assert str(only_problem(path)) == f"{path}: cannot read the file: permission denied"
    finally:
        os.chmod(path, 0o644)
        shutil.rmtree(folder)


def test_unreadable_file_via_os_error(tmp_path):
    link = tmp_path / "loop.yaml"
    link.symlink_to(link)  # reading a self-referencing link fails with ELOOP
    assert only_problem(str(link)).message.startswith("cannot read the file: ")


@pytest.mark.parametrize("content, expected", [
    ("", "the file is empty; canvas.yaml must be a mapping with version, stack, region, bucket, "
         "repository, image, role and function"),
    ("\n# just a comment\n   \n", "the file is empty; canvas.yaml must be a mapping with version, stack, "
                                  "region, bucket, repository, image, role and function"),
])
def test_empty_files(write, content, expected):
    problem = only_problem(write(content))
    assert (problem.line, problem.message) == (None, expected)


@pytest.mark.parametrize("content, got", [
    ("null\n", "an empty value (null)"), ("just text\n", 'string "just text"'), ("42\n", "integer 42"),
    ("- a\n- b\n", "a list"),
])
def test_non_mapping_documents(write, content, got):
    problem = only_problem(write(content))
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message.endswith(f"; got {got}")


def test_multiple_documents(write):
    problem = only_problem(write("---\n" + CONTRACT_TEXT + "---\n" + CONTRACT_TEXT))
    assert (problem.line, problem.column) == (44, 1)
    assert problem.message.startswith("only one YAML document is allowed")


def test_explicit_document_markers_are_fine(write):
    assert load_spec(write("---\n" + CONTRACT_TEXT + "...\n")).stack == "code-canvas-astro"


def test_invalid_utf8_names_the_byte_and_position(write):
    raw = CONTRACT_TEXT.encode().replace(b"stack: code-canvas-astro", b"stack: code-\xff")
    problem = only_problem(write(raw))
    offset = raw.index(b"\xff")
    assert (problem.line, problem.column) == (2, 13)
    assert problem.message == (
        f"not valid UTF-8: byte 0xFF at byte offset {offset} cannot be decoded; save the file as UTF-8"
    )


def test_utf8_bom_is_accepted(write):
    assert load_spec(write(b"\xef\xbb\xbf" + CONTRACT_TEXT.encode())).stack == "code-canvas-astro"


def test_latin1_file_is_reported_as_not_utf8(write):
    problem = only_problem(write(edited("NODE_ENV: production", "NODE_ENV: café").encode("latin-1")))
    assert problem.line == 34 and "0xE9" in problem.message


def test_control_character(write):
    problem = only_problem(write(edited("stack: code", "stack: \x01code")))
    assert (problem.line, problem.column) == (2, 8)
    assert problem.message == "the control character U+0001 is not allowed in YAML; remove it"


_SURROGATE = ("this string holds U+DC80, half of a UTF-16 surrogate pair and not a character, which is "
              "not allowed in YAML; write the character itself (or \\U0001F600 for one beyond U+FFFF)")


@pytest.mark.parametrize("old, new, position, message", [
    ("NODE_ENV: production", 'NODE_ENV: "\\udc80"', (34, 15), _SURROGATE),  # was a traceback
    ("stack: code-canvas-astro", 'stack: "\\udc80"', (2, 8), _SURROGATE),
    ("NODE_ENV: production", '"\\udc80": production', (34, 5), _SURROGATE),
    ("NODE_ENV: production", 'NODE_ENV: "a\\x01b"', (34, 15),
     "this string holds the control character U+0001, which is not allowed in YAML; remove it"),
    ("NODE_ENV: production", 'NODE_ENV: "a\\0b"', (34, 15),
     "this string holds the control character U+0000, which is not allowed in YAML; remove it"),
])
def test_escapes_that_write_unprintable_characters_are_positioned(write, old, new, position, message):
    problem = only_problem(write(edited(old, new)))
    assert ((problem.line, problem.column), problem.message) == (position, message)
    str(problem).encode("utf-8")  # printable: a lone surrogate in the message could not be


@pytest.mark.parametrize("old, new, position, start", [
    ("  scan_on_push: true", " scan_on_push: true", (14, 2), "invalid YAML: this line is indented differently"),
    ("  memory: 2048", "\tmemory: 2048", (30, 1), "invalid YAML: a tab is used for indentation here"),
    ("  tag: v1.2", "  tag: v1: 2", (17, 10), "invalid YAML: mapping values are not allowed here"),
    ('allow_origins: ["*"]', 'allow_origins: ["*"', (41, 5), "invalid YAML: expected ',' or ']', but got '<scalar>' "
                                                           '(while parsing a flow sequence that starts at line 40); '
                                                           'is a closing "]" missing?'),
    ("  tag: v1.2", "  tag: *missing", (17, 8), "invalid YAML: found undefined alias 'missing'"),
    ("  tag: v1.2", "  tag: !!python/object:os.system x", (17, 8), "invalid YAML: could not determine a constructor"),
    ("  tag: v1.2", "  ? [a, b]\n  : v1.2", (17, 5), "invalid YAML: found unhashable key"),
    ("  tag: v1.2", "  tag: 'v1.2", (43, 1), "invalid YAML: found unexpected end of stream "
                                         "(while scanning a quoted scalar that starts at line 17)"),
    ("  tag: v1.2", "  tag: v1.2\n  <<: 5", (18, 7), "invalid YAML: expected a mapping or list of mappings"),
])
def test_yaml_syntax_errors(write, old, new, position, start):
    problem = only_problem(write(edited(old, new)))
    assert (problem.line, problem.column) == position
    assert problem.message.startswith(start), problem.message
    assert problem.path == ""


def test_non_string_keys_are_reported_once(write):
    text = edited('PORT: "8080"', 'PORT: "8080"\n    8080: port\n    yes: sure')
    assert messages(write(text)) == [
        'function.environment.8080: YAML reads this key as an integer, not a string; quote it: "8080"',
        'function.environment.yes: YAML reads this key as a boolean, not a string; quote it: "yes"',
    ]


_TOO_DEEP = ("mappings and lists are nested more than 32 levels deep here, "
             "far deeper than any canvas.yaml needs (4)")


def _nested_mappings(levels: int) -> str:
    """The document and levels - 1 mappings inside it, one per line."""
    return "".join("  " * i + f"k{i}:\n" for i in range(levels - 1)) + "  " * (levels - 1) + "k: x\n"


def test_nesting_deeper_than_32_levels_points_at_the_deep_node(write):
    problem = only_problem(write(_nested_mappings(33)))
    assert (problem.line, problem.column, problem.message) == (33, 65, _TOO_DEEP)


def test_nesting_of_32_levels_is_read(write):
    assert "k0" in [p.path for p in problems_of(write(_nested_mappings(32)))]  # validated, not refused


def test_deeply_nested_flow_lists_point_at_the_deep_list(write):
    problem = only_problem(write("a: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert (problem.line, problem.column, problem.message) == (1, 35, _TOO_DEEP)


def test_aliases_that_nest_too_deeply_point_at_the_alias(write):
    chain = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40))
    problem = only_problem(write(chain))
    assert (problem.line, problem.column, problem.message) == (32, 12, _TOO_DEEP)


def test_a_long_chain_of_merge_keys_is_refused_with_a_position(write):
    chain = "a0: &a0 {k0: v}\n" + "".join(f"a{i}: &a{i} {{<<: *a{i - 1}, k{i}: v}}\n" for i in range(1, 2000))
    problem = only_problem(write(chain))
    assert problem.line is not None and problem.message in (_TOO_DEEP, _TOO_MANY)


_TOO_MANY = "the document holds more than 10000 keys, values and list items, far more than any canvas.yaml needs"


@pytest.mark.parametrize("shape", ["block", "flow"])
@pytest.mark.parametrize("count", [9_000, 200_000])  # either side of the fast parser's threshold
def test_too_many_list_items_are_refused_where_the_limit_is_passed(write, shape, count):
    text = "a:\n" + "- 1\n" * count if shape == "block" else "a: [" + "1, " * count + "1]\n"
    if count < 10_000:
        assert _TOO_MANY not in messages(write(text))[0]
        return
    problem = only_problem(write(text))
    assert problem.message == _TOO_MANY
    # The document, "a" and the list are the first three values; item 9,998 is the 10,001st.
    assert problem.line == (9_999 if shape == "block" else 1)


def test_too_many_keys_are_refused(write):
    problem = only_problem(write("".join(f"k{i}: v\n" for i in range(100_000))))
    assert (problem.line, problem.message) == (5_000, _TOO_MANY)


def test_a_large_file_loads_the_same_as_a_small_one(write):
    # Past 64 KiB libyaml parses (the pure-Python parser would take seconds on 1 MiB).
    big = load_spec(write(CONTRACT_TEXT + ("#" + "x" * 78 + "\n") * 1000, name="big.yaml"))
    assert os.path.getsize(big.file) > 64 * 1024
    small = load_spec(CONTRACT)
    assert big.data == small.data
    assert [w.split(": ", 1)[1] for w in big.warnings] == [w.split(": ", 1)[1] for w in small.warnings]


@pytest.mark.parametrize("padding", [0, 1000])  # the Python parser, then libyaml's
def test_a_large_file_with_a_mistake_still_points_at_it(write, padding):
    text = edited("  memory: 2048", "  memory: 64") + ("#" + "x" * 78 + "\n") * padding
    problem = only_problem(write(text))
    assert (problem.line, problem.column, problem.path) == (30, 11, "function.memory")


_LONG = "x" * 1_000_000


def test_a_long_value_is_shortened_in_its_message(write):
    path = write(edited("stack: code-canvas-astro", f"stack: {_LONG}"))
    assert str(only_problem(path)) == (
        f'{path}:2:8: stack: "{"x" * 60}…" (1000000 characters) is not a valid stack name: 1–128 letters, '
        'digits, "-", "_" or "." (it becomes a tag value)'
    )


@pytest.mark.parametrize("old, new", [
    ("region: us-west-2", f"region: {_LONG}"),
    ("name: code-canvas-astro-db", f"name: {_LONG}"),
    ("database_key: database/taskManagement.db", f"database_key: /{_LONG}"),
    ("encryption: AES256", f"encryption: {_LONG}\n  kms_key_id: k"),
    ("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole", _LONG),
    ("  tag: v1.2", f"  tag: {_LONG}"),
    ("  tag: v1.2", f"  tag: *{_LONG}"),
    ("NODE_ENV: production", f"{'x' * 1000}-y: production"),
    ("NODE_ENV: production", f"? {'1' * 99}\n    : production"),
    ("region: us-west-2\n", f"region: us-west-2\ntags: {{{'k' * 1000}: v}}\n"),
    ("stack: code-canvas-astro", "stack: '" + "".join(chr(0x4E00 + i) for i in range(5000)) + "'"),
])
def test_no_message_repeats_a_long_value_whole(write, old, new):
    problems = problems_of(write(edited(old, new)))
    assert all(len(p.path) + len(p.message) < 400 for p in problems), [str(p)[:500] for p in problems]
    assert any("characters)" in p.path + p.message for p in problems)


def test_a_huge_integer_is_refused_where_it_is(write):
    # Python refuses to convert an integer of over 4300 digits: this was a traceback.
    problem = only_problem(write(edited("memory: 2048", "memory: " + "1" * 5000)))
    assert ((problem.line, problem.column), problem.message) == (
        (30, 11),
        "this number is 5000 characters long; no canvas.yaml value needs one over 100 (quote it if it is text)",
    )


# --- no traceback, whatever the shape ------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _with_value_replaced(index: int, replacement: str) -> str:
    """The contract file with the value on line `index` (and any block under it) replaced."""
    lines = CONTRACT_TEXT.splitlines()
    line = lines[index]
    if line.lstrip().startswith("- "):
        lines[index] = line[: _indent(line)] + "- " + replacement
        return "\n".join(lines) + "\n"
    end = index + 1
    while end < len(lines) and lines[end].strip() and _indent(lines[end]) > _indent(line):
        end += 1
    lines[index:end] = [f"{line.split(':', 1)[0]}: {replacement}"]
    return "\n".join(lines) + "\n"


VALUE_LINES = [i for i, line in enumerate(CONTRACT_TEXT.splitlines()) if line.strip()]


@pytest.mark.parametrize("index", VALUE_LINES)
@pytest.mark.parametrize("replacement", ["null", "7", "-1", "true", '"text"', "[]", "[1, [2]]", "{}", "{a: {b: 1}}"])
def test_any_value_of_any_type_gives_spec_error_or_spec(write, index, replacement):
    try:
        result = load_spec(write(_with_value_replaced(index, replacement)))
    except SpecError as error:
        assert error.problems and all(p.line is not None for p in error.problems)
    else:
        assert isinstance(result, Spec)


def test_schema_errors_never_leak_jsonschema_wording(write):
    text = "\n".join([
        "version: [1]", "stack: {}", "region: 5", "tags: x", "bucket: []", "repository: 1",
        "image: true", "role: null", "function: x", "url: []",
    ]) + "\n"
    problems = problems_of(write(text))
    assert len(problems) == 10
    for problem in problems:
        assert "is not of type" not in problem.message and problem.message.startswith("expected ")


# --- the schema itself: the README's canvas.yaml reference is generated from it -------


def _subschemas(node: dict, path: str = "") -> list[tuple[str, dict]]:
    found = [(path, node)]
    for key, sub in node.get("properties", {}).items():
        found += _subschemas(sub, f"{path}.{key}" if path else key)
    for keyword in ("additionalProperties", "items"):
        if isinstance(node.get(keyword), dict):
            found += _subschemas(node[keyword], f"{path}[{keyword}]")
    return found


def test_schema_is_valid_draft_2020_12_and_ships_in_the_package():
    from importlib.resources import files

    import jsonschema

    shipped = json.loads((files("reconciler") / "schemas" / "canvas.schema.json").read_text(encoding="utf-8"))
    assert shipped == schema()
    assert shipped["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(shipped)


def test_every_property_has_a_description():
    undescribed = [path for path, node in _subschemas(schema())
                   if "[" not in path.rsplit(".", 1)[-1] and not node.get("description", "").strip()]
    assert undescribed == []


def test_every_object_forbids_unknown_keys():
    objects = [(path, node) for path, node in _subschemas(schema()) if node.get("type") == "object"]
    assert len(objects) >= 10
    for path, node in objects:
        if "properties" in node:
            assert node.get("additionalProperties") is False, path
        else:  # a free-form map: its values are still typed
            assert node["additionalProperties"]["type"] == "string", path


def test_required_keys_exist_and_defaults_are_valid():
    import jsonschema

    for path, node in _subschemas(schema()):
        assert set(node.get("required", [])) <= set(node.get("properties", {})), path
        if "default" in node:
            jsonschema.Draft202012Validator(node).validate(node["default"])
    assert schema()["required"] == ["version", "stack", "region", "bucket", "repository", "image", "role", "function"]


@pytest.mark.parametrize("line, message", [
    ('    DB_HISTORY_SECONDS: "a week"', "DB_HISTORY_SECONDS='a week' is not a number"),
    ('    DB_COMPACT_ENTRIES: "1.5"', "DB_COMPACT_ENTRIES='1.5' is not a whole number"),
    ('    SYNC_INTERVAL: "-1"', "SYNC_INTERVAL='-1' must not be negative"),
])
def test_a_runtime_setting_the_runtime_would_refuse_is_a_spec_error(write, line, message):
    anchor = '    PORT: "8080"'
    path = write(edited(anchor, anchor + "\n" + line))
    name = line.split(":")[0].strip()
    row = CONTRACT_TEXT.splitlines().index(anchor) + 2  # the line after PORT, 1-based
    assert [str(problem) for problem in problems_of(path)] == [
        f"{path}:{row}:{len(name) + 7}: function.environment.{name}: {message}; the runtime would refuse to start "
        "with it and answer every request 503 (cause=misconfigured)"]


def test_runtime_settings_it_reads_are_accepted(write):
    anchor = '    PORT: "8080"'
    text = edited(anchor, anchor + '\n    DB_HISTORY_SECONDS: "86400"\n    SYNC_INTERVAL: "0"')
    assert load_spec(write(text)).function["environment"]["DB_HISTORY_SECONDS"] == "86400"
