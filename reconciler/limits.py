"""How much canvas.yaml input validate accepts, and how much of a value a message repeats.

A canvas.yaml is a few kilobytes with a few dozen values nested four levels deep. The
limits sit far above that and far below what would make `validate` slow: the pure-Python
YAML parser spends about a microsecond per character and 30 per value, so these bounds
keep every input under a second (bench/validate_limits.py measures the worst cases).
"""
from __future__ import annotations

import json

MAX_BYTES = 1 << 20  # 1 MiB
MAX_DEPTH = 32  # mappings and lists inside one another, the document itself included
MAX_NODES = 10_000  # keys, values and list items as written, before aliases expand
MAX_EXPANDED = 100_000  # values once every alias and merge key is expanded
MAX_NUMBER_CHARACTERS = 100  # Python refuses to convert an integer of over 4300 digits at all
SHOWN_CHARACTERS = 80  # a longer value is shortened in messages
SHOWN_START = 60  # to its first this many characters


def shorten(text: str) -> str:
    """`text` as a message shows it: whole when short, else its start and its length."""
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[:SHOWN_START]}… ({len(text)} characters)"


def quoted(text: str, *, as_json: bool = False) -> str:
    """`text` in double quotes (escaped as JSON if asked), shortened as `shorten` does but
    with the length outside the quotes, so what is quoted is still the value's own start."""
    short = text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_START] + "…"
    inside = json.dumps(short, ensure_ascii=False) if as_json else f'"{short}"'
    return inside if short is text else f"{inside} ({len(text)} characters)"
