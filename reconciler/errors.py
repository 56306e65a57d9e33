"""Errors a person can act on. Anything raised as a ReconcileError is printed without a traceback."""
from __future__ import annotations


class ReconcileError(Exception):
    """A known failure: the message says what failed, where, and what to do."""


class PlanError(ReconcileError):
    """Live state could not be read or may not be touched; every problem is listed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))
