"""Desired versus live, attribute by attribute, driven by each kind's table of fields.

The result is a list of AttributeChange values; nothing here prints or calls AWS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

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
    """DeepDiff's judgement; values identical in type and content need no DeepDiff (a no-op
    plan compares only such values, and so never pays deepdiff's import: issue 12)."""
    if _identical(a, b):
        return True
    from deepdiff import DeepDiff

    return not DeepDiff(a, b, ignore_order=unordered, ignore_string_case=False)


def _identical(a: Any, b: Any) -> bool:
    """Same types all the way down and equal: DeepDiff finds nothing there (1 and 1.0, or True
    and 1, are equal in Python but a type change to DeepDiff, so they are not identical)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return a == b


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
            changes.append(_change(field, None, have, want))
    return changes


def _diff_mapping(field: Field, want: Mapping, have: Mapping) -> list[AttributeChange]:
    changes = []
    for key in sorted(want):
        if key not in have or not field.same(want[key], have[key]):
            changes.append(_change(field, key, have.get(key), want[key]))
    if field.purge:
        for key in sorted(set(have) - set(want)):
            changes.append(_change(field, key, have[key], None))
    return changes


def _change(field: Field, key: str | None, before: Any, after: Any) -> AttributeChange:
    """The change of ``field`` (of its ``key``, for a per-key field), carrying both."""
    path = field.path if key is None else f"{field.path}.{key}"
    # A per-key field's key is judged whole (a tag `app.secret`), a plain field by its last segment.
    name = key if key is not None else field.path.rsplit(".", 1)[-1]
    sensitive = bool(field.sensitive and field.sensitive(name, after if after is not None else before))
    return AttributeChange(path=path, before=before, after=after, sensitive=sensitive, field_path=field.path,
                           key=key)
