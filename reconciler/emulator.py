"""The local AWS emulator behind `reconcile demo`, `reconcile local` and the tests: moto in
server mode on 127.0.0.1, and `register_image`, a stand-in for `docker push`.

moto is imported only when an emulator starts, so the other commands do not pay for it.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import signal
import socket
import threading
from typing import Callable, Iterable

from reconciler.errors import ReconcileError

HOST = "127.0.0.1"  # loopback only: the emulator accepts any credentials, so nobody else may reach it
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# The AWS managed policies the contract, the demo and the tests attach. moto otherwise builds
# all ~1,300 it knows each time an IAM backend starts (about 2 s on a small machine).
MANAGED_POLICIES_USED = ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", "AmazonS3ReadOnlyAccess")


class EmulatorError(ReconcileError):
    """The emulator could not start (the port is taken, or moto failed)."""


def configure_moto() -> None:
    """What moto must see before it builds a backend: managed policies exist (a role attaches
    AWSLambdaBasicExecutionRole), and a container-image function needs its image in moto's ECR
    (as in AWS) instead of a stub."""
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    os.environ["MOTO_LAMBDA_STUB_ECR"] = "FALSE"


def trim_managed_policies(names: Iterable[str] = MANAGED_POLICIES_USED) -> None:
    """Cut moto's managed-policy data to `names`; IAM backends built afterwards hold only those."""
    import moto.iam.models

    everything = json.loads(moto.iam.models.aws_managed_policies_data)
    moto.iam.models.aws_managed_policies_data = json.dumps({name: everything[name] for name in names
                                                            if name in everything})


class Emulator:
    """moto's server on 127.0.0.1 in a background thread; a context manager that stops it.

    port=0 picks a free port. With `managed_policies` None, moto keeps every AWS managed policy
    (for people trying their own canvas.yaml; unless an earlier emulator in this process trimmed
    them); otherwise only those named."""

    def __init__(self, *, port: int = 0, managed_policies: Iterable[str] | None = MANAGED_POLICIES_USED):
        self.requested_port = port
        self.managed_policies = managed_policies
        self._server = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise EmulatorError("the emulator is not running")
        return self._server.get_host_and_port()[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> "Emulator":
        configure_moto()
        if self.managed_policies is not None:
            trim_managed_policies(self.managed_policies)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
        _check_port_free(self.requested_port)
        server = _moto_server(self.requested_port)
        server.start()
        if server.error is not None:
            raise EmulatorError(_describe_start_error(server.error, self.requested_port))
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _moto_server(port: int):
    import moto.backends
    from moto.server import ThreadedMotoServer

    # moto's server lists its own package directory (and stats each entry) on every request to
    # find the service a host names; the directory does not change while it runs.
    if not isinstance(moto.backends.list_of_moto_modules, functools.partial):
        modules = tuple(moto.backends.list_of_moto_modules())
        moto.backends.list_of_moto_modules = functools.partial(tuple, modules)

    class MotoServer(ThreadedMotoServer):
        """ThreadedMotoServer that reports a failed bind (the port taken) instead of leaving
        start() waiting forever for a server that will never be ready."""

        error: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except (OSError, SystemExit) as exc:  # werkzeug exits (SystemExit) when it cannot bind
                self.error = exc
                self._server_ready_event.set()

    return MotoServer(ip_address=HOST, port=port, verbose=False)


def _check_port_free(port: int) -> None:
    """Fail with a clear message before moto does: werkzeug prints its own and exits its thread."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is fine
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise EmulatorError(_describe_start_error(exc, port)) from None


def _describe_start_error(error: BaseException, port: int) -> str:
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return (f"port {port} on {HOST} is already in use — stop whatever listens there, "
                "or choose another port with --port")
    reason = error.strerror if isinstance(error, OSError) and error.strerror else "see the message above"
    return f"cannot listen on {HOST}:{port}: {reason}"


def serve_in_foreground(*, port: int, echo: Callable[..., None]) -> None:
    """`reconcile local`: the emulator on 127.0.0.1:port until Ctrl-C or SIGTERM.

    Every AWS managed policy is kept here (a canvas.yaml of one's own may attach any), so the
    first IAM call takes a couple of seconds while moto loads them."""
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Emulator(port=port, managed_policies=None) as emulator:
            for line in local_instructions(emulator.url):
                echo(line)
            while not stop.wait(0.5):
                pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    echo("Stopped; the emulator's resources are gone.")


def local_instructions(url: str) -> list[str]:
    return [
        f"AWS emulator (moto) listening on {url} — loopback only, in memory; Ctrl-C stops it.",
        "In another shell, point the AWS SDKs, the AWS CLI and reconcile at it with fake credentials:",
        "",
        f"  export AWS_ENDPOINT_URL={url}",
        *(f"  export {name}={value}" for name, value in FAKE_CREDENTIALS.items()),
        "  export AWS_DEFAULT_REGION=us-west-2   # for the AWS CLI and boto3; reconcile uses canvas.yaml's region",
        "  unset AWS_PROFILE",
        "",
        "then, in the directory of your canvas.yaml:",
        "",
        "  reconcile stand-in-image   # moto's ECR has no registry for docker push: a placeholder image instead",
        "  reconcile plan",
        "  reconcile apply",
        "",
    ]


# ---- a stand-in for `docker push` -------------------------------------------------------------
#
# `register_image` puts a small Docker v2 schema-2 manifest under a tag with ECR's PutImage,
# which is what a push ends with. The digest returned is the one ECR reports, never one
# computed here: real ECR takes the sha256 of the manifest bytes, while moto hashes the
# layers' digests joined together.
#
# Real ECR refuses a manifest whose layers were never uploaded (LayersNotFoundException);
# moto does not check, which is what lets this skip the blob uploads. So it works against
# the emulator only.

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_TAR_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_manifest(content: bytes) -> str:
    """A one-layer schema-2 manifest whose config and layer digests both derive from `content`."""
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [_sha256(content)]},
    }, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        # moto's Lambda reads config.size as the function's CodeSize.
        "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": _sha256(config)},
        "layers": [{"mediaType": LAYER_TAR_GZIP, "size": len(content), "digest": _sha256(content)}],
    }
    return json.dumps(manifest, indent=3)


def register_image(ecr_client, repository: str, tag: str, content: bytes) -> str:
    """Put an image built from `content` under `tag` (moving the tag if it exists) and return
    the digest ECR reports for it (`sha256:…`). Different content gives a different digest."""
    answer = ecr_client.put_image(repositoryName=repository, imageTag=tag, imageManifest=image_manifest(content),
                                  imageManifestMediaType=MANIFEST_V2)
    return answer["image"]["imageId"]["imageDigest"]

