"""Desired versus live, attribute by attribute, driven by each kind's table of fields.

The result is a list of AttributeChange values; nothing here prints or calls AWS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from deepdiff import DeepDiff

from reconciler.plan import AttributeChange


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Field:
    """One comparable attribute, named by its dotted canvas.yaml path.

    unordered: a list AWS treats as a set. compare_as: projects both sides before comparing
    (values that differ in form but not in meaning). per_key: a mapping compared key by key
    (`tags.canvas:stack`); purge: live keys absent from canvas.yaml are drift too.
    """

    path: str
    unordered: bool = False
    compare_as: Callable[[Any], Any] = _identity
    per_key: bool = False
    purge: bool = False
    sensitive: Callable[[str, Any], bool] | None = None

    def same(self, a: Any, b: Any) -> bool:
        """Equal as this field compares: both sides projected, lists as sets where AWS keeps sets."""
        return equal(self.compare_as(a), self.compare_as(b), unordered=self.unordered)


def lookup(document: Mapping | None, path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def equal(a: Any, b: Any, *, unordered: bool = False) -> bool:
    return not DeepDiff(a, b, ignore_order=unordered, ignore_string_case=False)


def diff(fields: tuple[Field, ...], desired: Mapping, live: Mapping | None) -> list[AttributeChange]:
    """Every managed attribute whose live value differs; all of them when live is None."""
    changes: list[AttributeChange] = []
    for field in fields:
        want = lookup(desired, field.path)
        if want is None:
            continue  # unset in canvas.yaml: unmanaged, so never drift
        have = lookup(live, field.path)
        if field.per_key:
            changes.extend(_diff_mapping(field, want, have or {}))
        elif live is None or not field.same(want, have):
            changes.append(_change(field, field.path, have, want))
    return changes


def _diff_mapping(field: Field, want: Mapping, have: Mapping) -> list[AttributeChange]:
    changes = []
    for key in sorted(want):
        if key not in have or not field.same(want[key], have[key]):
            changes.append(_change(field, f"{field.path}.{key}", have.get(key), want[key]))
    if field.purge:
        for key in sorted(set(have) - set(want)):
            changes.append(_change(field, f"{field.path}.{key}", have[key], None))
    return changes


def _change(field: Field, path: str, before: Any, after: Any) -> AttributeChange:
    key = path.rsplit(".", 1)[-1]
    sensitive = bool(field.sensitive and field.sensitive(key, after if after is not None else before))
    return AttributeChange(path=path, before=before, after=after, sensitive=sensitive)
