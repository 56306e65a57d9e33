"""apply's confirmation prompt, driven through click's runner with a terminal stand-in."""
from __future__ import annotations

import boto3
import pytest
from click.testing import CliRunner

from reconciler import cli
from tests.e2e.conftest import REPO, STACK, TAG
from tests.ecr_images import register_image


@pytest.fixture
def terminal(monkeypatch, prebuilt_canvas):
    """A CliRunner in a directory holding the contract canvas.yaml, with stdin taken as a TTY."""
    monkeypatch.chdir(prebuilt_canvas.parent)
    monkeypatch.setattr(cli, "stdin_is_tty", lambda: True)
    return CliRunner()


@pytest.mark.parametrize("answer", ["no", "y", "YES please", ""])
def test_anything_but_yes_cancels_and_changes_nothing(terminal, moto_endpoint, answer):
    result = terminal.invoke(cli.main, ["apply"], input=answer + "\n")
    assert result.exit_code == 1
    assert "apply cancelled; nothing was changed" in result.output
    assert boto3.client("s3").list_buckets()["Buckets"] == []


@pytest.fixture
def image_pushed(aws):
    """The repository and its image exist already, so a whole apply can succeed."""
    aws.ecr.create_repository(repositoryName=REPO, imageScanningConfiguration={"scanOnPush": True},
                              tags=[{"Key": "canvas:stack", "Value": STACK}])
    return register_image(aws.ecr, REPO, TAG, b"an image")


def test_yes_applies(terminal, image_pushed):
    result = terminal.invoke(cli.main, ["apply"], input="yes\n")
    assert result.exit_code == 0, result.output
    assert "Apply these changes?" in result.output
    assert "[6/6] create lambda_permission.FunctionURLInvokeAllowPublicAccess … SUCCESS" in result.output
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == ["code-canvas-astro-db"]


def test_converged_stack_is_not_prompted(terminal, image_pushed):
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


def test_ctrl_c_at_the_prompt_says_how_to_go_on_and_exits_130(terminal, moto_endpoint, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.click, "prompt", interrupted)
    result = terminal.invoke(cli.main, ["apply"])
    assert result.exit_code == 130
    assert "Interrupted." in result.output and "run the command again" in result.output
    assert boto3.client("s3").list_buckets()["Buckets"] == []
