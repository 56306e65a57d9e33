"""Benchmark: how long `plan` takes on a converged stack, reads concurrent vs one at a time.

moto answers in well under a millisecond, which hides what concurrency buys against real
AWS; --latency-ms adds a fixed delay before every request (botocore's before-send hook) to
stand in for a real round trip. Run: python bench/plan_speed.py [--latency-ms 40] [--runs 10]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
    os.environ[name] = value
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.apply import apply_plan  # noqa: E402
from reconciler.aws import Clients  # noqa: E402
from reconciler.emulator import Emulator, register_image  # noqa: E402
from reconciler.planner import build_plan  # noqa: E402
from reconciler.spec import load_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with Emulator() as emulator:
        spec = load_spec(Path(__file__).resolve().parents[1] / "canvas.yaml")
        # The image is registered by hand below (there is no Docker here): plan it as pushed
        # by other means, without image.build, so apply never tries to build it.
        spec = dataclasses.replace(spec, data={**spec.data, "image": {"tag": spec.image["tag"]}})
        clients = Clients(region=spec.region, endpoint_url=emulator.url)
        quiet = lambda *a, **k: None  # noqa: E731
        apply_plan(build_plan(spec, clients, region=spec.region), clients, echo=quiet)  # stops at the image
        register_image(clients.ecr, spec.repository["name"], spec.image["tag"], b"benchmark image")
        assert apply_plan(build_plan(spec, clients, region=spec.region), clients, echo=quiet).ok
        calls = []
        for service in ("s3", "ecr", "iam", "lambda", "sts"):
            events = clients.client(service).meta.events
            events.register("before-send", lambda **kw: (calls.append(1), time.sleep(args.latency_ms / 1000)) and None)
        for label, workers in (("concurrent", None), ("sequential", 1)):
            times = []
            for _ in range(args.runs):
                calls.clear()
                started = time.perf_counter()
                plan = build_plan(spec, clients, region=spec.region, max_workers=workers)
                times.append(time.perf_counter() - started)
                assert not plan.has_changes
            print(f"{label:>10}: median {statistics.median(times) * 1000:7.1f} ms, "
                  f"min {min(times) * 1000:7.1f} ms over {args.runs} plans, {len(calls)} AWS calls each "
                  f"(+{args.latency_ms:g} ms simulated latency per call)")


if __name__ == "__main__":
    main()
