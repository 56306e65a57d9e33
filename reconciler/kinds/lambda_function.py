"""lambda_function: the container-image function.

Manages the image (by digest: a new image pushed under the same tag is drift, `image_digest`),
the role, memory, timeout, /tmp size, environment (the user's variables plus the derived
S3_BUCKET_NAME and S3_DB_KEY), architectures, reserved concurrency and tags. Code and
configuration are separate Lambda updates that may not overlap, so every write first waits
for the function to settle, and a ResourceConflictException is retried.

With `image.build`, while a build is pending the desired digest is "(known after the build)":
the plan shows the code update, and apply reads the digest the tag points at once the image
step has pushed it.
"""
from __future__ import annotations

from typing import Mapping

from reconciler.aws import absent_on, error_code, error_message, retry
from reconciler.checks import derived_environment
from reconciler.diff import Field
from reconciler.errors import ReconcileError
from reconciler.kinds import container_image
from reconciler.kinds.defaults import no_note
from reconciler.normalize import changed_tags, desired_tags, looks_secret

TYPE = "lambda_function"
SERVICE = "lambda"

# What CreateFunction itself sets: an existing function without them is not our create (recreate.py).
CREATE_CALL_FIELDS = ("tags", "image_repository", "role")
FIELDS = (
    Field("image_repository"),
    Field("image_digest"),
    Field("role"),
    Field("memory"),
    Field("timeout"),
    Field("ephemeral_storage"),
    # update_function_configuration replaces the whole set, so a variable added by hand is
    # drift too (purge), and values that look secret never reach the screen.
    Field("environment", per_key=True, purge=True, sensitive=looks_secret),
    Field("architectures"),
    Field("reserved_concurrency"),
    Field("tags", per_key=True),
)
_CONFIGURATION = {"role": "Role", "memory": "MemorySize", "timeout": "Timeout"}


def desired(spec, target) -> dict:
    fn = spec.function
    repository, tag = spec.repository["name"], spec.image["tag"]
    return {
        "name": fn["name"],
        "image": container_image.address_name(repository, tag),
        "image_repository": target.repository_uri(repository),
        "image_digest": None,  # what the tag points at now: filled in by resolve()
        "image_from_build": (spec.image or {}).get("build") is not None,
        "role": target.role_arn(spec.role["name"]),
        "memory": fn.get("memory"),
        "timeout": fn.get("timeout"),
        "ephemeral_storage": fn.get("ephemeral_storage"),
        "environment": {**(fn.get("environment") or {}), **derived_environment({"bucket": spec.bucket})},
        "architectures": fn.get("architectures"),
        "reserved_concurrency": fn.get("reserved_concurrency"),
        "tags": desired_tags(spec),
    }


def resolve(want: dict, lives: Mapping[str, dict | None]) -> dict:
    image = lives.get(f"{container_image.TYPE}.{want['image']}")
    if not container_image.is_current(bool(want.get("image_from_build")), image):
        # A build is pending: the digest exists only once it is pushed, and apply reads it then.
        return {**want, "image_digest": container_image.AFTER_BUILD}
    return {**want, "image_digest": image["digest"] if image else None}


def read(clients, want: dict) -> dict | None:
    answer = absent_on(("ResourceNotFoundException",),
                       lambda: clients.awslambda.get_function(FunctionName=want["name"]))
    if answer is None:
        return None
    config, code = answer["Configuration"], answer.get("Code", {})
    if config.get("PackageType") != "Image":
        raise ReconcileError(
            f"function {want['name']} exists as a {config.get('PackageType', 'Zip')} package; canvas-reconcile "
            "runs container images and will not replace a function by itself — delete it, or use another function.name")
    repository, digest = split_image_uri(code.get("ResolvedImageUri") or code.get("ImageUri", ""))
    return {
        "name": config["FunctionName"],
        "arn": config["FunctionArn"],
        "image_repository": repository,
        "image_digest": digest,
        "role": config.get("Role"),
        "memory": config.get("MemorySize"),
        "timeout": config.get("Timeout"),
        "ephemeral_storage": config.get("EphemeralStorage", {}).get("Size"),
        "environment": config.get("Environment", {}).get("Variables", {}),
        "architectures": config.get("Architectures"),
        "reserved_concurrency": answer.get("Concurrency", {}).get("ReservedConcurrentExecutions"),
        "tags": {k: v for k, v in (answer.get("Tags") or {}).items() if not k.startswith("aws:")},
    }


def split_image_uri(uri: str) -> tuple[str | None, str | None]:
    """`<repo uri>@sha256:…` or `<repo uri>:tag` → (repo uri, digest or None).
    moto writes a resolved URI of a digest deployment as `repo@sha256@sha256:…`; the last @ is the one."""
    if not uri:
        return None, None
    if "@" in uri:
        head, digest = uri.rsplit("@", 1)
        return head.split("@", 1)[0], digest
    head, _, tail = uri.rpartition(":")
    return (head, None) if "/" not in tail else (uri, None)


def _image_uri(clients, want: dict) -> str:
    """Pin the code to a digest (never `repo:tag@sha256:…`, which Lambda rejects), so a later
    re-tag cannot move the running function: the digest the plan showed, or — when the plan
    could not know it (the image was not pushed yet) — the one the tag points at now."""
    digest = want.get("image_digest")
    if digest and digest.startswith("sha256:"):
        return f"{want['image_repository']}@{digest}"
    repository, tag = want["image"].rsplit(":", 1)
    digest = container_image.tag_digest(clients, repository, tag)
    if digest is None:
        raise container_image.missing_image({"name": want["image"], "uri": f"{want['image_repository']}:{tag}"},
                                            local=clients.is_local())
    return f"{want['image_repository']}@{digest}"


def _role_not_assumable(exc) -> bool:
    # A role seconds old is not yet visible to Lambda; `iam wait role-exists` does not help.
    return error_code(exc) == "InvalidParameterValueException" and "cannot be assumed" in error_message(exc)


def _in_progress(exc) -> bool:
    return error_code(exc) == "ResourceConflictException"


def create(clients, want: dict) -> None:
    lam = clients.awslambda
    kwargs = {
        "FunctionName": want["name"], "PackageType": "Image", "Code": {"ImageUri": _image_uri(clients, want)},
        "Role": want["role"], "Environment": {"Variables": want["environment"]},
        "Tags": dict(want["tags"]),
    }
    kwargs.update({api: want[key] for key, api in _CONFIGURATION.items() if key != "role" and want.get(key)})
    if want.get("ephemeral_storage"):
        kwargs["EphemeralStorage"] = {"Size": want["ephemeral_storage"]}
    if want.get("architectures"):
        kwargs["Architectures"] = want["architectures"]
    retry(lambda: lam.create_function(**kwargs), clients=clients, retryable=_role_not_assumable,
          waiting_for="waiting for IAM to let Lambda assume the new role")
    wait_settled(clients, want["name"])
    if want.get("reserved_concurrency") is not None:
        lam.put_function_concurrency(FunctionName=want["name"],
                                     ReservedConcurrentExecutions=want["reserved_concurrency"])


def update(clients, want: dict, have: dict, paths) -> None:
    lam, name, paths = clients.awslambda, want["name"], set(paths)
    if paths & {"image_repository", "image_digest", "architectures"}:
        _update_code(clients, want, have, paths)
    configuration = _configuration_update(want, paths)
    if configuration:
        _settled_call(clients, name, lambda: lam.update_function_configuration(FunctionName=name, **configuration))
    if "reserved_concurrency" in paths:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=want["reserved_concurrency"])
    tags = changed_tags(want["tags"], paths)
    if tags:
        lam.tag_resource(Resource=have["arn"], Tags=tags)
    wait_settled(clients, name)


def _update_code(clients, want: dict, have: dict, paths: set[str]) -> None:
    lam, name = clients.awslambda, want["name"]
    uri = _image_uri(clients, want)
    if not paths & {"image_repository", "architectures"} \
            and split_image_uri(uri) == (have.get("image_repository"), have.get("image_digest")):
        # A build whose cached layers gave the very image the function runs already.
        clients.notify("the built image is the one the function already runs; its code is left as it is")
        return
    kwargs = {"FunctionName": name, "ImageUri": uri}
    if want.get("architectures"):
        kwargs["Architectures"] = want["architectures"]
    _settled_call(clients, name, lambda: lam.update_function_code(**kwargs))


def _configuration_update(want: dict, paths: set[str]) -> dict:
    update = {api: want[key] for key, api in _CONFIGURATION.items() if key in paths}
    if "ephemeral_storage" in paths:
        update["EphemeralStorage"] = {"Size": want["ephemeral_storage"]}
    if any(p.startswith("environment.") for p in paths):
        update["Environment"] = {"Variables": want["environment"]}
    return update


def _settled_call(clients, name: str, call) -> None:
    wait_settled(clients, name)
    retry(call, clients=clients, retryable=_in_progress, waiting_for="waiting for the previous update to finish",
          budget=60.0)


def wait_settled(clients, name: str, *, budget: float = 120.0, every: float = 2.0) -> None:
    """Poll GetFunction until the function is Active and no update is in progress — what the
    function_active_v2 / function_updated_v2 waiters check, but on the injected clock, saying
    what it waits for, and failing with Lambda's own reason when the function fails."""
    deadline = clients.clock() + budget
    while True:
        config = clients.awslambda.get_function(FunctionName=name)["Configuration"]
        state, update = config.get("State", "Active"), config.get("LastUpdateStatus", "Successful")
        if state == "Failed" or update == "Failed":
            reason = config.get("StateReason") or config.get("LastUpdateStatusReason") or "no reason given"
            raise ReconcileError(f"function {name} is {state}, last update {update}: {reason}")
        if state == "Active" and update != "InProgress":
            return
        if clients.clock() + every > deadline:
            raise ReconcileError(f"function {name} still {state} (last update {update}) after {budget:g}s; "
                                 "run apply again to continue once Lambda has settled")
        clients.notify(f"waiting for the function to settle: State {state}, LastUpdateStatus {update}")
        clients.sleep(every)


def delete(clients, have: dict) -> None:
    clients.awslambda.delete_function(FunctionName=have["name"])


# The interface's optional members this kind has no use for (kinds.Kind).
CREATE_ON_CHANGE = False
REPLACE_ON_CHANGE = False
note = no_note
