"""Benchmarks for the runtime (not collected by pytest): ``python tests/runtime/bench_runtime.py``.

Measures, against a local moto server (so S3 latency here is loopback, not AWS's):
- the freshness check (conditional GET answered 304) on its own;
- what the runtime adds to a read and to a write, compared with calling the app directly;
- sync time (backup-API snapshot + conditional PUT) for a small database;
- restore and sync of a large database through the transfer manager, with the peak memory they
  add (streaming means far less than the database size);
- the extension's final sync, from SHUTDOWN to exit (Lambda allows 2,000 ms).
Numbers are printed, never asserted.
"""
from __future__ import annotations

import http.client
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from runtime_testkit import (  # noqa: E402
    S3,
    RuntimeProcess,
    aws_env,
    free_port,
    runtime_environment,
    serve_fake_extensions_api,
    start_extension,
    wait_for,
)

from runtime.config import Config  # noqa: E402
from runtime.replica import Replica  # noqa: E402
from runtime.store import ObjectStore  # noqa: E402

MB = 1024 * 1024


def timed(function, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"  {label:<52} median {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ordered)})")


def request(port: int, method: str, target: str, body: bytes | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    connection.request(method, target, body, headers)
    status = connection.getresponse().status
    connection.close()
    return status


def bench_requests(endpoint: str, home: Path) -> None:
    s3 = S3(endpoint, "bench-requests", home)
    process = RuntimeProcess(runtime_environment(endpoint=endpoint, bucket=s3.bucket, home=home), home / "rt.log")
    app_port = int(process.env["PORT"])
    try:
        for n in range(100):
            request(process.port, "POST", "/api/tasks", json.dumps({"title": f"task {n}"}).encode())
        size = os.path.getsize(s3.download())
        print(f"requests (taskboard, 100 tasks, object {size // 1024} KB):")
        store = ObjectStore(bucket=s3.bucket, key=s3.key, multipart_threshold=8 * MB, multipart_chunksize=8 * MB)
        etag = s3.etag()
        store.probe(etag)
        report("freshness check alone (GET If-None-Match -> 304)", timed(lambda: store.probe(etag), 200))
        store.close()
        report("GET /api/tasks straight to the app", timed(lambda: request(app_port, "GET", "/api/tasks"), 200))
        report("GET /api/tasks through the runtime", timed(lambda: request(process.port, "GET", "/api/tasks"), 200))
        body = json.dumps({"title": "bench"}).encode()
        report("POST /api/tasks straight to the app (no sync)",
               timed(lambda: request(app_port, "POST", "/api/tasks", body), 50))
        report("POST /api/tasks through the runtime (synced)",
               timed(lambda: request(process.port, "POST", "/api/tasks", body), 50))
    finally:
        process.cleanup()


def make_database(path: Path, size_mb: int) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
    chunk = os.urandom(MB // 4)
    connection.executemany("INSERT INTO blobs (data) VALUES (?)", [(chunk,)] * (size_mb * 4))
    connection.commit()
    connection.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_large(endpoint: str, home: Path, size_mb: int) -> None:
    s3 = S3(endpoint, f"bench-large-{size_mb}", home)
    seed = home / "large-seed.db"
    make_database(seed, size_mb)
    s3.client.upload_file(str(seed), s3.bucket, s3.key)
    seed.unlink()
    config = Config(bucket=s3.bucket, key=s3.key, db_path=str(home / "large" / "db.sqlite"), app_command=("x",),
                    port=0, ready_path="/", sync_interval=0)
    store = ObjectStore(bucket=s3.bucket, key=s3.key, multipart_threshold=8 * MB, multipart_chunksize=8 * MB)
    replica = Replica(config, store)
    print(f"large database ({size_mb} MB, 8 MB parts):")
    tracemalloc.start()
    started = time.perf_counter()
    replica.restore()
    restore_ms = (time.perf_counter() - started) * 1000
    restore_peak = tracemalloc.get_traced_memory()[1] / MB
    tracemalloc.reset_peak()
    app = sqlite3.connect(config.db_path, isolation_level=None)
    app.execute("INSERT INTO blobs (data) VALUES (x'00')")
    replica.note_changes()
    started = time.perf_counter()
    outcome = replica.sync()
    sync_ms = (time.perf_counter() - started) * 1000
    sync_peak = tracemalloc.get_traced_memory()[1] / MB
    tracemalloc.stop()
    print(f"  restore (base + deltas, checked, quick_check)           {restore_ms:8.0f} ms   "
          f"peak Python heap {restore_peak:5.1f} MB")
    print(f"  sync ({outcome.value}: a one-row page delta + manifest)       {sync_ms:8.0f} ms   "
          f"peak Python heap {sync_peak:5.1f} MB")
    print(f"  bench process peak RSS (runtime code only; moto is another process): {peak_rss_mb():.0f} MB")
    app.close()
    replica.close()
    store.close()


def bench_extension(endpoint: str, home: Path) -> None:
    s3 = S3(endpoint, "bench-extension", home)
    env = runtime_environment(endpoint=endpoint, bucket=s3.bucket, home=home, app=HERE / "apps" / "probe_app.py",
                              GATE_DIR=str(home), SYNC_INTERVAL="3600")
    process = RuntimeProcess(env, home / "ext-rt.log")
    for n in range(100):
        request(process.port, "POST", "/notes", f"note {n}".encode())
    request(process.port, "GET", "/touch")  # unsynced
    process.kill9()
    api = serve_fake_extensions_api()
    extension = start_extension(env, api, home / "ext.log")
    wait_for(lambda: api.next_calls, timeout=20, what="registration")
    started = time.perf_counter()
    api.shutdown()
    extension.wait(30)
    print("extension (small database, one unsynced change):")
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"  SHUTDOWN -> final sync uploaded -> exit             {elapsed_ms:8.0f} ms   (budget 2000 ms)")
    process.cleanup()


def main() -> None:
    # moto runs in its own process so that this process's memory is the runtime's alone.
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(aws_env(endpoint))
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    size_mb = int(os.environ.get("BENCH_LARGE_MB", "64"))
    try:
        wait_for(lambda: _answers(port), timeout=30, what="moto_server")
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            bench_requests(endpoint, home)
            bench_large(endpoint, home, size_mb)
            bench_extension(endpoint, home)
    finally:
        moto.terminate()
        moto.wait(10)


def _answers(port: int) -> bool:
    try:
        return request(port, "GET", "/moto-api/") < 500
    except OSError:
        return False


if __name__ == "__main__":
    main()
