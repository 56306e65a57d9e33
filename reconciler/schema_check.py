"""A quick yes to "does this document conform to canvas.schema.json?", without jsonschema.

jsonschema's import alone is about a third of what `reconcile validate` costs (issue 12), and a
spec that conforms (the common case) needs none of its error machinery. `conforms` answers True
only when it is sure jsonschema would find no error: it knows the few keywords the schema uses,
with jsonschema's own semantics (its keyword functions in jsonschema/_keywords.py, and spec.py's
integer that is no bool), and any keyword or value it is not sure of answers False. False
means "ask jsonschema", which then finds and words every problem exactly as before, so no
spec the schema rejects can get through and no message changes. tests/unit/test_schema_check.py
holds this to jsonschema's verdict on the broken-spec corpus and on mutated documents.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# Keywords that only describe (jsonschema asserts nothing for them under Draft 2020-12).
_ANNOTATIONS = frozenset({"$schema", "title", "description", "default", "examples", "x-unit", "x-rule", "x-why"})

# What jsonschema's type checker (with spec.py's integer) accepts, for the types YAML builds.
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: type(value) in (int, float),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}


def conforms(schema: Any, instance: Any) -> bool:
    """True only if jsonschema would report no error for `instance` against `schema`."""
    if not isinstance(schema, dict):
        return False  # a boolean schema: not used by canvas.schema.json
    return all(_keyword_holds(keyword, value, schema, instance) for keyword, value in schema.items())


def _keyword_holds(keyword: str, value: Any, schema: dict, instance: Any) -> bool:
    if keyword in _ANNOTATIONS:
        return True
    check = _KEYWORDS.get(keyword)
    return check is not None and check(value, schema, instance)


def _type(expected: Any, _schema: dict, instance: Any) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    return isinstance(names, list) and any(name in _TYPES and _TYPES[name](instance) for name in names)


def _number_within(compare: Callable[[Any, Any], bool]) -> Callable[[Any, dict, Any], bool]:
    def check(limit: Any, _schema: dict, instance: Any) -> bool:
        if isinstance(instance, bool) or not isinstance(instance, (int, float)):
            # jsonschema skips what is not a number; a bool is none, anything else is unsure.
            return isinstance(instance, (bool, str, dict, list, type(None)))
        return type(limit) in (int, float) and not compare(instance, limit)
    return check


def _string_length(too_far: Callable[[int, int], bool]) -> Callable[[Any, dict, Any], bool]:
    def check(limit: Any, _schema: dict, instance: Any) -> bool:
        return not isinstance(instance, str) or (type(limit) is int and not too_far(len(instance), limit))
    return check


def _count(kind: type[list] | type[dict], too_far: Callable[[int, int], bool]) -> Callable[[Any, dict, Any], bool]:
    def check(limit: Any, _schema: dict, instance: Any) -> bool:
        return not isinstance(instance, kind) or (type(limit) is int and not too_far(len(instance), limit))
    return check


def _pattern(pattern: Any, _schema: dict, instance: Any) -> bool:
    return not isinstance(instance, str) or (isinstance(pattern, str) and re.search(pattern, instance) is not None)


def _enum(allowed: Any, _schema: dict, instance: Any) -> bool:
    # jsonschema's equal() tells 1 from true and 1 from 1.0 apart; strings compare plainly.
    return type(instance) is str and isinstance(allowed, list) and any(
        type(each) is str and each == instance for each in allowed)


def _const(expected: Any, _schema: dict, instance: Any) -> bool:
    return type(expected) in (int, str) and type(instance) is type(expected) and instance == expected


def _required(names: Any, _schema: dict, instance: Any) -> bool:
    return not isinstance(instance, dict) or (isinstance(names, list) and all(name in instance for name in names))


def _properties(properties: Any, _schema: dict, instance: Any) -> bool:
    if not isinstance(instance, dict):
        return True
    return isinstance(properties, dict) and all(
        conforms(sub, instance[name]) for name, sub in properties.items() if name in instance)


def _additional(additional: Any, schema: dict, instance: Any) -> bool:
    if not isinstance(instance, dict):
        return True
    if "patternProperties" in schema:
        return False  # not used by the schema; jsonschema's rules for it are not repeated here
    extras = [value for key, value in instance.items() if key not in schema.get("properties", {})]
    if additional is False:
        return not extras
    return isinstance(additional, dict) and all(conforms(additional, value) for value in extras)


def _items(items: Any, schema: dict, instance: Any) -> bool:
    if not isinstance(instance, list):
        return True
    return "prefixItems" not in schema and isinstance(items, dict) and all(conforms(items, each) for each in instance)


def _unique(unique: Any, _schema: dict, instance: Any) -> bool:
    if unique is False:
        return True
    if unique is not True:
        return False
    if not isinstance(instance, list):
        return True
    # Only strings are judged here: jsonschema's uniq() has its own rules for 1, 1.0 and true.
    return all(type(each) is str for each in instance) and len(set(instance)) == len(instance)


_KEYWORDS: dict[str, Callable[[Any, dict, Any], bool]] = {
    "type": _type,
    "minimum": _number_within(lambda value, limit: value < limit),
    "maximum": _number_within(lambda value, limit: value > limit),
    "minLength": _string_length(lambda length, limit: length < limit),
    "maxLength": _string_length(lambda length, limit: length > limit),
    "minItems": _count(list, lambda length, limit: length < limit),
    "maxItems": _count(list, lambda length, limit: length > limit),
    "maxProperties": _count(dict, lambda length, limit: length > limit),
    "pattern": _pattern,
    "enum": _enum,
    "const": _const,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "items": _items,
    "uniqueItems": _unique,
}
