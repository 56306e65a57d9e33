"""README's canvas.yaml reference is generated from the schema and must not drift from it."""
from pathlib import Path

from reconciler import reference
from reconciler.spec import schema

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_what_the_schema_generates():
    text = README.read_text()
    assert reference.START in text and reference.END in text
    assert reference.splice(text) == text, "run: python -m reconciler.reference --write README.md"


def test_every_schema_key_has_a_row_with_a_description():
    rows = {path: description for path, _, _, description in reference.rows(schema())}
    assert {"version", "bucket.database_key", "function.memory", "url.cors.max_age"} <= set(rows)
    assert all(rows.values()), [path for path, text in rows.items() if not text]


def test_splice_replaces_only_the_marked_block():
    text = f"before\n{reference.START}\nstale\n{reference.END}\nafter\n"
    spliced = reference.splice(text)
    assert spliced.startswith("before\n") and spliced.endswith("\nafter\n")
    assert "stale" not in spliced and "| `function.memory` |" in spliced
