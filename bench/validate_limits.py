"""Benchmark: how long `load_spec` (all that `validate` does) takes on the worst inputs the
limits let through, and on those that they refuse. No input should take a second.

Each case is written to a temporary file and loaded --runs times; the slowest run is printed
with how the load ended. Cases come in pairs either side of reconciler.yamlmarks'
FAST_PARSER_FROM, where libyaml's parser takes over from the pure-Python one.
Run: python bench/validate_limits.py [--runs 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reconciler.limits import MAX_BYTES, MAX_NODES  # noqa: E402
from reconciler.spec import SpecError, load_spec  # noqa: E402
from reconciler.yamlmarks import FAST_PARSER_FROM  # noqa: E402

CONTRACT = (ROOT / "canvas.yaml").read_text(encoding="utf-8")
POLICY = "    - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole\n"
SLOW = FAST_PARSER_FROM  # the largest text the pure-Python parser is given


def _fill(unit: Callable[[int], str], size: int, head: str = "", tail: str = "") -> str:
    """head + as many units as fit in `size` characters + tail."""
    parts, length, index = [head], len(head) + len(tail), 0
    while length + len(piece := unit(index)) <= size:
        parts.append(piece)
        length += len(piece)
        index += 1
    return "".join(parts) + tail


def cases() -> dict[str, str]:
    env = "  environment:\n"
    return {
        "contract canvas.yaml": CONTRACT,
        "1 MiB of keys": _fill(lambda i: f"k{i}: v\n", MAX_BYTES),
        "1 MiB of flow keys": _fill(lambda i: f"k{i}," , MAX_BYTES - 1, "{", "}"),
        "1 MiB of list items": _fill(lambda i: "- 1\n", MAX_BYTES, "a:\n"),
        "1 MiB of flow list items": _fill(lambda i: "1,", MAX_BYTES - 1, "a: [", "]"),
        f"{MAX_NODES // 2 - 60} env variables (just under the node limit)": CONTRACT.replace(
            env, env + "".join(f"    K{i}: v\n" for i in range(MAX_NODES // 2 - 60)), 1),
        f"{MAX_NODES // 2 - 60} unknown top-level keys":
            CONTRACT + "".join(f"x{i}: 1\n" for i in range(MAX_NODES // 2 - 60)),
        f"{MAX_NODES - 100} duplicate managed policies": CONTRACT.replace(POLICY, POLICY * (MAX_NODES - 100)),
        "1 MiB of [ (deep nesting)": "a: " + "[" * (MAX_BYTES - 3),
        "64 KiB of [ (deep nesting)": "a: " + "[" * (SLOW - 3),
        "alias chain 3000 deep": _fill(lambda i: f"a{i + 1}: &a{i + 1} [*a{i}]\n", MAX_BYTES, "a0: &a0 [x]\n"),
        "alias bomb": "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)),
        "1 MB value": CONTRACT.replace("stack: code-canvas-astro", "stack: " + "x" * 1_000_000),
        "64 KiB value": CONTRACT.replace("stack: code-canvas-astro", "stack: " + "x" * (SLOW - len(CONTRACT))),
        "1 MB tag value":
            CONTRACT.replace("region: us-west-2\n", "region: us-west-2\ntags: {t: " + "é" * 500_000 + "}\n"),
        "1 MiB of blank lines": _fill(lambda i: "\n", MAX_BYTES, CONTRACT),
        "64 KiB of blank lines": _fill(lambda i: "\n", SLOW, CONTRACT),
        "64 KiB of comments": _fill(lambda i: "#" + "x" * 78 + "\n", SLOW, CONTRACT),
        "64 KiB multi-line plain value":
            CONTRACT.replace("stack: code-canvas-astro", _fill(lambda i: "x\n  ", SLOW - len(CONTRACT), "stack: ")),
        "64 KiB of \\x41 escapes":
            CONTRACT.replace("stack: code-canvas-astro",
                             _fill(lambda i: "\\x41", SLOW - len(CONTRACT), 'stack: "', '"')),
        "1 MiB of \\x41 escapes":
            CONTRACT.replace("stack: code-canvas-astro",
                             _fill(lambda i: "\\x41", MAX_BYTES - len(CONTRACT), 'stack: "', '"')),
        "10 MB file": "a: " + "x" * 10_000_000,
    }


def timed(path: Path, runs: int) -> tuple[float, str]:
    slowest, outcome = 0.0, ""
    for _ in range(runs):
        started = time.perf_counter()
        try:
            load_spec(path)
            outcome = "accepted"
        except SpecError as error:
            first = error.problems[0]
            outcome = f"{len(error.problems)} problem(s), first: {first.message[:70]}"
        slowest = max(slowest, time.perf_counter() - started)
    return slowest, outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name, text in cases().items():
            path = Path(folder) / "canvas.yaml"
            path.write_text(text, encoding="utf-8")
            seconds, outcome = timed(path, args.runs)
            size = path.stat().st_size
            print(f"{seconds:7.3f} s  {size:>9} B  {name:<45} {outcome}")


if __name__ == "__main__":
    main()
