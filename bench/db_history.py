"""Benchmark (issue 11): what `reconcile db versions`, `db pull --at` and `db restore --at` cost
against a database the real runtime writes, at 1 MB and 64 MB. Numbers are printed, never asserted.

Run:  python bench/db_history.py                 (1 and 64 MB; about two minutes on 2 cores)
      python bench/db_history.py --sizes 1,256 --writes 40

Set-up. The script starts its own moto server on 127.0.0.1 (bench/write_cost.py's start_moto),
seeds a taskboard database of the size (write_cost.seed_database) as one base in a versioned
bucket, and starts the real `python -m runtime serve` with examples/taskboard/app.py on it. The
runtime makes --writes one-row writes (POST /api/tasks; DB_COMPACT_ENTRIES=10, so the history
crosses compactions); the time after half of them is the `--at` target. Each `reconcile`
command runs as a user runs it (a new process, a canvas.yaml naming the bucket), medians of
--reps, beside a bare boto3 `download_file` of the base, which is the floor for any rebuild.
After the restore, the runtime's next GET (it loads the new base) is timed too.
Moto over loopback is not S3: absolute times are this machine's; the ratios are the point.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "runtime"), str(REPO / "bench")]

import runtime_testkit as kit  # noqa: E402
import yaml  # noqa: E402
from write_cost import MB, Runtime, seed_database, start_moto  # noqa: E402

from runtime import layout  # noqa: E402


def timed(run, reps: int) -> float:
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def reconcile(args: list[str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"reconcile {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def one_size(size_mb: int, url: str, tmp: Path, args) -> dict:
    s3 = kit.S3(url, f"history-{size_mb}mb", tmp)
    home = tmp / f"{size_mb}mb"
    home.mkdir()
    spec = yaml.safe_load((REPO / "canvas.yaml").read_text())
    spec["bucket"]["name"] = s3.bucket
    spec["bucket"]["database_key"] = kit.KEY
    (home / "canvas.yaml").write_text(yaml.safe_dump(spec))
    seeded = seed_database(home / "seed.db", size_mb * MB)
    s3.put_database(home / "seed.db")
    env = kit.runtime_environment(endpoint=url, bucket=s3.bucket, home=home, app=kit.TASKBOARD,
                                  DB_COMPACT_ENTRIES="10")
    runtime = Runtime(env, home / "runtime.log")
    try:
        target = None
        for n in range(args.writes):
            runtime.post_task(f"write {n}")
            if n == args.writes // 2 - 1:
                time.sleep(0.01)
                target = datetime.now(timezone.utc).isoformat()
                time.sleep(0.01)
        assert target is not None
        base = s3.manifest().base
        floor = timed(lambda: s3.client.download_file(s3.bucket, base.key, str(home / "floor.db")), args.reps)
        versions = timed(lambda: reconcile(["db", "versions"], home), args.reps)
        info = timed(lambda: reconcile(["db", "info"], home), args.reps)
        pull_now = timed(lambda: reconcile(["db", "pull", "-o", "now.db", "--force"], home), args.reps)
        pull_at = timed(lambda: reconcile(["db", "pull", "--at", target, "-o", "then.db", "--force"], home), args.reps)
        began = time.perf_counter()
        reconcile(["db", "restore", "--at", target, "--auto-approve"], home)
        restore = time.perf_counter() - began
        began = time.perf_counter()
        served = runtime.get_tasks()
        next_get = time.perf_counter() - began
        assert len(served) == 100 + args.writes // 2, len(served)
        listed = s3.client.list_object_versions(Bucket=s3.bucket, Prefix=kit.KEY)
        count = sum(1 for v in listed.get("Versions", []) if v["Key"] == kit.KEY)
        return {"size": f"{seeded / MB:.0f} MB", "versions": count,
                "manifest after": f"{len(s3.raw()):,} B",
                "bare download_file of the base": f"{floor:.2f} s",
                "db versions (20 shown)": f"{versions:.2f} s", "db info": f"{info:.2f} s",
                "db pull (now)": f"{pull_now:.2f} s ({pull_now / floor:.1f}x floor)",
                "db pull --at (mid-history)": f"{pull_at:.2f} s ({pull_at / floor:.1f}x floor)",
                "db restore --at (once)": f"{restore:.2f} s ({restore / floor:.1f}x floor)",
                "runtime's next GET after it": f"{next_get:.2f} s",
                "log entries after the restore": str(len(layout.decode_manifest(s3.raw(), where="head").log))}
    finally:
        runtime.cleanup()
        s3.delete_bucket()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,64", help="comma-separated sizes in MB (default 1,64)")
    parser.add_argument("--writes", type=int, default=30, help="one-row writes before the restore (default 30)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each read-only command (median)")
    args = parser.parse_args()
    began = time.perf_counter()
    moto, url = start_moto()
    os.environ.update(kit.aws_env(url))  # the reconcile processes inherit it: the emulator, fake keys
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="db-history-", dir="/tmp") as tmp:
            for size in (int(s) for s in args.sizes.split(",")):
                rows.append(one_size(size, url, Path(tmp), args))
    finally:
        moto.terminate()
        moto.wait(10)
    for label in rows[0]:
        print(label.ljust(34) + "".join(f"{row[label]:>26}" for row in rows))
    print(f"\ntotal {time.perf_counter() - began:.0f} s (moto on loopback, {os.cpu_count()} cores, "
          f"{args.writes} writes per size)")


if __name__ == "__main__":
    main()
