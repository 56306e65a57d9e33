"""One botocore data loader for every Session a test process makes (issue 12).

botocore gives each Session a Loader of its own, and each Loader reads again what every other
one read: endpoints.json, the partitions, each service's model, paginators and waiters
(gzipped JSON, ~10–60 ms a service), after listing the ~400 service directories of its data
path. A test process makes thousands of Sessions (every in-process ObjectStore, planner and
fixture client, every forked `reconcile` run), so that reading was a tenth of the suite's CPU.
Here the default Loader is made once and handed to every Session: what it returns is the same
parsed data a fresh Loader would have read from the same files, and botocore already shares it
between the clients of one Session. Only the default (no AWS_DATA_PATH) is shared.
"""
from __future__ import annotations

import os

import botocore.loaders
import botocore.session

PROFILE_SETTINGS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")

_original_create_loader = botocore.session.create_loader
_shared: list[botocore.loaders.Loader] = []


class _SearchPaths(list):
    """boto3 appends its own data directory to the loader of each Session it makes: once is
    enough, or the shared loader's path would grow by one per Session."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    if search_path_string is not None:
        return _original_create_loader(search_path_string)
    if not _shared:
        _shared.append(botocore.loaders.Loader(extra_search_paths=_SearchPaths()))
    return _shared[0]


def share_models() -> None:
    """From now on, every Session's data loader (without AWS_DATA_PATH) is the one shared Loader."""
    botocore.session.create_loader = _create_loader


def load_models(services: tuple[str, ...], region: str = "us-west-2") -> None:
    """Read ahead what a client of each service reads (so a process forked afterwards has it)."""
    share_models()
    # Whatever profile or config file the environment names plays no part in reading the models.
    saved = {name: os.environ.pop(name) for name in PROFILE_SETTINGS if name in os.environ}
    os.environ.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    try:
        session = botocore.session.Session()
        loader = session.get_component("data_loader")
        for service in services:
            # The model, endpoints and partitions; nothing is sent.
            session.create_client(service, region_name=region, endpoint_url="http://127.0.0.1:9",
                                  aws_access_key_id="x", aws_secret_access_key="x")
            for kind in ("paginators-1", "waiters-2"):
                if service in loader.list_available_services(kind):
                    loader.load_service_model(service, kind)
    finally:
        for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            os.environ.pop(name)
        os.environ.update(saved)
