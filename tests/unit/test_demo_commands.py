"""The commands `reconcile demo` prints: quoted so a POSIX shell runs exactly what the demo ran."""
from __future__ import annotations

import ast
import shlex
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main
from reconciler.demo import curl_command, default_ready_path, demo_environment, hand_change_code, shell_setup


def test_the_curl_line_carries_the_method_the_content_type_and_the_body_exactly():
    body = b'{"title": "it\'s a \\"quoted\\" $HOME task"}'
    line = curl_command("POST", "http://127.0.0.1:9/api/tasks", {"Content-Type": "application/json"}, body)
    assert shlex.split(line) == ["curl", "-X", "POST", "http://127.0.0.1:9/api/tasks",
                                 "-H", "Content-Type: application/json", "-d", body.decode()]
    assert shlex.split(curl_command("GET", "http://127.0.0.1:9/", {}, None)) == ["curl", "-X", "GET", "http://127.0.0.1:9/"]


def test_the_hand_change_is_valid_python_that_shell_quoting_keeps_intact():
    code = hand_change_code("code-canvas-astro-lambda", 1024)
    ast.parse(code)
    assert shlex.split(shlex.join(["python", "-c", code])) == ["python", "-c", code]
    assert 'FunctionName="code-canvas-astro-lambda", MemorySize=1024' in code


def test_the_setup_lines_set_what_the_demo_uses_and_unset_what_it_hid():
    env = demo_environment(endpoint="http://127.0.0.1:4566", region="eu-west-1")
    lines = shell_setup(env, hidden=["AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID"], workdir=Path("/tmp/a b"))
    assert lines[0] == ("export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_ACCESS_KEY_ID=testing "
                        "AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing AWS_DEFAULT_REGION=eu-west-1")
    assert lines[1] == ("export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "
                        "AWS_EC2_METADATA_DISABLED=true")
    # A hidden variable the demo sets again is exported, not unset; AWS_PROFILE is always unset.
    assert lines[2] == "unset AWS_ENDPOINT_URL_S3 AWS_PROFILE"
    assert lines[3] == "cd '/tmp/a b'"


def test_the_ready_path_follows_the_app_and_must_be_a_path(tmp_path):
    assert default_ready_path(None) == "/healthz"
    assert default_ready_path(tmp_path / "app.py") == "/"
    result = CliRunner().invoke(main, ["demo", "--ready-path", "healthz"])
    assert result.exit_code == 2
    assert "'healthz' is not a path; give one that starts with /" in result.output
