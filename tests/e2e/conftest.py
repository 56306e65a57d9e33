"""End-to-end helpers: the real `reconcile` command, run as a user runs it, against moto on loopback."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

from reconciler.kinds import KINDS
from reconciler.spec import load_spec
from reconciler.target import Target
from tests.ecr_images import register_image
from tests.faults import FaultProxy
from tests.forkserver import ForkServer
from tests.local_net import answers

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "canvas.yaml"
# The contract's names, for the tests of the whole stack.
STACK, BUCKET, DB_KEY = "code-canvas-astro", "code-canvas-astro-db", "database/taskManagement.db"
REPO, TAG = "python-repl-container-lambda", "v1.2"
ROLE, FUNCTION = "code-canvas-astro-lambda-role", "code-canvas-astro-lambda"


def contract_resources() -> int:
    """How many resources the contract declares, counted by the kinds (so a new kind moves it)."""
    return resources_in(CONTRACT)


def resources_in(canvas: Path) -> int:
    """How many resources a canvas.yaml declares, counted by the kinds."""
    spec = load_spec(canvas)
    target = Target(region=spec.region, account="123456789012")
    wanted = [kind.desired(spec, target) for kind in KINDS]
    return sum(len(want) if isinstance(want, list) else 1 for want in wanted if want is not None)


@dataclass
class Run:
    code: int
    out: str
    err: str


def reconcile_command() -> list[str]:
    """The installed console script, as a user runs it (the tests that must start a fresh
    interpreter use this; the rest use `forkserver`)."""
    script = Path(sys.executable).parent / "reconcile"
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


@pytest.fixture(scope="session")
def forkserver():
    """`reconcile` runs forked from one process that has imported the tool once
    (tests/forkserver.py): each is its own process, without the ~0.5 s start-up."""
    server = ForkServer(reconcile_command()[0])
    yield server
    server.close()


@pytest.fixture
def start_reconcile(forkserver, tmp_path):
    """Start `reconcile ARGS` in tmp_path (or cwd) with piped stdout/stderr; a Popen-like run."""
    def start(*args: str, cwd: Path | None = None, stdin=subprocess.DEVNULL, env: dict | None = None):
        return forkserver.popen(list(args), cwd=cwd or tmp_path, env=env, stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return start


@pytest.fixture
def reconcile(start_reconcile):
    """Run `reconcile ARGS` in tmp_path (where canvas.yaml is), returning code, stdout, stderr."""
    def run(*args: str, input: str | None = None, timeout: float = 120) -> Run:
        proc = start_reconcile(*args, stdin=subprocess.PIPE)
        try:
            out, err = proc.communicate(input or "", timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # as subprocess.run does
            raise
        return Run(proc.returncode, out, err)
    return run


# What the contract's image.build (Dockerfile.lambda in ".") hashes: a small app beside
# canvas.yaml, which is itself left out of the context, as a project's .dockerignore should.
BUILD_CONTEXT = {
    "Dockerfile.lambda": ('FROM public.ecr.aws/lambda/python:3.12\nCOPY app/ ${LAMBDA_TASK_ROOT}/app/\n'
                          'CMD ["app.handler"]\n'),
    "app/app.py": "def handler(event, context):\n    return {'statusCode': 200}\n",
    ".dockerignore": "canvas.yaml\n",
}


@pytest.fixture
def canvas_file(tmp_path):
    """The contract canvas.yaml copied into the working directory, with a build context beside
    it; returns its path."""
    path = tmp_path / "canvas.yaml"
    shutil.copy(CONTRACT, path)
    for name, text in BUILD_CONTEXT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return path


@pytest.fixture
def aws(moto_endpoint):
    """Plain boto3 against the emulator, as a colleague with the console or CLI would use it."""
    class Aws:
        s3 = boto3.client("s3", region_name="us-west-2")
        ecr = boto3.client("ecr", region_name="us-west-2")
        iam = boto3.client("iam", region_name="us-west-2")
        lambda_ = boto3.client("lambda", region_name="us-west-2")
        sts = boto3.client("sts", region_name="us-west-2")
    return Aws


@pytest.fixture
def dead_endpoint():
    """A loopback URL where nothing listens: any AWS call made against it fails loudly."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def prebuilt_canvas(canvas_file):
    """The contract canvas.yaml without `image.build`: the image is pushed by other means
    (tests/ecr_images.register_image), so the tool must never try to build it."""
    document = yaml.safe_load(canvas_file.read_text())
    del document["image"]["build"]
    canvas_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return canvas_file


@pytest.fixture
def deployed(prebuilt_canvas, reconcile, aws) -> str:
    """The whole stack applied with one `apply`; returns the digest of the image it runs.

    The repository is made first, tagged as apply would make it, so that an image can be
    pushed into it before the function is created."""
    aws.ecr.create_repository(repositoryName=REPO, imageScanningConfiguration={"scanOnPush": True},
                              tags=[{"Key": "canvas:stack", "Value": STACK}])
    digest = register_image(aws.ecr, REPO, TAG, b"the first image")
    run = reconcile("apply", "--auto-approve")
    assert run.code == 0, run.out + run.err
    return digest


@pytest.fixture
def fault_proxy(moto_endpoint, monkeypatch):
    """tests/faults.FaultProxy in front of the emulator, on loopback, with AWS_ENDPOINT_URL
    pointing at it (so the CLI's every call passes through it); stopped at teardown."""
    with FaultProxy(moto_endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        port = int(proxy.url.rpartition(":")[2])
        yield proxy
    assert not answers(port), "the fault proxy still answers after it was stopped"


# -- the app's database: a versioned bucket and the runtime's replica in this process ---------

@pytest.fixture
def bucket(aws):
    """The contract's bucket, versioned as canvas.yaml declares it; returns the S3 client."""
    aws.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return aws.s3


@pytest.fixture
def replica(bucket, tmp_path):
    """Make the runtime's replica (in process) of the contract's database, one environment per
    name, writing through the page-delta layout as an app's runtime would; keyword arguments
    are Config settings (compact_entries, gc_grace, history, ...)."""
    from runtime.config import Config
    from runtime.replica import Replica
    from runtime.store import ObjectStore

    made = []

    def make(name: str = "env", **settings):
        config = Config(bucket=BUCKET, key=DB_KEY, db_path=str(tmp_path / name / "db.sqlite"), app_command=("x",),
                        port=0, ready_path="/", sync_interval=30, **settings)
        store = ObjectStore(bucket=BUCKET, key=DB_KEY, multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
        made.append((Replica(config, store), store))
        return made[-1][0]

    yield make
    for each, store in made:
        each.close()
        store.close()


def commit_rows(environment, titles) -> None:
    """One committed, shipped write per title into the tasks table (created as the taskboard does)."""
    import sqlite3

    from runtime.replica import Outcome
    from tests.runtime.runtime_testkit import TASKS_SCHEMA

    app = sqlite3.connect(environment.config.db_path, isolation_level=None)
    app.execute(TASKS_SCHEMA)
    for title in titles:
        app.execute("INSERT INTO tasks (title) VALUES (?)", (title,))
        environment.note_changes()
        assert environment.sync() is Outcome.SYNCED
        environment.pin()
    app.close()
