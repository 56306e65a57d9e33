"""The Lambda extension that performs the final sync at SHUTDOWN, as a separate process.

Lambda sends the runtime no shutdown signal unless an external extension is registered (and
the Python runtime interface client blocks SIGTERM anyway), so this process registers for
SHUTDOWN through the Extensions API, waits on /event/next, and at SHUTDOWN uploads whatever the
runtime left unsynced, reading only the state file in /tmp (``runtime.state``). The shutdown
phase lasts 2,000 ms with one extension registered; correctness never depends on it, since
every write is synced before its response. Installed as /opt/extensions/canvas-db-sync
(``runtime/extensions/canvas-db-sync`` runs this module).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import urllib.request
from typing import TYPE_CHECKING, Any, Mapping

from runtime import logs

if TYPE_CHECKING:  # imported for real in the background thread: boto3 is slow to import
    from runtime.config import Config
    from runtime.store import ObjectStore

log = logging.getLogger("runtime.extension")

API_VERSION = "2020-01-01"
DEFAULT_NAME = "canvas-db-sync"


class ExtensionsApi:
    """The three Extensions API calls this extension needs."""

    def __init__(self, address: str) -> None:
        self.base = f"http://{address}/{API_VERSION}/extension"

    def register(self, name: str) -> str:
        """Register for SHUTDOWN only; returns the extension identifier."""
        request = urllib.request.Request(
            f"{self.base}/register", method="POST", data=json.dumps({"events": ["SHUTDOWN"]}).encode(),
            headers={"Lambda-Extension-Name": name, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            identifier = response.headers.get("Lambda-Extension-Identifier")
        if not identifier:
            raise RuntimeError("the Extensions API registered us without a Lambda-Extension-Identifier")
        return identifier

    def next_event(self, identifier: str) -> dict[str, Any]:
        """Block until the next event (only SHUTDOWN, as registered)."""
        request = urllib.request.Request(f"{self.base}/event/next",
                                         headers={"Lambda-Extension-Identifier": identifier})
        with urllib.request.urlopen(request) as response:  # no timeout: Lambda answers when there is an event
            return json.load(response)


class _Prepared:
    """The S3 client is built in the background after registering: importing boto3 takes a few
    hundred ms, which should neither delay the init phase nor eat into the 2,000 ms at shutdown."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.config: Config | None = None
        self.store: ObjectStore | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._build, name="prepare-s3", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        try:
            from runtime.config import from_env
            from runtime.store import ObjectStore

            config = from_env(self._env)
            self.store = ObjectStore(bucket=config.bucket, key=config.key,
                                     multipart_threshold=config.multipart_threshold,
                                     multipart_chunksize=config.multipart_chunksize)
            self.config = config
        except Exception as error:  # reported at SHUTDOWN, where it matters
            self.error = f"{type(error).__name__}: {error}"

    def wait(self) -> None:
        self._thread.join()


def run(*, name: str, api_address: str, env: Mapping[str, str]) -> int:
    """Register, wait for SHUTDOWN, do the final sync. Exit status 0 unless registration failed."""
    api = ExtensionsApi(api_address)
    try:
        identifier = api.register(name)
    except OSError as error:
        log.error("could not register with the Extensions API at %s: %s", api_address, error)
        return 1
    log.info("registered as %s for SHUTDOWN", name)
    prepared = _Prepared(env)
    while True:
        event = api.next_event(identifier)
        if event.get("eventType") == "SHUTDOWN":
            log.info("SHUTDOWN (%s): final sync", event.get("shutdownReason", "unknown reason"))
            return _final_sync(prepared)


def _final_sync(prepared: _Prepared) -> int:
    from runtime.replica import final_sync

    prepared.wait()
    if prepared.error or prepared.config is None or prepared.store is None:
        log.error("final sync skipped: %s", prepared.error or "the S3 client was not built")
        return 0
    try:
        final_sync(prepared.config, prepared.store)
    finally:
        prepared.store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.extension", description=__doc__.split("\n")[0])
    parser.add_argument("--name", default=DEFAULT_NAME,
                        help="extension name (must equal its file name in /opt/extensions)")
    args = parser.parse_args(argv)
    logs.configure()
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        log.error("AWS_LAMBDA_RUNTIME_API is not set: this runs only inside a Lambda execution environment")
        return 1
    return run(name=args.name, api_address=address, env=os.environ)


if __name__ == "__main__":
    sys.exit(main())
