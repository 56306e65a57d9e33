"""Load canvas.yaml: read it, parse it with positions, validate it against
schemas/canvas.schema.json and the checks beside it, and fill in the schema's defaults.

Every problem with the file comes back together in one SpecError, each as
`file:line:column: dotted.path: message`, sorted by position; never a traceback.
"""
from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import os
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from reconciler.checks import DERIVED_ENV_KEYS, RESERVED_ENV_KEYS, Finding, check_region, run_checks
from reconciler.limits import MAX_BYTES, quoted, shorten
from reconciler.schema_check import conforms
from reconciler.yamlmarks import MarkedDocument, PathT, Position, YamlLoadError, load_marked

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

__all__ = [
    "DERIVED_ENV_KEYS", "RESERVED_ENV_KEYS", "Problem", "Spec", "SpecError",
    "check_region", "load_spec", "schema",
]

_PY_TYPE_WORDS = {
    bool: "boolean", int: "integer", float: "number", str: "string",
}
_SCHEMA_TYPE_WORDS = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "true or false", "object": "a mapping", "array": "a list", "null": "null",
}


class Problem(NamedTuple):
    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(Exception):
    """canvas.yaml is unusable; `problems` lists every reason, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        unique = list(dict.fromkeys(problems))
        self.problems = sorted(unique, key=lambda p: (p.line or 0, p.column or 0))
        super().__init__("\n".join(map(str, self.problems)))


@dataclass(frozen=True)
class Spec:
    file: str  # the path as the user gave it, for messages
    data: dict  # the validated document, schema defaults filled in; treat as read-only
    sha256: str  # of the file's raw bytes
    warnings: tuple[str, ...] = ()

    # What the schema requires is there once the spec is validated: no None to check for.
    @property
    def stack(self) -> str:
        return self.data["stack"]

    @property
    def region(self) -> str:
        return self.data["region"]

    @property
    def bucket(self) -> dict:
        return self.data["bucket"]

    @property
    def repository(self) -> dict:
        return self.data["repository"]

    @property
    def image(self) -> dict:
        return self.data["image"]

    @property
    def role(self) -> dict:
        return self.data["role"]

    @property
    def function(self) -> dict:
        return self.data["function"]

    @property
    def url(self) -> dict | None:
        return self.data.get("url")

    @property
    def tags(self) -> dict | None:
        return self.data.get("tags")


@functools.cache
def schema() -> dict:
    """The canvas.yaml JSON Schema, as shipped in the package."""
    # Beside this module (package data), read as a plain file: importlib.resources and the
    # tempfile and zipfile modules it loads cost ~8 ms of every start (issue 12).
    text = (Path(__file__).parent / "schemas" / "canvas.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _is_integer(_checker: Any, value: Any) -> bool:
    # JSON Schema counts 2048.0 as an integer; Lambda's API does not, and bool is not one either.
    return isinstance(value, int) and not isinstance(value, bool)


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    # Imported only to find and word what is wrong: a spec that conforms never loads it
    # (schema_check.conforms says so first; issue 12: its import was a third of `validate`).
    import jsonschema

    extended = jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    )
    return extended(schema())


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and validate canvas.yaml at `path`; raise SpecError listing every problem."""
    file = str(os.fspath(path))
    raw = _read(file)
    doc = _parse(file, _decode(file, raw))
    data = _with_defaults(copy.deepcopy(doc.data))
    findings = run_checks(data)
    problems = [Problem(file, *issue.position, _dotted(issue.path), issue.message) for issue in doc.issues]
    problems += _schema_problems(file, doc)
    problems += [_located(file, doc, finding=f) for f in findings if not f.warning]
    if problems:
        raise SpecError(problems)
    warnings = tuple(str(_located(file, doc, finding=f)) for f in findings if f.warning)
    return Spec(file=file, data=data, sha256=hashlib.sha256(raw).hexdigest(), warnings=warnings)


def _fail(file: str, message: str, *, position: Position | None = None) -> SpecError:
    line, column = position if position else (None, None)
    return SpecError([Problem(file, line, column, "", message)])


def _read(file: str) -> bytes:
    try:
        return _read_regular(file)
    except FileNotFoundError:
        raise _fail(file, f"file not found (looked for {os.path.abspath(file)}) — run reconcile in the "
                          f"directory that holds canvas.yaml, or give its path with -f FILE") from None
    except PermissionError:
        raise _fail(file, "cannot read the file: permission denied") from None
    except OSError as error:
        raise _fail(file, f"cannot read the file: {error.strerror or error}") from None


def _read_regular(file: str) -> bytes:
    # Judged before opening: opening a FIFO blocks, and /dev/zero never ends.
    _refuse_unless_regular(file, os.stat(file))
    # O_NONBLOCK in case the path became a FIFO since; fstat judges what was really opened.
    descriptor = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as handle:
        _refuse_unless_regular(file, os.fstat(handle.fileno()))
        raw = handle.read(MAX_BYTES + 1)  # the file may have grown since
    if len(raw) > MAX_BYTES:
        raise _fail(file, _too_big(f"is over {MAX_BYTES} bytes"))
    return raw


_FILE_KINDS = {
    stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
    stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISSOCK: "a socket",
}


def _refuse_unless_regular(file: str, status: os.stat_result) -> None:
    if stat.S_ISDIR(status.st_mode):
        raise _fail(file, "is a directory; give the path of the canvas.yaml file itself")
    if not stat.S_ISREG(status.st_mode):
        kind = next((word for test, word in _FILE_KINDS.items() if test(status.st_mode)), "not a file")
        target = os.path.realpath(file)
        link = f" ({target})" if os.path.abspath(file) != target else ""
        raise _fail(file, f"is {kind}{link}, not a regular file; give the path of the canvas.yaml file itself")
    if status.st_size > MAX_BYTES:
        raise _fail(file, _too_big(f"is {status.st_size} bytes"))


def _too_big(what: str) -> str:
    return (f"{what}; canvas.yaml may be at most 1 MiB ({MAX_BYTES} bytes) — "
            "one for a single deployment is a few kilobytes")


def _decode(file: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        start = raw.rfind(b"\n", 0, error.start) + 1
        line = raw.count(b"\n", 0, error.start) + 1
        column = len(raw[start:error.start].decode("utf-8-sig", errors="replace")) + 1
        message = (f"not valid UTF-8: byte 0x{raw[error.start]:02X} at byte offset {error.start} "
                   "cannot be decoded; save the file as UTF-8")
        raise _fail(file, message, position=Position(line, column)) from None


def _parse(file: str, text: str) -> MarkedDocument:
    try:
        doc = load_marked(text)
    except YamlLoadError as error:
        raise _fail(file, error.message, position=error.position) from None
    *first, last = schema()["required"]
    required = f"{', '.join(first)} and {last}"
    if doc.root is None:
        raise _fail(file, f"the file is empty; canvas.yaml must be a mapping with {required}")
    if not isinstance(doc.data, dict):
        message = f"the document must be a mapping with {required}; got {_describe(doc.data)}"
        raise _fail(file, message, position=doc.root)
    return doc


def _with_defaults(data: Any, node: dict | None = None) -> Any:
    """Fill in the schema's `default`s, in place, wherever the enclosing mapping exists."""
    node = schema() if node is None else node
    if not isinstance(data, dict):
        return data
    for key, sub in node.get("properties", {}).items():
        if key not in data and "default" in sub:
            data[key] = copy.deepcopy(sub["default"])
        elif key in data:
            _with_defaults(data[key], sub)
    return data


def _dotted(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{_key_text(part)}" if text else _key_text(part))
    return text


def _key_text(key: Any) -> str:
    # A tab or line break in a key would break the one-line message; show it escaped.
    key = shorten(str(key))
    return json.dumps(key, ensure_ascii=False) if any(unicodedata.category(c)[0] == "C" for c in key) else key


def _json(text: str) -> str:
    return quoted(text, as_json=True)


def _located(file: str, doc: MarkedDocument, *, finding: Finding) -> Problem:
    where = doc.key_position(finding.path) if finding.at_key else doc.value_position(finding.path)
    line, column = where if where else (None, None)
    return Problem(file, line, column, _dotted(finding.path), finding.message)


# --- jsonschema errors in plain words -------------------------------------------------


def _schema_problems(file: str, doc: MarkedDocument) -> list[Problem]:
    if conforms(schema(), doc.data):
        return []
    errors = list(_validator().iter_errors(doc.data))
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    # A value of the wrong type also breaks its enum/const/pattern; say only the type.
    errors = [e for e in errors if e.validator == "type" or tuple(e.absolute_path) not in mistyped]
    return [_located(file, doc, finding=finding) for e in errors for finding in _translate(e, doc)]


def _translate(error: ValidationError, doc: MarkedDocument) -> Iterator[Finding]:
    path: PathT = tuple(error.absolute_path)
    keyword, instance, schema_node = error.validator, error.instance, error.schema
    if keyword == "additionalProperties":
        yield from _unknown_keys(path, instance, schema_node)
    elif keyword == "required":
        for key in error.validator_value:
            if isinstance(instance, dict) and key not in instance:
                what = "section" if not path else "key"
                yield Finding(path, f'missing required {what} "{key}"', at_key=True)
    elif keyword == "uniqueItems":
        yield from _duplicates(path, instance)
    else:
        yield Finding(path, _describe_error(error, doc.sources.get(path)))


def _describe_error(error: ValidationError, source: str | None) -> str:
    keyword, value, limit = error.validator, error.instance, error.validator_value
    node = error.schema if isinstance(error.schema, dict) else {}
    unit = f" ({node['x-unit']})" if "x-unit" in node else ""
    why = f" ({node['x-why']})" if "x-why" in node else ""
    messages = {
        "type": lambda: _type_message(limit, value, source),
        "enum": lambda: _enum_message(limit, value),
        "const": lambda: f"must be {json.dumps(limit)}{why}; got {_describe(value)}",
        "minimum": lambda: f"{value} is below the minimum {limit}{unit}",
        "maximum": lambda: f"{value} is above the maximum {limit}{unit}",
        "minLength": lambda: "must not be empty" if limit == 1 else f"must be at least {limit} characters long",
        "maxLength": lambda: f"is {len(value)} characters long; the maximum is {limit}{why}",
        "pattern": lambda: f"{_json(value)} is not {node.get('x-rule', 'matching ' + limit)}",
        "minItems": lambda: f"must list at least {limit} item{'s' * (limit != 1)}{why}",
        "maxItems": lambda: f"lists {len(value)} items; at most {limit} allowed{why}",
        "maxProperties": lambda: f"has {len(value)} entries; at most {limit} allowed{why}",
    }
    return messages[keyword]() if keyword in messages else error.message


def _type_message(expected: str | list, value: Any, source: str | None) -> str:
    wanted = " or ".join(_SCHEMA_TYPE_WORDS.get(t, t) for t in ([expected] if isinstance(expected, str) else expected))
    message = f"expected {wanted}, got {_describe(value)}"
    scalar = value is not None and not isinstance(value, (dict, list, str))
    if expected == "string" and scalar and source is not None:
        return f'{message}; quote it to make it a string: "{shorten(source)}"'
    if expected in ("integer", "boolean") and isinstance(value, str) and _reads_as(value, expected):
        return f"{message}; remove the quotes"
    return message


def _reads_as(text: str, expected: str) -> bool:
    if expected == "integer":
        return text.strip().lstrip("-").isdigit()
    return text.strip().lower() in {"true", "false", "yes", "no", "on", "off"}  # YAML 1.1 booleans


def _enum_message(allowed: list, value: Any) -> str:
    message = f"must be one of: {', '.join(map(str, allowed))}; got {_describe(value)}"
    # Only a difference in case is a safe guess: "amd64" looks like "arm64" but means x86_64.
    folded = {str(a).lower(): str(a) for a in allowed}
    if isinstance(value, str) and value.lower() in folded:
        message += f' (did you mean "{folded[value.lower()]}"?)'
    return message


def _unknown_keys(path: PathT, instance: Any, node: dict) -> Iterator[Finding]:
    allowed = list(node.get("properties", {}))
    for key in instance if isinstance(instance, dict) else ():
        if key in allowed:
            continue
        message = "unknown key"
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        if close:
            message += f'; did you mean "{close[0]}"?'
        yield Finding(path + (key,), f"{message} (allowed: {', '.join(allowed)})", at_key=True)


def _duplicates(path: PathT, items: list) -> Iterator[Finding]:
    for index, item in enumerate(items):
        if item in items[:index]:
            yield Finding(path + (index,), f"{_describe(item)} is listed more than once")


def _describe(value: Any) -> str:
    if value is None:
        return "an empty value (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"string {_json(value)}"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    kind = _PY_TYPE_WORDS.get(type(value), "a date" if hasattr(value, "isoformat") else type(value).__name__)
    return f"{kind} {shorten(str(value))}"
