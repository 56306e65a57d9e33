"""`.dockerignore` with Docker's own semantics, so the content hash sees exactly the files a
build would.

Reading follows moby's ignorefile.ReadAll: a UTF-8 BOM is dropped, a line starting with `#`
is a comment (checked before whitespace is trimmed), blank lines are skipped, each pattern is
cleaned like Go's filepath.Clean and a leading `/` is dropped (the context is the root).
Matching follows moby/patternmatcher: `*` and `?` never cross `/`, `**` spans any number of
directories, a pattern that matches a directory matches everything under it, and the last
matching line wins, so `!` re-includes what earlier lines excluded.

Which excluded directories may be skipped without looking inside follows BuildKit's walker
(tonistiigi/fsutil): always when no `!` line exists; when every `!` line is a literal path,
only directories no `!` line lies under; otherwise none, because a wildcard `!` line such as
`!**/keep.txt` may re-include a file anywhere. The classic builder skips more eagerly there;
canvas-reconcile builds with BuildKit, so BuildKit's answer is the one that counts.
"""
from __future__ import annotations

import posixpath
import re
import warnings
from dataclasses import dataclass, field

from reconciler.errors import ReconcileError

_ESCAPED = set(".+()|{}$")  # regexp metacharacters with no meaning in a filepath.Match pattern
_WILDCARDS = set("*?[")


class BadPattern(ReconcileError):
    """A .dockerignore line Docker itself would reject."""


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, in order, as moby's ignorefile.ReadAll reads them."""
    patterns = []
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = _clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


def _clean(path: str) -> str:
    """Go's filepath.Clean on a slash path (normpath keeps a leading `//`; Clean does not)."""
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


@dataclass
class Pattern:
    text: str  # cleaned, without the leading "!"
    exclusion: bool  # a `!` line: re-includes what earlier lines excluded
    kind: str = field(init=False)  # "exact", "prefix", "suffix" or "regexp", as patternmatcher decides
    regexp: re.Pattern | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        _check_syntax(self.text)
        self.kind, source = _translate(self.text)
        if self.kind == "regexp":
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "possible nested set" for a literal "[" in a class
                    self.regexp = re.compile(source, re.DOTALL)
            except re.error as error:
                raise BadPattern(f"{self.text!r}: {error}") from None

    @property
    def has_wildcards(self) -> bool:
        text, index = self.text, 0
        while index < len(text):
            if text[index] == "\\":
                index += 2
                continue
            if text[index] in _WILDCARDS:
                return True
            index += 1
        return False

    def matches(self, path: str) -> bool:
        """Whether this pattern matches the slash path itself (ancestors are the Matcher's job)."""
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        return self.regexp is not None and self.regexp.fullmatch(path) is not None


def _translate(pattern: str) -> tuple[str, str]:
    """(kind, regexp source) exactly as patternmatcher's compile classifies and converts it."""
    source, kind, index, count = "", "exact", 0, 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*" and pattern[index:index + 1] == "*":
            index += 1
            if pattern[index:index + 1] == "/":
                index += 1  # "**/" is treated as "**"
            if index >= len(pattern):
                if kind == "exact":
                    kind = "prefix"
                else:
                    source, kind = source + ".*", "regexp"
            else:
                source, kind = source + "(.*/)?", "regexp"
            if count == 0:
                kind = "suffix"
        elif char == "*":
            source, kind = source + "[^/]*", "regexp"
        elif char == "?":
            source, kind = source + "[^/]", "regexp"
        elif char in _ESCAPED:
            source += "\\" + char
        elif char == "\\":
            if index < len(pattern):
                source, kind = source + "\\" + pattern[index], "regexp"
                index += 1
            else:
                source += "\\\\"
        elif char in "[]":
            source, kind = source + char, "regexp"
        else:
            source += char
        count += 1
    return kind, source


def _check_syntax(pattern: str) -> None:
    """Reject what Go's filepath.Match rejects (moby calls it for exactly this): a trailing
    backslash, an unclosed or empty class, a class range starting or ending with `-` or `]`."""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern):
                raise BadPattern(f"{pattern!r}: a trailing \\ escapes nothing")
            index += 2
        elif char == "[":
            index = _check_class(pattern, index + 1)
        else:
            index += 1


def _check_class(pattern: str, index: int) -> int:
    if pattern[index:index + 1] == "^":
        index += 1
    ranges = 0
    while True:
        if pattern[index:index + 1] == "]" and ranges:
            return index + 1
        index = _class_char(pattern, index)
        if pattern[index:index + 1] == "-":
            index = _class_char(pattern, index + 1)
        ranges += 1


def _class_char(pattern: str, index: int) -> int:
    char = pattern[index:index + 1]
    if char in ("", "-", "]"):
        raise BadPattern(f"{pattern!r}: malformed character class")
    index += 2 if char == "\\" else 1
    if index >= len(pattern):
        raise BadPattern(f"{pattern!r}: unclosed character class")
    return index


class Matcher:
    """The patterns of one .dockerignore, matched the way a build would match them."""

    def __init__(self, lines: list[str]):
        self.patterns: list[Pattern] = []
        for line in lines:
            line = _clean(line.strip()) if line.strip() else ""
            if not line:
                continue
            exclusion = line.startswith("!")
            if exclusion and len(line) == 1:
                raise BadPattern('illegal exclusion pattern: "!"')
            self.patterns.append(Pattern(line[1:] if exclusion else line, exclusion))
        exceptions = [p for p in self.patterns if p.exclusion]
        self.has_exceptions = bool(exceptions)
        self._literal_exceptions = [p.text + "/" for p in exceptions] \
            if not any(p.has_wildcards for p in exceptions) else None

    @classmethod
    def from_text(cls, text: str) -> "Matcher":
        return cls(read_patterns(text))

    def match(self, path: str, parent: tuple[bool, ...] | None = None) -> tuple[bool, tuple[bool, ...]]:
        """(excluded?, which patterns match `path` or one of its directories).

        `parent` is the second value returned for the path's directory; pass it while walking
        down so that each pattern is tried once per path, not once per ancestor."""
        if parent is None:
            parent = self._ancestors(path)
        matched = tuple(was or p.matches(path) for was, p in zip(parent, self.patterns, strict=True))
        excluded = False
        for hit, pattern in zip(matched, self.patterns, strict=True):
            if hit:
                excluded = not pattern.exclusion
        return excluded, matched

    def _ancestors(self, path: str) -> tuple[bool, ...]:
        state = tuple(False for _ in self.patterns)
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            _, state = self.match("/".join(parts[:depth]), state)
        return state

    def excludes(self, path: str) -> bool:
        return self.match(path)[0]

    def must_enter(self, directory: str) -> bool:
        """Whether an excluded directory may still hold a file a `!` line brings back."""
        if not self.has_exceptions:
            return False
        if self._literal_exceptions is None:
            return True
        prefix = directory + "/"
        return any(exception.startswith(prefix) for exception in self._literal_exceptions)
