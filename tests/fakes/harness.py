"""The tests' side of the fake docker (tests/fakes/docker): put it first on PATH, say how it
should behave, and read back what it was asked to do."""
from __future__ import annotations

import base64
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

SCRIPT = Path(__file__).with_name("docker")


@dataclass
class FakeDocker:
    home: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def calls(self) -> list[dict]:
        """Every invocation so far, in order: {"argv": [...], "stdin": text or None}."""
        log = self.home / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    @property
    def commands(self) -> list[str]:
        """Each call named by its subcommand: "info", "buildx version", "login", "build", "push" …"""
        names = []
        for call in self.calls:
            argv = call["argv"]
            names.append(" ".join(argv[:2]) if argv[:1] == ["buildx"] else argv[0])
        return names

    @property
    def builds(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls if c["argv"][:1] == ["build"] or c["argv"][:2] == ["buildx", "build"]]

    @property
    def pushes(self) -> list[str]:
        return [c["argv"][1] for c in self.calls if c["argv"][:1] == ["push"]]

    def behave(self, *, daemon: str | None = None, buildx: str | None = None, fail: str | None = None,
               image_content: str | None = None) -> None:
        """daemon="down", buildx="absent", fail="build"|"push"; image_content fixes what every
        build produces (as a fully cached rebuild would), whatever its content tag."""
        for name, value in (("FAKE_DOCKER_DAEMON", daemon), ("FAKE_DOCKER_BUILDX", buildx),
                            ("FAKE_DOCKER_FAIL", fail), ("FAKE_DOCKER_IMAGE_CONTENT", image_content)):
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)

    def forget_calls(self) -> None:
        (self.home / "calls.jsonl").unlink(missing_ok=True)


def ecr_credentials(endpoint: str) -> str:
    """The "user:password" ECR's GetAuthorizationToken gives out, as `docker login` must receive it."""
    token = boto3.client("ecr", region_name="us-west-2", endpoint_url=endpoint).get_authorization_token()
    return base64.b64decode(token["authorizationData"][0]["authorizationToken"]).decode()


def install(home: Path, monkeypatch: pytest.MonkeyPatch, *, endpoint: str) -> FakeDocker:
    """A `docker` shim first on PATH that runs the fake with this interpreter (which has boto3),
    whatever `python3` on PATH may be."""
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True)
    shim = bin_dir / "docker"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SCRIPT}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_DOCKER_HOME", str(home))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("FAKE_DOCKER_ECR_CREDENTIALS", ecr_credentials(endpoint))
    fake = FakeDocker(home=home, monkeypatch=monkeypatch)
    fake.behave()
    return fake
