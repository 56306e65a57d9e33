"""The corpus of broken specs: each broken_specs/NAME.yaml must fail with exactly the text in
NAME.expected, file path as passed (`broken_specs/NAME.yaml`), one problem per line."""
from __future__ import annotations

import pathlib

import pytest

from reconciler.spec import SpecError, load_spec

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "broken_specs"
CASES = sorted(path.stem for path in CORPUS.glob("*.yaml"))


def test_corpus_is_complete():
    expected = sorted(path.stem for path in CORPUS.glob("*.expected"))
    assert expected == CASES, "every NAME.yaml needs a NAME.expected and vice versa"
    assert len(CASES) >= 15


@pytest.mark.parametrize("name", CASES)
def test_broken_spec_reports_exactly(name, monkeypatch):
    monkeypatch.chdir(HERE)
    with pytest.raises(SpecError) as caught:
        load_spec(f"broken_specs/{name}.yaml")
    expected = (CORPUS / f"{name}.expected").read_text(encoding="utf-8").rstrip("\n")
    assert str(caught.value) == expected
