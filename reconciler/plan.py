"""Action, AttributeChange, ResourceChange and Plan: the plan as pure data.

No boto3 here. A plan is built by the planner, shown by render, carried out by apply, and
serialised to JSON (schemas/plan.schema.json) from the very same objects.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

FORMAT_VERSION = 1
SENSITIVE = "(sensitive)"


class Cause(str, enum.Enum):
    """Why an attribute differs, judged against the record of the last apply (record.py)."""

    SPEC = "spec"  # canvas.yaml no longer says what was last applied: a pending change
    DRIFT = "drift"  # live AWS no longer is what was last applied: someone changed AWS
    BOTH = "both"

    @property
    def is_drift(self) -> bool:
        return self is not Cause.SPEC


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"


@dataclass(frozen=True)
class AttributeChange:
    path: str
    before: Any
    after: Any
    sensitive: bool = False
    # Without a record of the last apply every difference is a pending change to canvas.yaml.
    cause: Cause = Cause.SPEC
    # The value the last apply set (a secret's as its hash); None when unknown or absent.
    last_applied: Any = None
    # Which Field of the kind this is, by its path, and the key within a per-key field (a tag's
    # or a variable's name, dots and all): record.py classifies by them, never by parsing `path`.
    field_path: str | None = field(default=None, compare=False)
    key: str | None = field(default=None, compare=False)

    def shown(self) -> tuple[Any, Any]:
        """before/after as they may be shown: a sensitive value is never printed, only its presence."""
        return self._masked(self.before), self._masked(self.after)

    def shown_last_applied(self) -> Any:
        return self._masked(self.last_applied)

    def _masked(self, value: Any) -> Any:
        return SENSITIVE if self.sensitive and value is not None else value

    def to_json(self) -> dict:
        before, after = self.shown()
        return {"path": self.path, "before": before, "after": after, "cause": self.cause.value}


@dataclass(frozen=True)
class ResourceChange:
    type: str
    name: str
    action: Action
    attributes: tuple[AttributeChange, ...] = ()
    # The normalized documents the change was computed from; apply works from these so it
    # never re-reads between showing a plan and carrying it out.
    desired: dict | None = field(default=None, compare=False, repr=False)
    live: dict | None = field(default=None, compare=False, repr=False)
    # A sentence the plan shows under the resource (e.g. an image not pushed yet).
    note: str | None = None

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    @property
    def changed_paths(self) -> tuple[str, ...]:
        return tuple(a.path for a in self.attributes)

    @property
    def drifted(self) -> tuple[AttributeChange, ...]:
        return tuple(a for a in self.attributes if a.cause.is_drift)

    def to_json(self) -> dict:
        return {
            "address": self.address,
            "type": self.type,
            "name": self.name,
            "action": self.action.value,
            "attributes": [a.to_json() for a in self.attributes],
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True)
class Plan:
    stack: str
    region: str
    changes: tuple[ResourceChange, ...]
    warnings: tuple[str, ...] = ()
    # Lines about resources the plan deliberately leaves alone (destroy: a kept bucket).
    notes: tuple[str, ...] = ()
    # What the causes were judged against; None for plans that do not look (destroy).
    baseline: Baseline | None = None
    # {address: desired document} for every resource canvas.yaml declares, those wanted
    # absent included: what a successful apply records (record.py).
    desired_state: Mapping[str, dict] = field(default_factory=dict, compare=False, repr=False)
    # The account the plan was read from (STS); a saved plan is applied only there.
    account: str | None = field(default=None, compare=False)

    @property
    def summary(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

    @property
    def pending(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    @property
    def drifted(self) -> tuple[ResourceChange, ...]:
        """Pending changes with at least one attribute changed outside canvas-reconcile."""
        return tuple(c for c in self.steps() if c.drifted)

    def steps(self) -> list[ResourceChange]:
        """The order apply runs (and the text plan shows): creates and updates in dependency
        order, then deletes in reverse — a permission before its function, a function before its role."""
        deletes = [c for c in self.pending if c.action is Action.DELETE]
        return [c for c in self.pending if c.action is not Action.DELETE] + deletes[::-1]

    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "stack": self.stack,
            "region": self.region,
            "changes": [c.to_json() for c in self.changes],
            "summary": self.summary,
            **({"last_applied": self.baseline.to_json()} if self.baseline is not None else {}),
        }


@dataclass(frozen=True)
class Baseline:
    """The record of the last successful apply a plan was compared with, or why there is none.

    record is the record's JSON document (record.py; secrets in it are hashes); None when no
    apply has been recorded yet, or when it could not be read (problem says why).
    """

    location: str  # s3://<bucket>/canvas/<stack>/last-applied.json
    record: dict | None = None
    problem: str | None = None

    @property
    def recorded_desired(self) -> dict[str, dict] | None:
        return None if self.record is None else self.record.get("desired", {})

    def to_json(self) -> dict | None:
        if self.record is None:
            return None
        return {key: self.record.get(key) for key in ("applied_at", "caller_arn", "spec_sha256", "tool_version")}
