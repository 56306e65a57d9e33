"""apply's confirmation prompt, driven through click's runner with a terminal stand-in."""
from __future__ import annotations

import shutil

import boto3
import pytest
from click.testing import CliRunner

from reconciler import cli
from tests.e2e.conftest import CONTRACT


@pytest.fixture
def terminal(monkeypatch, tmp_path):
    """A CliRunner in a directory holding the contract canvas.yaml, with stdin taken as a TTY."""
    shutil.copy(CONTRACT, tmp_path / "canvas.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "stdin_is_tty", lambda: True)
    return CliRunner()


@pytest.mark.parametrize("answer", ["no", "y", "YES please", ""])
def test_anything_but_yes_cancels_and_changes_nothing(terminal, moto_endpoint, answer):
    result = terminal.invoke(cli.main, ["apply"], input=answer + "\n")
    assert result.exit_code == 1
    assert "apply cancelled; nothing was changed" in result.output
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_yes_applies(terminal, moto_endpoint):
    result = terminal.invoke(cli.main, ["apply"], input="yes\n")
    assert result.exit_code == 0, result.output
    assert "Apply these changes?" in result.output
    assert "[3/3] create iam_role.code-canvas-astro-lambda-role … SUCCESS" in result.output
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == ["code-canvas-astro-db"]


def test_converged_stack_is_not_prompted(terminal, moto_endpoint):
    assert terminal.invoke(cli.main, ["apply", "--auto-approve"]).exit_code == 0
    result = terminal.invoke(cli.main, ["apply"], input="")
    assert result.exit_code == 0
    assert "Apply these changes?" not in result.output
    assert "No changes. Live state matches canvas.yaml." in result.output


def test_plain_output_has_no_colour_codes(terminal, moto_endpoint):
    result = terminal.invoke(cli.main, ["plan"], color=False)
    assert "will be created" in result.output
    assert "\x1b[" not in result.output
    coloured = terminal.invoke(cli.main, ["plan"], color=True)
    assert "\x1b[" in coloured.output  # the same plan on a terminal is coloured
