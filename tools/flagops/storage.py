"""Object stores that publish writes to: S3-compatible storage, and a local directory with the same semantics.

Both stores offer the same few operations with the same guarantees:

- ``put`` replaces an object whole (a reader sees the old or the new bytes, never a mix) and
  returns its ETag; ``if_match`` / ``if_none_match`` make it conditional and a failed
  condition raises :class:`PreconditionFailed`;
- ``get`` returns the bytes and ETag (or None), ``list`` the keys under a prefix with ETags,
  ``delete`` removes a key (missing keys are fine), ``age`` says how long ago an object was
  last written, by the store's own clock (so two machines with skewed clocks agree);
- an ETag is the quoted MD5 of the bytes for a single-part upload (S3, SeaweedFS, and the
  file store alike), so a listing tells which objects differ from local files without
  reading them (:func:`etag_of`).

``open_target("s3://bucket/prefix")`` or ``open_target("file:///dir")`` gives a (store, prefix)
pair. The S3 store uses boto3 with the standard credential chain and ``AWS_ENDPOINT_URL``;
retries with backoff on throttling, 5xx and dropped connections are done here (:func:`retrying`)
so that every operation has the same, bounded policy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol, TypeVar
from urllib.parse import unquote, urlparse

from .fsutil import atomic_write
from .errors import (ConditionalWritesUnsupported, PreconditionFailed, StorageError, TransientError,
                     UsageError)

T = TypeVar("T")

JSON = "application/json"

__all__ = ["JSON", "ConditionalWritesUnsupported", "FileStore", "ObjectInfo", "ObjectStore", "PreconditionFailed",
           "Retry", "S3Store", "StorageError", "TransientError", "etag_of", "join_key", "open_target", "retrying"]


def etag_of(data: bytes) -> str:
    """The ETag a store gives ``data`` uploaded in one part: the quoted MD5 hex."""
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int


@dataclass(frozen=True)
class Retry:
    """Bounded retries with exponential backoff and full jitter."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** attempt)))


def retrying(fn: Callable[[], T], policy: Retry, *, on_retry: Optional[Callable[[int, Exception], None]] = None) -> T:
    """Call ``fn``; retry :class:`TransientError` up to ``policy.attempts`` times in all."""
    attempt = 0
    while True:
        try:
            return fn()
        except TransientError as exc:
            attempt += 1
            if attempt >= policy.attempts:
                raise StorageError(f"{exc} (gave up after {attempt} attempts)") from exc
            if on_retry:
                on_retry(attempt, exc)
            time.sleep(policy.delay(attempt - 1))


class ObjectStore(Protocol):
    url: str

    def get(self, key: str) -> Optional[tuple[bytes, str]]: ...
    def head(self, key: str) -> Optional[str]: ...
    def put(self, key: str, data: bytes, *, content_type: str = JSON, cache_control: Optional[str] = None,
            if_match: Optional[str] = None, if_none_match: bool = False) -> str: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def age(self, key: str) -> Optional[float]: ...


def join_key(*parts: str) -> str:
    """Join key parts with '/', skipping empty ones (an empty prefix means the bucket root)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


# --------------------------------------------------------------------------------------------
# A local directory


class FileStore:
    """Objects as files under ``root``: writes go to a temporary file renamed into place.

    ETags are the quoted MD5 of the bytes, as S3 gives a single-part upload. Conditional writes compare and rename while
    holding an exclusive ``flock`` on ``root/.flagops-store.lock``, so two processes publishing
    to the same directory race exactly as they would on S3.
    """

    LOCK = ".flagops-store.lock"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = self.root.as_uri()

    etag_of = staticmethod(etag_of)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise UsageError(f'invalid object key "{key}"')
        return self.root.joinpath(*parts)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / self.LOCK, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def get(self, key: str) -> Optional[tuple[bytes, str]]:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror}") from exc
        return data, self.etag_of(data)

    def head(self, key: str) -> Optional[str]:
        got = self.get(key)
        return got[1] if got else None

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        atomic_write(path, data, parents=True)  # readers see the old or the new file

    def put(self, key: str, data: bytes, *, content_type: str = JSON, cache_control: Optional[str] = None,
            if_match: Optional[str] = None, if_none_match: bool = False) -> str:
        path = self._path(key)
        try:
            if if_match is None and not if_none_match:
                self._write(path, data)
            else:
                with self._locked():
                    current = self.head(key)
                    if if_none_match and current is not None:
                        raise PreconditionFailed(f"{key} already exists")
                    if if_match is not None and current != if_match:
                        raise PreconditionFailed(f"{key} changed since it was read")
                    self._write(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror}") from exc
        return self.etag_of(data)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def age(self, key: str) -> Optional[float]:
        try:
            return max(0.0, time.time() - self._path(key).stat().st_mtime)
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root.joinpath(*[p for p in prefix.split("/") if p]) if prefix.strip("/") else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(".") and (".tmp" in name or name == self.LOCK):
                    continue  # an in-flight write or the lock, not an object
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue
                yield ObjectInfo(key, self.etag_of(data), len(data))


# --------------------------------------------------------------------------------------------
# S3-compatible storage

# Statuses and codes worth a retry: throttling, server errors, request timeouts.
_RETRY_STATUS = {429, 500, 502, 503, 504}
_RETRY_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
                "InternalError", "ServiceUnavailable", "RequestLimitExceeded", "TooManyRequests"}


class S3Store:
    """One bucket of an S3-compatible store, through boto3."""

    def __init__(self, bucket: str, *, endpoint_url: Optional[str] = None, client: Any = None,
                 max_connections: int = 16, timeout: float = 20.0):
        self.bucket = bucket
        self.url = f"s3://{bucket}"
        if client is None:
            import boto3
            from botocore.config import Config

            # Retries are ours (retrying()): one attempt per call here, so policies do not multiply.
            config = Config(retries={"total_max_attempts": 1}, max_pool_connections=max_connections,
                            connect_timeout=timeout, read_timeout=timeout,
                            s3={"addressing_style": os.environ.get("FLAGOPS_S3_ADDRESSING_STYLE", "auto")})
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)
        self.client = client

    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """Run one request, mapping botocore errors to ours."""
        from botocore.exceptions import (BotoCoreError, ClientError, ConnectionError as BotoConnectionError,
                                         NoCredentialsError, PartialCredentialsError)

        try:
            return fn()
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            where = f"{what} s3://{self.bucket}/{key}"
            if status == 412 or code == "PreconditionFailed":
                raise PreconditionFailed(f"{where}: precondition failed") from exc
            if status == 409 and code == "ConditionalRequestConflict":
                raise PreconditionFailed(f"{where}: a concurrent conditional write won") from exc
            if status in _RETRY_STATUS or code in _RETRY_CODES:
                raise TransientError(f"{where}: {code or status}") from exc
            if what == "conditional put" and (status == 501 or code in ("NotImplemented", "InvalidArgument",
                                                                          "InvalidRequest")):
                raise ConditionalWritesUnsupported(f"{where}: the store rejects conditional writes ({code})") from exc
            if code in ("NoSuchBucket",):
                raise StorageError(f"{where}: the bucket does not exist") from exc
            if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StorageError(f"{where}: access denied ({code})",
                                   hint="check the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) and the endpoint") from exc
            raise StorageError(f"{where}: {code or status} {err.get('Message', '')}".rstrip()) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StorageError(f"no credentials for s3://{self.bucket}",
                               hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE") from exc
        except BotoConnectionError as exc:
            raise TransientError(f"{what} s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{what} s3://{self.bucket}/{key}: {exc}") from exc

    def get(self, key: str) -> Optional[tuple[bytes, str]]:
        from botocore.exceptions import ClientError

        def do() -> Optional[tuple[bytes, str]]:
            try:
                resp = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            return resp["Body"].read(), resp["ETag"]

        return self._call("get", key, do)

    def head(self, key: str) -> Optional[str]:
        from botocore.exceptions import ClientError

        def do() -> Optional[str]:
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)["ETag"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise

        return self._call("head", key, do)

    def put(self, key: str, data: bytes, *, content_type: str = JSON, cache_control: Optional[str] = None,
            if_match: Optional[str] = None, if_none_match: bool = False) -> str:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, "ContentType": content_type}
        if cache_control:
            args["CacheControl"] = cache_control
        if if_match is not None:
            args["IfMatch"] = if_match
        if if_none_match:
            args["IfNoneMatch"] = "*"
        what = "conditional put" if (if_match is not None or if_none_match) else "put"
        return self._call(what, key, lambda: self.client.put_object(**args)["ETag"])

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def age(self, key: str) -> Optional[float]:
        """Seconds since ``key`` was written: the response's Date minus Last-Modified, both the server's."""
        from email.utils import parsedate_to_datetime

        from botocore.exceptions import ClientError

        def do() -> Optional[float]:
            try:
                resp = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
            date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
            now = parsedate_to_datetime(date).timestamp() if date else time.time()
            return max(0.0, now - resp["LastModified"].timestamp())

        return self._call("head", key, do)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        token: Optional[str] = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            page = self._call("list", prefix, lambda: self.client.list_objects_v2(**args))
            for o in page.get("Contents", []):
                yield ObjectInfo(o["Key"], o.get("ETag", ""), int(o.get("Size", 0)))
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")


def open_target(url: str, *, endpoint_url: Optional[str] = None, max_connections: int = 16) -> tuple[ObjectStore, str]:
    """``s3://bucket/prefix`` or ``file:///absolute/dir`` -> (store, key prefix)."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UsageError(f'"{url}" names no bucket', hint="use s3://bucket/prefix")
        return S3Store(parsed.netloc, endpoint_url=endpoint_url, max_connections=max_connections), parsed.path.strip("/")
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise UsageError(f'"{url}" is not an absolute file URL', hint="use file:///absolute/dir")
        return FileStore(Path(unquote(parsed.path))), ""
    raise UsageError(f'unsupported target "{url}"', hint="use s3://bucket/prefix or file:///absolute/dir")
