"""The docker CLI, run for one image: is it there, log in to ECR, build, push.

Output streams line by line to `notify` (apply shows it indented under the step) and the last
lines are kept for the failure message. The registry password goes to `docker login` on stdin
only — never in an argument, where `ps` and shell history would show it — and is masked in
anything docker prints back.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
from collections import deque
from typing import Callable, Sequence

from reconciler.errors import ReconcileError
from reconciler.image_build.context import BuildSpec
from reconciler.normalize import looks_secret

TAIL_LINES = 20
_CHECK_TIMEOUT = 60.0
WAYS_FORWARD = ("install and start Docker (Docker Desktop, or the docker engine with the buildx plugin), "
                "or remove image.build from canvas.yaml and push the image under image.tag another way "
                "(CI, another machine) — reconcile then deploys whatever that tag points at")

Notify = Callable[[str], None]


class DockerUnavailable(ReconcileError):
    """No docker command, or no engine behind it."""


class DockerFailed(ReconcileError):
    """A docker command ran and failed; the message carries its last lines of output."""


def find_docker() -> str:
    """The docker executable, checked to have a running engine behind it."""
    executable = shutil.which("docker")
    if executable is None:
        raise DockerUnavailable(f"image.build needs Docker, but there is no `docker` command on PATH: {WAYS_FORWARD}")
    try:
        info = subprocess.run([executable, "info"], capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=_CHECK_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DockerUnavailable(f"image.build needs Docker, but `docker info` did not answer ({error}): "
                                f"{WAYS_FORWARD}") from None
    if info.returncode != 0:
        said = (info.stderr.strip() or info.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise DockerUnavailable(f"image.build needs Docker, but its engine is not reachable "
                                f"(`docker info`: {said[0]}): {WAYS_FORWARD}")
    return executable


def has_buildx(executable: str) -> bool:
    try:
        return subprocess.run([executable, "buildx", "version"], capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=_CHECK_TIMEOUT).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def build_command(executable: str, build: BuildSpec, tags: Sequence[str], *, buildx: bool) -> list[str]:
    """The build's argv. With buildx, --provenance=false: otherwise buildx pushes an OCI image
    index (image + attestation), which Lambda rejects; --load puts the result in the local
    image store whatever the builder's driver, so that `docker push` finds it. The classic
    builder makes plain images and knows neither flag (`unknown flag: --provenance`)."""
    argv = [executable, "buildx", "build"] if buildx else [executable, "build"]
    argv += ["--platform", build.platform]
    if buildx:
        argv += ["--provenance=false", "--load"]
    argv += ["-f", build.dockerfile]
    for tag in tags:
        argv += ["-t", tag]
    for name, value in sorted(build.args.items()):
        argv += ["--build-arg", f"{name}={value}"]
    argv.append(build.context)
    return argv


def shown(argv: Sequence[str]) -> str:
    """The command as it may be printed: `docker …` wherever PATH found it, and the values of
    build arguments named like secrets hidden."""
    words = ["docker"]
    for previous, arg in zip(argv, argv[1:], strict=False):
        if previous == "--build-arg" and looks_secret(arg.split("=", 1)[0]):
            arg = arg.split("=", 1)[0] + "=(sensitive)"
        words.append(arg)
    return shlex.join(words)


def login(executable: str, *, registry: str, username: str, password: str, notify: Notify) -> None:
    argv = [executable, "login", "--username", username, "--password-stdin", registry]
    run(argv, notify=notify, what=f"docker login to {registry}", stdin=password, secret=password)


def run(argv: Sequence[str], *, notify: Notify, what: str, stdin: str | None = None,
        secret: str | None = None) -> None:
    """Run one docker command, streaming its output (stdout and stderr, interleaved as docker
    wrote them); raise DockerFailed with the last lines if it fails."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def say(line: str) -> None:
        if secret:
            line = line.replace(secret, "****")
        tail.append(line)
        notify(line)

    try:
        process = subprocess.Popen(list(argv), stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                   bufsize=1)
    except OSError as error:
        raise DockerFailed(f"{what} could not start: {error}") from None
    if stdin is not None and process.stdin is not None:
        try:
            process.stdin.write(stdin)
            process.stdin.close()
        except BrokenPipeError:
            pass  # docker exited before reading; its output says why
    for line in process.stdout or ():
        say(line.rstrip("\r\n"))
    code = process.wait()
    if code != 0:
        shown = "\n".join(tail) if tail else "(no output)"
        raise DockerFailed(f"{what} failed (exit {code}); the last {len(tail)} line(s) of its output:\n{shown}")
