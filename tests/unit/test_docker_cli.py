"""The docker CLI wrapper: the commands it composes, output streamed as it comes, the last
lines kept for a failure, the password masked, and a missing docker explained."""
from __future__ import annotations

import sys

import pytest

from reconciler.image_build import docker
from reconciler.image_build.context import BuildSpec

BUILD = BuildSpec(context="/src", dockerfile="/src/Dockerfile.lambda", platform="linux/arm64",
                  args={"PY": "3.12", "APP_DIR": "dist"})
TAGS = ["r.example/app:canvas-0123456789abcdef", "r.example/app:v1.2"]


def python(code: str) -> list[str]:
    return [sys.executable, "-u", "-c", code]


def test_buildx_builds_a_plain_image_and_loads_it():
    assert docker.build_command("docker", BUILD, TAGS, buildx=True) == [
        "docker", "buildx", "build", "--platform", "linux/arm64", "--provenance=false", "--load",
        "-f", "/src/Dockerfile.lambda", "-t", TAGS[0], "-t", TAGS[1],
        "--build-arg", "APP_DIR=dist", "--build-arg", "PY=3.12", "/src"]


def test_the_classic_builder_gets_no_buildx_flags():
    argv = docker.build_command("docker", BUILD, TAGS, buildx=False)
    assert argv[:4] == ["docker", "build", "--platform", "linux/arm64"]
    assert "--provenance=false" not in argv and "--load" not in argv


def test_output_streams_while_the_command_still_runs(tmp_path):
    marker = tmp_path / "seen-first-line"
    # The child waits for the caller to have seen its first line: with buffered output it never
    # would, and it gives up after 10 s.
    child = python(f"""
import os, sys, time
print("first line")
deadline = time.time() + 10
while not os.path.exists({str(marker)!r}):
    if time.time() > deadline:
        print("never streamed"); sys.exit(3)
    time.sleep(0.01)
print("second line")
""")
    lines = []

    def notify(line: str) -> None:
        lines.append(line)
        if line == "first line":
            marker.touch()

    docker.run(child, notify=notify, what="streaming child")
    assert lines == ["first line", "second line"]


def test_a_failure_carries_the_last_twenty_lines_of_stdout_and_stderr():
    child = python("import sys\nfor i in range(1, 31): print(f'line {i}')\nprint('boom', file=sys.stderr)\nsys.exit(2)")
    seen = []
    with pytest.raises(docker.DockerFailed) as failure:
        docker.run(child, notify=seen.append, what="docker build")
    message = str(failure.value)
    assert message.startswith("docker build failed (exit 2); the last 20 line(s) of its output:\n")
    assert message.splitlines()[1:] == [f"line {i}" for i in range(12, 31)] + ["boom"]
    assert len(seen) == 31


def test_login_sends_the_password_on_stdin_and_masks_any_echo_of_it():
    echoing_docker = python("import sys\npassword = sys.stdin.read()\nprint('got ' + password)\nsys.exit(1)")
    seen = []
    with pytest.raises(docker.DockerFailed) as failure:
        docker.run(echoing_docker, notify=seen.append, what="docker login", stdin="s3cr3t-token", secret="s3cr3t-token")
    assert seen == ["got ****"]
    assert "s3cr3t-token" not in str(failure.value)


def test_no_docker_on_path_names_both_ways_forward(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(docker.DockerUnavailable) as missing:
        docker.find_docker()
    message = str(missing.value)
    assert "no `docker` command on PATH" in message
    assert "install and start Docker" in message and "remove image.build from canvas.yaml" in message


def test_the_shown_command_hides_build_arguments_named_like_secrets():
    argv = ["/usr/local/bin/docker", "build", "--build-arg", "NPM_TOKEN=abc123", "--build-arg", "PY=3.12", "."]
    assert docker.shown(argv) == "docker build --build-arg 'NPM_TOKEN=(sensitive)' --build-arg PY=3.12 ."
