"""What the three CLIs share: model selection flags and turning errors into one line + exit code."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from ..errors import ModelzooError, SelectionError, UnknownPrecisionError

TYPE_CHECKING = False  # (typing.TYPE_CHECKING, without importing typing: 2-3 ms of modelzoo-cache verify's start)
if TYPE_CHECKING:  # (the catalog and descriptors are imported where models are selected: modelzoo-cache
    from typing import Any, Callable, NoReturn, Sequence  # verify, which needs neither, starts without them)

    from ..catalog import Catalog
    from ..descriptor import Model
    from ..events import Reporter


class OneLineParser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit 2 (argparse would print its usage first)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})")
    return value


MAX_PARALLEL = 256  # -j and --connections: more would only cost memory (urllib3 pre-fills a pool that big)


def parallel_int(text: str) -> int:
    """-j / --connections: a positive integer up to MAX_PARALLEL (a huge one is refused, not obeyed)."""
    value = positive_int(text)
    if value > MAX_PARALLEL:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_PARALLEL} (got {text})")
    return value


def jobs_arg(text: str) -> int:
    """-j N or -j auto (one per CPU): how many models at once, each in a process of its own."""
    if text == "auto":
        return os.cpu_count() or 1
    return parallel_int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1e6:  # (also refuses nan and inf)
        raise argparse.ArgumentTypeError(f"must be a positive number of at most 1000000 (got {text!r})")
    return value


def add_selection_args(parser: argparse.ArgumentParser, verb: str) -> None:
    from ..descriptor import KNOWN_PRECISIONS

    group = parser.add_argument_group("model selection")
    group.add_argument("--name", metavar="PAT[,PAT...]",
                       help=f"{verb} models whose names match any of these shell-style patterns")
    group.add_argument("--list", type=Path, metavar="FILE.LST",
                       help=f"{verb} models named in FILE (one name or pattern a line, # comments)")
    group.add_argument("--all", action="store_true", help=f"{verb} every model in the zoo")
    group.add_argument("--print_all", action="store_true", help="print the names of all models and exit")
    group.add_argument("--models_dir", type=Path, metavar="DIR", default=None,
                       help="the zoo to use (default: the one shipped with modelzoo)")
    group.add_argument("--precisions", metavar="PREC[,PREC...]",
                       help="only these precisions (" + ",".join(sorted(KNOWN_PRECISIONS)) + ")")
    group.add_argument("--strict", action="store_true",
                       help="refuse the whole run if a selected descriptor is invalid or has an unknown key "
                            "(for a zoo's own CI; default: warn about unknown keys, fail only a model whose "
                            "descriptor is invalid, go on with the others)")


def add_offline_arg(parser: argparse.ArgumentParser) -> None:
    """--offline, for every command that could reach the network (the quantizer too: it must
    call this and then ``apply_offline`` before any work)."""
    parser.add_argument("--offline", action="store_true",
                        help="make no network connection at all: the cache, local folders and file:// mirrors "
                             "only; each file none of them has is one error line (also MODELZOO_OFFLINE=1)")


def apply_offline(args: argparse.Namespace) -> None:
    """Offline mode for this process and the ones it starts, if ``--offline`` or
    ``MODELZOO_OFFLINE=1`` asks for it (a value that is neither 1 nor 0 is a UsageError). It is
    then enforced where connections are made (offline.py), not by the caller."""
    from ..transport import offline

    offline.check_environment()
    if getattr(args, "offline", False):
        offline.enable()


def mirror_url(text: str) -> str:
    """--mirror's type: a folder (any path without "://") or a URL of a scheme the IR can be
    fetched from; any other is a bad command line, said before any work."""
    from ..transport.sources import MIRROR_PREFIXES, mirror_schemes_text

    if "://" in text and not text.startswith(MIRROR_PREFIXES):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a folder or {mirror_schemes_text()}")
    return text


def check_download_mirrors(parser: argparse.ArgumentParser, urls: list[str]) -> None:
    """The downloader's and mirror's --mirror (files by model folder): a URL, not a folder; and
    for s3:// the [s3] extra, so that a missing one is one line before any work."""
    from ..transport.sources import MIRROR_PREFIXES, mirror_schemes_text

    for m in urls:
        if not m.startswith(MIRROR_PREFIXES):
            parser.error(f"--mirror {m!r}: expected {mirror_schemes_text()}")
        if m.startswith("s3://"):
            from ..transport.fetch import opener_for

            opener_for("s3")


def speed_arg(text: str) -> int:
    """--mirror_min_speed's type: bytes a second, as sizes are written (100K, 1M, 0)."""
    from ..download.space import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_ir_share_args(parser: argparse.ArgumentParser, work: str, doing: str, done: str, sync: str) -> None:
    """--cache_dir and --mirror of the converter (``work`` "conversion") and the quantizer
    ("quantization"): IR made once and shared by key (store/ir_cache.py, mirror/ir_share.py)."""
    parser.add_argument("--cache_dir", type=Path, metavar="DIR",
                        help=f"keep {done} IR by its {work} key in DIR/ir (the downloader's cache folder): a {work} "
                             "done once, here or by anyone sharing DIR, is not done again")
    parser.add_argument("--mirror", action="append", default=[], metavar="URL", type=mirror_url,
                        help=f"a mirror with IR (mirror.py sync {sync}): a folder, file://, http(s):// or s3:// "
                             f"URL; the IR of this {work}'s key is fetched and verified instead of {doing}, and "
                             f"{done} here when the mirror lacks it (repeatable)")
    parser.add_argument("--mirror_min_speed", type=speed_arg, default=None, metavar="BYTES",
                        help="give up IR from a mirror that comes more slowly than this many bytes a second on "
                             "average after 30 s (e.g. 100K, 1M; 0: never), and make it here instead "
                             "(default 100K)")


def add_trust_args(parser: argparse.ArgumentParser, signatures: bool = False) -> None:
    """--locked FILE (every tool that selects models) and, with ``signatures``, --trust_key and
    --require_signature (the tools that read mirrors); carried out by :func:`apply_trust`."""
    parser.add_argument("--locked", type=Path, metavar="FILE",
                        help="hold the run to this lock file (modelzoo-lock): a selected model not in it, or whose "
                             "descriptor changed, is refused before any work; IR must be the locked IR")
    if signatures:
        parser.add_argument("--trust_key", action="append", type=Path, default=[], metavar="PUB.pem",
                            help="use a mirror only if its manifest is signed by this key (an elliptic-curve public "
                                 "key; repeatable, also MODELZOO_TRUSTED_KEYS), verified offline before the run")
        parser.add_argument("--require_signature", action="store_true",
                            help="a mirror whose signature does not verify is an error, not a warning")


def apply_trust(prog: str, args: argparse.Namespace, models: list[Model], root: Path, failed_to_load: list[str],
                mirrors: list[str] | None = None):
    """--locked / --trust_key before any work (trust/policy.py): returns the run's Policy, whose
    ``mirrors`` are the ones it may use and whose ``check_ir`` holds IR to the lock afterwards."""
    from ..trust.policy import start

    line = CommandLine(prog)
    return start(args, models, root, failed_to_load, mirrors,
                 lambda text: print(line("warning", text), file=sys.stderr))


def add_space_args(parser: argparse.ArgumentParser, budget: bool = False) -> None:
    """--no_space_check (downloader, mirror, converter) and, with ``budget``, --cache_max_size."""
    parser.add_argument("--no_space_check", action="store_true",
                        help="do not refuse a run whose writes (summed per file system before the first "
                             "request) exceed the free space")
    if budget:
        parser.add_argument("--cache_max_size", type=size_arg, metavar="SIZE",
                            help="after the run, remove the least recently used cache entries beyond SIZE "
                                 "(500M, 20G, 1.5GiB), never a file this run's models name (needs --cache_dir)")


def enforce_cache_budget(cache_dir: Path, max_bytes: int, models: list[Model], reporter: Reporter) -> None:
    """--cache_max_size after a run (downloader, mirror): the least recently used entries beyond
    the budget go (cache_admin.prune_to), never a file the run's models name, never one another
    process holds. One line says what went; a cache that stays above the budget, one that cannot
    be written or another prune running is a warning, not a failure of the run."""
    from ..store import cache_admin
    from ..store.cache import Cache
    from ..errors import CacheBusyError, FileSystemError
    from ..events import human_size

    cache = Cache(cache_dir, create=False)
    keep = cache_admin.named_by(models)
    try:
        result = cache_admin.prune_to(cache, max_bytes, keep)
    except (CacheBusyError, FileSystemError) as exc:
        reporter.warning(f"--cache_max_size: the cache was not pruned: {exc}")
        return
    held = sum(e.size for e in cache_admin.scan(cache, last_used=False).entries)
    linked = f", {human_size(result.unlinked)} more stay in output folders that link to them" if result.unlinked else ""
    reporter.say(f"cache {cache.root}: {len(result.removed)} least recently used entries removed "
                 f"({human_size(result.freed)} freed{linked}); it holds {human_size(held)} "
                 f"(--cache_max_size {human_size(max_bytes)})")
    if held > max_bytes:
        reporter.warning(f"--cache_max_size {human_size(max_bytes)}: the cache still holds {human_size(held)}: "
                         "files this run's models name"
                         + (f" and {len(result.busy)} entries another process holds" if result.busy else "")
                         + " are never removed")


def size_arg(text: str) -> int:
    """A size (``20G``, ``1.5GiB``, bytes) for argparse: a bad one is one line."""
    from ..download.space import parse_size

    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"a size cannot be negative (got {text!r})")
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_precisions(value: str | None) -> frozenset[str]:
    from ..descriptor import KNOWN_PRECISIONS

    if value is None:
        return KNOWN_PRECISIONS
    wanted = frozenset(p.strip() for p in value.split(","))
    unknown = sorted(wanted - KNOWN_PRECISIONS)
    if unknown:
        raise UnknownPrecisionError(f"unknown precision(s) {', '.join(unknown)}; "
                                    f"known: {', '.join(sorted(KNOWN_PRECISIONS))}")
    return wanted


def select_models(parser: argparse.ArgumentParser, args: argparse.Namespace
                  ) -> tuple[Catalog, list[Model], list[str]] | None:
    """Apply --name/--list/--all/--print_all and load the selected descriptors. Returns
    (catalog, models that loaded, names whose descriptor is invalid), or None when --print_all
    already did the job. Each invalid descriptor and each warning is already one line on
    stderr; with --strict the first invalid descriptor (or unknown key) is raised instead."""
    from ..catalog import Catalog
    from ..resources import default_models_dir

    memo = None
    if getattr(args, "cache_dir", None) is not None:  # the tools with a cache keep parsed descriptors in it
        from ..descriptor_memo import DescriptorMemo

        memo = DescriptorMemo(args.cache_dir)
    catalog = Catalog(args.models_dir or default_models_dir(), strict=args.strict, memo=memo)
    try:
        return _select(parser, args, catalog)
    finally:
        if memo is not None:
            memo.save()


def _select(parser: argparse.ArgumentParser, args: argparse.Namespace, catalog: Catalog
            ) -> tuple[Catalog, list[Model], list[str]] | None:
    from ..catalog import read_list_file, split_names

    if args.print_all:
        for name in catalog.names():
            print(name)
        return None
    chosen = sum([args.all, args.name is not None, args.list is not None])
    if chosen != 1:
        parser.error("give exactly one of --name, --list, --all or --print_all")
    if args.all:
        names = catalog.names()
    else:
        patterns = split_names(args.name) if args.name is not None else read_list_file(args.list)
        names = catalog.select_names(patterns)
    if not names:
        raise SelectionError(f"no models in {catalog.root}")
    if args.strict:
        return catalog, [catalog.load(n) for n in names], []
    loaded = catalog.load_each(names)
    line = CommandLine(parser.prog)
    for warning in loaded.warnings:
        print(line("warning", str(warning)), file=sys.stderr)
    for exc in {id(e): e for e in loaded.failed.values()}.values():  # a stage fails with its composite
        print(line("error", str(exc)), file=sys.stderr)
    return catalog, loaded.models, list(loaded.failed)


def parse_and_select(parser: argparse.ArgumentParser, argv: Sequence[str]):
    """Parse the command line and select models. Returns (args, precisions, catalog, models,
    failed): `failed` names the selected models whose descriptor is invalid (already reported;
    the caller adds them to its failure summary). None when --print_all already did the job."""
    args = parser.parse_args(argv)
    precisions = parse_precisions(args.precisions)
    selected = select_models(parser, args)
    if selected is None:
        return None
    return (args, precisions, *selected)


class CommandLine:
    """The one place where a command's lines on stderr are shaped: ``prog: error: text``,
    ``prog: warning: text``, ``prog: failed: a, b``. Given to the pipelines' reporters as their
    ``line``; a class rather than a closure so that worker processes (the converter's ``-j``)
    can be given it."""

    def __init__(self, prog: str) -> None:
        self.prog = prog

    def __call__(self, kind: str, text: str) -> str:
        return f"{self.prog}: {kind}: {text}"


def error_line(prog: str) -> Callable[[str, str], str]:
    """How every error and warning line of a command starts: with the command's name."""
    return CommandLine(prog)


def summarize(prog: str, failed: list[str]) -> int:
    """The last line of a run with failures, and the exit code: 1 if any model failed."""
    if failed:
        print(CommandLine(prog)("failed", ", ".join(failed)), file=sys.stderr)
        return 1
    return 0


def run(prog: str, body: Callable[[Sequence[str]], int], argv: Sequence[str] | None) -> int:
    """Run a CLI body; a ModelzooError becomes one line on stderr and its exit code."""
    # TensorFlow's CUDA plugin registration chatter is noise on CPU-only machines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # A stream closed before we started (`>&-`) is None: print() would fail or write elsewhere.
    sys.stdout = sys.stdout or open(os.devnull, "w")
    sys.stderr = sys.stderr or open(os.devnull, "w")
    for stream in (sys.stdout, sys.stderr):  # a name that is not UTF-8 is printed escaped, never a crash
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass
    try:
        return body(sys.argv[1:] if argv is None else argv)
    except ModelzooError as exc:
        print(CommandLine(prog)("error", str(exc)), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """(resolved path, (device, inode) or None when nothing is there) of a path."""
    try:
        st = os.stat(path)
        node: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except OSError:
        node = None
    try:
        resolved = str(Path(path).resolve())
    except (OSError, RuntimeError):  # (a link loop: compared by its own name)
        resolved = os.path.abspath(path)
    return resolved, node


def model_file_outputs(flag: str, root: Path, models: "list[Model]") -> list[tuple[str, Path]]:
    """Where a run puts each file of these models below ``root`` (the downloader's -o, a mirror
    folder): its outputs for ``refuse_outputs_over_inputs``."""
    return [(flag, root / leaf.subdirectory / f.name) for m in models for leaf in m.leaf_models() for f in leaf.files]


def descriptor_inputs(models: "list[Model]", list_file: Path | None) -> list[Path]:
    """What a run over these models reads to know them: each descriptor, and --list's file."""
    return [leaf.config_path for m in models for leaf in m.leaf_models()] + ([list_file] if list_file else [])


def refuse_outputs_over_inputs(outputs: list[tuple[str, Path]], inputs: list[Path],
                               folders: list[tuple[str, Path]] | None = None) -> None:
    """A run that would write over one of its own inputs is refused before any work (UsageError):
    an output file (named by its flag) that is an input file (the same resolved path or the same
    inode: a hard or symbolic link to it), another output file, or a folder an output replaces
    whole (the quantizer's precision folders) that holds an input. Writing first would leave the
    next run (or this one's later steps) with the output where its input was."""
    from ..errors import UsageError

    known: dict[str, Path] = {}
    nodes: dict[tuple[int, int], Path] = {}
    for path in inputs:
        resolved, node = _identity(path)
        known.setdefault(resolved, path)
        if node is not None:
            nodes.setdefault(node, path)
    seen: dict[str, str] = {}
    for flag, path in outputs:
        resolved, node = _identity(path)
        clash = known.get(resolved) or (nodes.get(node) if node is not None else None)
        if clash is not None:
            raise UsageError(f"{flag} {path}: is the input {clash}; refusing to write over it")
        if resolved in seen:
            raise UsageError(f"{flag} {path}: is also {seen[resolved]}; give each output its own file")
        seen[resolved] = f"{flag} {path}"
    for flag, folder in folders or []:
        top = _identity(folder)[0]
        for resolved, path in known.items():
            if resolved == top or resolved.startswith(top.rstrip(os.sep) + os.sep):
                raise UsageError(f"{flag} {folder}: this run replaces that folder, which holds the input {path}; "
                                 "write the output elsewhere")


def check_output_path(flag: str, path: Path, *, folder: bool = False) -> None:
    """An output file (or, with ``folder``, an output folder) can be made at ``path``: said
    before any work (UsageError), not after a measurement or a quantization of minutes. The
    nearest part of the path that exists must be a folder this process may write in (nothing is
    created here), and a file output must not be a folder."""
    from ..errors import UsageError

    path = Path(os.path.abspath(path))
    if path.is_dir():
        if not folder:
            raise UsageError(f"{flag} {path}: a folder, not a file")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {path}: cannot be written (no permission to write in the folder)")
        return
    if os.path.lexists(path) and (folder or not os.path.isfile(path)):
        raise UsageError(f"{flag} {path}: not a {'folder' if folder else 'regular file'}")
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot be written (no permission to write in {parent})")


def shard_arg(text: str):
    """--shard's type: K/N, auto or auto/N (shards.parse_shard); bad input is one line, exit 2."""
    from ..shards import parse_shard

    try:
        return parse_shard(text)
    except ModelzooError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_shard_arg(parser: argparse.ArgumentParser, what: str) -> None:
    """--shard, shared by the converter, the quantizer, the mirror's sync and the accuracy tool."""
    parser.add_argument("--shard", type=shard_arg, metavar="K/N",
                        help=f"do only shard K of N (0 <= K < N) of the {what}, every N-th in sorted order, so "
                             "N processes (a Kubernetes Indexed Job, a Slurm array, a CI matrix) share a run; "
                             "'auto' reads MODELZOO_SHARD=K/N, SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, "
                             "or JOB_COMPLETION_INDEX with 'auto/N' (see docs/scale.md)")


def shard_models(prog: str, shard, models: list[Model], failed: list[str]) -> tuple[list[Model], list[str]]:
    """This shard's models by sorted name (the selected models that loaded and those whose
    descriptor failed, so each failure is reported by one shard only); a warning when there are
    fewer models than shards. Without --shard, everything."""
    if shard is None:
        return models, failed
    from ..shards import too_many

    names = [m.name for m in models] + list(failed)
    warning = too_many(shard, len(names), "models")
    if warning:
        print(CommandLine(prog)("warning", warning), file=sys.stderr)
    mine = set(shard.take(names))
    return [m for m in models if m.name in mine], [n for n in failed if n in mine]


def cluster_arg(text: str) -> str:
    """--cluster's type: ray://HOST:PORT or auto (ray_executor.parse_cluster); bad input is one line, exit 2."""
    from ..ray_executor import parse_cluster

    try:
        return parse_cluster(text)
    except ModelzooError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_cluster_arg(parser: argparse.ArgumentParser, what: str) -> None:
    """--cluster and --cluster_cpus, shared by the converter, the quantizer, the mirror's sync --ir
    and the accuracy tool."""
    parser.add_argument("--cluster", type=cluster_arg, metavar="ray://HOST:PORT|auto",
                        help=f"run the {what} on a Ray cluster (the [ray] extra): ray://HOST:PORT is the head's "
                             "client port, auto the cluster of RAY_ADDRESS or the one on this machine; files, IR "
                             "and pictures must be where every node reads them (a shared folder, the mirror, S3); "
                             "a lost node's jobs run again elsewhere (see docs/scale.md)")
    parser.add_argument("--cluster_cpus", type=positive_int, default=1, metavar="N",
                        help="cores each job asks the cluster for (default 1)")


def cluster_executor(args: argparse.Namespace, actors: bool = False):
    """The Ray executor --cluster asks for, connected (a bad address or a missing extra is one
    line before any work), or None without --cluster.

    Raises:
        MissingExtraError: Ray is not installed.
        ClusterUnreachableError: the address does not answer within the connect timeout.
    """
    if getattr(args, "cluster", None) is None:
        return None
    from ..ray_executor import RayCluster

    executor = RayCluster(args.cluster, cpus=args.cluster_cpus, actors=actors)
    executor.connect()
    return executor


def run_dir_arg(text: str) -> "Path | str":
    """--run_dir's (and --merge's) type: a folder, or s3://bucket/prefix kept as a URL (a Path
    would fold its '//')."""
    if text.startswith("s3://"):
        if len(text) <= len("s3://") or text[len("s3://"):].startswith("/"):
            raise argparse.ArgumentTypeError(f"expected s3://bucket/prefix (got {text!r})")
        return text
    return Path(text)


def check_run_dir(path: "Path | str") -> None:
    """A folder --run_dir must be one this run can write (before any work); an s3:// one is
    checked by its first request."""
    if isinstance(path, Path):
        check_output_path("--run_dir", path, folder=True)


class ModelRecords:
    """--cluster with --run_dir (and no --shard) for the converter and the quantizer: one record a
    model, written by the driver as soon as that model's job ends, so that a driver killed and
    started again with the same --run_dir does only the models without a record. A model's
    record is the one ``--shard K/N --run_dir`` writes when N is the number of selected models
    (shard K takes the K-th name in sorted order: that model alone), so either run reads the
    other's records.

    ``inputs_of(model)`` and ``outputs_of(model)`` are the command's own record parts;
    ``check(model)`` (--locked) may refuse a model before its record is written; a record
    stands only while its IR is still under ``root`` byte for byte."""

    def __init__(self, runs: Any, names: list[str], root: Path, inputs_of: Callable[[Any], dict],
                 outputs_of: Callable[[Any], dict], versions: dict[str, str],
                 check: Callable[[Any], bool] | None = None) -> None:
        from ..shards import Shard

        order = sorted(names)
        self.shards = {name: Shard(k, len(order)) for k, name in enumerate(order)}
        self.runs, self.root, self.inputs_of, self.outputs_of = runs, root, inputs_of, outputs_of
        self.versions, self.check = versions, check
        self.inputs: dict[str, dict] = {}
        self.refused: list[str] = []  # models whose job ended well but that check refused

    def todo(self, models: list[Model]) -> list[Model]:
        """The models without a record of these inputs (those with one are said and skipped).

        Raises:
            RunRecordMismatchError: a model's record was made with other inputs.
        """
        from ..store.runs import still_there

        left = []
        for model in models:
            shard, inputs = self.shards[model.name], self.inputs_of(model)
            record = self.runs.done(shard, inputs)
            if record is not None and still_there(record["outputs"]["ir"], self.root):
                print(f"shard {shard}: done already ({self.runs.path(shard)}); skipped", flush=True)
                continue
            self.inputs[model.name] = inputs
            left.append(model)
        print(f"{len(left)} jobs ({len(models) - len(left)} done already)", flush=True)
        return left

    def keep(self, model: Model, ok: bool) -> None:
        """A model's job ended: its record, if it ended well (and ``check`` accepts it)."""
        if not ok:
            return
        if self.check is not None and not self.check(model):
            self.refused.append(model.name)
            return
        shard = self.shards[model.name]
        path = self.runs.write(shard, self.inputs[model.name], self.outputs_of(model), versions=self.versions)
        print(f"shard {shard}: record {path}", flush=True)
