"""image.build against moto: the engine in-process, the fake docker (tests/fakes/docker) as a
real subprocess pushing into the same emulator. Covers the build running once, never again
while nothing changed, again when a source file changes (the function follows the digest),
not for ignored files, and a failed build leaving everything as it was."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from moto_harness import FAKE_ENV, REGION, CallRecorder, Echo

from reconciler.apply import apply_plan
from reconciler.aws import Clients
from reconciler.kinds import container_image
from reconciler.plan import Action, Plan
from reconciler.planner import build_plan
from reconciler.spec import load_spec

DOCKERFILE = 'FROM public.ecr.aws/lambda/python:3.12\nCOPY app/ ${LAMBDA_TASK_ROOT}/app/\nCMD ["app.handler"]\n'
DOCKERIGNORE = "canvas.yaml\n**/*.log\nnode_modules\n!node_modules/keep.js\n"
SOURCES = {
    "Dockerfile.lambda": DOCKERFILE,
    ".dockerignore": DOCKERIGNORE,
    "app/app.py": "def handler(event, context):\n    return {'statusCode': 200}\n",
    "app/debug.log": "ignored\n",
    "node_modules/left-pad/index.js": "module.exports = 1\n",
    "node_modules/keep.js": "module.exports = 2\n",
}


@pytest.fixture(scope="module")
def engine() -> tuple[Clients, CallRecorder]:
    """One Clients for the module, every service warmed before the recorder hooks in."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        clients = Clients(region=REGION).warm(("s3", "ecr", "iam", "sts", "lambda"))
    return clients, CallRecorder(clients)


@dataclass
class Project:
    """A project directory: canvas.yaml with image.build beside its sources."""

    root: Path
    names: dict
    clients: Clients
    calls: CallRecorder

    def write(self, *, build: bool = True) -> None:
        n = self.names
        image = {"tag": "v1.2"}
        if build:
            image["build"] = {"dockerfile": "Dockerfile.lambda", "context": ".", "platform": "linux/amd64",
                              "args": {"INSTALL_NODE": "false"}}
        document = {
            "version": 1, "stack": "code-canvas-astro", "region": REGION,
            "bucket": {"name": n["bucket"], "database_key": "database/app.db"},
            "repository": {"name": n["repository"], "scan_on_push": True, "tag_mutability": "MUTABLE"},
            "image": image, "role": {"name": n["role"]}, "function": {"name": n["function"], "memory": 512},
        }
        (self.root / "canvas.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    def plan(self) -> Plan:
        spec = load_spec(self.root / "canvas.yaml")
        return build_plan(spec, self.clients, region=REGION)

    def apply(self, plan: Plan | None = None):
        echo = Echo()
        result = apply_plan(plan or self.plan(), self.clients, echo=echo)
        return result, echo

    def converge(self) -> None:
        result, echo = self.apply()
        assert result.ok, echo.text
        assert not self.plan().has_changes

    def edit(self, relative: str, text: str) -> None:
        (self.root / relative).write_text(text)

    @property
    def image_address(self) -> str:
        return f"container_image.{self.names['repository']}:v1.2"

    def change(self, plan: Plan, address: str):
        return next(c for c in plan.changes if c.address == address)

    def images(self) -> dict[str, list[str]]:
        """digest → sorted tags, as ECR lists them."""
        details = self.clients.ecr.describe_images(repositoryName=self.names["repository"])["imageDetails"]
        return {d["imageDigest"]: sorted(d.get("imageTags", [])) for d in details}

    def running_digest(self) -> str:
        code = self.clients.awslambda.get_function(FunctionName=self.names["function"])["Code"]
        return code["ResolvedImageUri"].rpartition("@")[2]


@pytest.fixture
def project(tmp_path, engine, fake_docker) -> Project:
    clients, calls = engine
    suffix = uuid.uuid4().hex[:10]
    names = {"bucket": f"canvas-{suffix}-db", "repository": f"canvas-{suffix}-repl",
             "role": f"canvas-{suffix}-role", "function": f"canvas-{suffix}-fn"}
    for relative, text in SOURCES.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    project = Project(root=tmp_path, names=names, clients=clients, calls=calls)
    project.write()
    calls.clear()
    return project


def test_first_apply_builds_and_pushes_once_then_nothing_runs_again(project, fake_docker):
    plan = project.plan()
    assert fake_docker.calls == []  # planning never needs docker
    image = project.change(plan, project.image_address)
    content_hash = image.desired["content_hash"]
    assert image.action is Action.CREATE
    assert [(a.path, a.before, a.after) for a in image.attributes] == [
        ("tag", None, "v1.2"), ("content_hash", None, content_hash)]
    assert "apply builds it from Dockerfile.lambda in ." in image.note
    function = project.change(plan, f"lambda_function.{project.names['function']}")
    assert dict((a.path, a.after) for a in function.attributes)["image_digest"] == container_image.AFTER_BUILD

    result, echo = project.apply(plan)

    assert result.ok, echo.text
    uri = image.desired["uri"].rsplit(":", 1)[0]
    content_tag = f"canvas-{content_hash[:16]}"
    assert fake_docker.commands == ["info", "buildx version", "login", "buildx build", "push", "push"]
    [build] = fake_docker.builds
    assert build == ["buildx", "build", "--platform", "linux/amd64", "--provenance=false", "--load",
                     "-f", str(project.root / "Dockerfile.lambda"), "-t", f"{uri}:{content_tag}", "-t", f"{uri}:v1.2",
                     "--build-arg", "INSTALL_NODE=false", str(project.root)]
    assert fake_docker.pushes == [f"{uri}:{content_tag}", f"{uri}:v1.2"]
    [(digest, tags)] = project.images().items()
    assert tags == sorted([content_tag, "v1.2"])
    assert project.running_digest() == digest
    # docker's output streamed under the image step, before that step's SUCCESS line.
    lines = echo.lines
    step = next(i for i, line in enumerate(lines) if f"create {project.image_address} …" in line)
    success = next(i for i, line in enumerate(lines) if i > step and "SUCCESS" in line)
    streamed = lines[step + 1:success]
    assert f"      #9 naming to {uri}:{content_tag} done" in streamed
    assert f"      v1.2: digest: {digest} size: 528" in streamed

    project.calls.clear()
    fake_docker.forget_calls()
    again = project.plan()
    assert not again.has_changes
    result, echo = project.apply(again)
    assert result.ok and result.done == []
    assert fake_docker.calls == []
    assert project.calls.mutating == []


def test_a_changed_source_file_rebuilds_pushes_and_rolls_the_function(project, fake_docker):
    project.converge()
    [(old_digest, old_tags)] = project.images().items()
    old_hash = project.change(project.plan(), project.image_address).desired["content_hash"]
    fake_docker.forget_calls()
    project.calls.clear()

    project.edit("app/app.py", "def handler(event, context):\n    return {'statusCode': 201}\n")
    plan = project.plan()

    image = project.change(plan, project.image_address)
    new_hash = image.desired["content_hash"]
    assert new_hash != old_hash
    assert image.action is Action.CREATE
    assert [(a.path, a.before, a.after) for a in image.attributes] == [("content_hash", old_hash[:16], new_hash)]
    function = project.change(plan, f"lambda_function.{project.names['function']}")
    assert function.action is Action.UPDATE
    assert [(a.path, a.before, a.after) for a in function.attributes] == [
        ("image_digest", old_digest, container_image.AFTER_BUILD)]
    assert [c.address for c in plan.pending] == [project.image_address, function.address]

    result, echo = project.apply(plan)

    assert result.ok, echo.text
    assert len(fake_docker.builds) == 1 and len(fake_docker.pushes) == 2
    images = project.images()
    new_digest = next(d for d, tags in images.items() if f"canvas-{new_hash[:16]}" in tags)
    assert new_digest != old_digest
    assert images[new_digest] == sorted([f"canvas-{new_hash[:16]}", "v1.2"])
    assert images[old_digest] == [f"canvas-{old_hash[:16]}"]  # the old build keeps its content tag
    assert project.running_digest() == new_digest
    assert project.calls.mutating == ["UpdateFunctionCode"]  # the pushes are docker's, not the engine's
    assert not project.plan().has_changes


@pytest.mark.parametrize("relative, rebuilds", [
    pytest.param("app/debug.log", False, id="ignored-by-pattern"),
    pytest.param("node_modules/left-pad/index.js", False, id="inside-ignored-directory"),
    pytest.param("canvas.yaml.bak", True, id="not-ignored-new-file"),
    pytest.param("node_modules/keep.js", True, id="re-included-by-bang"),
])
def test_only_files_the_build_would_see_trigger_a_rebuild(project, fake_docker, relative, rebuilds):
    project.converge()
    fake_docker.forget_calls()

    project.edit(relative, "changed\n")
    plan = project.plan()

    assert [c.address for c in plan.pending] == (
        [project.image_address, f"lambda_function.{project.names['function']}"] if rebuilds else [])
    if not rebuilds:  # (a rebuild's apply is the changed-source test's)
        project.calls.clear()
        result, echo = project.apply(plan)
        assert result.ok and result.done == [], echo.text
        assert fake_docker.calls == [] and project.calls.mutating == []


def test_a_failing_build_leaves_ecr_and_the_function_untouched(project, fake_docker):
    project.converge()
    images, digest = project.images(), project.running_digest()
    project.edit("app/app.py", "broken\n")
    fake_docker.behave(fail="build")
    fake_docker.forget_calls()
    project.calls.clear()

    result, echo = project.apply()

    assert not result.ok
    assert result.failed.address == project.image_address
    assert [c.address for c in result.remaining] == [f"lambda_function.{project.names['function']}"]
    fail_at = next(i for i, line in enumerate(echo.lines) if "FAIL: docker build failed (exit 1)" in line)
    quoted = echo.lines[fail_at + 1:]
    assert len(quoted) == 20 and all(line.startswith("        ") for line in quoted)
    assert quoted[-1].strip().startswith("ERROR: failed to solve: process")
    assert quoted[0].strip().endswith("output line 12")  # the last 20 lines: 19 of the 30, then the error
    assert fake_docker.pushes == []
    assert project.images() == images
    assert project.running_digest() == digest
    assert project.calls.mutating == []


def test_a_rebuild_that_yields_the_running_image_leaves_the_function_code_alone(project, fake_docker):
    # Docker's layer cache can give the very same image for a changed context (a file no COPY reads).
    fake_docker.behave(image_content="the same layers every time")
    project.converge()
    digest = project.running_digest()
    project.edit("app/app.py", "a change no layer sees\n")
    project.calls.clear()

    result, echo = project.apply()

    assert result.ok, echo.text
    assert "the built image is the one the function already runs" in echo.text
    assert "UpdateFunctionCode" not in project.calls.mutating
    assert project.running_digest() == digest
    assert not project.plan().has_changes  # the image now carries the new content tag too


def test_the_classic_builder_is_used_without_buildx_and_without_its_flags(project, fake_docker):
    fake_docker.behave(buildx="absent")

    result, echo = project.apply()

    assert result.ok, echo.text
    [build] = fake_docker.builds
    assert build[:3] == ["build", "--platform", "linux/amd64"]
    assert "--provenance=false" not in build and "--load" not in build  # the classic builder rejects them


def test_files_changed_between_plan_and_apply_are_not_built_under_the_old_hash(project, fake_docker):
    plan = project.plan()
    project.edit("app/app.py", "edited after the plan\n")

    result, echo = project.apply(plan)

    assert not result.ok
    assert "the build context changed after the plan was made" in echo.text
    assert fake_docker.builds == []


def test_without_image_build_the_tool_never_builds(project, fake_docker):
    project.write(build=False)

    result, echo = project.apply()

    assert not result.ok
    assert f"FAIL: image {project.names['repository']}:v1.2 not found in ECR" in echo.text
    assert fake_docker.calls == []


def test_no_docker_fails_the_image_step_with_both_ways_forward_but_plans(project, no_docker):
    plan = project.plan()
    assert project.change(plan, project.image_address).action is Action.CREATE

    result, echo = project.apply(plan)

    assert result.failed.address == project.image_address
    assert "there is no `docker` command on PATH" in echo.text
    assert "install and start Docker" in echo.text and "remove image.build from canvas.yaml" in echo.text
