"""The content identity of an image build, computed without a Docker engine.

The hash covers exactly what can change the image: the Dockerfile, every file of the context
that .dockerignore lets through (path, content, executable bit; a symlink by its target), the
build arguments and the platform. Paths are sorted, so the order a filesystem lists them in
does not matter, and files are streamed through the hash in chunks, so a large file costs
memory for one chunk only. Only the executable bit of the mode counts: git keeps no other,
and hashing the rest would rebuild on every machine with another umask.

Files are recorded, directories are not: an empty directory does not change the hash (git
cannot hold one either, so two checkouts of one commit always agree).
"""
from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from reconciler.errors import ReconcileError
from reconciler.image_build.dockerignore import BadPattern, Matcher
from reconciler.reserved import CONTENT_TAG_PREFIX

# Bump when what goes into the hash changes, so every image is rebuilt once, knowingly.
SCHEME = b"canvas-reconcile build context v1\0"
CHUNK = 1 << 20
HASH_THREADS = 4
CONTENT_TAG_HEX = 16


@dataclass(frozen=True)
class BuildSpec:
    """What `image.build` asks for, with paths made absolute (relative to canvas.yaml's directory)."""

    context: str
    dockerfile: str
    platform: str
    args: Mapping[str, str] = field(default_factory=dict)

    @property
    def ignore_file(self) -> str | None:
        """`<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's
        .dockerignore, as BuildKit does; None when there is neither."""
        for candidate in (self.dockerfile + ".dockerignore", os.path.join(self.context, ".dockerignore")):
            if os.path.isfile(candidate):
                return candidate
        return None

    def to_dict(self) -> dict:
        return {"context": self.context, "dockerfile": self.dockerfile, "platform": self.platform,
                "args": dict(self.args)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "BuildSpec":
        return cls(context=data["context"], dockerfile=data["dockerfile"], platform=data["platform"],
                   args=dict(data.get("args") or {}))


def build_spec(spec, *, platform: str) -> BuildSpec | None:
    """The spec's `image.build` with its paths resolved, or None when the tool must not build."""
    build = (spec.image or {}).get("build")
    if build is None:
        return None
    base = os.path.dirname(os.path.abspath(spec.file))
    return BuildSpec(
        context=os.path.normpath(os.path.join(base, build.get("context", "."))),
        dockerfile=os.path.normpath(os.path.join(base, build.get("dockerfile", "Dockerfile.lambda"))),
        platform=build.get("platform") or platform,
        args=dict(build.get("args") or {}),
    )


def content_tag(content_hash: str) -> str:
    return CONTENT_TAG_PREFIX + content_hash[:CONTENT_TAG_HEX]


def content_hash(build: BuildSpec) -> str:
    """sha256 hex of everything that makes the image what it is (see the module docstring)."""
    _check_paths(build)
    outer = hashlib.sha256(SCHEME)
    outer.update(_record(b"platform", build.platform.encode()))
    for name, value in sorted(build.args.items()):
        outer.update(_record(b"arg", name.encode(), value.encode()))
    outer.update(_record(b"dockerfile", _file_digest(build.dockerfile, shown="the Dockerfile")))
    entries = sorted(context_entries(build), key=lambda entry: entry[0].encode("utf-8", "surrogateescape"))
    # Opening and reading files is most of the cost and releases the GIL: a few threads
    # overlap it (and the waits of a cold cache or a network disk); map keeps the order.
    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        for record in pool.map(lambda entry: _entry_record(*entry), entries, chunksize=64):
            outer.update(record)
    return outer.hexdigest()


def context_files(build: BuildSpec) -> list[str]:
    """The context's paths a build would send, sorted (for tests and for the curious)."""
    return sorted(relative for relative, _, _ in context_entries(build))


def context_entries(build: BuildSpec) -> Iterator[tuple[str, str, os.stat_result]]:
    """(slash path relative to the context, absolute path, lstat) of every non-directory entry
    .dockerignore lets through. Excluded directories are not entered unless a `!` line may
    bring something inside them back."""
    matcher = _matcher(build)
    no_match = tuple(False for _ in matcher.patterns)
    stack = [("", build.context, no_match)]
    while stack:
        prefix, directory, parent = stack.pop()
        for entry in _scan(directory):
            relative = prefix + entry.name
            excluded, matched = matcher.match(relative, parent)
            if entry.is_dir(follow_symlinks=False):
                if not excluded or matcher.must_enter(relative):
                    stack.append((relative + "/", entry.path, matched))
            elif not excluded:
                yield relative, entry.path, entry.stat(follow_symlinks=False)


def _scan(directory: str) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError as error:
        raise ReconcileError(f"cannot read {directory} in the build context: {error.strerror or error} — "
                             "fix its permissions or list it in .dockerignore") from None


def _matcher(build: BuildSpec) -> Matcher:
    ignore_file = build.ignore_file
    if ignore_file is None:
        return Matcher([])
    with open(ignore_file, encoding="utf-8", errors="surrogateescape") as handle:
        text = handle.read()
    try:
        return Matcher.from_text(text)
    except BadPattern as error:
        raise ReconcileError(f"{ignore_file}: {error} — Docker would refuse this .dockerignore too") from None


def _check_paths(build: BuildSpec) -> None:
    if not os.path.isdir(build.context):
        raise ReconcileError(f"image.build.context: {build.context} is not a directory — "
                             "paths in image.build are relative to the directory holding canvas.yaml")
    if not os.path.isfile(build.dockerfile):
        raise ReconcileError(f"image.build.dockerfile: {build.dockerfile} not found — "
                             "paths in image.build are relative to the directory holding canvas.yaml")


def _record(kind: bytes, *values: bytes) -> bytes:
    # NUL cannot occur in a path, a tag or a build argument's name: the fields cannot run together.
    return kind + b"\0" + b"".join(value + b"\0" for value in values)


def _entry_record(relative: str, path: str, entry_stat: os.stat_result) -> bytes:
    name = relative.encode("utf-8", "surrogateescape")
    mode = entry_stat.st_mode
    if stat.S_ISLNK(mode):
        return _record(b"symlink", name, os.fsencode(os.readlink(path)))
    if stat.S_ISREG(mode):
        executable = b"x" if mode & 0o111 else b"-"
        return _record(b"file", name, executable, _file_digest(path, shown=relative, size=entry_stat.st_size))
    # A FIFO, socket or device: never opened (reading a FIFO would block), recorded by kind.
    return _record(b"special", name, stat.filemode(mode)[0].encode())


def _file_digest(path: str, *, shown: str, size: int = CHUNK) -> bytes:
    # os.read on a descriptor: a buffered file object costs more than reading a small file.
    digest, want = hashlib.sha256(), min(max(size, 1), CHUNK)
    try:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            while chunk := os.read(descriptor, want):
                digest.update(chunk)
                want = CHUNK
        finally:
            os.close(descriptor)
    except OSError as error:
        raise ReconcileError(f"cannot read {shown} ({path}) to hash the build context: "
                             f"{error.strerror or error} — fix its permissions or list it in .dockerignore") from None
    return digest.digest()
