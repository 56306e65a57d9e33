"""Runtime configuration, read once from the environment (the function's configuration)."""
from __future__ import annotations

import os
import posixpath
import shlex
import sys
from dataclasses import dataclass
from typing import Mapping

# Locally the sample app runs with this very interpreter; the image sets APP_COMMAND itself.
_SAMPLE_APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "examples", "taskboard", "app.py")
DEFAULT_APP_COMMAND = (sys.executable, _SAMPLE_APP)
# How long the database's history stays rebuildable by default (DB_HISTORY_SECONDS): seven days.
HISTORY_SECONDS = 7 * 24 * 3600.0


class ConfigError(Exception):
    """The environment does not describe a runnable deployment."""


@dataclass(frozen=True)
class Config:
    bucket: str
    key: str
    db_path: str
    app_command: tuple[str, ...]
    port: int | None  # None: the runtime gives the app a free port
    ready_path: str
    sync_interval: float
    ready_timeout: float = 30.0
    app_timeout: float = 60.0
    multipart_threshold: int = 8 * 1024 * 1024
    multipart_chunksize: int = 8 * 1024 * 1024
    # Requests Lambda may run at once in this environment (Lambda Managed Instances set it): the
    # runtime refuses to serve above 1, see core.Runtime.start.
    max_concurrency: int = 1
    # Compaction folds the log into a new base once it holds this many entries (runtime/DESIGN.md).
    compact_entries: int = 100
    # Unreferenced blobs are deleted only this long after they stopped being referenced (or were
    # written, for ones never referenced): longer than Lambda's longest request (15 min).
    gc_grace: float = 20 * 60.0
    # The database's history stays rebuildable this long (every manifest version written since):
    # blobs a version in it names are kept, whatever the grace (runtime/DESIGN.md, "History").
    history: float = HISTORY_SECONDS

    @property
    def state_path(self) -> str:
        """Where the runtime leaves its sync state for the shutdown extension."""
        return self.db_path + ".sync-state.json"

    @property
    def shadow_path(self) -> str:
        """The plain file holding exactly the state S3 holds (runtime/DESIGN.md, "the shadow")."""
        return self.db_path + ".shadow"

    @property
    def snapshot_path(self) -> str:
        return self.db_path + ".snapshot"

    @property
    def download_path(self) -> str:
        return self.db_path + ".download"


def from_env(env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from environment variables; ConfigError names the variable at fault."""
    env = os.environ if env is None else env
    bucket = _required(env, "S3_BUCKET_NAME")
    key = _required(env, "S3_DB_KEY")
    db_path = env.get("DB_PATH") or posixpath.join("/tmp", posixpath.basename(key))
    return Config(
        bucket=bucket,
        key=key,
        db_path=os.path.abspath(db_path),
        app_command=_command(env["APP_COMMAND"]) if env.get("APP_COMMAND") else DEFAULT_APP_COMMAND,
        port=_number(env, "PORT", None, int),
        ready_path=_path(env.get("READY_PATH") or "/"),
        sync_interval=_number(env, "SYNC_INTERVAL", 30.0, float),
        ready_timeout=_number(env, "READY_TIMEOUT", 30.0, float),
        app_timeout=_number(env, "APP_TIMEOUT", 60.0, float),
        multipart_threshold=_number(env, "S3_MULTIPART_THRESHOLD", 8 * 1024 * 1024, int),
        multipart_chunksize=_number(env, "S3_MULTIPART_CHUNKSIZE", 8 * 1024 * 1024, int),
        max_concurrency=_number(env, "AWS_LAMBDA_MAX_CONCURRENCY", 1, int),
        compact_entries=max(1, _number(env, "DB_COMPACT_ENTRIES", 100, int)),
        gc_grace=_number(env, "DB_GC_GRACE_SECONDS", 20 * 60.0, float),
        history=_number(env, "DB_HISTORY_SECONDS", HISTORY_SECONDS, float),
    )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set — the runtime needs it to find the database in S3")
    return value


def _number(env: Mapping[str, str], name: str, default, kind):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {'a whole number' if kind is int else 'a number'}") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value


def _command(raw: str) -> tuple[str, ...]:
    try:
        parts = tuple(shlex.split(raw))
    except ValueError as error:
        raise ConfigError(f"APP_COMMAND cannot be parsed: {error}") from None
    if not parts:
        raise ConfigError("APP_COMMAND is empty")
    return parts


def _path(raw: str) -> str:
    return raw if raw.startswith("/") else "/" + raw
