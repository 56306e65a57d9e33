"""What a kind that has no use for one of the interface's optional members says instead.

Every kind module names every member of kinds.Kind, so nothing probes a kind with hasattr:
one without its own resolve or note binds these, one that cannot update or delete sets None.
"""
from __future__ import annotations

from typing import Mapping


def keep_desired(want: dict, lives: Mapping[str, dict | None]) -> dict:
    """resolve for a kind whose desired document needs nothing that only live AWS knows."""
    return want


def no_note(want: dict, have: dict | None) -> str | None:
    """note for a kind with nothing to say under its resource in a plan."""
    return None
