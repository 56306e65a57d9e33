"""`reconcile demo`: the whole story against an emulator the demo starts itself, in a minute.

validate → plan → apply → plan (no changes) → a change by hand → plan (drift, exit code 2)
→ apply (repaired) → outputs → the runtime serving the sample app from the emulated bucket,
across a cold start. The reconcile steps run the real commands in-process, so their output is
exactly what a user sees. Nothing reaches AWS: every AWS variable of the user's is hidden
while the demo runs, and the demo's clients and subprocesses get the emulator and fake keys.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import boto3
import click
import yaml

from reconciler.aws import Clients
from reconciler.checks import derived_environment
from reconciler.emulator import FAKE_CREDENTIALS, HOST, Emulator
from reconciler.errors import ReconcileError
from reconciler.plan import Action
from reconciler.planner import build_plan
from reconciler.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "canvas.yaml"
TASKBOARD = ROOT / "examples" / "taskboard" / "app.py"
STEPS = 10
TASK_TITLE = "Try canvas-reconcile on a real account"
DRIFT_MEMORY = 1024
RUNTIME_START_TIMEOUT = 30.0
RUNTIME_STOP_TIMEOUT = 20.0
EXIT_INTERRUPTED = 130

Echo = Callable[..., None]


class DemoError(ReconcileError):
    """A step did not show what it should; the message says which and why."""


def run_demo(cli: click.Command, *, app: Path | None = None, ready_path: str | None = None, keep: bool = False,
             echo: Echo = click.echo) -> int:
    """Run the demo; 0 when every step showed what it should, 1 (with one clear message) otherwise.
    With keep, the emulator and the working directory stay until Ctrl-C, so every command the demo
    printed can be run again by hand. `cli` is the `reconcile` command group the steps run in this
    process (passed in: the CLI imports the demo, and the demo does not import the CLI back)."""
    started = time.monotonic()
    demo = None
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_signals_as_interrupt())
            demo = Demo(stack, cli=cli, app=_check_files(app), ready_path=ready_path or default_ready_path(app),
                        echo=echo)
            demo.run()
            if keep:
                demo.keep_running(started)
                return 0
    except (KeyboardInterrupt, click.exceptions.Abort):  # click turns Ctrl-C inside a command into Abort
        echo(click.style("\nInterrupted.", fg="red", bold=True) + " Everything the demo started is stopped.", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the newcomer's first command never ends in a traceback
        at = f" at step {demo.step} of {STEPS} ({demo.step_name})" if demo and demo.step else ""
        message = str(exc) if isinstance(exc, ReconcileError) else f"{type(exc).__name__}: {exc}"
        echo(click.style("\nError: ", fg="red", bold=True) + f"the demo failed{at}: {message}", err=True)
        echo("Everything the demo started is stopped; nothing was sent to AWS.", err=True)
        return 1
    echo(click.style(f"\nDemo complete in {time.monotonic() - started:.1f}s.", bold=True) +
         " The emulator and both runtimes are stopped; nothing was sent to AWS.")
    echo("Next: `reconcile local` runs the same emulator for your own canvas.yaml;\n"
         "with an AWS account, run `reconcile plan` where your canvas.yaml is.")
    return 0


def demo_document() -> dict:
    """The canvas.yaml the demo writes: the repository's own, without image.build (no Docker)."""
    document = yaml.safe_load(CONTRACT.read_text())
    document["image"].pop("build", None)
    return document


def default_ready_path(app: Path | None) -> str:
    """The sample app answers /healthz; another app gets the runtime's own default, as in the README."""
    return "/healthz" if app is None else "/"


def _check_files(app: Path | None) -> Path:
    """The demo reads the contract and the sample app from the clone it is installed from."""
    for path in (CONTRACT, TASKBOARD) if app is None else (CONTRACT,):
        if not path.is_file():
            raise DemoError(f"{path} is missing — run the demo from a clone of the repository, "
                            "installed with `pip install -e .`")
    return (app or TASKBOARD).resolve()


@contextlib.contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the demo through the same clean-up. Installed explicitly: a shell
    starts background jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def isolated_aws_environment(*, endpoint: str, region: str) -> Iterator[dict[str, str]]:
    """Hide every AWS_* variable of the user's (profiles, keys, endpoints, config files) and point
    this process at the emulator with fake keys; restored afterwards. Yields the variables set."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    ours = demo_environment(endpoint=endpoint, region=region)
    for name in saved:
        del os.environ[name]
    os.environ.update(ours)
    try:
        yield ours
    finally:
        for name in ours:
            os.environ.pop(name, None)
        os.environ.update(saved)


def demo_environment(*, endpoint: str, region: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true"}


def shell_setup(env: dict[str, str], *, hidden: list[str], workdir: Path) -> list[str]:
    """The lines that give a shell of the user's what the demo's commands run with."""
    first = ["AWS_ENDPOINT_URL", *FAKE_CREDENTIALS, "AWS_DEFAULT_REGION"]
    rest = [name for name in env if name not in first]
    lines = ["export " + " ".join(f"{name}={shlex.quote(env[name])}" for name in first),
             "export " + " ".join(f"{name}={shlex.quote(env[name])}" for name in rest)]
    unset = sorted({"AWS_PROFILE", *hidden} - set(env))
    return lines + ["unset " + " ".join(unset), f"cd {shlex.quote(str(workdir))}"]


def run_command(cli: click.Command, args: list[str], echo: Echo) -> int:
    """`reconcile ARGS` in this process, exactly as the CLI runs it; returns its exit code."""
    echo(click.style(f"$ reconcile {shlex.join(args)}", bold=True))
    try:
        cli.main(args=args, prog_name="reconcile", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Demo:
    def __init__(self, stack: contextlib.ExitStack, *, cli: click.Command, app: Path, ready_path: str, echo: Echo):
        self.stack, self.cli, self.app, self.ready_path, self.echo = stack, cli, app, ready_path, echo
        self.setup: list[str] = []
        self.step, self.step_name = 0, ""
        self.workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="canvas-demo-")))
        self.canvas = self.workdir / "canvas.yaml"
        self.spec: Spec  # set by prepare(), the first step
        self.emulator: Emulator  # started by prepare()
        self.runtimes: list[Runtime] = []

    def run(self) -> None:
        self.prepare()
        self.validate()
        self.first_plan()
        self.first_apply()
        self.converged_plan()
        self.change_by_hand()
        self.drift_plan()
        self.repair()
        self.outputs()
        self.serve_a_write()
        self.cold_start()

    # ---- the steps ------------------------------------------------------------------------------

    def prepare(self) -> None:
        self.canvas.write_text(yaml.safe_dump(demo_document(), sort_keys=False))
        self.spec = load_spec(str(self.canvas))
        self.emulator = self.stack.enter_context(Emulator())
        hidden = [name for name in os.environ if name.startswith("AWS_")]
        env = self.stack.enter_context(isolated_aws_environment(endpoint=self.emulator.url, region=self.spec.region))
        self.setup = shell_setup(env, hidden=hidden, workdir=self.workdir)
        self.stack.callback(self.stop_runtimes)  # before the emulator goes: a runtime's final sync needs it
        self.stack.callback(os.chdir, os.getcwd())
        os.chdir(self.workdir)
        self.echo(click.style("canvas-reconcile demo", bold=True) +
                  " — no AWS account needed, nothing leaves this machine.")
        self.say(f"An AWS emulator (moto) is running on {self.emulator.url}, on loopback only. The demo "
                 "and its subprocesses run as a shell would after these lines (your own AWS settings are "
                 "hidden from them); every `$` command below runs as shown in such a shell, and "
                 "`reconcile demo --keep` keeps the emulator up at the end to do that:")
        for line in self.setup:
            self.echo(f"    {line}")
        self.say(f"Working directory: {self.workdir}, holding the repository's canvas.yaml without its "
                 "`image.build` section: there is no Docker here, so nothing can be built. Its Function URL "
                 "is public (url.auth_type: NONE): the first command warns about that, once.")

    def validate(self) -> None:
        self.heading("validate", "check canvas.yaml, without calling AWS",
                     "Schema, AWS naming rules and limits are checked before anything is touched: a typo "
                     "fails here, with its line number, not half-way through a deployment.")
        self.expect(["validate"], 0)

    def first_plan(self) -> None:
        self.heading("plan", "compare canvas.yaml with live AWS",
                     "plan only reads. There is no state file: live AWS is the truth. The emulator is empty, "
                     "so everything is to be created.")
        self.expect(["plan"], 0)
        actions = {change.action for change in self.plan().changes}
        if actions != {Action.CREATE}:
            raise DemoError(f"the first plan should create everything, but it has {sorted(a.value for a in actions)}")

    def first_apply(self) -> None:
        self.heading("apply", "create the stack, in dependency order",
                     "apply changes only what differs and waits where AWS needs time. The function needs "
                     "its image in ECR first. There is no Docker here: instead of `docker push`, "
                     "stand-in-image creates the repository as apply would and registers a small image "
                     "manifest with PutImage (the call a push ends with) under image.tag.")
        self.expect(["stand-in-image"], 0)
        self.expect(["apply", "--auto-approve"], 0)

    def converged_plan(self) -> None:
        self.heading("plan again", "nothing left to do",
                     "Right after apply the plan is empty: no perpetual diffs. So whenever a plan shows "
                     "something, something really changed. --detailed-exitcode makes that an exit code.")
        self.expect(["plan", "--detailed-exitcode"], 0)
        self.echo("exit code 0: no changes")

    def change_by_hand(self) -> None:
        function = self.spec.function["name"]
        self.heading("a change by hand", "a colleague lowers the function's memory in the console",
                     "Nobody told canvas.yaml. The demo makes the change with plain boto3, the call the "
                     f"console makes (with the AWS CLI: aws lambda update-function-configuration "
                     f"--function-name {function} --memory-size {DRIFT_MEMORY}).")
        code = hand_change_code(function, DRIFT_MEMORY)
        self.command(shlex.join(["python", "-c", code]))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        self.echo((done.stdout + done.stderr).rstrip())
        if done.returncode != 0:
            raise DemoError(f"the change by hand exited {done.returncode}")

    def drift_plan(self) -> None:
        self.heading("plan shows the drift", "exactly that change, and exit code 2",
                     "Only the hand-made change appears. Exit code 2 is what a scheduled CI job fails on, so "
                     "drift is found the day it happens, not at the next deployment.")
        self.expect(["plan", "--detailed-exitcode"], 2)
        self.echo(click.style("exit code 2", fg="yellow", bold=True) + ": changes present (0 none, 1 error)")
        changed = [f"{c.address} {a.path}" for c in self.plan().changes if c.action is not Action.NOOP
                   for a in c.attributes]
        wanted = [f"lambda_function.{self.spec.function['name']} memory"]
        if changed != wanted:
            raise DemoError(f"the plan should show only {wanted[0]}, but it shows {changed}")

    def repair(self) -> None:
        self.heading("apply repairs it", "only the drifted attribute is written back",
                     "canvas.yaml wins: apply sets memory back to what it declares and touches nothing else.")
        self.expect(["apply", "--auto-approve"], 0)
        memory = self.client("lambda").get_function_configuration(FunctionName=self.spec.function["name"])["MemorySize"]
        if memory != self.spec.function["memory"]:
            raise DemoError(f"after apply the function has {memory} MB, not {self.spec.function['memory']}")

    def outputs(self) -> None:
        self.heading("outputs", "what you need to use the stack",
                     "Read live: the Function URL, the bucket and key of the database, the ARNs and the image "
                     "digest the function runs. moto does not serve Function URLs, so the next steps run the "
                     "very same runtime locally, against the emulated bucket.")
        self.expect(["outputs"], 0)

    def serve_a_write(self) -> None:
        self.heading("the runtime", "the sample app writes a task, and the database goes to S3",
                     "The runtime restores the SQLite database from S3, runs the app and puts the database back "
                     "in S3 before a write's response leaves, so an acknowledged write is never lost.")
        first = self.start_runtime("first")
        response = first.request("POST", "/api/tasks", {"title": TASK_TITLE}, echo=self.echo)
        if response.status != 201:
            raise DemoError(f"POST /api/tasks answered {response.status}: {response.body[:300]!r}\n{first.log_tail()}")
        self.stop_runtime(first)

    def cold_start(self) -> None:
        self.heading("a cold start", "a fresh runtime on an empty /tmp still has the task",
                     "A new Lambda sandbox starts with nothing on disk. The task is still there because the "
                     "runtime read the database back from the emulated S3 bucket (the `restored` line).")
        second = self.start_runtime("second")
        response = second.request("GET", "/api/tasks", echo=self.echo)
        tasks = json.loads(response.body or b"null") if response.status == 200 else None
        if not tasks or TASK_TITLE not in [task.get("title") for task in tasks]:
            raise DemoError(f"after the cold start GET /api/tasks answered {response.status} "
                            f"{response.body[:300]!r}, without the task created before")
        self.stop_runtime(second)

    def keep_running(self, started: float) -> None:
        """--keep: the stack stays in the emulator until Ctrl-C, for the printed commands to be tried."""
        self.echo(click.style(f"\nDemo complete in {time.monotonic() - started:.1f}s.", bold=True) +
                  f" The emulator keeps this stack on {self.emulator.url} until Ctrl-C. In another shell:")
        for line in self.setup:
            self.echo(f"    {line}")
        self.echo("and every `$` command above runs as shown. Ctrl-C here stops the emulator and forgets it all.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.echo("\nStopped: the emulator is gone and the working directory removed; nothing was sent to AWS.")

    # ---- helpers --------------------------------------------------------------------------------

    def heading(self, name: str, what: str, why: str) -> None:
        self.step, self.step_name = self.step + 1, name
        title = f"Step {self.step} of {STEPS} · {name}: {what}"
        self.echo("\n" + click.style(f"━━ {title} " + "━" * max(3, 86 - len(title)), fg="cyan", bold=True))
        self.say(why)
        self.echo("")

    def command(self, line: str) -> None:
        self.echo(click.style(f"$ {line}", bold=True))

    def say(self, text: str) -> None:
        self.echo(textwrap.fill(text, width=92))

    def expect(self, args: list[str], code: int) -> None:
        actual = run_command(self.cli, args, self.echo)
        if actual != code:
            raise DemoError(f"`reconcile {' '.join(args)}` exited {actual}, expected {code} (its output is above)")

    def client(self, service: str):
        return boto3.client(service, region_name=self.spec.region, endpoint_url=self.emulator.url)

    def plan(self):
        return build_plan(self.spec, Clients(region=self.spec.region, endpoint_url=self.emulator.url),
                          region=self.spec.region)

    def start_runtime(self, label: str) -> "Runtime":
        home = self.workdir / f"{label}-sandbox"
        home.mkdir()
        values = self.stack_values()
        derived = derived_environment({"bucket": {"name": values["bucket"], "database_key": values["database_key"]}})
        env = {**os.environ, **derived,
               "DB_PATH": str(home / Path(values["database_key"]).name),
               "APP_COMMAND": shlex.join([sys.executable, str(self.app)]), "PORT": str(free_port()),
               "READY_PATH": self.ready_path, "READY_TIMEOUT": "20", "APP_TIMEOUT": "30", "SYNC_INTERVAL": "30",
               "PYTHONUNBUFFERED": "1"}
        port = free_port()
        shown = " ".join(f"{key}={value}" for key, value in derived.items())
        self.command(f"DB_PATH={env['DB_PATH']} \\\n  {shown} \\\n  APP_COMMAND={shlex.quote(env['APP_COMMAND'])} "
                     f"PORT={env['PORT']} READY_PATH={env['READY_PATH']} \\\n  "
                     f"python -m runtime serve --port {port}")
        runtime = Runtime.start(env=env, port=port, cwd=self.workdir, log_path=self.workdir / f"{label}-runtime.log")
        self.runtimes.append(runtime)
        self.echo(f"runtime pid {runtime.pid} started (it and its app in their own process group)")
        runtime.wait_serving(self.echo)
        return runtime

    def stop_runtime(self, runtime: "Runtime") -> None:
        self.echo(f"stopping the runtime (SIGTERM to pid {runtime.pid}) …")
        code = runtime.stop()
        runtime.show_new_log(self.echo)
        if code != 0:
            raise DemoError(f"the runtime exited with code {code} after SIGTERM\n{runtime.log_tail()}")
        self.echo(f"runtime pid {runtime.pid} exited 0")

    def stop_runtimes(self) -> None:
        for runtime in self.runtimes:
            runtime.kill()

    def stack_values(self) -> dict:
        from reconciler.outputs import read_outputs
        from reconciler.planner import discover_target

        clients = Clients(region=self.spec.region, endpoint_url=self.emulator.url)
        return read_outputs(self.spec, clients, target=discover_target(clients, self.spec.region))


def hand_change_code(function: str, memory: int) -> str:
    """The colleague's console change as a Python one-liner: boto3 is installed wherever reconcile is."""
    return ('import boto3; answer = boto3.client("lambda").update_function_configuration('
            f'FunctionName={json.dumps(function)}, MemorySize={memory}); print("MemorySize:", answer["MemorySize"])')


@dataclass
class Response:
    status: int
    body: bytes


def curl_command(method: str, url: str, headers: dict[str, str], data: bytes | None) -> str:
    """The curl line that sends exactly what the demo sends, quoted for a POSIX shell."""
    words = ["curl", "-X", method, url]
    for name, value in headers.items():
        words += ["-H", f"{name}: {value}"]
    if data is not None:
        words += ["-d", data.decode()]
    return shlex.join(words)


class Runtime:
    """`python -m runtime serve` in its own process group (it and its app), logging to a file."""

    def __init__(self, process: subprocess.Popen, *, port: int, log_path: Path, log_file):
        self.process, self.port, self.log_path, self._log_file = process, port, log_path, log_file
        self.pid = process.pid
        self._shown = 0

    @classmethod
    def start(cls, *, env: dict[str, str], port: int, cwd: Path, log_path: Path) -> "Runtime":
        log_file = open(log_path, "wb")
        process = subprocess.Popen([sys.executable, "-m", "runtime", "serve", "--port", str(port)], cwd=cwd, env=env,
                                   stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        return cls(process, port=port, log_path=log_path, log_file=log_file)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 15) -> str:
        return "its log ends:\n" + "\n".join("    " + line for line in self.log().splitlines()[-lines:])

    def show_new_log(self, echo: Echo) -> None:
        text = self.log()
        for line in text[self._shown:].splitlines():
            echo("  │ " + re.sub(r"^\S+ \S+ (INFO|WARNING|ERROR) [\w.]+: ",
                               lambda m: "" if m[1] == "INFO" else f"{m[1]}: ", line))
        self._shown = len(text)

    def wait_serving(self, echo: Echo) -> None:
        deadline = time.monotonic() + RUNTIME_START_TIMEOUT
        while "serving on http://" not in self.log():
            if self.process.poll() is not None:
                raise DemoError(f"the runtime exited with code {self.process.returncode} before serving; "
                                f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise DemoError(f"the runtime did not serve within {RUNTIME_START_TIMEOUT:g}s; {self.log_tail()}")
            time.sleep(0.05)
        self.show_new_log(echo)
        failed = re.search(r"cold start failed; [^:]*: (.*?)(; its output:)?$", self.log(), re.MULTILINE)
        if failed:
            raise DemoError(f"the runtime's cold start failed: {failed[1]} (the runtime's log is above)")
        app = re.search(r"app ready on port (\d+) \(pid (\d+)\)", self.log())
        if app is None:
            raise DemoError(f"the runtime serves, but its log never said the app was ready; {self.log_tail()}")
        echo(f"app pid {app[2]} on port {app[1]}; the runtime serves on http://{HOST}:{self.port}")

    def request(self, method: str, path: str, body: object | None = None, *, echo: Echo) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        echo(click.style("$ " + curl_command(method, f"http://{HOST}:{self.port}{path}", headers, data), bold=True))
        connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            answer = connection.getresponse()
            response = Response(answer.status, answer.read())
        finally:
            connection.close()
        echo(f"{response.status} {response.body.decode(errors='replace')[:300]}")
        self.show_new_log(echo)
        return response

    def stop(self) -> int:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.process.wait(RUNTIME_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DemoError(f"the runtime did not stop within {RUNTIME_STOP_TIMEOUT:g}s of SIGTERM; "
                            "it was killed") from None

    def kill(self) -> None:
        """Make sure nothing of this runtime is left: it, and its app in the same process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self._log_file.close()
