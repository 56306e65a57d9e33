"""Fault matrix: `reconcile apply` from nothing, N times under each injected fault, kill -9 at every
write call, and two applies racing; prints faults × runs × outcome and the race outcomes.

The same loopback proxy as the tests (tests/faults.py) in front of a moto server on 127.0.0.1,
the contract's canvas.yaml with its build context, the fake docker on PATH. Outcomes:
  one run   apply exited 0 and the following `plan --detailed-exitcode` exited 0
  re-run    that first run did not converge, a second apply did
  failed    not converged after a second apply either (or a traceback)
  missed    the fault never fired (the matrix is wrong, not the tool)
Run: .venv/bin/python bench/fault_matrix.py [--runs 2] [--kill-runs 1] [--races 3] [--only TEXT]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
                    "AWS_DEFAULT_REGION": "us-west-2", "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull}.items():
    os.environ[name] = value
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402

from reconciler.emulator import Emulator  # noqa: E402
from tests.e2e.conftest import BUCKET, BUILD_CONTEXT, CONTRACT, FUNCTION, STACK, reconcile_command  # noqa: E402
from tests.e2e.test_faults import LOCK, MOTO_ACCEPTS_TWICE, RECORD, WRITES  # noqa: E402
from tests.fakes.harness import install  # noqa: E402
from tests.faults import CONFLICT, FaultProxy  # noqa: E402

SERVICES = ("s3", "iam", "sts", "ecr", "lambda")
FIRST_WRITE = {"s3": "CreateBucket", "iam": "CreateRole", "sts": "GetCallerIdentity", "ecr": "CreateRepository",
               "lambda": "CreateFunction"}


def write_label(service: str, operation: str, text: str | None) -> str:
    which = {LOCK: "(lock)", RECORD: "(record)"}.get(text, "(2nd)" if text and "Invoke" in text else "")
    return f"{operation}{which}"


def fault_cases() -> dict[str, list[dict]]:
    cases = {f"throttle {s}": [dict(fault="throttle", service=s, times=2)] for s in SERVICES}
    cases["throttle every create"] = [dict(fault="throttle", service=s, operation=o) for s, o in FIRST_WRITE.items()]
    for status in (500, 503):
        cases[f"{status} on each service's first write"] = [
            dict(fault="server_error", status=status, service=s, operation=o) for s, o in FIRST_WRITE.items()]
    for service, operation, text in WRITES:
        cases[f"reset before {write_label(service, operation, text)}"] = [
            dict(fault="reset_before", service=service, operation=operation, contains=text)]
    for service, operation, text in WRITES:
        refuse = CONFLICT if (service, operation) in MOTO_ACCEPTS_TWICE else None
        cases[f"lost response {write_label(service, operation, text)}"] = [
            dict(fault="reset_after", service=service, operation=operation, contains=text, refuse_retry=refuse)]
    cases["latency 3s x4 calls"] = [dict(fault="latency", delay=3.0, service=s, operation=o)
                                    for s, o in (("s3", "CreateBucket"), ("iam", "CreateRole"),
                                                 ("lambda", "CreateFunction"), ("s3", "PutObject"))]
    return cases


class Bench:
    def __init__(self, emulator_url: str, proxy: FaultProxy, home: Path):
        self.emulator_url, self.proxy, self.home = emulator_url, proxy, home
        self.work = home / "work"

    def reset(self) -> None:
        requests.post(f"{self.emulator_url}/moto-api/reset", timeout=10).raise_for_status()
        self.proxy.clear()
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir()
        shutil.copy(CONTRACT, self.work / "canvas.yaml")
        for name, text in BUILD_CONTEXT.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(reconcile_command() + list(args), cwd=cwd or self.work, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, *args: str, cwd: Path | None = None) -> subprocess.Popen:
        return subprocess.Popen(reconcile_command() + list(args), cwd=cwd or self.work, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def converged(self, apply: subprocess.CompletedProcess) -> bool:
        if apply.returncode != 0 or "Traceback" in apply.stderr:
            return False
        return self.run("plan", "--detailed-exitcode").returncode == 0

    def fault_run(self, rules: list[dict]) -> str:
        self.reset()
        added = [self.proxy.add(**rule) for rule in rules]
        first = self.run("apply", "--auto-approve")
        if not all(rule.fired for rule in added):
            return "missed"
        if self.converged(first):
            return "one run"
        return "re-run" if self.converged(self.run("apply", "--auto-approve")) else "failed"

    def kill_run(self, service: str, operation: str, text: str | None, hold: str) -> str:
        """kill -9 while the call is held; then apply (force-unlock when locked) until converged."""
        self.reset()
        rule = self.proxy.add(hold, service=service, operation=operation, contains=text, delay=20.0)
        proc = self.start("apply", "--auto-approve")
        try:
            if not rule.hit.wait(60):
                return "missed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
        finally:
            rule.cancel()
            if proc.poll() is None:
                proc.kill()
        again = self.run("apply", "--auto-approve")
        unlocked = ""
        found = re.search(r"reconcile force-unlock (\S+?)`", again.stdout + again.stderr)
        if again.returncode == 1 and found:
            self.run("force-unlock", found.group(1), "--auto-approve")
            unlocked = " after force-unlock"
            again = self.run("apply", "--auto-approve")
        return ("one run" if self.converged(again) else "failed") + unlocked

    def race_from_nothing(self) -> str:
        self.reset()
        self.proxy.add("latency", service="s3", operation="CreateBucket", times=2, delay=1.0)
        runs = [p.communicate(timeout=180) + (p.returncode,) for p in
                [self.start("apply", "--auto-approve") for _ in range(2)]]
        return self._race_outcome(runs) + f"; plan after: exit {self.run('plan', '--detailed-exitcode').returncode}"

    def race_different_changes(self) -> str:
        self.reset()
        assert self.run("apply", "--auto-approve").returncode == 0
        big, small = self.checkout("big", 3008), self.checkout("small", 1024)
        self.proxy.add("latency", service="lambda", operation="UpdateFunctionConfiguration",
                       contains='"MemorySize": 1024', delay=0.5)
        self.proxy.add("latency", service="s3", operation="PutObject", contains='"memory": 3008', delay=2.0)
        runs = [p.communicate(timeout=180) + (p.returncode,) for p in
                [self.start("apply", "--auto-approve", cwd=big), self.start("apply", "--auto-approve", cwd=small)]]
        s3 = boto3.client("s3", endpoint_url=self.emulator_url)
        lam = boto3.client("lambda", endpoint_url=self.emulator_url)
        live = lam.get_function_configuration(FunctionName=FUNCTION)["MemorySize"]
        record = json.loads(s3.get_object(Bucket=BUCKET, Key=f"canvas/{STACK}/last-applied.json")["Body"].read())
        recorded = record["desired"][f"lambda_function.{FUNCTION}"]["memory"]
        drift = [self.run("drift", cwd=here).returncode for here in (big, small)]
        return self._race_outcome(runs) + f"; record memory {recorded}, live {live}; drift exit {drift}"

    def checkout(self, name: str, memory: int) -> Path:
        here = self.home / name
        shutil.rmtree(here, ignore_errors=True)
        shutil.copytree(self.work, here)
        text = (here / "canvas.yaml").read_text()
        (here / "canvas.yaml").write_text(re.sub(r"(?m)^(\s+memory:) \d+$", rf"\1 {memory}", text, count=1))
        return here

    @staticmethod
    def _race_outcome(runs: list[tuple[str, str, int]]) -> str:
        codes = sorted(code for _, _, code in runs)
        texts = [out + err for out, err, _ in runs]
        failed = [t for t in texts if "FAIL" in t or "Traceback" in t]
        refused = [t for t in texts if re.search(rf"the stack {STACK} is locked: apply by arn:aws:", t)]
        if codes == [0, 1] and len(refused) == 1 and not failed:
            return "one applied, the other exit 1 naming the lock holder"
        if codes == [0, 0] and not failed:
            return "both exit 0 (one after the other)"
        return f"UNEXPECTED exit codes {codes}: " + " | ".join(t.strip().splitlines()[-1] for t in failed or texts)


MARK = {"one run": "1", "one run after force-unlock": "1u", "re-run": "2", "failed": "F", "missed": "M"}


def table(rows: list[tuple[str, list[str]]]) -> str:
    """One row per fault: each run's mark (1 one run, 1u one run after force-unlock, 2 re-run,
    F failed, M missed), then the counts."""
    if not rows:
        return "(no fault rows selected)"
    width = max(len(name) for name, _ in rows)
    lines = [f"{'fault':<{width}}  {'runs':<10}  outcome", "-" * (width + 50)]
    for name, outcomes in rows:
        counts = collections.Counter(outcomes)
        summary = ", ".join(f"{n}/{len(outcomes)} {label}" for label, n in counts.most_common())
        lines.append(f"{name:<{width}}  {' '.join(MARK.get(o, '?') for o in outcomes):<10}  {summary}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2, help="runs of each fault")
    parser.add_argument("--kill-runs", type=int, default=1, help="runs of each kill point")
    parser.add_argument("--races", type=int, default=3, help="runs of each race")
    parser.add_argument("--only", default="", help="only the rows whose name holds this text")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fault-matrix-") as tmp, Emulator() as emulator, \
            FaultProxy(emulator.url) as proxy, pytest.MonkeyPatch.context() as env:
        install(Path(tmp) / "fake-docker", env, endpoint=emulator.url)
        env.setenv("AWS_ENDPOINT_URL", proxy.url)  # the CLI, and the fake docker, through the proxy
        bench = Bench(emulator.url, proxy, Path(tmp))
        rows = [(name, [bench.fault_run(rules) for _ in range(args.runs)])
                for name, rules in fault_cases().items() if args.only in name]
        for hold, when in (("latency", "before"), ("hold_after", "after")):
            for service, operation, text in WRITES:
                name = f"kill -9 {when} {write_label(service, operation, text)}"
                if args.only in name:
                    rows.append((name, [bench.kill_run(service, operation, text, hold) for _ in range(args.kill_runs)]))
        print(table(rows))
        outcomes = collections.Counter(o for _, outcomes in rows for o in outcomes)
        print(f"\nall: {sum(outcomes.values())} runs: " + ", ".join(f"{n} {k}" for k, n in outcomes.most_common()))
        if "race" in args.only or not args.only:
            print("\nraces:")
            for label, race in (("from nothing", bench.race_from_nothing),
                                ("memory 3008 vs 1024", bench.race_different_changes)):
                for index in range(args.races):
                    print(f"  {label} #{index + 1}: {race()}")
    print(f"\n({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
