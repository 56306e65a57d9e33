"""The resource kinds, one module each, all with the same small interface.

Each module has TYPE, SERVICE (the boto3 client it reads with), FIELDS (the comparable
attributes) and:
  desired(spec, target) -> dict | list[dict] | None   None: canvas.yaml does not declare it;
                                                      a doc with "absent": True must not exist
  read(clients, want) -> dict | None                  read-only calls; None when absent
  create(clients, want); update(clients, want, have, paths); delete(clients, have)
and optionally resolve(want, lives) (desired values only live AWS knows, such as the digest
a tag points at), note(want, have) (a line for the plan), REPLACE_ON_CHANGE (a change is a
delete then a create), CREATE_ON_CHANGE (a change is a create beside the old one: an image) and
CREATE_CALL_FIELDS (what the create call itself sets: recreate.py adopts an untagged resource
that already exists only when these match).
KINDS is in dependency order: apply creates in this order and deletes in reverse.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

from reconciler.kinds import (
    container_image,
    ecr_repository,
    iam_role,
    lambda_function,
    lambda_function_url,
    lambda_permission,
    s3_bucket,
)

if TYPE_CHECKING:
    from reconciler.diff import Field
    from reconciler.target import Target


class Kind(Protocol):
    """A kind module, as mypy checks it. Optional behaviour is explicit: a kind without its own
    resolve or note binds kinds.defaults', one that cannot update or delete sets it to None."""

    # Read-only members (properties), so a module's narrower constant still fits.
    @property
    def TYPE(self) -> str: ...

    @property
    def SERVICE(self) -> str: ...

    @property
    def FIELDS(self) -> tuple[Field, ...]: ...

    @property
    def CREATE_CALL_FIELDS(self) -> tuple[str, ...]: ...

    @property
    def CREATE_ON_CHANGE(self) -> bool: ...

    @property
    def REPLACE_ON_CHANGE(self) -> bool: ...

    @property
    def update(self) -> Callable[[Any, dict, dict, Iterable[str]], None] | None: ...

    @property
    def delete(self) -> Callable[[Any, dict], None] | None: ...

    def desired(self, spec: Any, target: Target) -> dict | list[dict] | None: ...

    def read(self, clients: Any, want: dict) -> dict | None: ...

    def resolve(self, want: dict, lives: Mapping[str, dict | None]) -> dict: ...

    def note(self, want: dict, have: dict | None) -> str | None: ...

    def create(self, clients: Any, want: dict) -> None: ...


# The role comes before the image: it is independent of it, and made early it has had time
# to propagate through IAM before the function that assumes it is created.
KINDS: tuple[Kind, ...] = (s3_bucket, ecr_repository, iam_role, container_image, lambda_function, lambda_function_url,
         lambda_permission)
FOUNDATION: tuple[Kind, ...] = (s3_bucket, ecr_repository, iam_role)
BY_TYPE: dict[str, Kind] = {kind.TYPE: kind for kind in KINDS}
