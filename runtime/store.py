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
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError
from s3transfer.subscribers import BaseSubscriber

from runtime import layout

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


@dataclass(frozen=True)
class Fetched:
    """The head of the object at the database key: all of a manifest, or the start of a legacy file."""

    etag: str
    size: int  # the whole object's
    head: bytes  # its first bytes (all of them when size <= len(head))

    @property
    def complete(self) -> bool:
        return len(self.head) == self.size


# A manifest is a few KB; reading this much at once gets all of one and only the start of a
# legacy single-object database (which is then downloaded the streamed way).
MANIFEST_READ_BYTES = 1024 * 1024


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
        found = self._conditional_head(etag, 1, action="check")
        return found if not isinstance(found, Fetched) else Remote(etag=found.etag, size=found.size)

    def fetch(self, etag: str | None) -> Fetched | _Unchanged | None:
        """The object at the key unless it is still ``etag`` (UNCHANGED); None if there is none.

        One conditional GET of at most MANIFEST_READ_BYTES; a larger manifest is read whole with
        If-Match on the ETag this GET saw.
        """
        found = self._conditional_head(etag, MANIFEST_READ_BYTES, action="read")
        if isinstance(found, Fetched) and not found.complete and not layout.is_sqlite(found.head):
            return Fetched(etag=found.etag, size=found.size, head=self._whole(found.etag))
        return found

    def _conditional_head(self, etag: str | None, length: int, *, action: str) -> Fetched | _Unchanged | None:
        """The first ``length`` bytes of the object and its total size, unless it is still ``etag``."""
        request = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes=0-{length - 1}"}
        if etag:
            request["IfNoneMatch"] = etag
        try:
            response = self.client.get_object(**request)
            head = response["Body"].read()  # read even when unused, so the connection is reused
        except ClientError as error:
            if _status(error) == 304:
                return UNCHANGED
            if _code(error) in ("NoSuchKey", "404"):
                return None
            if _code(error) == "InvalidRange":
                remote = self._head()  # a zero-byte object has no byte 0
                return Fetched(etag=remote.etag, size=0, head=b"") if remote else None
            raise self._classify(error, action) from None
        except BotoCoreError as error:
            raise StoreError(f"could not reach S3 to {action} {self.where}: {error}") from None
        total = response.get("ContentRange", "").rpartition("/")[2]
        return Fetched(etag=response["ETag"], size=int(total) if total.isdigit() else len(head), head=head)

    def _whole(self, etag: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)["Body"].read()
        except ClientError as error:
            if _status(error) == 412:
                raise Conflict(f"{self.where} changed while it was being read") from None
            raise self._classify(error, "read") from None
        except BotoCoreError as error:
            raise StoreError(f"reading {self.where} failed: {error}") from None

    def put(self, data: bytes, *, expected_etag: str | None) -> str:
        """Replace the object at the key only if S3 still holds ``expected_etag`` (None: only if
        there is none). Returns the new ETag."""
        condition = {"IfMatch": expected_etag} if expected_etag else {"IfNoneMatch": "*"}
        try:
            with self._lock:  # no transfer's hooks may add their conditions to this call
                return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)["ETag"]
        except ClientError as error:
            raise self._classify(error, "commit", expected_etag=expected_etag) from None
        except BotoCoreError as error:
            raise StoreError(f"committing {self.where} failed: {error}") from None

    # -- immutable blobs beside the key (runtime.layout) --------------------------------------

    def put_blob(self, key: str, data: bytes) -> None:
        """Create ``key`` with ``data``; a key is never overwritten (If-None-Match: *)."""
        try:
            with self._lock:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as error:
            if _status(error) == 412:
                return  # a retry whose first attempt was stored: the key is unique to this upload
            raise self._classify(error, "upload", key=key) from None
        except BotoCoreError as error:
            raise StoreError(f"uploading s3://{self.bucket}/{key} failed: {error}") from None

    def upload_blob(self, key: str, path: str) -> None:
        """Create ``key`` from a file, streamed (multipart above the threshold), never overwriting."""
        with self._lock, _CallHooks(self.client.meta.events, _FINISHING_CALLS, {"IfNoneMatch": "*"}):
            try:
                self._transfer.upload(path, self.bucket, key).result()
            except ClientError as error:
                if _status(error) == 412:
                    return  # as in put_blob: our own earlier attempt stored it
                raise self._classify(error, "upload", key=key) from None
            except (BotoCoreError, RetriesExceededError) as error:
                raise StoreError(f"uploading s3://{self.bucket}/{key} failed: {error}") from None

    def compose_blob(self, key: str, path: str, *, source_key: str, source_size: int, part_size: int,
                     clean: Callable[[int, int], bool]) -> tuple[int, int]:
        """Create ``key`` from the file at ``path`` as a multipart upload in which every part whose
        byte range ``clean`` says is unchanged is copied server-side from ``source_key``
        (UploadPartCopy) instead of uploaded. Returns (bytes uploaded, bytes copied).

        Parts must be at least 5 MiB except the last; the completion is If-None-Match: *."""
        size = os.path.getsize(path)
        ranges = [(start, min(start + part_size, size)) for start in range(0, size, part_size)]
        try:
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        except (ClientError, BotoCoreError) as error:
            raise StoreError(f"starting the upload of s3://{self.bucket}/{key} failed: {error}") from None
        moved = [0, 0]

        def part(number: int, start: int, end: int) -> dict[str, Any]:
            common = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
            if end <= source_size and clean(start, end):
                answer = self.client.upload_part_copy(CopySource={"Bucket": self.bucket, "Key": source_key},
                                                      CopySourceRange=f"bytes={start}-{end - 1}", **common)
                moved[1] += end - start
                return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}
            with open(path, "rb") as handle:
                handle.seek(start)
                body = handle.read(end - start)
            moved[0] += len(body)
            return {"PartNumber": number, "ETag": self.client.upload_part(Body=body, **common)["ETag"]}

        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                parts = list(pool.map(lambda item: part(item[0] + 1, *item[1]), enumerate(ranges)))
            with self._lock:
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts}, IfNoneMatch="*")
        except (ClientError, BotoCoreError) as error:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except (ClientError, BotoCoreError):
                pass  # an upload left open costs storage until the bucket's lifecycle rule ends it
            if isinstance(error, ClientError):
                raise self._classify(error, "upload", key=key) from None
            raise StoreError(f"uploading s3://{self.bucket}/{key} failed: {error}") from None
        return moved[0], moved[1]

    def get_blob(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise self._classify(error, "download", key=key) from None
        except BotoCoreError as error:
            raise StoreError(f"downloading s3://{self.bucket}/{key} failed: {error}") from None

    def download_blob(self, key: str, size: int, dest: str, *, progress: Callable[[int], None] | None = None) -> None:
        """Stream an immutable blob of known size into ``dest`` with parallel ranged GETs;
        ``progress`` is told each chunk's byte count as it lands."""
        try:
            future = self._transfer.download(self.bucket, key, dest, subscribers=[_KnownSize(size, progress)])
            future.result()
        except ClientError as error:
            raise self._classify(error, "download", key=key) from None
        except (BotoCoreError, RetriesExceededError, S3DownloadFailedError) as error:
            raise StoreError(f"downloading s3://{self.bucket}/{key} failed: {error}") from None

    def copy_to_blob(self, key: str, *, etag: str) -> None:
        """Server-side copy of the object at the database key, exactly version ``etag``, to ``key``."""
        try:
            self._transfer.copy({"Bucket": self.bucket, "Key": self.key}, self.bucket, key,
                                extra_args={"CopySourceIfMatch": etag}).result()
        except ClientError as error:
            if _status(error) == 412:
                raise Conflict(f"{self.where} changed while it was being copied") from None
            raise self._classify(error, "copy", key=key) from None
        except (BotoCoreError, RetriesExceededError) as error:
            raise StoreError(f"copying {self.where} to {key} failed: {error}") from None

    def list_blobs(self, prefix: str) -> list[tuple[str, float]]:
        """(key, last-modified epoch seconds) of every object under ``prefix``."""
        found: list[tuple[str, float]] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                found += [(item["Key"], item["LastModified"].timestamp()) for item in page.get("Contents", ())]
        except ClientError as error:
            raise self._classify(error, "list", key=prefix) from None
        except BotoCoreError as error:
            raise StoreError(f"listing s3://{self.bucket}/{prefix} failed: {error}") from None
        return found

    def delete_blobs(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except ClientError as error:
                raise self._classify(error, "delete", key=batch[0]["Key"]) from None
            except BotoCoreError as error:
                raise StoreError(f"deleting under s3://{self.bucket}/ failed: {error}") from None

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

    def _classify(self, error: ClientError, action: str, *, expected_etag: str | None = None,
                  key: str | None = None) -> StoreError:
        code, status = _code(error), _status(error)
        where = f"s3://{self.bucket}/{key}" if key else self.where
        if key and (status == 412 or code == "ConditionalRequestConflict"):
            return Conflict(f"{action} of {where} refused: the key already exists ({code})")
        if key and code in ("NoSuchKey", "404"):
            return StoreError(f"{action} of {where} failed: it does not exist (deleted, or never written)")
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
            return AccessDenied(f"{action} of {where} denied — check that the function's role allows "
                                f"s3:GetObject and s3:PutObject on {self.key} and {self.key}.canvas/*, and "
                                f"s3:DeleteObject on {self.key}.canvas/* (`reconcile plan` shows the derived policy)")
        message = error.response.get("Error", {}).get("Message", "")
        return StoreError(f"{action} of {where} failed: {code} {message}".rstrip())

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
        if parsed.get("ETag") and self._captured is not None:
            self._captured["etag"] = parsed["ETag"]


class _KnownObject(BaseSubscriber):
    """Tells the transfer manager the size and ETag we already know: no HEAD, and every GET is If-Match."""

    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def on_queued(self, future: Any, **_: Any) -> None:
        future.meta.provide_transfer_size(self._remote.size)
        future.meta.provide_object_etag(self._remote.etag)


class _KnownSize(BaseSubscriber):
    """An immutable blob's size is in the manifest: no HEAD before the ranged GETs."""

    def __init__(self, size: int, progress: Callable[[int], None] | None = None) -> None:
        self._size = size
        self._progress = progress

    def on_queued(self, future: Any, **_: Any) -> None:
        future.meta.provide_transfer_size(self._size)

    def on_progress(self, future: Any, bytes_transferred: int, **_: Any) -> None:
        if self._progress:
            self._progress(bytes_transferred)


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
