"""The only place that creates boto3 sessions and clients, and classifies AWS errors.

One session per run, one client per service, each created under a lock (boto3 sessions are
not thread-safe; clients are). Retries use botocore's standard mode, so throttling is absorbed
here and nowhere else: exponential backoff with jitter. Not adaptive mode: after one throttle
its client-side rate limiter drops to 0.5 requests/s for the rest of the run, which made an
apply with one throttled create take 12.6 s instead of 5.7 s (tests/e2e/test_faults.py).
"""
from __future__ import annotations

import contextlib
import copy
import os
import sys
import threading
import time
from concurrent.futures import Future
from typing import Callable, Iterable, Iterator, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions

from reconciler import __version__
from reconciler.errors import ReconcileError
from reconciler.threads import read_pool

# A hung endpoint must not mean minutes of silence (botocore's defaults are a 60 s read
# timeout per attempt). Worst case: MAX_ATTEMPTS × (CONNECT or READ timeout) plus botocore's
# backoff between attempts (at most 1 + 2 + 4 + 8 s) — under a minute; see worst_case_seconds.
MAX_ATTEMPTS = 5
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 8.0
STILL_WAITING_AFTER = 10.0


def retry_config() -> botocore.config.Config:
    return botocore.config.Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
        user_agent_extra=f"canvas-reconcile/{__version__}",
    )


def worst_case_seconds() -> float:
    """How long one call can take before it fails, when the endpoint never answers."""
    backoff = sum(min(2.0 ** attempt, 20.0) for attempt in range(MAX_ATTEMPTS - 1))
    return MAX_ATTEMPTS * max(CONNECT_TIMEOUT, READ_TIMEOUT) + backoff


class NotAwsAnswer(botocore.exceptions.BotoCoreError):
    """Something answered HTTP at the endpoint, but not as AWS does (a web server, a wrong port)."""
    fmt = "{message}"


def check_endpoint(url: str, source: str) -> str:
    """A usable endpoint URL, or one message naming where the bad one came from."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        guess = url if "://" in url else f"http://{url}"
        raise ReconcileError(f"{source} {url!r} is not an endpoint URL: write it with its scheme, "
                             f"such as {guess!r} (a local emulator) or https://… (AWS)")
    return url


def endpoint_from_environment(service: str) -> tuple[str, str] | None:
    """The endpoint botocore would take from the environment for `service`, with its variable:
    the service-specific AWS_ENDPOINT_URL_<SERVICE> first, then AWS_ENDPOINT_URL."""
    for name in (f"AWS_ENDPOINT_URL_{service.upper()}", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name], name
    return None


class Clients:
    """boto3 clients for one region/profile/endpoint, created once and reused."""

    def __init__(self, *, region: str, profile: str | None = None, endpoint_url: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.region = region
        self.endpoint_url = endpoint_url
        # Injected so tests of retries and waits never really sleep (chalice's TypedAWSClient does the same).
        self.sleep, self.clock = sleep, clock
        # Where a long step says what it is waiting for; apply gives each step its own (noting_to).
        self.notify: Callable[[str], None] = lambda message: None
        # Where "still waiting for …" goes when an endpoint is slow to answer (stderr by default).
        self.warn: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)
        if endpoint_url:
            check_endpoint(endpoint_url, "--endpoint-url")
        self._session = boto3.Session(profile_name=profile, region_name=region)
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()
        self._shared: dict[tuple, Future] | None = None
        self._waited_on: set[str] = set()  # endpoints already said to be slow (_Watch)

    @contextlib.contextmanager
    def shared_reads(self) -> Iterator[None]:
        """Within one plan's read wave the same read, asked for twice, goes to AWS once (the
        function's policy serves both permission statements). Outside it nothing is shared, so
        no answer read before a write is reused after it."""
        self._shared = {}
        try:
            yield
        finally:
            self._shared = None

    def read_once(self, key: tuple, call: Callable[[], T]) -> T:
        """call(), or the answer (or error) of the same read already made in this wave."""
        shared = self._shared
        if shared is None:
            return call()
        with self._lock:
            first = key not in shared
            if first:
                shared[key] = Future()
            future: Future = shared[key]
        if first:
            try:
                future.set_result(call())
            except BaseException as exc:  # the readers waiting on it get the same error
                future.set_exception(exc)
        return future.result()

    def noting_to(self, notify: Callable[[str], None]) -> "Clients":
        """These clients, sharing their boto3 clients and caches, with notes going to `notify`:
        each apply step gets its own, and the object the caller holds is left as it was."""
        step = copy.copy(self)
        step.notify = notify
        return step

    def is_local(self, service: str = "ecr") -> bool:
        """Whether `service` is answered on this machine (an emulator such as `reconcile local`)."""
        host = urlsplit(self.client(service).meta.endpoint_url).hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")

    def warm(self, services: Iterable[str]) -> "Clients":
        for service in services:
            self.client(service)
        return self

    def client(self, service: str):
        with self._lock:
            if service not in self._clients:
                kwargs = {"config": retry_config()}
                # Only pass an explicit endpoint; otherwise botocore honours AWS_ENDPOINT_URL
                # and the service-specific variants exactly as the AWS CLI does.
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                else:
                    from_env = endpoint_from_environment(service)
                    if from_env:
                        check_endpoint(from_env[0], from_env[1])
                client = self._session.client(service, **kwargs)
                _Watch(client, service, self).register()
                self._clients[service] = client
            return self._clients[service]

    @property
    def s3(self):
        return self.client("s3")

    @property
    def ecr(self):
        return self.client("ecr")

    @property
    def iam(self):
        return self.client("iam")

    @property
    def sts(self):
        return self.client("sts")

    @property
    def awslambda(self):
        return self.client("lambda")

    def services(self) -> dict[str, object]:
        return dict(self._clients)


class _Watch:
    """Per-client botocore hooks: say once per endpoint when an answer is slow in coming, and
    turn an answer that is not AWS's (one botocore cannot parse) into one clear error."""

    def __init__(self, client, service: str, clients: Clients):
        self.client, self.service, self.clients = client, service, clients
        self.endpoint = client.meta.endpoint_url

    def register(self) -> None:
        events = self.client.meta.events
        events.register("before-call", self.started)
        events.register("after-call", self.finished)
        events.register("after-call-error", self.failed)

    def started(self, context, **_):
        timer = threading.Timer(STILL_WAITING_AFTER, self.still_waiting)
        timer.daemon = True
        context["canvas_watch"] = timer
        timer.start()

    def still_waiting(self) -> None:
        # Once per endpoint, not per client: a plan's reads all go out at once, and five lines
        # saying the same endpoint is silent would bury the one that matters.
        with self.clients._lock:
            if self.endpoint in self.clients._waited_on:
                return
            self.clients._waited_on.add(self.endpoint)
        self.clients.warn(f"still waiting for {self.service} at {self.endpoint} "
                          f"(giving up after about {worst_case_seconds():.0f}s; Ctrl-C stops)")

    def finished(self, context, **_):
        timer = context.pop("canvas_watch", None)
        if timer:
            timer.cancel()

    def failed(self, exception, context, **_):
        self.finished(context)
        # Anything but botocore's own connection errors, raised while a response was being read,
        # is a parser failing on what came back (ResponseParserError, or KeyError on an XML page
        # without the result element AWS would send): the endpoint is not speaking AWS.
        if not isinstance(exception, botocore.exceptions.BotoCoreError):
            raise NotAwsAnswer(message=(
                f"{self.endpoint} answered, but not as AWS {self.service} does — check --endpoint-url / "
                f"AWS_ENDPOINT_URL: is it an AWS emulator (reconcile local), on the right port?")) from exception


T = TypeVar("T")


def fan_out(calls: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Run independent read calls at once; a plan costs round trips, not CPU.
    The first exception (in the order given) is raised, as a plain sequence would."""
    return {key: future.result() for key, future in at_once(calls).items()}


def at_once(calls: dict[str, Callable[[], T]]) -> dict[str, Future]:
    """Start every call together and wait for all: one round trip. Each answer or error waits in
    its future, taken in the order the caller's logic needs (the existence check first, so the
    others' "no such bucket" errors about a bucket that is not there are never raised)."""
    with read_pool(len(calls)) as pool:
        return {key: pool.submit(call) for key, call in calls.items()}


def absent_on(codes: tuple[str, ...], call: Callable[[], T]) -> T | None:
    """The call's answer, or None when AWS says the thing is not there (NotFound → None,
    at the client boundary, so the kinds never see the exception)."""
    try:
        return call()
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in codes:
            return None
        raise


def retry(call: Callable[[], T], *, clients: Clients, retryable: Callable[[BaseException], bool],
          waiting_for: str, budget: float = 120.0) -> T:
    """Retry one AWS call while `retryable` says the error is passing (IAM propagation, an
    update in progress), backing off 1, 2, 4 … 10 s within `budget` seconds; any other error,
    or the budget spent, is raised as it came."""
    deadline, delay, attempt = clients.clock() + budget, 1.0, 0
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError as exc:
            attempt += 1
            if not retryable(exc) or clients.clock() + delay > deadline:
                raise
            clients.notify(f"{waiting_for}: {error_code(exc)}; retry {attempt} in {delay:g}s")
            clients.sleep(delay)
            delay = min(delay * 2, 10.0)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError")
    return type(exc).__name__


def error_message(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Message", "") or str(exc)
    return str(exc)


def describe_connection_error(exc: BaseException) -> str | None:
    """A message a person can act on for failures that happen before AWS answers at all."""
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return ("no AWS credentials found — run `aws configure`, set AWS_PROFILE or pass --profile, "
                "or point --endpoint-url at a local emulator (with any fake keys)")
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return f"{exc} — check --profile / AWS_PROFILE against ~/.aws/config"
    if isinstance(exc, NotAwsAnswer):
        return str(exc)
    if isinstance(exc, (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
        return (f"no answer in time: {exc} ({MAX_ATTEMPTS} attempts) — check that the endpoint is up and "
                f"answering (--endpoint-url / AWS_ENDPOINT_URL) and the network")
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError)):
        return f"cannot reach AWS: {exc} — check the network, --endpoint-url / AWS_ENDPOINT_URL and --region"
    if isinstance(exc, botocore.exceptions.ClientError) and error_code(exc) in (
        "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
        "SignatureDoesNotMatch", "InvalidAccessKeyId",
    ):
        return f"{error_code(exc)}: {error_message(exc)} — refresh your AWS credentials"
    return None
