"""YAML with positions: where every key and value was written, and what PyYAML lets slip.

PyYAML's SafeLoader builds plain dicts and lists and forgets where things came from;
it also keeps the last of two duplicate keys without a word. Here the node tree is
walked once before construction to record, per dotted path, the 1-based line and
column of each key and value, and to report duplicate and non-string keys. Anchors,
aliases and merge keys (`<<`) keep working: the walk follows PyYAML's precedence
(explicit keys beat merged ones; in `<<: [*a, *b]` the first source wins).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from reconciler.limits import MAX_DEPTH, MAX_EXPANDED, MAX_NODES, MAX_NUMBER_CHARACTERS, shorten

Key = str | int
PathT = tuple[Key, ...]

MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"
STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
INT_TAG = "tag:yaml.org,2002:int"
_TAG_WORDS = {
    "tag:yaml.org,2002:bool": "a boolean",
    INT_TAG: "an integer",
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
    # libyaml's own limit (1000 levels), met before MAX_DEPTH when its scanner reads ahead.
    "exceeded maximum nesting depth": "mappings and lists are nested far too deeply here",
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
# Past this size the pure-Python parser alone could take over a second (about a microsecond
# per character); libyaml's parser, where installed, feeds the same composer instead.
FAST_PARSER_FROM = 64 * 1024
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE  # what YAML allows in a file, escapes aside
_RECURSIVE = ("this alias refers to a mapping or list that contains it; "
              "canvas.yaml cannot hold a recursive structure")
_TOO_MANY = (f"the document holds more than {MAX_NODES} keys, values and list items, "
             "far more than any canvas.yaml needs")
_TOO_DEEP = (f"mappings and lists are nested more than {MAX_DEPTH} levels deep here, "
             "far deeper than any canvas.yaml needs (4)")
_TOO_BIG = (f"aliases expand this document to more than {MAX_EXPANDED} values, "
            "far more than any canvas.yaml needs")


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


class _Marking:
    """What both loaders add to PyYAML's composer: where each alias (`*name`) was used, and
    limits on how many values and how deep, checked as the parser goes so that a huge input
    stops early."""

    alias_marks: dict[tuple[int, int], yaml.Mark]
    nodes: int
    depth: int

    if TYPE_CHECKING:  # what the PyYAML classes it is mixed into provide
        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Any: ...
        def get_single_node(self) -> Node | None: ...
        def construct_document(self, node: Node) -> Any: ...
        def construct_object(self, node: Node, deep: bool = False) -> Any: ...
        def dispose(self) -> None: ...

    def start_marking(self) -> None:
        # An alias composes to the anchored node itself, losing the alias's own mark.
        self.alias_marks, self.nodes, self.depth = {}, 0, 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if parent is not None and index is not None and self.check_event(yaml.AliasEvent):
            slot = id(index) if isinstance(parent, MappingNode) else index
            self.alias_marks[(id(parent), slot)] = self.peek_event().start_mark
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlLoadError(_TOO_MANY, _position(self.peek_event().start_mark))
        nests = self.check_event(yaml.CollectionStartEvent)
        self.depth += nests
        if self.depth > MAX_DEPTH:
            raise YamlLoadError(_TOO_DEEP, _position(self.peek_event().start_mark))
        try:
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self.depth -= nests

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


class _Loader(_Marking, yaml.SafeLoader):
    """SafeLoader, all in Python: its messages and marks are the ones the tests pin down."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.start_marking()


if yaml.__with_libyaml__:
    # yaml.cyaml exists only when PyYAML was built with libyaml; its stubs do not export CParser.
    class _FastLoader(_Marking, Composer, yaml.cyaml.CParser,  # type: ignore[misc,name-defined]
                      SafeConstructor, Resolver):
        """libyaml's parser under PyYAML's Python composer, so aliases, merges and limits
        behave as in _Loader; only a syntax error's wording is libyaml's."""

        def __init__(self, stream: str) -> None:
            yaml.reader.Reader(stream)  # the same up-front check for unprintable characters
            yaml.cyaml.CParser.__init__(self, stream)  # type: ignore[attr-defined]
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.start_marking()


def _loader(text: str) -> _Marking:
    if len(text) > FAST_PARSER_FROM and yaml.__with_libyaml__:
        return _FastLoader(text)
    return _Loader(text)


class _Walker:
    """One pass over the node tree; each node is entered once, so aliases stay cheap."""

    def __init__(self, loader: _Marking, doc: MarkedDocument) -> None:
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


class _Expansion:
    """The document as constructing it will expand it, every alias and merge key followed:
    how many values and how deep, and no unprintable character that an escape such as
    "\\udc80" or "\\x01" wrote. Each node is measured once, so this stays linear in the text
    even for an alias bomb, and the Python recursion stays within MAX_DEPTH."""

    def __init__(self, alias_marks: dict[tuple[int, int], yaml.Mark]) -> None:
        self.alias_marks = alias_marks
        self.measured: dict[int, tuple[int, int] | None] = {}  # id -> (values, levels); None: in progress

    def measure(self, node: Node, *, depth: int, where: Position) -> tuple[int, int]:
        """(values, levels of nesting) of `node`, which sits inside `depth` collections."""
        if isinstance(node, ScalarNode):
            _refuse_unusable(node)
            return 1, 0
        if id(node) in self.measured:
            known = self.measured[id(node)]
            if known is None:  # reached again from inside itself
                raise YamlLoadError(_RECURSIVE, where)
        else:
            if depth >= MAX_DEPTH:
                raise YamlLoadError(_TOO_DEEP, where)
            self.measured[id(node)] = None
            known = self.measured[id(node)] = self._measure_children(node, depth=depth)
        if depth + known[1] > MAX_DEPTH:
            raise YamlLoadError(_TOO_DEEP, where)  # an alias took an anchored node deeper
        return known

    def _measure_children(self, node: Node, *, depth: int) -> tuple[int, int]:
        values, levels = 1, 0
        for child, where in self._children(node):
            size, below = self.measure(child, depth=depth + 1, where=where)
            values, levels = values + size, max(levels, below)
            if values > MAX_EXPANDED:
                # The "billion laughs": a few lines of aliases that expand exponentially.
                raise YamlLoadError(_TOO_BIG, None)
        return values, levels + 1

    def _children(self, node: Node) -> Iterator[tuple[Node, Position]]:
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                yield item, _where(item, None, self.alias_marks.get((id(node), index)))
        elif isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                key_mark = _position(key_node.start_mark)
                yield key_node, key_mark
                yield value_node, _where(value_node, key_mark, self.alias_marks.get((id(node), id(key_node))))


def _refuse_unusable(node: ScalarNode) -> None:
    # The reader refuses these characters in the file itself; a double-quoted escape can
    # still write them, and a lone surrogate cannot even be printed or encoded.
    if found := _NON_PRINTABLE.search(node.value):
        raise YamlLoadError(_unprintable_message(ord(found.group())), _position(node.start_mark))
    if node.tag == INT_TAG and len(node.value) > MAX_NUMBER_CHARACTERS:
        # Python will not even convert a decimal integer of over 4300 digits.
        raise YamlLoadError(
            f"this number is {len(node.value)} characters long; no canvas.yaml value needs one over "
            f"{MAX_NUMBER_CHARACTERS} (quote it if it is text)", _position(node.start_mark),
        )


def _unprintable_message(code: int) -> str:
    if 0xD800 <= code <= 0xDFFF:
        return (f"this string holds U+{code:04X}, half of a UTF-16 surrogate pair and not a character, "
                "which is not allowed in YAML; write the character itself (or \\U0001F600 for one "
                "beyond U+FFFF)")
    return f"this string holds the control character U+{code:04X}, which is not allowed in YAML; remove it"


def _non_string_key(key_node: ScalarNode) -> str:
    kind = _TAG_WORDS.get(key_node.tag, f"a {key_node.tag}")
    return f'YAML reads this key as {kind}, not a string; quote it: "{shorten(key_node.value)}"'


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
    # PyYAML quotes what it found (an alias's or a tag's name), however long that is.
    problem = shorten(error.problem or error.context or "invalid YAML")
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
        loader = _loader(text)  # checks for unprintable characters up front
    except yaml.reader.ReaderError as error:
        raise _reader_error(error, text) from None
    root: Position | None = None
    try:
        node = loader.get_single_node()
        if node is None:
            return MarkedDocument(data=None, root=None)
        root = _position(node.start_mark)
        doc = MarkedDocument(data=None, root=root)
        # Measured before the walk, whose recursion follows aliases and merge keys too.
        _Expansion(loader.alias_marks).measure(node, depth=0, where=root)
        _Walker(loader, doc).walk(node, (), root)
        doc.data = loader.construct_document(node)
    except YamlLoadError as error:
        raise YamlLoadError(error.message, error.position or root) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise YamlLoadError(_syntax_message(error), _position(mark) if mark else None) from None
    except yaml.reader.ReaderError as error:
        raise _reader_error(error, text) from None
    except RecursionError:  # a backstop: _Marking and _Expansion bound the depth before this
        raise YamlLoadError("the document is nested too deeply", None) from None
    finally:
        loader.dispose()
    _drop_non_string_keys(doc.data, set())
    return doc
