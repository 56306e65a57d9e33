"""Action, AttributeChange, ResourceChange and Plan: the plan as pure data.

No boto3 here. A plan is built by the planner, shown by render, carried out by apply, and
serialised to JSON (schemas/plan.schema.json) from the very same objects.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1
SENSITIVE = "(sensitive)"


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

    def shown(self) -> tuple[Any, Any]:
        """before/after as they may be shown: a sensitive value is never printed, only its presence."""
        if not self.sensitive:
            return self.before, self.after
        return tuple(None if v is None else SENSITIVE for v in (self.before, self.after))

    def to_json(self) -> dict:
        before, after = self.shown()
        return {"path": self.path, "before": before, "after": after}


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
        }
