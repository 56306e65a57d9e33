"""schema_check.conforms may say yes only where jsonschema finds no error: held to jsonschema's
own verdict on the repository's canvas.yaml, the broken-spec corpus and thousands of mutations
of both (every value swapped for values of every type and edge, keys added and removed)."""
from __future__ import annotations

import copy
import math
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from reconciler.schema_check import conforms
from reconciler.spec import _validator, schema

REPO = pathlib.Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "unit" / "broken_specs"

# Every type YAML can build, and the edges of the schema's limits.
SUBSTITUTES: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 2048.0, 0.5, math.nan, math.inf, 10**30, 128, 10240, 900, 901,
    "", "x", "a" * 64, "a" * 300, "NONE", "none", "AES256", "arm64", "*", "1", "true", "us-west-2",
    "arn:aws:iam::aws:policy/x", [], ["*"], ["x", "x"], [1], [None], {}, {"a": "b"}, {"a": 1},
]


def documents() -> Iterator[Any]:
    yield yaml.safe_load((REPO / "canvas.yaml").read_text())
    for path in sorted(CORPUS.glob("*.yaml")):
        try:
            yield yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError):
            continue


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, prefix + (index,))


def replaced(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return copy.deepcopy(value)
    out = copy.deepcopy(document)
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = copy.deepcopy(value)
    return out


def mutations(document: Any) -> Iterator[Any]:
    yield document
    for path in paths(document):
        for value in SUBSTITUTES:
            yield replaced(document, path, value)
        if path and isinstance(document, dict):
            parent = replaced(document, (), document)
            holder = parent
            for part in path[:-1]:
                holder = holder[part]
            if isinstance(holder, dict):
                del holder[path[-1]]
                yield parent
                holder["unknown_key"] = "x"
                yield parent


def jsonschema_accepts(document: Any) -> bool:
    return not any(True for _ in _validator().iter_errors(document))


def test_the_repositorys_canvas_yaml_takes_the_quick_path():
    document = yaml.safe_load((REPO / "canvas.yaml").read_text())
    assert conforms(schema(), document) and jsonschema_accepts(document)


@pytest.mark.parametrize("index", range(len(list(documents()))))
def test_conforms_says_yes_only_where_jsonschema_finds_no_error(index):
    document = list(documents())[index]
    said_yes = agreed_yes = 0
    for candidate in mutations(document):
        accepted = jsonschema_accepts(candidate)
        if conforms(schema(), candidate):
            said_yes += 1
            assert accepted, f"conforms() accepted what jsonschema rejects: {candidate!r}"
        agreed_yes += accepted
    # The quick path is taken for nearly every document jsonschema accepts (it is not a mere "no").
    assert said_yes >= 0.9 * agreed_yes


def test_unknown_keywords_are_never_taken_on_trust():
    assert not conforms({"type": "string", "format": "email"}, "x")
    assert not conforms({"patternProperties": {"a": {}}, "additionalProperties": False}, {"a": 1})
    assert not conforms(True, "x")
