"""`reconcile validate` on input that breaks the limits, as a user runs it: one line per
problem, exit code 1, never a traceback, and no wait on a file that never ends."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.conftest import CONTRACT


def _refused(run, name: str):
    result = run("validate", "-f", name, timeout=30)
    assert result.code == 1, result
    assert "Traceback" not in result.out + result.err
    return (result.out + result.err).strip()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_and_a_link_to_dev_zero_are_refused_at_once(reconcile, tmp_path):
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    assert _refused(reconcile, "fifo.yaml") == (
        "fifo.yaml: is a named pipe (FIFO), not a regular file; give the path of the canvas.yaml file itself"
    )
    assert _refused(reconcile, "zero.yaml") == (
        "zero.yaml: is a character device (/dev/zero), not a regular file; "
        "give the path of the canvas.yaml file itself"
    )


def test_a_lone_surrogate_escape_is_a_positioned_message(reconcile, tmp_path):
    text = CONTRACT.read_text(encoding="utf-8").replace("NODE_ENV: production", 'NODE_ENV: "\\udc80"')
    (tmp_path / "canvas.yaml").write_text(text, encoding="utf-8")
    assert _refused(reconcile, "canvas.yaml").startswith("canvas.yaml:34:15: this string holds U+DC80")


def test_an_oversized_and_a_deeply_nested_file(reconcile, tmp_path):
    shutil.copy(CONTRACT, tmp_path / "big.yaml")
    with open(tmp_path / "big.yaml", "a", encoding="utf-8") as handle:
        handle.write("#" * (1 << 20) + "\n")
    assert "canvas.yaml may be at most 1 MiB" in _refused(reconcile, "big.yaml")
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 100 + "]" * 100 + "\n")
    assert _refused(reconcile, "deep.yaml").startswith("deep.yaml:1:35: mappings and lists are nested more than 32")


def test_a_tag_value_with_a_trailing_space(reconcile, tmp_path):
    text = CONTRACT.read_text(encoding="utf-8").replace("region: us-west-2\n",
                                                        'region: us-west-2\ntags: {team: "web "}\n')
    (tmp_path / "canvas.yaml").write_text(text, encoding="utf-8")
    assert _refused(reconcile, "canvas.yaml") == (
        "canvas.yaml:4:14: tags.team: must not start or end with a space: AWS trims it, "
        "so the tag would show as drift after every apply"
    )
