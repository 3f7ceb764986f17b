"""S3-compatible object storage (AWS, SeaweedFS, MinIO, ...): the client, and an `s3://` opener so
that `downloader.py --mirror s3://bucket/prefix` reads a private mirror with credentials (the
mirror destination built on the same client is mirror's S3Store).

Needs boto3 (the `[s3]` extra); nothing else in modelzoo imports this module unless an s3://
URL is used. Endpoint: --s3_endpoint, else the standard AWS_ENDPOINT_URL, else AWS. Credentials
and region: the standard AWS variables and files (boto3's own lookup).

Every object carries its SHA-384 in its user metadata (`x-amz-meta-sha384`). Bytes are hashed
on their way out; a single PUT is sent only after the hash matched, and a multipart upload (for
files over PART_SIZE, with at most BIG_BODIES parts in memory at once, so memory stays bounded
whatever -j is) is completed only after it matched, and aborted on any failure or on Ctrl-C, so no half-written object and no orphaned
multipart upload is left behind.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterator
from urllib.parse import unquote, urlparse

from ..errors import DownloadError, HTTPStatusError, MirrorError, MissingExtraError, TransferError
from .fetch import CHUNK, Opened

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError as exc:  # pragma: no cover - the [s3] extra is not installed
    raise MissingExtraError("s3:// needs boto3: pip install 'modelzoo[s3]'") from exc

PART_SIZE = 8 << 20  # multipart part size, and the largest file sent in one PUT
# Bodies over 1 MiB in memory at once, whatever -j is: botocore holds about two more copies of a
# body while it is sent, so uploads hold at most about 3 x 3 x 8 MiB.
BIG_BODIES = 3
BIG_BODY = 1 << 20
# The store refuses us as we are: no other file, attempt or source could do better.
ACCESS_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
                          "InvalidToken", "ExpiredToken", "TokenRefreshRequired", "NoSuchBucket",
                          "AccountProblem", "InvalidBucketName", "403"})
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
MANIFEST_ATTEMPTS = 30
STAGING_PREFIX = "modelzoo-mirror-"  # local staging folders: <prefix><pid>-<random>


def parse_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix/"); the prefix may be empty."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise MirrorError(f"{url}: expected s3://bucket/prefix")
    prefix = unquote(parsed.path).strip("/")
    return parsed.netloc, prefix + "/" if prefix else ""


def make_client(endpoint: str | None = None, pool: int = 10, num_attempts: int = 3, timeout: float = 60.0) -> Any:
    """An S3 client (thread-safe) from the standard AWS configuration, with our timeouts. None
    offline (offline.py): an OfflineError instead."""
    from .offline import is_offline, refuse

    if is_offline():
        raise refuse(f"S3 ({endpoint or os.environ.get('AWS_ENDPOINT_URL') or 'AWS'})")
    session = boto3.session.Session()
    region = session.region_name or "us-east-1"
    config = botocore.config.Config(
        max_pool_connections=max(10, pool), connect_timeout=timeout, read_timeout=timeout,
        parameter_validation=False,  # we build every request ourselves; saves ~10% CPU a request
        retries={"max_attempts": num_attempts, "mode": "standard"}, s3={"addressing_style": "path"}
        if (endpoint or os.environ.get("AWS_ENDPOINT_URL")) else None)
    try:
        return session.client("s3", endpoint_url=endpoint or None, region_name=region, config=config)
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise MirrorError(f"S3 endpoint {endpoint or os.environ.get('AWS_ENDPOINT_URL')!r}: {exc}") from exc


def _code(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return type(exc).__name__


def _message(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        text = err.get("Message") or ""
        return f"{_code(exc)}{': ' + text if text else ''}"
    return str(exc) or type(exc).__name__


# ----------------------------------------------------------------------------- s3:// for the downloader

_client: Any = None
_client_lock = threading.Lock()


def _shared_client(timeout: float) -> Any:
    global _client
    with _client_lock:
        if _client is None:
            _client = make_client(None, pool=16, num_attempts=1, timeout=timeout)
        return _client


def open_s3(fetcher: Any, url: str, offset: int, size: int) -> Opened:
    """fetch's opener for s3://bucket/key: a GET (with Range to resume) with the standard AWS
    credentials; a missing object is a 404 (the next source is tried), a refusal a 403."""
    parsed = urlparse(url)
    bucket, key = parsed.netloc, unquote(parsed.path).lstrip("/")
    client = _shared_client(fetcher.timeout)
    extra = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        answer = client.get_object(Bucket=bucket, Key=key, **extra)
    except botocore.exceptions.ClientError as exc:
        code = _code(exc)
        if code in MISSING_CODES or code == "NoSuchBucket":
            raise HTTPStatusError(url, 404, _message(exc)) from exc
        if code in ("InvalidRange", "416") and offset:
            return open_s3(fetcher, url, 0, size)
        if code in ACCESS_CODES:
            raise HTTPStatusError(url, 403, _message(exc)) from exc
        raise TransferError(f"{url}: {_message(exc)}") from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise DownloadError(f"{url}: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise TransferError(f"{url}: {exc}") from exc
    body = answer["Body"]
    start = offset if offset and answer.get("ContentRange") else 0

    def chunks() -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        except botocore.exceptions.BotoCoreError as exc:
            raise ConnectionError(str(exc)) from exc  # a broken body: fetch resumes it

    return Opened(chunks(), start, "", body.close)

