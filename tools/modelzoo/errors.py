"""Every failure modelzoo reports has its own exception type, so that callers and the CLIs
can tell a broken descriptor from a bad download from a failed conversion."""

from __future__ import annotations

from pathlib import Path


class ModelzooError(Exception):
    """Base class; its str() is the one line a CLI prints."""

    exit_code = 1


class DescriptorError(ModelzooError):
    """A model.yml / composite-model.yml that does not follow the schema."""

    exit_code = 2

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + problem)


class SelectionError(ModelzooError):
    """A name or pattern that matches no model, or a bad selection on the command line: a usage
    error, like a bad flag."""

    exit_code = 2


class UsageError(ModelzooError):
    """A command-line value that parses but cannot be used (a destination without a bucket, a
    --changes file that cannot be written, a --list that is not a text file): found before any
    work, like a bad flag."""

    exit_code = 2


class UnknownPrecisionError(SelectionError):
    """--precisions names a precision no descriptor can have."""


class DownloadError(ModelzooError):
    """A file could not be fetched and verified."""


class OfflineError(DownloadError):
    """Offline mode (--offline, MODELZOO_OFFLINE=1) forbids the network, and no local source (the
    cache, a file:// mirror) has the file."""


class HTTPStatusError(DownloadError):
    def __init__(self, url: str, status: int, reason: str = "") -> None:
        self.url = url
        self.status = status
        # the reason phrase is the server's text: no control characters reach a terminal
        reason = "".join(c for c in reason if c.isprintable())[:200]
        super().__init__(f"HTTP {status}{' ' + reason if reason else ''} for {url}")


class TransferError(DownloadError):
    """The connection failed, stalled or ended early; worth another attempt."""


class SizeMismatchError(DownloadError):
    def __init__(self, what: str, expected: int, actual: int, more: bool = False) -> None:
        self.expected, self.actual = expected, actual
        actual_text = f"more than {expected}" if more else str(actual)
        super().__init__(f"{what}: size mismatch: expected {expected} bytes, got {actual_text}")


class ChecksumMismatchError(DownloadError):
    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"{what}: SHA-384 mismatch: expected {expected}, got {actual}")


class FileSystemError(ModelzooError):
    """Writing, renaming or creating something on disk failed (see fsio.fs_error)."""


class DiskFullError(FileSystemError):
    """ENOSPC or a quota while writing: retrying cannot help, and no other source would either."""


class OutputNotWritableError(FileSystemError):
    """The output or cache folder cannot be written (permissions, read-only file system)."""


class PostprocessingError(ModelzooError):
    """unpack_archive or regex_replace could not be applied."""


class UnsafeArchiveError(PostprocessingError):
    """An archive member would land outside the model folder or is a device/fifo."""


class ConversionError(ModelzooError):
    """The Model Optimizer failed or its input is missing."""


class MissingExtraError(ModelzooError):
    """An optional dependency group (an extra) is not installed."""

    exit_code = 2


class Interrupted(ModelzooError):
    """Ctrl-C or SIGTERM: temporaries were removed (the cache keeps resumable partials)."""

    exit_code = 130


class UnsupportedArgumentError(ConversionError):
    """A conversion argument the chosen backend cannot honour: refused by name, never dropped."""

    def __init__(self, model: str, argument: str, why: str) -> None:
        self.model, self.argument, self.why = model, argument, why
        super().__init__(f"{argument}: {why} (ovc backend, model {model})")


class MirrorError(ModelzooError):
    """A mirror destination or its manifest cannot be used as asked."""


class MirrorAccessError(MirrorError):
    """The destination refuses us (credentials, permissions, no such bucket): no file can
    succeed, so the run stops at the first one, with one line."""


class DatasetError(ModelzooError):
    """The images or annotations given for measuring or calibrating cannot be used as they are
    (a missing or empty folder, a file that is not an image, annotations that are not COCO's or
    name images that are not there): a usage error, like a bad flag."""

    exit_code = 2


class AccuracyConfigError(ModelzooError):
    """A model's accuracy-check.yml that cannot be read, or names an adapter, processing step
    or metric this tool does not implement (refused by name before any inference)."""


class InputChangedError(ModelzooError):
    """A file a job was given by path and SHA-384 (a calibration picture, the annotations, an IR)
    is not the file the driver read: it changed since, or the worker sees another shared folder.
    The job uses nothing of it."""


class IRMismatchError(ModelzooError):
    """An IR that cannot be measured or quantized as its descriptor says: missing, already
    INT8, or with inputs other than the model's accuracy-check.yml expects."""


class QuantizationError(ModelzooError):
    """NNCF could not quantize the IR."""


class AccuracyBudgetError(QuantizationError):
    """--max_drop cannot be met: nothing is written."""


class InsufficientSpaceError(DiskFullError):
    """What a run will write does not fit on a file system: refused before the first byte."""


class CacheError(ModelzooError):
    """A cache that cannot be managed as asked (listed, verified, pruned)."""


class CacheFolderError(CacheError):
    """--cache_dir names nothing, or a file: a usage error, like a bad flag."""

    exit_code = 2


class CacheBusyError(CacheError):
    """Another prune holds the cache: two at once would each count what the other removes."""


class MirrorTooSlowError(MirrorError):
    """A mirror hands IR over more slowly than --mirror_min_speed: given up, the IR made here."""


class UnsafeArgumentError(ConversionError):
    """A descriptor's conversion argument that would reach outside the model's own folders (a
    path elsewhere on the machine) or make the Model Optimizer run code or write elsewhere:
    refused by name before any work, with either backend."""

    def __init__(self, model: str, argument: str, why: str) -> None:
        self.model, self.argument, self.why = model, argument, why
        super().__init__(f"{argument}: {why} (model {model}); refused")


class ZooCodeError(UsageError):
    """The selected models would run code that came with a zoo (pre-convert.py, a PyTorch model
    module) that the user has not allowed: refused before anything runs."""


class PlantedEntryError(FileSystemError):
    """A link (or another file the cache did not make) stands where a cache's file or folder
    belongs: it is not followed, so nothing outside the cache is read or written through it."""


class LockError(ModelzooError):
    """A lock file (modelzoo-lock) that cannot be used, or a selection it does not cover as it
    is (a model not in it, a descriptor that changed since): refused before the first request."""

    exit_code = 2


class LockMismatchError(ModelzooError):
    """IR that is not what the lock file records (another key, other bytes): a reproducibility
    failure, named by its file."""


class SignatureError(ModelzooError):
    """A signing or trusted key that cannot be used (unreadable, of the wrong type), or with
    --require_signature a mirror whose manifest signature does not verify: refused before any
    work."""

    exit_code = 2


class RunRecordMismatchError(ModelzooError):
    """A --run_dir holds this shard's record, made with other inputs: nothing is overwritten (the
    run's other shards may already stand on it); use another --run_dir or remove the record."""


class RunIncompleteError(ModelzooError):
    """--merge over a run whose shards' records are not all there (or do not belong together)."""


class ClusterUnreachableError(ModelzooError):
    """--cluster names an address that does not answer within the connect timeout, or Ray refuses
    to connect to it: said before any work, in one line."""
