"""Benchmark (issue 9): what a write, a cold start, a catch-up and a compaction cost in the
page-delta layout, at database sizes 1 MB, 64 MB and 256 MB. Numbers are printed, never asserted.

Run:  python bench/write_cost.py            (full: 1, 64, 256 MB; about 5-10 minutes on 2 cores)
      python bench/write_cost.py --quick    (1 and 16 MB, fewer repetitions; about a minute)
      python bench/write_cost.py --sizes 1,64 --writes 10

Set-up. The script starts its own moto server (`moto_server`, a separate process) on 127.0.0.1
and a free port, and stops it at the end. For each size it seeds a taskboard database (WAL mode,
the `tasks` table with 100 rows, and a `filler` table of random 16 KB blobs up to the size) and
commits it in the new layout (runtime_testkit.S3.put_database: a manifest + one base). Every
runtime is the real `python -m runtime serve` with examples/taskboard/app.py
(runtime_testkit.runtime_environment). All data lives in one temporary directory under /tmp,
removed at the end; each size's buckets are deleted before the next size.

Byte counting. A runtime whose S3 traffic is counted talks to moto through a small streaming
loopback proxy (CountingProxy below) that classifies each request (PutObject, UploadPart,
CopyObject, UploadPartCopy, GetObject, ...) and counts the body bytes sent up (requests) and
down (responses) per operation and per object kind (manifest, base, log delta). "Uploaded" is
the body bytes of PutObject + UploadPart; server-side copies are counted as requests (no bytes
cross the wire). The proxy streams in 1 MB chunks, so it adds a little latency (about a
millisecond per request on loopback), but holds no object in memory.

What is measured, per size:
1. write: bytes uploaded per one-row write (POST /api/tasks) and its latency, median / p90 over
   --writes writes (through the proxy, so each write's traffic is its own);
2. cold start: `python -m runtime serve` started → first GET /api/tasks answered, side by side
   with a bare boto3 `download_file` of a same-size object and with `remote.materialize` alone
   (in this process: base download + sha256 + deltas), medians of --reps, all straight to moto
   (no proxy). The runtime's cold start also includes the interpreter and imports, quick_check,
   copying the shadow to DB_PATH and starting the app;
3. catch-up: a second runtime on the same bucket (through its own proxy) answers its next GET
   after one write by the first: latency and bytes it downloads; also after 10 writes, and a
   GET when nothing changed, for reference;
4. compaction: a runtime with DB_COMPACT_ENTRIES=5 (and DB_GC_GRACE_SECONDS=0, so garbage
   collection runs too) on the same bucket: each write's latency and upload, the writes that
   compacted shown apart;
5. adoption: the same database as a legacy single object at the key; the first runtime's start
   → first GET (adopting it), through the proxy, with its bytes.
Moto over loopback is not S3: absolute times are this machine's; the ratios are the point.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "runtime")]

import boto3  # noqa: E402
import runtime_testkit as kit  # noqa: E402

from runtime import remote  # noqa: E402
from runtime.store import ObjectStore  # noqa: E402

MB = 1024 * 1024
KEY = kit.KEY
CHUNK = 1 << 20


# -- a streaming, counting loopback proxy ----------------------------------------------------

def s3_operation(method: str, path: str, query: str, headers) -> str:
    q = parse_qs(query, keep_blank_values=True)
    copy = "x-amz-copy-source" in {name.lower() for name in headers.keys()}
    has_key = unquote(path).strip("/").count("/") >= 1
    if method == "PUT":
        if "partNumber" in q and "uploadId" in q:
            return "UploadPartCopy" if copy else "UploadPart"
        if not has_key:
            return "PUT bucket"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
        if "delete" in q:
            return "DeleteObjects"
        return "POST"
    if method == "GET":
        if not has_key:
            return "ListObjects"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
    return method


def object_kind(path: str) -> str:
    path = unquote(path)
    if ".canvas/base/" in path:
        return "base"
    if ".canvas/log/" in path:
        return "delta"
    if path.rstrip("/").endswith(KEY):
        return "manifest"
    return "other"


class Counts:
    def __init__(self) -> None:
        self.requests: dict[str, int] = defaultdict(int)
        self.up: dict[str, int] = defaultdict(int)    # request body bytes, by operation
        self.down: dict[str, int] = defaultdict(int)  # response body bytes, by operation
        self.up_kind: dict[str, int] = defaultdict(int)
        self.down_kind: dict[str, int] = defaultdict(int)

    @property
    def uploaded(self) -> int:
        return self.up["PutObject"] + self.up["UploadPart"]

    @property
    def downloaded(self) -> int:
        return self.down["GetObject"]

    @property
    def copies(self) -> int:
        return self.requests["CopyObject"] + self.requests["UploadPartCopy"]

    def summary(self) -> str:
        return ", ".join(f"{op}×{n}" for op, n in sorted(self.requests.items()))


class CountingProxy:
    """Forwards to moto; counts bytes per operation. reset() starts a new tally."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname == "127.0.0.1"
        self.upstream = (parts.hostname, parts.port)
        self.lock = threading.Lock()
        self.counts = Counts()
        proxy = self

        class Handler(_Handler):
            pass
        Handler.proxy = proxy
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> Counts:
        with self.lock:
            previous, self.counts = self.counts, Counts()
        return previous

    def record(self, operation: str, kind: str, up: int, down: int) -> None:
        with self.lock:
            self.counts.requests[operation] += 1
            self.counts.up[operation] += up
            self.counts.down[operation] += down
            self.counts.up_kind[kind] += up
            self.counts.down_kind[kind] += down

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    proxy: CountingProxy
    protocol_version = "HTTP/1.1"
    timeout = 120
    upstream_connection: http.client.HTTPConnection | None = None

    def log_message(self, *args) -> None:
        pass

    def _connection(self) -> http.client.HTTPConnection:
        if self.upstream_connection is None:
            self.upstream_connection = http.client.HTTPConnection(*self.proxy.upstream, timeout=120)
        return self.upstream_connection

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        operation = s3_operation(self.command, path, query, self.headers)
        kind = object_kind(path)
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        dropped = ("transfer-encoding", "connection", "expect")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        connection = self._connection()
        try:
            if chunked:  # rare for botocore over http; bounded by the part size
                body = self._read_chunked()
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                up = len(body)
            else:
                length = int(self.headers.get("Content-Length") or 0)
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                connection.endheaders()
                remaining = length
                while remaining:
                    data = self.rfile.read(min(CHUNK, remaining))
                    if not data:
                        break
                    connection.send(data)
                    remaining -= len(data)
                up = length - remaining
            answer = connection.getresponse()
        except (OSError, http.client.HTTPException):
            self.upstream_connection = None
            self.close_connection = True
            return
        self.send_response(answer.status)
        length_header = answer.getheader("Content-Length")
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in ("transfer-encoding", "connection")]
        down = 0
        if self.command == "HEAD" or answer.status in (204, 304):
            for name, value in kept:
                self.send_header(name, value)
            self.end_headers()
            answer.read()
        elif length_header is not None:
            for name, value in kept:
                self.send_header(name, value)
            self.end_headers()
            while data := answer.read(CHUNK):
                self.wfile.write(data)
                down += len(data)
        else:
            data = answer.read()
            down = len(data)
            for name, value in kept:
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(down))
            self.end_headers()
            self.wfile.write(data)
        self.wfile.flush()
        if answer.will_close:
            connection.close()
            self.upstream_connection = None
        self.proxy.record(operation, kind, up, down)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def finish(self) -> None:
        super().finish()
        if self.upstream_connection is not None:
            self.upstream_connection.close()


# -- the pieces ------------------------------------------------------------------------------

class Runtime(kit.RuntimeProcess):
    """RuntimeProcess with a longer wait for `serving` (a 256 MB restore through the proxy)."""

    def __init__(self, env: dict[str, str], log_path: Path, *, timeout: float = 180) -> None:
        self.env = env
        self.log_path = log_path
        self.db_path = Path(env["DB_PATH"])
        self.port = None
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "runtime", "serve", "--port", "0"], cwd=kit.REPO,
                                        env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        match = kit.wait_for(self._serving, timeout=timeout, what=f"the runtime to serve (log: {log_path})",
                             interval=0.005)
        self.port = int(match.group(1))

    def get_tasks(self) -> list:
        response = self.request("GET", "/api/tasks", timeout=300)
        if response.status != 200:
            raise RuntimeError(f"GET /api/tasks answered {response.status}: {response.body[:200]!r}\n"
                               f"{self.log()[-3000:]}")
        return response.json()

    def post_task(self, title: str) -> None:
        response = self.request("POST", "/api/tasks", json.dumps({"title": title}),
                                {"Content-Type": "application/json"}, timeout=300)
        if response.status != 201:
            raise RuntimeError(f"POST answered {response.status}: {response.body[:200]!r}\n{self.log()[-3000:]}")


def seed_database(path: Path, size: int) -> int:
    """A taskboard database (WAL) of about ``size`` bytes: 100 tasks and random filler blobs."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(kit.TASKS_SCHEMA)
    connection.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO tasks (title) VALUES (?)", [(f"seed task {n}",) for n in range(100)])
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    blob = 16 * 1024
    while connection.execute("PRAGMA page_count").fetchone()[0] * page_size + blob + 2 * page_size <= size:
        connection.executemany("INSERT INTO filler (data) VALUES (?)",
                               [(os.urandom(blob),) for _ in range(1 if size <= 4 * MB else 64)])
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path.stat().st_size


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 9 // 10) - 1)] if ordered else float("nan")


def ms(seconds: float) -> float:
    return seconds * 1000


class Bench:
    def __init__(self, moto_url: str, tmp: Path, args) -> None:
        self.moto = moto_url
        self.tmp = tmp
        self.args = args
        self.results: dict[int, dict[str, object]] = {}
        self.client = boto3.client("s3", endpoint_url=moto_url, region_name="us-west-2",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        self._homes = 0

    def home(self, label: str) -> Path:
        self._homes += 1
        path = self.tmp / f"home-{self._homes}-{label}"
        path.mkdir()
        return path

    def env(self, endpoint: str, bucket: str, home: Path, **overrides: str) -> dict[str, str]:
        return kit.runtime_environment(endpoint=endpoint, bucket=bucket, home=home, READY_TIMEOUT="60", **overrides)

    def one_size(self, size_mb: int) -> None:
        size = size_mb * MB
        row: dict[str, object] = {}
        self.results[size_mb] = row
        seed = self.tmp / f"seed-{size_mb}.db"
        actual = seed_database(seed, size)
        row["db bytes"] = actual
        print(f"\n== {size_mb} MB database ({actual:,} bytes) ==", flush=True)
        s3 = kit.S3(self.moto, f"bench-{size_mb}", self.tmp)
        s3.put_database(seed)
        self.client.upload_file(str(seed), s3.bucket, "bare/download-me.db")
        try:
            self.cold_starts(s3, row)
            self.writes_and_catch_up(s3, row)
            self.compaction(s3, row)
        finally:
            s3.delete_bucket()
        legacy = kit.S3(self.moto, f"bench-legacy-{size_mb}", self.tmp)
        try:
            self.client.upload_file(str(seed), legacy.bucket, KEY)
            self.adoption(legacy, row)
        finally:
            legacy.delete_bucket()
            seed.unlink()

    # 2. cold start vs a bare download vs materialize alone
    def cold_starts(self, s3: kit.S3, row: dict) -> None:
        reps = self.args.reps
        starts, servings = [], []
        for _ in range(reps):
            home = self.home("cold")
            started = time.perf_counter()
            process = Runtime(self.env(self.moto, s3.bucket, home), home / "rt.log")
            serving = time.perf_counter()
            try:
                process.get_tasks()
                starts.append(time.perf_counter() - started)
                servings.append(serving - started)
            finally:
                process.cleanup()
                shutil.rmtree(home)
        downloads = []
        for _ in range(reps):
            dest = self.tmp / "bare-download.db"
            started = time.perf_counter()
            self.client.download_file(s3.bucket, "bare/download-me.db", str(dest))
            downloads.append(time.perf_counter() - started)
            dest.unlink()
        materializes = []
        store = ObjectStore(bucket=s3.bucket, key=KEY, multipart_threshold=8 * MB, multipart_chunksize=8 * MB,
                            client=boto3.client("s3", endpoint_url=self.moto, region_name="us-west-2",
                                                aws_access_key_id="testing", aws_secret_access_key="testing"))
        try:
            for _ in range(reps):
                dest = self.tmp / "materialized.db"
                started = time.perf_counter()
                head = remote.read_head(store, None)
                remote.materialize(store, head.manifest, str(dest))
                materializes.append(time.perf_counter() - started)
                dest.unlink()
        finally:
            store.close()
        row["cold start → first GET (ms)"] = ms(median(starts))
        row["  of which until 'serving' (ms)"] = ms(median(servings))
        row["bare boto3 download_file (ms)"] = ms(median(downloads))
        row["remote.materialize alone (ms)"] = ms(median(materializes))
        row["cold start / download"] = median(starts) / median(downloads)
        row["materialize / download"] = median(materializes) / median(downloads)
        for label, samples in (("cold start → first GET", starts), ("bare download_file", downloads),
                               ("remote.materialize", materializes)):
            print(f"  {label:<24}{ms(median(samples)):8.0f} ms  (samples {[round(ms(s)) for s in samples]})",
                  flush=True)

    # 1. writes and 3. catch-up
    def writes_and_catch_up(self, s3: kit.S3, row: dict) -> None:
        proxy1, proxy2 = CountingProxy(self.moto), CountingProxy(self.moto)
        home1, home2 = self.home("writer"), self.home("reader")
        writer = reader = None
        try:
            writer = Runtime(self.env(proxy1.url, s3.bucket, home1), home1 / "rt.log")
            writer.get_tasks()
            started = time.perf_counter()
            reader = Runtime(self.env(proxy2.url, s3.bucket, home2), home2 / "rt.log")
            tasks = len(reader.get_tasks())
            row["2nd env cold start via proxy (ms)"] = ms(time.perf_counter() - started)
            row["  its GetObject bytes (cold)"] = proxy2.reset().downloaded
            proxy1.reset()
            latencies, uploads, requests, deltas = [], [], [], []
            for n in range(self.args.writes):
                started = time.perf_counter()
                writer.post_task(f"bench write {n}")
                latencies.append(time.perf_counter() - started)
                counts = proxy1.reset()
                uploads.append(counts.uploaded)
                deltas.append(counts.up_kind["delta"])
                requests.append(sum(counts.requests.values()))
                if n == 0:
                    print(f"  one write's S3 calls: {counts.summary()}; up by kind {dict(counts.up_kind)}")
            row["uploaded per write, median (bytes)"] = median(uploads)
            row["uploaded per write, max (bytes)"] = max(uploads)
            row["  of which the delta, median (bytes)"] = median(deltas)
            row["S3 requests per write, median"] = median(requests)
            row["write latency median (ms)"] = ms(median(latencies))
            row["write latency p90 (ms)"] = ms(p90(latencies))
            print(f"  {len(latencies)} writes: uploaded median {median(uploads):,.0f} B (max {max(uploads):,}), "
                  f"latency median {ms(median(latencies)):.1f} ms, p90 {ms(p90(latencies)):.1f} ms\n"
                  f"    latencies (ms) {[round(ms(s)) for s in latencies]}\n    uploaded (B) {uploads}", flush=True)

            # 3. the reader catches up
            proxy2.reset()
            started = time.perf_counter()
            now = len(reader.get_tasks())
            catch_ups, catch_bytes, reader_up = [time.perf_counter() - started], [proxy2.reset()], []
            assert now == tasks + self.args.writes, (now, tasks)
            first_after_many = (ms(catch_ups[0]), catch_bytes[0].downloaded)
            catch_ups, downloads = [], []
            for n in range(self.args.rounds):
                writer.post_task(f"catch-up write {n}")
                proxy2.reset()
                started = time.perf_counter()
                seen = len(reader.get_tasks())
                catch_ups.append(time.perf_counter() - started)
                counts = proxy2.reset()
                downloads.append(counts.downloaded)
                reader_up.append(counts.uploaded)
                assert seen == now + n + 1, (seen, now, n)
            unchanged = []
            for _ in range(5):
                started = time.perf_counter()
                reader.get_tasks()
                unchanged.append(time.perf_counter() - started)
            row["catch-up GET after 1 write, median (ms)"] = ms(median(catch_ups))
            row["  its GetObject bytes, median"] = median(downloads)
            row["  its upload bytes (should be 0)"] = max(reader_up) if reader_up else 0
            row[f"catch-up GET after {self.args.writes} writes (ms)"] = first_after_many[0]
            row["  its GetObject bytes (after many)"] = first_after_many[1]
            row["GET with nothing new, median (ms)"] = ms(median(unchanged))
            print(f"  catch-up after 1 write: {ms(median(catch_ups)):.1f} ms, {median(downloads):,.0f} B down; after "
                  f"{self.args.writes} writes: {first_after_many[0]:.1f} ms, {first_after_many[1]:,} B down; "
                  f"unchanged GET {ms(median(unchanged)):.1f} ms; samples (ms) {[round(ms(s)) for s in catch_ups]}",
                  flush=True)
        finally:
            for process in (writer, reader):
                if process is not None:
                    process.cleanup()
            proxy1.stop()
            proxy2.stop()
            shutil.rmtree(home1)
            shutil.rmtree(home2)

    # 4. compaction
    def compaction(self, s3: kit.S3, row: dict) -> None:
        proxy = CountingProxy(self.moto)
        home = self.home("compact")
        process = None
        try:
            before = len(s3.manifest().log)
            process = Runtime(self.env(proxy.url, s3.bucket, home, DB_COMPACT_ENTRIES="5", DB_GC_GRACE_SECONDS="0"),
                              home / "rt.log")
            process.get_tasks()
            proxy.reset()
            plain, compacting = [], []
            for n in range(self.args.compaction_writes):
                started = time.perf_counter()
                process.post_task(f"compaction write {n}")
                elapsed = time.perf_counter() - started
                counts = proxy.reset()
                entry = (elapsed, counts)
                (compacting if counts.up_kind["base"] or counts.copies else plain).append(entry)
            manifest = s3.manifest()
            row["compacting write latency, median (ms)"] = ms(median([e for e, _ in compacting]))
            row["compacting write uploaded, median (bytes)"] = median([c.uploaded for _, c in compacting])
            row["  its DeleteObjects requests (GC)"] = sum(c.requests["DeleteObjects"] for _, c in compacting)
            row["other writes latency, median (ms)"] = ms(median([e for e, _ in plain]))
            print(f"  compaction (log had {before} entries at start, DB_COMPACT_ENTRIES=5): {len(compacting)} of "
                  f"{len(compacting) + len(plain)} writes compacted: latency "
                  f"{[round(ms(e)) for e, _ in compacting]} ms, uploaded {[c.uploaded for _, c in compacting]} B; "
                  f"other writes median {ms(median([e for e, _ in plain])):.1f} ms; log now {len(manifest.log)} "
                  f"entries; calls of the first: {compacting[0][1].summary() if compacting else '-'}", flush=True)
        finally:
            if process is not None:
                process.cleanup()
            proxy.stop()
            shutil.rmtree(home)

    # adoption of a legacy single object
    def adoption(self, legacy: kit.S3, row: dict) -> None:
        proxy = CountingProxy(self.moto)
        home = self.home("adopt")
        process = None
        try:
            started = time.perf_counter()
            process = Runtime(self.env(proxy.url, legacy.bucket, home), home / "rt.log")
            process.get_tasks()
            elapsed = time.perf_counter() - started
            counts = proxy.reset()
            row["adoption: start → first GET via proxy (ms)"] = ms(elapsed)
            row["  its GetObject / uploaded bytes"] = f"{counts.downloaded:,} / {counts.uploaded:,}"
            row["  its server-side copies"] = counts.copies
            print(f"  adoption of the legacy object: {ms(elapsed):.0f} ms, {counts.downloaded:,} B down, "
                  f"{counts.uploaded:,} B up, calls: {counts.summary()}", flush=True)
            process.post_task("after adoption")
            if legacy.manifest().base is None:
                raise RuntimeError("no manifest after adoption")
        finally:
            if process is not None:
                process.cleanup()
            proxy.stop()
            shutil.rmtree(home)

    def table(self) -> None:
        sizes = list(self.results)
        labels: list[str] = []
        for row in self.results.values():
            labels += [label for label in row if label not in labels]
        width = max(len(label) for label in labels) + 2
        print("\n" + "metric".ljust(width) + "".join(f"{str(s) + ' MB':>18}" for s in sizes))
        print("-" * (width + 18 * len(sizes)))
        for label in labels:
            cells = []
            for size in sizes:
                value = self.results[size].get(label, "")
                if isinstance(value, float):
                    value = f"{value:.2f}" if "/" in label and "(" not in label else f"{value:,.0f}"
                elif isinstance(value, int):
                    value = f"{value:,}"
                cells.append(f"{value:>18}")
            print(label.ljust(width) + "".join(cells))


def start_moto() -> tuple[subprocess.Popen, str]:
    port = kit.free_port()
    url = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            if moto.poll() is not None:
                raise RuntimeError("moto_server exited") from None
            return False
    kit.wait_for(answers, timeout=30, what="moto_server")
    return moto, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 and 16 MB, fewer repetitions (~1 minute)")
    parser.add_argument("--sizes", help="comma-separated sizes in MB (default 1,64,256; quick 1,16)")
    parser.add_argument("--writes", type=int, help="one-row writes measured per size (default 20; quick 8)")
    args = parser.parse_args()
    args.sizes = [int(s) for s in (args.sizes or ("1,16" if args.quick else "1,64,256")).split(",")]
    args.writes = args.writes or (8 if args.quick else 20)
    args.reps = 2 if args.quick else 3
    args.rounds = 3 if args.quick else 5
    args.compaction_writes = 7 if args.quick else 11
    began = time.perf_counter()
    moto, url = start_moto()
    os.environ.update(kit.aws_env(url))
    try:
        with tempfile.TemporaryDirectory(prefix="write-cost-", dir="/tmp") as tmp:
            bench = Bench(url, Path(tmp), args)
            try:
                for size in args.sizes:
                    bench.one_size(size)
            finally:
                bench.table()
    finally:
        moto.terminate()
        try:
            moto.wait(10)
        except subprocess.TimeoutExpired:
            moto.kill()
            moto.wait(10)
    print(f"\ntotal {time.perf_counter() - began:.0f} s (moto on loopback, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
