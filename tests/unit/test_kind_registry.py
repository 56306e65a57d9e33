"""What must follow the list of kinds (reconciler/kinds/README.md): every kind module is
registered, and the plan schema names exactly the registered kinds, in apply's order."""
from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from reconciler.kinds import BY_TYPE, KINDS

ROOT = Path(__file__).resolve().parents[2]
NOT_KINDS = {"__init__", "defaults"}  # the package and the shared default behaviour


def plan_schema_types(text: str) -> list[str]:
    return json.loads(text)["$defs"]["change"]["properties"]["type"]["enum"]


def test_every_kind_module_is_registered():
    modules = {path.stem for path in (ROOT / "reconciler" / "kinds").glob("*.py")} - NOT_KINDS
    assert modules == set(BY_TYPE) and len(BY_TYPE) == len(KINDS)


def test_the_plan_schema_names_the_registered_kinds_in_order():
    shipped = (files("reconciler") / "schemas" / "plan.schema.json").read_text(encoding="utf-8")
    published = (ROOT / "schemas" / "plan.schema.json").read_text(encoding="utf-8")
    assert plan_schema_types(shipped) == plan_schema_types(published) == [kind.TYPE for kind in KINDS]
