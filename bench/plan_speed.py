"""Benchmark: a no-op plan's round trips in sequence and start-up, as ratios, in one run (issue 12).

Against moto on loopback, on a converged stack:
- round trips in sequence: (plan at 3L ms − plan at L ms) / 2L, in process, with that much
  added before every request (botocore's before-send hook) to stand in for AWS's round trip;
- `reconcile plan` as a user runs it (a new process) at 0 ms, over the floor: a bare
  `python -c` that imports boto3 and makes the five clients the plan uses;
- `reconcile validate`, `--help` and `--version`, which call no AWS at all.
Medians of --runs. Run: python bench/plan_speed.py [--latency-ms 80] [--runs 5]
"""
from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                    "AWS_DEFAULT_REGION": "us-west-2"}.items():
    os.environ[name] = value
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from reconciler.apply import apply_recorded  # noqa: E402
from reconciler.aws import Clients  # noqa: E402
from reconciler.emulator import register_image  # noqa: E402
from reconciler.planner import build_plan  # noqa: E402
from reconciler.spec import load_spec  # noqa: E402

FLOOR = ("import boto3; s = boto3.Session(); "
         "[s.client(n) for n in ('s3', 'ecr', 'iam', 'sts', 'lambda')]")


@contextlib.contextmanager
def emulator_process() -> Iterator[str]:
    """`reconcile local` in its own process: moto's CPU must not share this one's GIL, or the
    waits the latency adds would hide behind moto's work and the round trips read low."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "reconcile"), "local", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the emulator did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(20)


def median_seconds(run, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def process(args: list[str], *, cwd: Path, env: dict) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=80.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # Timed as an installed `reconcile` runs: with its bytecode, which pip compiles on install but
    # an editable install only caches on first use, and never under PYTHONDONTWRITEBYTECODE.
    compileall.compile_dir(ROOT / "reconciler", quiet=1)
    with emulator_process() as endpoint, tempfile.TemporaryDirectory() as workdir:
        document = yaml.safe_load((ROOT / "canvas.yaml").read_text())
        document["image"].pop("build", None)  # no Docker here: the image is registered by hand
        canvas = Path(workdir) / "canvas.yaml"
        canvas.write_text(yaml.safe_dump(document, sort_keys=False))
        spec = load_spec(canvas)
        clients = Clients(region=spec.region, endpoint_url=endpoint)
        quiet = lambda *a, **k: None  # noqa: E731
        apply_recorded(build_plan(spec, clients, region=spec.region), clients, spec=spec, echo=quiet)
        register_image(clients.ecr, spec.repository["name"], spec.image["tag"], b"benchmark image")
        assert apply_recorded(build_plan(spec, clients, region=spec.region), clients, spec=spec, echo=quiet).ok

        delay, calls = [0.0], []
        for service in ("s3", "ecr", "iam", "lambda", "sts"):
            clients.client(service).meta.events.register(
                "before-send", lambda **kw: (calls.append(1), time.sleep(delay[0])) and None)

        def plan() -> None:
            assert not build_plan(spec, clients, region=spec.region).has_changes

        plan()
        calls.clear()
        plan()
        count = len(calls)
        # Two latencies, both long enough to hide the client's CPU behind the waits: their
        # difference is waiting alone (at 0 ms a plan is CPU-bound, and the CPU would overlap).
        at = {}
        for latency in (args.latency_ms, 3 * args.latency_ms):
            delay[0] = latency / 1000
            at[latency] = median_seconds(plan, args.runs)
        round_trips = (at[3 * args.latency_ms] - at[args.latency_ms]) / (2 * args.latency_ms / 1000)

        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
        reconcile = str(Path(sys.executable).parent / "reconcile")
        floor = median_seconds(lambda: process([sys.executable, "-c", FLOOR], cwd=canvas.parent, env=env), args.runs)
        timings = {label: median_seconds(lambda a=a: process([reconcile, *a], cwd=canvas.parent, env=env), args.runs)
                   for label, a in (("plan", ["plan"]), ("validate", ["validate"]), ("--help", ["--help"]),
                                    ("--version", ["--version"]))}

    print(f"no-op plan: {count} AWS calls, {round_trips:.2f} round trips in sequence (in process: "
          + ", ".join(f"{seconds * 1000:.0f} ms at {latency:g} ms per call" for latency, seconds in at.items()) + ")")
    print(f"floor (python -c: import boto3, five clients): {floor:.2f} s")
    for label, seconds in timings.items():
        print(f"reconcile {label:<9} {seconds:.2f} s = {seconds / floor:.2f}x the floor")
    print(f"medians of {args.runs}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
