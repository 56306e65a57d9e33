"""The only place that creates boto3 sessions and clients, and classifies AWS errors.

One session per run, one client per service, created before any worker thread starts
(boto3 sessions are not thread-safe; clients are). Retries use botocore's adaptive mode
so throttling is absorbed here and nowhere else.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from reconciler import __version__

RETRY_CONFIG = botocore.config.Config(
    retries={"mode": "adaptive", "max_attempts": 5},
    user_agent_extra=f"canvas-reconcile/{__version__}",
)


class Clients:
    """boto3 clients for one region/profile/endpoint, created once and reused."""

    def __init__(self, *, region: str, profile: str | None = None, endpoint_url: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.region = region
        self.endpoint_url = endpoint_url
        # Injected so tests of retries and waits never really sleep (chalice's TypedAWSClient does the same).
        self.sleep, self.clock = sleep, clock
        # Where a long step says what it is waiting for; apply points it at the step's output.
        self.notify: Callable[[str], None] = lambda message: None
        self._session = boto3.Session(profile_name=profile, region_name=region)
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()

    def warm(self, services: Iterable[str]) -> "Clients":
        for service in services:
            self.client(service)
        return self

    def client(self, service: str):
        with self._lock:
            if service not in self._clients:
                kwargs = {"config": RETRY_CONFIG}
                # Only pass an explicit endpoint; otherwise botocore honours AWS_ENDPOINT_URL
                # and the service-specific variants exactly as the AWS CLI does.
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self._clients[service] = self._session.client(service, **kwargs)
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


T = TypeVar("T")


def fan_out(calls: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Run independent read calls at once; a plan costs round trips, not CPU.
    The first exception (in the order given) is raised, as a plain sequence would."""
    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        futures = {key: pool.submit(call) for key, call in calls.items()}
    return {key: future.result() for key, future in futures.items()}


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
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError)):
        return f"cannot reach AWS: {exc} — check the network, --endpoint-url / AWS_ENDPOINT_URL and --region"
    if isinstance(exc, botocore.exceptions.ClientError) and error_code(exc) in (
        "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
        "SignatureDoesNotMatch", "InvalidAccessKeyId",
    ):
        return f"{error_code(exc)}: {error_message(exc)} — refresh your AWS credentials"
    return None
