"""The database object in S3: the cheap freshness probe, streamed downloads, conditional uploads.

This is the only module that talks to S3. Errors are classified here, once:
``Conflict`` (another writer got there first: never overwrite), ``BucketMissing``/``AccessDenied``
(permanent: a configuration problem), ``StoreError`` (anything else, possibly transient; botocore's
standard retry mode has already retried it).

Why the transfer manager needs event hooks: s3transfer (as of 0.19) rejects ``IfMatch`` and
``IfNoneMatch`` in ``extra_args`` (boto/boto3#4366, boto/s3transfer#371), and its upload future
does not return the new ETag. Both are plain ``PutObject`` / ``CompleteMultipartUpload`` /
``GetObject`` parameters and response fields, so a botocore hook registered for the duration of
one transfer adds the condition to the calls that need it and captures the ETag the finishing
call returns. Reading the ETag afterwards with HEAD would be a race: another writer could slip in
between.
"""
from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError
from s3transfer.subscribers import BaseSubscriber

log = logging.getLogger(__name__)

_FINISHING_CALLS = ("PutObject", "CompleteMultipartUpload")
_hook_ids = itertools.count()


class StoreError(Exception):
    """S3 did not do what was asked; the message says what, where and why."""


class Conflict(StoreError):
    """Another environment changed the object since the ETag we hold: we must not overwrite it."""


class BucketMissing(StoreError):
    """The configured bucket does not exist."""


class AccessDenied(StoreError):
    """The function's role may not do this to the object."""


@dataclass(frozen=True)
class Remote:
    """The object as S3 holds it now."""

    etag: str
    size: int


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()


class ObjectStore:
    """One S3 object (bucket + key), read and written only with preconditions."""

    def __init__(self, *, bucket: str, key: str, multipart_threshold: int, multipart_chunksize: int,
                 client: Any = None) -> None:
        self.bucket = bucket
        self.key = key
        self.where = f"s3://{bucket}/{key}"
        self.client = client or make_client()
        self._transfer = create_transfer_manager(self.client, TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=8,
            preferred_transfer_client="classic",
        ))
        self._lock = threading.Lock()  # hooks are per client: one transfer at a time

    def probe(self, etag: str | None) -> Remote | _Unchanged | None:
        """Freshness check: UNCHANGED (a 304, no body), the newer Remote, or None if there is no object.

        A conditional GET for one byte: If-None-Match makes "unchanged" a bodiless 304, and when
        the object did change the 206 carries its ETag and total size without its body.
        """
        request = {"Bucket": self.bucket, "Key": self.key, "Range": "bytes=0-0"}
        if etag:
            request["IfNoneMatch"] = etag
        try:
            response = self.client.get_object(**request)
        except ClientError as error:
            if _status(error) == 304:
                return UNCHANGED
            if _code(error) in ("NoSuchKey", "404"):
                return None
            if _code(error) == "InvalidRange":
                return self._head()  # a zero-byte object has no byte 0
            raise self._classify(error, "check") from None
        except BotoCoreError as error:
            raise StoreError(f"could not reach S3 to check {self.where}: {error}") from None
        response["Body"].read()  # drain the one byte so the connection is reused
        total = response.get("ContentRange", "").rpartition("/")[2]
        return Remote(etag=response["ETag"], size=int(total) if total.isdigit() else response["ContentLength"])

    def _head(self) -> Remote | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError as error:
            if _code(error) in ("NoSuchKey", "404"):
                return None
            raise self._classify(error, "check") from None
        return Remote(etag=response["ETag"], size=response["ContentLength"])

    def download(self, remote: Remote, dest: str) -> None:
        """Stream exactly version ``remote`` into ``dest`` (ranged, concurrent GETs, all If-Match).

        Conflict if the object changed meanwhile: the caller probes again.
        """
        try:
            # The transfer manager adds If-Match to ranged GETs itself but not to a single whole-object
            # GET (small objects), so the hook pins that one too.
            with self._lock, _CallHooks(self.client.meta.events, ("GetObject",), {"IfMatch": remote.etag}):
                self._transfer.download(self.bucket, self.key, dest, subscribers=[_KnownObject(remote)]).result()
        except S3DownloadFailedError:
            # s3transfer's translation of a 412 on a ranged If-Match GET.
            raise Conflict(f"{self.where} changed while it was being downloaded") from None
        except ClientError as error:
            if _status(error) == 412:
                raise Conflict(f"{self.where} changed while it was being downloaded") from None
            raise self._classify(error, "download") from None
        except (BotoCoreError, RetriesExceededError) as error:
            raise StoreError(f"downloading {self.where} failed: {error}") from None

    def upload(self, path: str, *, expected_etag: str | None) -> str:
        """Upload ``path`` only if S3 still holds ``expected_etag`` (None: only if there is no object).

        Returns the new ETag. Streams from disk; multipart above the threshold.
        """
        condition = {"IfMatch": expected_etag} if expected_etag else {"IfNoneMatch": "*"}
        captured: dict[str, str] = {}
        with self._lock, _CallHooks(self.client.meta.events, _FINISHING_CALLS, condition, captured):
            try:
                self._transfer.upload(path, self.bucket, self.key).result()
            except ClientError as error:
                raise self._classify(error, "upload", expected_etag=expected_etag) from None
            except BotoCoreError as error:
                raise StoreError(f"uploading to {self.where} failed: {error}") from None
        if "etag" not in captured:
            raise StoreError(f"S3 accepted the upload to {self.where} but returned no ETag")
        return captured["etag"]

    def _classify(self, error: ClientError, action: str, *, expected_etag: str | None = None) -> StoreError:
        code, status = _code(error), _status(error)
        if status == 412 or code == "ConditionalRequestConflict":
            held = f"ETag {expected_etag}" if expected_etag else "no object"
            return Conflict(f"{action} of {self.where} refused: another writer changed it since this "
                            f"environment saw {held} ({code})")
        if code in ("NoSuchKey", "404") and expected_etag:
            return Conflict(f"{action} of {self.where} refused: the object was deleted since this "
                            f"environment saw ETag {expected_etag}")
        if code == "NoSuchBucket":
            return BucketMissing(f"bucket {self.bucket!r} does not exist — check S3_BUCKET_NAME (and "
                                 f"AWS_ENDPOINT_URL / the region): `reconcile outputs` names the stack's bucket")
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return AccessDenied(f"{action} of {self.where} denied — check that the function's role "
                                f"allows s3:GetObject and s3:PutObject on it")
        message = error.response.get("Error", {}).get("Message", "")
        return StoreError(f"{action} of {self.where} failed: {code} {message}".rstrip())

    def close(self) -> None:
        self._transfer.shutdown()


class _CallHooks:
    """For the duration of one transfer: add parameters to some S3 calls and capture the ETag they return."""

    def __init__(self, events: Any, calls: tuple[str, ...], params: dict[str, str],
                 captured: dict[str, str] | None = None) -> None:
        self._events = events
        self._calls = calls
        self._params = params
        self._captured = captured
        self._id = f"canvas-runtime-{next(_hook_ids)}"

    def __enter__(self) -> "_CallHooks":
        for call in self._calls:
            self._events.register(f"before-parameter-build.s3.{call}", self._add_params, unique_id=self._id + call)
            if self._captured is not None:
                self._events.register(f"after-call.s3.{call}", self._capture_etag, unique_id=self._id + call + "<")
        return self

    def __exit__(self, *exc: object) -> None:
        for call in self._calls:
            self._events.unregister(f"before-parameter-build.s3.{call}", unique_id=self._id + call)
            if self._captured is not None:
                self._events.unregister(f"after-call.s3.{call}", unique_id=self._id + call + "<")

    def _add_params(self, params: dict[str, Any], **_: Any) -> None:
        params.update(self._params)

    def _capture_etag(self, parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("ETag"):
            self._captured["etag"] = parsed["ETag"]


class _KnownObject(BaseSubscriber):
    """Tells the transfer manager the size and ETag we already know: no HEAD, and every GET is If-Match."""

    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def on_queued(self, future: Any, **_: Any) -> None:
        future.meta.provide_transfer_size(self._remote.size)
        future.meta.provide_object_etag(self._remote.etag)


def make_client() -> Any:
    """An S3 client honouring AWS_ENDPOINT_URL and the usual credential chain, with bounded retries."""
    return boto3.session.Session().client("s3", config=BotoConfig(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=16,
    ))


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
