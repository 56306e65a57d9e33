"""Benchmark: how long the build-context hash takes on a generated 10,000-file context.

`plan` hashes the context on every run (reconciler/image_build/context.py), so it must stay
well under a second for a sizeable project. The generated context has a source tree of small
files, a few larger assets and an ignored directory (node_modules-like, behind .dockerignore)
that the walk should skip without reading. Run: python bench/hash_speed.py [--files 10000] [--runs 5]
The first run reads from disk; the rest mostly from the page cache, as a re-plan would.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.image_build.context import BuildSpec, content_hash, context_files  # noqa: E402


def generate(root: Path, files: int, *, ignored: int) -> int:
    """`files` files under root (`ignored` of them under node_modules/); returns their total bytes."""
    rng = random.Random(42)
    (root / "Dockerfile").write_text("FROM public.ecr.aws/lambda/python:3.12\nCOPY . /var/task/\n")
    (root / ".dockerignore").write_text("node_modules\n**/*.log\n!node_modules/keep.js\n")
    total = 0
    for index in range(files):
        if index < ignored:
            path = root / "node_modules" / f"pkg{index % 200}" / f"file{index}.js"
        else:
            path = root / "src" / f"module{index % 100}" / f"sub{index % 7}" / f"file{index}.py"
        size = 256 * 1024 if index % 1000 == 0 else rng.randint(200, 8000)  # ten larger assets
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        if index % 5 == 0:
            path.chmod(0o755)
        total += size
    return total


def measure(build: BuildSpec, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        content_hash(build)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for label, ignored in (("all files in the context", 0), ("half of them behind .dockerignore", args.files // 2)):
            root = Path(directory) / label.split()[0]
            root.mkdir()
            size = generate(root, args.files, ignored=ignored)
            build = BuildSpec(context=str(root), dockerfile=str(root / "Dockerfile"), platform="linux/amd64")
            os.sync()
            times = measure(build, args.runs)
            hashed = len(context_files(build))
            print(f"{args.files} files ({size / 1e6:.1f} MB), {label}: {hashed} hashed; "
                  f"first {times[0] * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms, "
                  f"best {min(times) * 1000:.0f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
