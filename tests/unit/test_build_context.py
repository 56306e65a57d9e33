"""The content hash of a build: what changes it, what does not, and what it refuses."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.errors import ReconcileError
from reconciler.image_build import context
from reconciler.image_build.context import BuildSpec, build_spec, content_hash, content_tag, context_files
from reconciler.spec import load_spec

DOCKERFILE = "FROM public.ecr.aws/lambda/python:3.12\nCOPY . /var/task/\n"


def project(root: Path, files: dict[str, str], *, dockerfile: str = DOCKERFILE, platform: str = "linux/amd64",
            args: dict | None = None) -> BuildSpec:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return BuildSpec(context=str(root), dockerfile=str(root / "Dockerfile"), platform=platform, args=args or {})


FILES = {"app.py": "print('hi')\n", "lib/util.py": "X = 1\n", "notes.log": "debug\n",
         "cache/blob": "x\n", "cache/keep.txt": "kept\n",
         ".dockerignore": "*.log\ncache\n!cache/keep.txt\n"}


@pytest.fixture
def build(tmp_path) -> BuildSpec:
    return project(tmp_path / "app", FILES)


def hash_after(build: BuildSpec, change) -> tuple[str, str]:
    before = content_hash(build)
    change(Path(build.context))
    after = content_hash(build)
    assert len(before) == len(after) == 64
    return before, after


def test_the_files_sent_are_those_dockerignore_lets_through(build):
    assert context_files(build) == [".dockerignore", "Dockerfile", "app.py", "cache/keep.txt", "lib/util.py"]


@pytest.mark.parametrize("change, changes_hash", [
    pytest.param(lambda root: (root / "app.py").write_text("print('bye')\n"), True, id="source-edited"),
    pytest.param(lambda root: (root / "new.py").write_text(""), True, id="empty-file-added"),
    pytest.param(lambda root: (root / "lib/util.py").rename(root / "lib/helpers.py"), True, id="file-renamed"),
    pytest.param(lambda root: (root / "cache/keep.txt").write_text("changed\n"), True, id="re-included-file"),
    pytest.param(lambda root: (root / "notes.log").write_text("more\n"), False, id="ignored-file"),
    pytest.param(lambda root: (root / "cache/blob").write_text("y\n"), False, id="file-in-ignored-directory"),
    pytest.param(lambda root: (root / "other.log").write_text("new\n"), False, id="ignored-file-added"),
    pytest.param(lambda root: (root / "empty-dir").mkdir(), False, id="empty-directory"),
    pytest.param(lambda root: (root / "app.py").chmod(0o755), True, id="executable-bit"),
    pytest.param(lambda root: (root / "app.py").chmod(0o600), False, id="other-mode-bits"),
    pytest.param(lambda root: (root / "Dockerfile").write_text(DOCKERFILE + "USER 1000\n"), True, id="dockerfile"),
])
def test_what_changes_the_hash(build, change, changes_hash):
    (Path(build.context) / "app.py").chmod(0o644)
    before, after = hash_after(build, change)
    assert (before != after) is changes_hash


def test_the_listing_order_does_not_matter(build, monkeypatch):
    straight = content_hash(build)
    scan = context._scan
    monkeypatch.setattr(context, "_scan", lambda directory: list(reversed(scan(directory))))
    assert content_hash(build) == straight


def test_the_location_of_the_project_does_not_matter(tmp_path):
    assert content_hash(project(tmp_path / "one", FILES)) == content_hash(project(tmp_path / "elsewhere/two", FILES))


def test_build_arguments_and_platform_change_the_hash_but_not_their_order(build):
    base = content_hash(build)
    with_args = content_hash(BuildSpec(**{**build.to_dict(), "args": {"A": "1", "B": "2"}}))
    reordered = content_hash(BuildSpec(**{**build.to_dict(), "args": {"B": "2", "A": "1"}}))
    other_value = content_hash(BuildSpec(**{**build.to_dict(), "args": {"A": "1", "B": "3"}}))
    arm = content_hash(BuildSpec(**{**build.to_dict(), "platform": "linux/arm64"}))
    assert len({base, with_args, other_value, arm}) == 4
    assert with_args == reordered


def test_a_dockerfile_excluded_from_the_context_still_counts(tmp_path):
    build = project(tmp_path / "app", {".dockerignore": "Dockerfile\n", "app.py": "x\n"})
    assert "Dockerfile" not in context_files(build)
    before, after = hash_after(build, lambda root: (root / "Dockerfile").write_text(DOCKERFILE + "# x\n"))
    assert before != after


def test_a_dockerfile_specific_ignore_file_wins_over_the_contexts(build):
    assert "notes.log" not in context_files(build)
    Path(build.dockerfile + ".dockerignore").write_text("lib\n")
    assert context_files(build) == [".dockerignore", "Dockerfile", "Dockerfile.dockerignore", "app.py",
                                    "cache/blob", "cache/keep.txt", "notes.log"]


def test_symlinks_count_by_their_target_and_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_text("outside the context\n")
    build = project(tmp_path / "app", {"app.py": "x\n"})
    os.symlink(outside, Path(build.context) / "linked-dir")
    os.symlink("app.py", Path(build.context) / "alias.py")
    assert context_files(build) == ["Dockerfile", "alias.py", "app.py", "linked-dir"]
    before, after = hash_after(build, lambda root: (outside / "big.bin").write_text("changed\n"))
    assert before == after  # what a link points at outside the context is not sent

    def repoint(root: Path) -> None:
        os.remove(root / "alias.py")
        os.symlink("Dockerfile", root / "alias.py")

    before, after = hash_after(build, repoint)
    assert before != after


def test_a_fifo_in_the_context_is_recorded_without_being_read(build):
    os.mkfifo(Path(build.context) / "pipe")
    assert "pipe" in context_files(build)
    assert len(content_hash(build)) == 64  # reading it would block forever


def test_large_files_are_hashed_in_full_across_chunks(tmp_path):
    size = context.CHUNK * 2 + 17
    one = project(tmp_path / "one", {})
    two = project(tmp_path / "two", {})
    (Path(one.context) / "big.bin").write_bytes(b"\0" * size)
    (Path(two.context) / "big.bin").write_bytes(b"\0" * (size - 1) + b"\1")
    assert content_hash(one) != content_hash(two)


def test_missing_paths_and_bad_ignore_files_are_clear_errors(tmp_path, build):
    with pytest.raises(ReconcileError, match=r"image.build.context: .*/nowhere is not a directory"):
        content_hash(BuildSpec(**{**build.to_dict(), "context": str(tmp_path / "nowhere")}))
    with pytest.raises(ReconcileError, match=r"image.build.dockerfile: .*/Dockerfile.missing not found"):
        content_hash(BuildSpec(**{**build.to_dict(), "dockerfile": str(tmp_path / "Dockerfile.missing")}))
    (Path(build.context) / ".dockerignore").write_text("ok\n[unclosed\n")
    with pytest.raises(ReconcileError, match=r"\.dockerignore: '\[unclosed': .*Docker would refuse"):
        content_hash(build)


def test_paths_are_relative_to_canvas_yaml_not_the_working_directory(tmp_path, monkeypatch):
    root = tmp_path / "project"
    project(root / "service", {"app.py": "x\n"})
    text = (Path(__file__).resolve().parents[2] / "canvas.yaml").read_text()
    text = text.replace("dockerfile: Dockerfile.lambda", "dockerfile: service/Dockerfile").replace(
        "context: .", "context: service")
    (root / "canvas.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    spec = load_spec("project/canvas.yaml")
    build = build_spec(spec, platform="linux/amd64")
    assert (build.context, build.dockerfile) == (str(root / "service"), str(root / "service/Dockerfile"))
    assert content_tag(content_hash(build)) == "canvas-" + content_hash(build)[:16]
