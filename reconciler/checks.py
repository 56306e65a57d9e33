"""Checks on canvas.yaml that JSON Schema cannot express well: AWS naming rules, region
and ARN formats, Lambda's environment limits, and rules that span two keys.

Each check reads only the parts of the document that have the right type and skips the
rest, so it can run beside schema errors without tripping over them. Checks return
Findings (a path and a message); spec.py turns them into positioned problems.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from reconciler.limits import quoted, shorten
from reconciler.reserved import RECORD_PREFIX, STACK_TAG

PathT = tuple[str | int, ...]

# Lambda sets these itself and rejects a function configuration that defines them.
RESERVED_ENV_KEYS = frozenset({
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_HANDLER", "_X_AMZN_TRACE_ID",
})
# Derived from the bucket section and added to the function's environment by the tool.
DERIVED_ENV_SOURCES = {"S3_BUCKET_NAME": ("bucket", "name"), "S3_DB_KEY": ("bucket", "database_key")}
DERIVED_ENV_KEYS = frozenset(DERIVED_ENV_SOURCES)


def derived_environment(data: Mapping[str, Any]) -> dict[str, str]:
    """The variables the tool adds to the function's environment, read from canvas.yaml's sections."""
    return {key: data[section][field] for key, (section, field) in DERIVED_ENV_SOURCES.items()}


ENV_SIZE_LIMIT = 4096
IAM_PATTERN_RE = re.compile(r"[*?]|\$\{")

REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+")
ENV_KEY_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
ECR_NAME_RE = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
POLICY_ARN_RE = re.compile(
    r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}", re.ASCII
)
IP_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# The Docker platform an image must be built for to run on each Lambda architecture.
PLATFORM_OF = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
# Lambda runs x86_64 when function.architectures is unset.
DEFAULT_PLATFORM = PLATFORM_OF["x86_64"]


class Finding(NamedTuple):
    path: PathT
    message: str
    at_key: bool = False  # blame the key (a bad name) rather than its value
    warning: bool = False


def run_checks(data: dict) -> list[Finding]:
    """Every finding for a document (schema defaults already filled in where possible)."""
    checks = (
        _region, _bucket, _repository, _role, _function_name, _environment,
        _tags, _cors, _platform, _immutable_build, _public_url,
    )
    return [finding for check in checks for finding in check(data)]


def check_region(value: str) -> str | None:
    """None if `value` looks like an AWS region code, else what is wrong with it."""
    if REGION_RE.fullmatch(value):
        return None
    return f'{quoted(value)} is not an AWS region code; expected one like us-west-2 or eu-central-1'


def bucket_name_problems(name: str) -> list[str]:
    """Every S3 general purpose bucket naming rule that `name` breaks."""
    reasons = []
    if not 3 <= len(name) <= 63:
        reasons.append(f"it must be 3–63 characters long (it is {len(name)})")
    if re.search("[A-Z]", name):
        reasons.append("uppercase letters are not allowed")
    reasons += _stray_characters(name, allowed="[a-zA-Z0-9.-]", words='lowercase letters, digits, "." and "-"')
    if name and not (re.match("[a-z0-9]", name) and re.search("[a-z0-9]$", name)):
        reasons.append("it must start and end with a lowercase letter or digit")
    if ".." in name:
        reasons.append("it must not contain two adjacent periods")
    if IP_RE.fullmatch(name):
        reasons.append("it must not look like an IP address")
    reasons += [f'the prefix "{p}" is reserved by AWS' for p in BUCKET_PREFIXES if name.startswith(p)]
    reasons += [f'the suffix "{s}" is reserved by AWS' for s in BUCKET_SUFFIXES if name.endswith(s)]
    return reasons


def _stray_characters(name: str, *, allowed: str | Callable[[str], bool], words: str) -> list[str]:
    """`allowed` is a regex character class or a test for one character."""
    fits = allowed if callable(allowed) else re.compile(allowed).fullmatch
    stray = sorted({char for char in name if not fits(char)})
    if not stray:
        return []
    shown = ", ".join(map(_shown_character, stray[:_STRAYS_SHOWN]))
    if len(stray) > _STRAYS_SHOWN:
        shown += f" and {len(stray) - _STRAYS_SHOWN} more"
    return [f"only {words} are allowed (found {shown})"]


_STRAYS_SHOWN = 10
_CHARACTER_NAMES = {"\t": "tab", "\n": "line break", "\r": "carriage return"}


def _shown_character(char: str) -> str:
    # Control characters, combining marks and odd spaces would be invisible or garble the message.
    if char == " ":
        return "space"
    if char in _CHARACTER_NAMES or unicodedata.category(char)[0] in "CMZ":
        name = _CHARACTER_NAMES.get(char) or unicodedata.name(char, "")
        return f"U+{ord(char):04X}" + (f" ({name.lower()})" if name else "")
    return f'"{char}"'


def _named(value: str, *, kind: str, reasons: list[str]) -> str | None:
    if not reasons:
        return None
    return f'{quoted(value)} is not a valid {kind}: ' + "; ".join(reasons)


def _section(data: Any, *path: str) -> dict:
    """The mapping at `path`, or {} when it is absent or not a mapping."""
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _text(data: Any, *path: str) -> str | None:
    parent = _section(data, *path[:-1])
    value = parent.get(path[-1])
    return value if isinstance(value, str) else None


def _region(data: dict) -> Iterator[Finding]:
    region = _text(data, "region")
    if region is not None and (message := check_region(region)):
        yield Finding(("region",), message)


def _bucket(data: dict) -> Iterator[Finding]:
    name = _text(data, "bucket", "name")
    if name is not None and (message := _named(name, kind="S3 bucket name", reasons=bucket_name_problems(name))):
        yield Finding(("bucket", "name"), message)
    bucket = _section(data, "bucket")
    encryption = bucket.get("encryption")
    if "kms_key_id" in bucket and isinstance(encryption, str) and encryption != "aws:kms":
        message = f"only allowed with encryption: aws:kms (encryption is {shorten(encryption)})"
        yield Finding(("bucket", "kms_key_id"), message, at_key=True)
    key = _text(data, "bucket", "database_key")
    if key is not None and (message := _database_key_problem(key)):
        yield Finding(("bucket", "database_key"), message)


def _database_key_problem(key: str) -> str | None:
    if key.startswith("/"):
        relative = key.lstrip("/") or "database/app.db"
        return (f'{quoted(key)} must not start with "/": object keys are relative to the bucket '
                f'(write {shorten(relative)})')
    if key.startswith(RECORD_PREFIX):
        return (f'{quoted(key)} is under {RECORD_PREFIX}, which canvas-reconcile reserves for its own '
                "records; choose another prefix, such as database/")
    if key.endswith("/"):
        return (f'{quoted(key)} ends with "/", which names a folder; give the database file\'s key, '
                "such as database/app.db")
    if pattern := IAM_PATTERN_RE.search(key):
        # The key becomes the Resource of the role's policy, where these are patterns: `c*`
        # would let the function read and write every object starting with c, canvas/ included.
        return (f'{quoted(key)} contains "{pattern.group()}", which IAM reads as a wildcard or a '
                "policy variable in the role's policy, so the function could reach other objects; "
                "use a plain key, such as database/app.db")
    if len(key.encode()) > 1024:
        return f"is {len(key.encode())} bytes long; S3 object keys are at most 1024 bytes"
    return None


def _repository(data: dict) -> Iterator[Finding]:
    name = _text(data, "repository", "name")
    if name is None:
        return
    reasons = []
    if not 2 <= len(name) <= 256:
        reasons.append(f"it must be 2–256 characters long (it is {len(name)})")
    if re.search("[A-Z]", name):
        reasons.append("uppercase letters are not allowed")
    reasons += _stray_characters(
        name, allowed="[a-zA-Z0-9._/-]", words='lowercase letters, digits, ".", "_", "-" and "/"'
    )
    shape = re.sub("[^a-z0-9._/-]", "", name.lower())  # judge separators apart from case and strays
    if shape and not ECR_NAME_RE.fullmatch(shape):
        reasons.append('".", "_", "-" and "/" may only sit between letters or digits, one at a time (like team/my-app)')
    if message := _named(name, kind="ECR repository name", reasons=reasons):
        yield Finding(("repository", "name"), message)


def _simple_name(value: str, *, limit: int, allowed: str, words: str) -> list[str]:
    reasons = [] if 1 <= len(value) <= limit else [f"it must be 1–{limit} characters long (it is {len(value)})"]
    return reasons + _stray_characters(value, allowed=allowed, words=words)


def _role(data: dict) -> Iterator[Finding]:
    name = _text(data, "role", "name")
    if name is not None:
        reasons = _simple_name(name, limit=64, allowed=r"[A-Za-z0-9+=,.@_-]", words='letters, digits and "+=,.@_-"')
        if message := _named(name, kind="IAM role name", reasons=reasons):
            yield Finding(("role", "name"), message)
    policies = _section(data, "role").get("managed_policies")
    for index, arn in enumerate(policies if isinstance(policies, list) else []):
        if isinstance(arn, str) and not POLICY_ARN_RE.fullmatch(arn):
            yield Finding(("role", "managed_policies", index), _policy_message(arn))


def _policy_message(arn: str) -> str:
    message = (f'{quoted(arn)} is not an IAM managed policy ARN; expected arn:aws:iam::aws:policy/NAME '
               "(AWS managed) or arn:aws:iam::123456789012:policy/NAME (your account's)")
    if len(arn) <= 128 and re.fullmatch(r"[\w+=,.@-]+", arn, re.ASCII):
        message += f", such as arn:aws:iam::aws:policy/service-role/{arn}"
    return message


def _function_name(data: dict) -> Iterator[Finding]:
    name = _text(data, "function", "name")
    if name is not None:
        reasons = _simple_name(name, limit=64, allowed="[A-Za-z0-9_-]", words='letters, digits, "-" and "_"')
        if message := _named(name, kind="Lambda function name", reasons=reasons):
            yield Finding(("function", "name"), message)


def _environment(data: dict) -> Iterator[Finding]:
    env = _section(data, "function", "environment")
    base = ("function", "environment")
    for key in env:
        if message := _env_key_problem(key):
            yield Finding(base + (key,), message, at_key=True)
        elif isinstance(env[key], str) and (message := _runtime_setting_problem(key, env[key])):
            yield Finding(base + (key,), message)
    user = {k: v for k, v in env.items() if isinstance(v, str) and k not in DERIVED_ENV_KEYS}
    derived = {k: _text(data, *source) or "" for k, source in DERIVED_ENV_SOURCES.items()}
    size = sum(len(k.encode()) + len(v.encode()) for k, v in {**user, **derived}.items())
    if size > ENV_SIZE_LIMIT:
        yield Finding(base, (
            f"the variables take {size} bytes, over Lambda's 4 KB limit ({ENV_SIZE_LIMIT} bytes, "
            "counting each name and value in UTF-8, including the derived S3_BUCKET_NAME and S3_DB_KEY)"
        ), at_key=True)


def _runtime_setting_problem(key: str, value: str) -> str | None:
    """What the runtime in the image says of this variable when it starts (DB_HISTORY_SECONDS,
    SYNC_INTERVAL, APP_COMMAND, ...), read by its own parser: it refuses a value it cannot use
    and answers every request 503, so the plan refuses it first."""
    from runtime.config import ConfigError, from_env

    try:
        from_env({"S3_BUCKET_NAME": "bucket", "S3_DB_KEY": "key", key: value})
    except ConfigError as error:
        return f"{error}; the runtime would refuse to start with it and answer every request 503 (cause=misconfigured)"
    return None


def _env_key_problem(key: str) -> str | None:
    if key in DERIVED_ENV_SOURCES:
        source = ".".join(DERIVED_ENV_SOURCES[key])
        return f"{key} is set by canvas-reconcile from {source}; remove it here (change {source} instead)"
    if key in RESERVED_ENV_KEYS:
        return f"{key} is reserved: Lambda sets it itself and rejects a function that defines it; remove it"
    if not ENV_KEY_RE.fullmatch(key):
        return (f'{quoted(key)} is not a valid environment variable name: it must start with a letter and '
                'contain only letters, digits and "_" (at least 2 characters)')
    return None


def _tags(data: dict) -> Iterator[Finding]:
    for key, value in _section(data, "tags").items():
        if message := _tag_key_problem(key, stack=_text(data, "stack")):
            yield Finding(("tags", key), message, at_key=True)
        elif isinstance(value, str) and (message := _tag_text_problem(value, subject="")):
            yield Finding(("tags", key), message)


_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_TAG_CHARS = 'letters, digits, spaces and "_.:/=+-@"'


def _is_tag_character(char: str) -> bool:
    # AWS documents tag text as ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$ for S3, ECR, IAM and Lambda
    # alike; Python's re has no \p{…}, and its \s would let tab and line breaks through.
    return char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LZN"


def _tag_text_problem(text: str, *, subject: str) -> str | None:
    """What AWS would refuse in a tag name or value, or rewrite into a perpetual diff."""
    if strays := _stray_characters(text, allowed=_is_tag_character, words=_TAG_CHARS):
        return f"in {subject}s, {strays[0]}" if subject else strays[0]
    if text != text.strip():
        # AWS trims them, so what it stores never equals what canvas.yaml asks for.
        return (f"{subject}s " if subject else "") + (
            "must not start or end with a space: AWS trims it, so the tag would show as drift after every apply"
        )
    return None


def _tag_key_problem(key: str, *, stack: str | None) -> str | None:
    if key == STACK_TAG:
        return f"{STACK_TAG} is set by canvas-reconcile to the stack name ({stack}); remove it here"
    if key.lower().startswith("aws:"):
        return 'tag names starting with "aws:" are reserved by AWS'
    if not 1 <= len(key) <= 128:
        return f"tag names must be 1–128 characters long (this one is {len(key)})"
    return _tag_text_problem(key, subject="tag name")


def _cors(data: dict) -> Iterator[Finding]:
    cors = _section(data, "url", "cors")
    origins = cors.get("allow_origins")
    if cors.get("allow_credentials") is True and isinstance(origins, list) and "*" in origins:
        yield Finding(("url", "cors", "allow_credentials"), (
            'true cannot be combined with "*" in url.cors.allow_origins (browsers refuse it and '
            "AWS rejects it); list the exact origins instead, or set allow_credentials: false"
        ))


def _platform(data: dict) -> Iterator[Finding]:
    platform = _text(data, "image", "build", "platform")
    architectures = _section(data, "function").get("architectures")
    if platform is None or not isinstance(architectures, list) or len(architectures) != 1:
        return
    wanted = PLATFORM_OF.get(architectures[0]) if isinstance(architectures[0], str) else None
    if wanted and platform in PLATFORM_OF.values() and platform != wanted:
        yield Finding(("image", "build", "platform"), (
            f"{platform} does not match function.architectures [{architectures[0]}]; "
            f"the image would not start — set image.build.platform: {wanted}"
        ))


def _immutable_build(data: dict) -> Iterator[Finding]:
    if _section(data, "repository").get("tag_mutability") != "IMMUTABLE" or "build" not in _section(data, "image"):
        return
    tag = _text(data, "image", "tag") or "image.tag"
    yield Finding(("repository", "tag_mutability"), (
        f"IMMUTABLE cannot be used with image.build: every build pushes a new image under {shorten(tag)}, "
        "which an immutable repository refuses. The content tag canvas-<hash> that a build also "
        "pushes is immutable by nature (other content gets another tag). Set tag_mutability: MUTABLE, "
        "or remove image.build and push each release under a new image.tag yourself"
    ))


def _public_url(data: dict) -> Iterator[Finding]:
    if _section(data, "url").get("auth_type") == "NONE":
        yield Finding(("url", "auth_type"), (
            "NONE makes the function public: anyone who has its URL can invoke it, and every call "
            "runs (and bills) the function. To restrict it, set url.auth_type: AWS_IAM so callers "
            "must sign requests with AWS SigV4."
        ), warning=True)
