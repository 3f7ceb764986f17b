"""A mirror destination in S3-compatible object storage (`mirror sync --to s3://bucket/prefix`).

Every object carries its SHA-384 in its user metadata (`x-amz-meta-sha384`). Bytes are hashed on
their way out; a single PUT is sent only after the hash matched, and a multipart upload (files
over PART_SIZE, at most BIG_BODIES parts in memory at once, whatever -j is) is completed only
after it matched, and aborted on any failure or on Ctrl-C: no half-written object and no orphaned
multipart upload is left behind. The client and the downloader's s3:// opener are transport's.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import fsio
from ..transport.fetch import CHUNK
from ..errors import Interrupted, MirrorAccessError, MirrorError
from .manifest import MANIFEST, MAX_MANIFEST, Present, decode_manifest, encode_manifest, is_internal
from ..transport.s3 import (
    ACCESS_CODES, BIG_BODIES, BIG_BODY, CONFLICT_CODES, MANIFEST_ATTEMPTS, MISSING_CODES, PART_SIZE,
    STAGING_PREFIX, _code, _message, botocore, make_client, parse_s3_url,
)
from ..verify import StreamVerifier


class S3Store:
    """A mirror under s3://bucket/prefix. See the module docstring for the guarantees."""

    remote = True  # publishing is an upload: worth overlapping with downloads

    def __init__(self, url: str, *, endpoint: str | None = None, pool: int = 8, num_attempts: int = 3,
                 timeout: float = 60.0, client: Any = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}"
        self.client = client or make_client(endpoint, pool, num_attempts, timeout)
        self._uploads: dict[str, str] = {}  # key -> UploadId of multipart uploads in flight
        self._lock = threading.Lock()
        self._big_bodies = threading.BoundedSemaphore(BIG_BODIES)
        self._staging: Path | None = None
        self._staging_cm: contextlib.AbstractContextManager[Path] | None = None

    def _key(self, rel: str) -> str:
        return self.prefix + rel

    def _fail(self, exc: Exception, action: str) -> MirrorError:
        """Our error for a failed S3 call: refusals of the store stop the run (one line)."""
        code = _code(exc)
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return MirrorAccessError(f"{self.url}: no S3 credentials (set AWS_ACCESS_KEY_ID and "
                                     "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
        if isinstance(exc, botocore.exceptions.EndpointConnectionError):
            return MirrorAccessError(f"{self.url}: cannot connect to the S3 endpoint: {exc}")
        if code in ACCESS_CODES:
            hint = ""
            if code in ("AccessDenied", "403") and action.startswith(("write", "start", "delete")):
                hint = " (do these credentials have write access?)"
            elif code == "SignatureDoesNotMatch":
                hint = " (wrong secret key?)"
            elif code == "InvalidAccessKeyId":
                hint = " (unknown access key)"
            return MirrorAccessError(f"{self.url}: cannot {action}: {_message(exc)}{hint}")
        return MirrorError(f"{self.url}: cannot {action}: {_message(exc)}")

    # -- reading

    def list(self) -> dict[str, Present]:
        found: dict[str, Present] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(self.prefix):]
                    if rel and not is_internal(rel) and not rel.endswith("/"):
                        found[rel] = Present(obj["Size"], obj["ETag"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(exc, "list the mirror") from exc
        return found

    def _head(self, rel: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(rel))
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in MISSING_CODES:
                return None
            raise self._fail(exc, f"read {rel}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail(exc, f"read {rel}") from exc

    def stat(self, rel: str) -> Present | None:
        head = self._head(rel)
        return None if head is None else Present(head["ContentLength"], head["ETag"])

    def stored_sha384(self, rel: str) -> str | None:
        head = self._head(rel)
        return None if head is None else head.get("Metadata", {}).get("sha384")

    def hash(self, rel: str, cancel: threading.Event) -> tuple[int, str]:
        verifier = StreamVerifier(0, "")
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"]
            with contextlib.closing(body):
                for chunk in body.iter_chunks(CHUNK):
                    if cancel.is_set():
                        raise Interrupted("interrupted")
                    verifier.update(chunk)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(exc, f"read {rel}") from exc
        return verifier.size, verifier.hexdigest()

    # -- writing

    @contextlib.contextmanager
    def incoming(self, rel: str) -> Iterator[Path]:
        with self._lock:
            if self._staging is None:
                parent = Path(tempfile.gettempdir())
                fsio.remove_dead_staged(parent, STAGING_PREFIX)  # what killed runs left
                self._staging_cm = fsio.staged_dir(parent, f"{STAGING_PREFIX}{os.getpid()}-")
                self._staging = self._staging_cm.__enter__()
        with fsio.temporary_beside(self._staging / rel.replace("/", "_")) as tmp:
            yield tmp

    def close(self) -> None:
        """Remove the local staging folder (downloads waiting to be uploaded)."""
        with self._lock:
            if self._staging_cm is not None:
                self._staging_cm.__exit__(None, None, None)
                self._staging_cm = self._staging = None

    def publish(self, rel: str, path: Path, size: int, sha384: str, cancel: threading.Event) -> Present:
        key = self._key(rel)
        verifier = StreamVerifier(size, sha384)
        try:
            src = open(path, "rb")
        except OSError as exc:
            raise fsio.fs_error(path, exc, "read") from exc
        with src:
            if size <= PART_SIZE:
                with self._body_slot(size):
                    data = src.read(size + 1)
                    verifier.update(data)
                    verifier.check(rel)  # before anything is sent
                    try:
                        answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                                        Metadata={"sha384": sha384})
                    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                        raise self._fail(exc, f"write {rel}") from exc
                return Present(size, answer["ETag"])
            return self._multipart(rel, key, src, size, sha384, verifier, cancel)

    def _multipart(self, rel: str, key: str, src, size: int, sha384: str, verifier: StreamVerifier,
                   cancel: threading.Event) -> Present:
        try:
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key,
                                                            Metadata={"sha384": sha384})["UploadId"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(exc, f"start uploading {rel}") from exc
        with self._lock:
            self._uploads[key] = upload_id
        try:
            parts = []
            while True:
                with self._body_slot(PART_SIZE):
                    data = src.read(PART_SIZE)
                    if not data:
                        break
                    if cancel.is_set():
                        raise Interrupted("interrupted")
                    verifier.update(data)
                    if verifier.too_long:
                        break
                    answer = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                     PartNumber=len(parts) + 1, Body=data)
                    del data
                parts.append({"PartNumber": len(parts) + 1, "ETag": answer["ETag"]})
            verifier.check(rel)  # the object appears only if every byte sent was the right one
            answer = self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                           MultipartUpload={"Parts": parts})
            return Present(size, answer["ETag"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            self._abort(key, upload_id)
            raise self._fail(exc, f"write {rel}") from exc
        except BaseException:
            self._abort(key, upload_id)
            raise
        finally:
            with self._lock:
                self._uploads.pop(key, None)

    def _body_slot(self, size: int) -> contextlib.AbstractContextManager[object]:
        """Hold one of BIG_BODIES slots while a body over BIG_BODY bytes is in memory."""
        return self._big_bodies if size > BIG_BODY else contextlib.nullcontext()

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            pass  # nothing more we can do; `verify` and ListMultipartUploads would show it

    def abort_all(self) -> None:
        with self._lock:
            uploads, self._uploads = dict(self._uploads), {}
        for key, upload_id in uploads.items():
            self._abort(key, upload_id)
        self.close()

    def leftovers(self) -> dict[str, str]:
        return {}  # nothing is staged in the bucket: an upload appears whole or not at all

    def remove_dead(self) -> list[str]:
        return []

    def delete(self, rel: str, stamp: str | None = None) -> None:
        if stamp is not None:
            there = self.stat(rel)
            if there is None:
                return
            if there.stamp != stamp:
                raise MirrorError("it was replaced since this mirror wrote it")
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(rel))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(exc, f"delete {rel}") from exc

    # -- the manifest

    def read_manifest(self) -> tuple[dict[str, Any] | None, Any]:
        key = self._key(MANIFEST)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            with contextlib.closing(answer["Body"]) as body:
                raw = body.read(MAX_MANIFEST + 1)  # bounded: decode_manifest refuses anything longer
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in MISSING_CODES:
                return None, None
            raise self._fail(exc, "read the manifest") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail(exc, "read the manifest") from exc
        return decode_manifest(raw, f"{self.url}{MANIFEST}"), answer["ETag"]

    def update_manifest(self, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> bool:
        """Read, change and write back with a conditional PUT (If-Match the ETag we read, or
        If-None-Match for a first manifest): a concurrent writer makes ours fail with 412, and
        we merge again on top of theirs."""
        for attempt in range(MANIFEST_ATTEMPTS):
            current, etag = self.read_manifest()
            new = change(current)
            if new is None:
                return False
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._key(MANIFEST), Body=encode_manifest(new),
                                       ContentType="application/json", **condition)
                return True
            except botocore.exceptions.ClientError as exc:
                if _code(exc) not in CONFLICT_CODES:
                    raise self._fail(exc, "write the manifest") from exc
            except botocore.exceptions.BotoCoreError as exc:
                raise self._fail(exc, "write the manifest") from exc
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise MirrorError(f"{self.url}: the manifest kept changing under us ({MANIFEST_ATTEMPTS} attempts)")
