"""YAML with positions: where every key and value was written, and what PyYAML lets slip.

PyYAML's SafeLoader builds plain dicts and lists and forgets where things came from;
it also keeps the last of two duplicate keys without a word. Here the node tree is
walked once before construction to record, per dotted path, the 1-based line and
column of each key and value, and to report duplicate and non-string keys. Anchors,
aliases and merge keys (`<<`) keep working: the walk follows PyYAML's precedence
(explicit keys beat merged ones; in `<<: [*a, *b]` the first source wins).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Key = str | int
PathT = tuple[Key, ...]

MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"
STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
_TAG_WORDS = {
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    NULL_TAG: "null",
    "tag:yaml.org,2002:timestamp": "a date",
}
# Plain words for PyYAML's parser-speak, for the most common mistakes.
_PLAIN_PROBLEMS = {
    "expected <block end>, but found '<block mapping start>'":
        "this line is indented differently from the keys around it; align it with its siblings",
    "expected <block end>, but found '<block sequence start>'":
        "this list is indented differently from the keys around it",
    "found character '\\t' that cannot start any token":
        "a tab is used for indentation here; YAML indents with spaces only",
}
# Hints for PyYAML's terser complaints, matched on the start of its problem text.
_SYNTAX_HINTS = {
    "mapping values are not allowed here": (
        "quote a value that contains \": \", or check the indentation"
    ),
    "expected <block end>": "check the indentation",
    "could not find expected ':'": "a key is missing its \":\", or a quote is not closed",
    "found unhashable key": "a key must be a plain string, not a list or mapping",
    "expected ',' or ']'": 'is a closing "]" missing?',
    "expected ',' or '}'": 'is a closing "}" missing?',
}
_UNHASHABLE = object()
MAX_VALUES = 100_000
_RECURSIVE = ("this alias refers to a mapping or list that contains it; "
              "canvas.yaml cannot hold a recursive structure")


class Position(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based


class YamlIssue(NamedTuple):
    """A problem found while loading that does not stop the rest of validation."""

    path: PathT
    position: Position
    message: str


class YamlLoadError(Exception):
    """The text cannot be turned into a document at all."""

    def __init__(self, message: str, position: Position | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass
class MarkedDocument:
    data: Any
    root: Position | None
    values: dict[PathT, Position] = field(default_factory=dict)
    keys: dict[PathT, Position] = field(default_factory=dict)
    sources: dict[PathT, str] = field(default_factory=dict)  # scalars as written
    issues: list[YamlIssue] = field(default_factory=list)

    def value_position(self, path: PathT) -> Position | None:
        """Where the value at `path` was written, else where its nearest parent was."""
        return self._nearest(self.values, path)

    def key_position(self, path: PathT) -> Position | None:
        """Where the key of `path` was written; the value's position if it has no key."""
        return self.keys.get(path) or self._nearest(self.values, path)

    def _nearest(self, table: dict[PathT, Position], path: PathT) -> Position | None:
        for end in range(len(path), -1, -1):
            if path[:end] in table:
                return table[path[:end]]
        return self.root


def _position(mark: yaml.Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also remembers where each alias (`*name`) was used."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # An alias composes to the anchored node itself, losing the alias's own mark.
        self.alias_marks: dict[tuple[int, int], yaml.Mark] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if parent is not None and index is not None and self.check_event(yaml.AliasEvent):
            slot = id(index) if isinstance(parent, MappingNode) else index
            self.alias_marks[(id(parent), slot)] = self.peek_event().start_mark
        return super().compose_node(parent, index)

    def flatten_mapping(self, node: MappingNode) -> None:
        """Resolve `<<` as the merge-key spec says: explicit keys win, then earlier sources.

        PyYAML 6.0.4 de-duplicates merged keys by the id() of their text, so which
        source wins depends on string interning; this keeps it deterministic and in
        step with _Walker.effective. Later pairs win when the mapping is constructed.
        """
        merged: list[tuple[Node, Node]] = []
        explicit: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                if key_node.tag == VALUE_TAG:
                    key_node.tag = STR_TAG
                explicit.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in reversed(sources):
                if not isinstance(source, MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"expected a mapping or list of mappings for merging, but found {source.id}",
                        source.start_mark,
                    )
                self.flatten_mapping(source)
                merged.extend(source.value)
        node.value = merged + explicit


class _Walker:
    """One pass over the node tree; each node is entered once, so aliases stay cheap."""

    def __init__(self, loader: _Loader, doc: MarkedDocument) -> None:
        self.loader = loader
        self.doc = doc
        self.entered: set[int] = set()
        self.ancestors: set[int] = set()

    def walk(self, node: Node, path: PathT, where: Position) -> None:
        self.doc.values[path] = where
        if isinstance(node, ScalarNode):
            self.doc.sources[path] = node.value
            return
        if id(node) in self.ancestors:
            raise YamlLoadError(_RECURSIVE, where)
        if id(node) in self.entered:
            return
        self.entered.add(id(node))
        self.ancestors.add(id(node))
        self._walk_children(node, path)
        self.ancestors.discard(id(node))

    def _walk_children(self, node: Node, path: PathT) -> None:
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                alias = self.loader.alias_marks.get((id(node), index))
                self.walk(item, path + (index,), _where(item, None, alias))
        elif isinstance(node, MappingNode):
            self._report_keys(node, path)
            for key, (key_node, value_node, owner) in self.effective(node, frozenset()).items():
                child = path + (_name(key, key_node),)
                key_mark = _position(key_node.start_mark)
                self.doc.keys[child] = key_mark
                alias = self.loader.alias_marks.get((id(owner), id(key_node)))
                self.walk(value_node, child, _where(value_node, key_mark, alias))

    def effective(self, node: MappingNode, stack: frozenset[int]) -> dict[Any, tuple]:
        """key -> (key node, value node, mapping that holds the pair), merges resolved."""
        explicit: dict[Any, tuple] = {}
        merged: dict[Any, tuple] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merged.update(self._merge_sources(value_node, stack | {id(node)}))
                continue
            key = self.key_of(key_node)
            if key is not _UNHASHABLE:
                explicit[key] = (key_node, value_node, node)
        return {**merged, **explicit}

    def _merge_sources(self, value: Node, stack: frozenset[int]) -> dict[Any, tuple]:
        sources = value.value if isinstance(value, SequenceNode) else [value]
        pairs: dict[Any, tuple] = {}
        for source in sources:
            if isinstance(source, MappingNode) and id(source) not in stack:
                for key, pair in self.effective(source, stack).items():
                    pairs.setdefault(key, pair)
        return pairs

    def key_of(self, key_node: Node) -> Any:
        if not isinstance(key_node, ScalarNode):
            return _UNHASHABLE
        if key_node.tag == VALUE_TAG:
            return key_node.value
        try:
            key = self.loader.construct_object(key_node, deep=True)
            hash(key)
        except (yaml.YAMLError, TypeError):
            return _UNHASHABLE  # construction reports it properly later
        return key

    def _report_keys(self, node: MappingNode, path: PathT) -> None:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.key_of(key_node)
            if key is _UNHASHABLE:
                continue
            where = _position(key_node.start_mark)
            child = path + (_name(key, key_node),)
            if key in first_line:
                message = f"duplicate key (first defined at line {first_line[key]})"
                self.doc.issues.append(YamlIssue(child, where, message))
            else:
                first_line[key] = where.line
            if not isinstance(key, str):
                self.doc.issues.append(YamlIssue(child, where, _non_string_key(key_node)))


def _name(key: Any, key_node: Node) -> Key:
    return key if isinstance(key, str) else key_node.value


def _expanded_size(node: Node, sizes: dict[int, int | None]) -> int:
    """How many values the document holds once every alias and merge is expanded."""
    if id(node) in sizes:
        size = sizes[id(node)]
        if size is None:  # still being counted: reached again through a merge key
            raise YamlLoadError(_RECURSIVE, _position(node.start_mark))
        return size
    sizes[id(node)] = None
    if isinstance(node, MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = node.value if isinstance(node, SequenceNode) else []
    sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def _non_string_key(key_node: ScalarNode) -> str:
    kind = _TAG_WORDS.get(key_node.tag, f"a {key_node.tag}")
    return f'YAML reads this key as {kind}, not a string; quote it: "{key_node.value}"'


def _where(node: Node, key_mark: Position | None, alias: yaml.Mark | None) -> Position:
    """The position to blame for a value: the alias if it is one; the key for an empty
    value or a block collection (whose own mark is its first child's line)."""
    if alias is not None:
        return _position(alias)
    if key_mark is not None and (_is_empty(node) or _is_block(node)):
        return key_mark
    return _position(node.start_mark)


def _is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG and node.value == "" and not node.style


def _is_block(node: Node) -> bool:
    return isinstance(node, (MappingNode, SequenceNode)) and not node.flow_style


def _drop_non_string_keys(data: Any, seen: set[int]) -> None:
    """Keys already reported as non-strings are removed so nothing else trips on them."""
    if id(data) in seen or not isinstance(data, (dict, list)):
        return
    seen.add(id(data))
    if isinstance(data, dict):
        for key in [key for key in data if not isinstance(key, str)]:
            del data[key]
    for child in data.values() if isinstance(data, dict) else data:
        _drop_non_string_keys(child, seen)


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or error.context or "invalid YAML"
    if problem == "but found another document":
        return 'only one YAML document is allowed, but a second one starts here (remove the "---")'
    if problem in _PLAIN_PROBLEMS:
        return f"invalid YAML: {_PLAIN_PROBLEMS[problem]}"
    message = f"invalid YAML: {problem}"
    if error.context and error.problem and error.context_mark is not None:
        message += f" ({error.context} that starts at line {error.context_mark.line + 1})"
    elif error.context and error.problem:
        message += f" ({error.context})"
    hint = next((hint for start, hint in _SYNTAX_HINTS.items() if problem.startswith(start)), None)
    return f"{message}; {hint}" if hint else message


def _reader_error(error: yaml.reader.ReaderError, text: str) -> YamlLoadError:
    before = text[: error.position]
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    code = error.character if isinstance(error.character, int) else ord(error.character)
    message = f"the control character U+{code:04X} is not allowed in YAML; remove it"
    return YamlLoadError(message, Position(line, column))


def load_marked(text: str) -> MarkedDocument:
    """Parse one YAML document; raise YamlLoadError if there is no usable document."""
    try:
        loader = _Loader(text)  # checks for unprintable characters up front
    except yaml.reader.ReaderError as error:
        raise _reader_error(error, text) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return MarkedDocument(data=None, root=None)
        doc = MarkedDocument(data=None, root=_position(node.start_mark))
        _Walker(loader, doc).walk(node, (), doc.root)
        if _expanded_size(node, {}) > MAX_VALUES:
            # The "billion laughs": a few lines of aliases that expand exponentially.
            raise YamlLoadError(
                f"aliases expand this document to more than {MAX_VALUES} values, "
                "far more than any canvas.yaml needs", doc.root,
            )
        doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise YamlLoadError(_syntax_message(error), mark and _position(mark)) from None
    except yaml.reader.ReaderError as error:
        raise _reader_error(error, text) from None
    except RecursionError:
        raise YamlLoadError("the document is nested too deeply", None) from None
    finally:
        loader.dispose()
    _drop_non_string_keys(doc.data, set())
    return doc
