"""The descriptor schema (Open Model Zoo's model.yml) and its strict loader.

Descriptors are the single source of truth, so a mistake in one must be caught when it is
loaded, with the file and the key path in the message, not later as a KeyError in the
middle of a download.
"""

from __future__ import annotations

import re
import string
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .errors import DescriptorError

if TYPE_CHECKING:
    from .descriptor_memo import DescriptorMemo

KNOWN_FRAMEWORKS = ("dldt", "onnx", "paddle", "pytorch", "tf")
# Frameworks whose models go through an intermediate ONNX conversion first.
ONNX_FIRST_FRAMEWORKS = ("pytorch",)
KNOWN_PRECISIONS = frozenset({"FP16", "FP16-INT1", "FP16-INT8", "FP32", "FP32-INT1", "FP32-INT8"})
KNOWN_TASK_TYPES = frozenset({
    "action_recognition", "background_matting", "classification", "colorization", "detection",
    "face_recognition", "feature_extraction", "head_pose_estimation", "human_pose_estimation",
    "image_inpainting", "image_processing", "image_translation", "instance_segmentation",
    "machine_translation", "monocular_depth_estimation", "named_entity_recognition",
    "noise_suppression", "object_attributes", "optical_character_recognition", "place_recognition",
    "question_answering", "salient_object_detection", "semantic_segmentation",
    "sound_classification", "speech_recognition", "style_transfer", "text_prediction",
    "text_to_speech", "time_series", "token_recognition",
})
# Placeholders that model_optimizer_args / conversion_to_onnx_args may use ($name or ${name}).
PLACEHOLDERS = ("config_dir", "conv_dir", "dl_dir", "mo_dir", "mo_ext_dir", "models_dir")
ARCHIVE_FORMATS = ("zip", "tar", "gztar", "bztar", "xztar")
MODEL_NAME_RE = re.compile(r"[0-9A-Za-z._-]+")
SHA384_RE = re.compile(r"[0-9a-fA-F]{96}")
# What a file system takes (Linux's PATH_MAX, NAME_MAX), and a depth beyond any real model's: file
# names (and archive members, unpack.py) are refused beyond them.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_DEPTH = 256
# Names the tools give their own staging folders (convert.STAGING_PREFIX, quantize.STAGING_PREFIX,
# mirror_ir's, unpack's): one left by a dead process is removed, so no downloaded file may look like one.
RESERVED_PREFIXES = (".converting-", ".quantizing-", ".ir-sync-")
_URL_RE = re.compile(r"https?://[^/\s]+\S*")  # a host, and no white space anywhere


def reserved_name(part: str) -> bool:
    """Whether one name of a path is one the tools make for themselves: a staging folder
    (RESERVED_PREFIXES, an archive's ``.<name>.unpack-...``) or a temporary
    (``.<name>.<pid>-<hex>.part``, fsio.temp_name)."""
    if not part.startswith("."):
        return False
    from .fsio import temporary_owner

    return part.startswith(RESERVED_PREFIXES) or ".unpack-" in part or temporary_owner(part) is not None


# ----------------------------------------------------------------------------- data model
#
# Plain classes and NamedTuples, not dataclasses: importing dataclasses (it imports inspect) and
# building each dataclass costs ~13 ms at start-up, a tenth of a warm run over 200 models
# (docs/performance.md).

class HttpSource:
    """A file fetched with GET from ``url``."""

    __slots__ = ("url",)
    type_name = "http"  # the descriptor's $type
    keys = ("url",)  # its keys besides $type

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def parse(cls, c: "_Checker", key: str, value: dict[str, Any]) -> "HttpSource":
        return cls(c.url(key + ".url", value["url"]))

    def download_url(self) -> str:
        """Where the file is fetched from."""
        return self.url

    def __eq__(self, other: object) -> bool:
        return type(other) is HttpSource and other.url == self.url

    def __hash__(self) -> int:
        return hash((HttpSource, self.url))

    def __repr__(self) -> str:
        return f"HttpSource({self.url!r})"


class GoogleDriveSource:
    """A file shared on Google Drive under ``id``."""

    __slots__ = ("id",)
    type_name = "google_drive"
    keys = ("id",)
    URL = "https://drive.google.com/uc?export=download&confirm=t&id="

    def __init__(self, id: str) -> None:  # noqa: A002 - the descriptor's own key
        self.id = id

    @classmethod
    def parse(cls, c: "_Checker", key: str, value: dict[str, Any]) -> "GoogleDriveSource":
        return cls(c.string(key + ".id", value["id"]))

    def download_url(self) -> str:
        """Google Drive's direct-download URL of the id (quoted: the id is the descriptor's text)."""
        from urllib.parse import quote

        return self.URL + quote(self.id)

    def __eq__(self, other: object) -> bool:
        return type(other) is GoogleDriveSource and other.id == self.id

    def __hash__(self) -> int:
        return hash((GoogleDriveSource, self.id))

    def __repr__(self) -> str:
        return f"GoogleDriveSource({self.id!r})"


Source = HttpSource | GoogleDriveSource

# the descriptor's source types ($type -> class): a new kind of source is a class with type_name,
# keys, parse and download_url, and an entry here
SOURCE_TYPES: dict[str, type] = {cls.type_name: cls for cls in (HttpSource, GoogleDriveSource)}


class DescriptorWarning(NamedTuple):
    """Something a descriptor says that we ignore (an unknown key): worth a line on stderr, not a
    refused model, because a bulk run over someone else's zoo must not stop at a typo."""

    path: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.key}: {self.problem}"


class ModelFile(NamedTuple):
    """One file of a model, as its descriptor promises it."""

    name: PurePosixPath  # relative to the model's folder
    size: int
    sha384: str  # lowercase hex
    source: Source
    original_source: Source | None = None  # informational: where the file first came from


class UnpackArchive(NamedTuple):
    """Post-processing: unpack an archive in the model's folder."""

    file: PurePosixPath
    format: str


class RegexReplace(NamedTuple):
    """Post-processing: patch a text file in the model's folder."""

    file: PurePosixPath
    pattern: str
    replacement: str
    count: int = 0  # 0: replace every occurrence, at least one must exist


Postproc = UnpackArchive | RegexReplace


def regex_output_limit(size: int) -> int:
    """The most bytes a regex_replace may make of a file of ``size`` bytes: twice it, plus 1 MiB
    (a patch to a text file, not a way to fill the disk). unpack.regex_replace stops at it while
    substituting; space.download_writes counts it."""
    return 2 * size + (1 << 20)


class InputInfo(NamedTuple):
    """An input's name, shape and layout (informational)."""

    name: str
    shape: tuple[int, ...] = ()
    layout: str = ""


class Model:
    """A loaded descriptor. A composite model has stages and no files of its own."""

    def __init__(self, *, name: str, subdirectory: PurePosixPath, config_path: Path, description: str,
                 framework: str, license_url: str, task_type: str, precisions: frozenset[str],
                 files: list[ModelFile] | None = None, postprocessing: list[Postproc] | None = None,
                 mo_args: list[str] | None = None, conversion_to_onnx_args: list[str] | None = None,
                 input_info: list[InputInfo] | None = None, model_info: dict[str, Any] | None = None,
                 quantization_output_precisions: list[str] | None = None, quantizable: bool | None = None,
                 quantized: str | None = None, composite_model_name: str | None = None,
                 stages: list["Model"] | None = None, warnings: list[DescriptorWarning] | None = None) -> None:
        self.name = name
        self.subdirectory = subdirectory  # relative to the models root
        self.config_path = config_path
        self.description = description
        self.framework = framework
        self.license_url = license_url
        self.task_type = task_type
        self.precisions = precisions
        self.files = files if files is not None else []
        self.postprocessing = postprocessing if postprocessing is not None else []
        self.mo_args = mo_args
        self.conversion_to_onnx_args = conversion_to_onnx_args
        self.input_info = input_info if input_info is not None else []
        self.model_info = model_info if model_info is not None else {}
        self.quantization_output_precisions = quantization_output_precisions or []
        self.quantizable = quantizable
        self.quantized = quantized
        self.composite_model_name = composite_model_name
        self.stages = stages if stages is not None else []
        # what the loader ignored in this model's own descriptor (stages carry their own)
        self.warnings = warnings if warnings is not None else []

    def __repr__(self) -> str:
        return f"Model({self.name!r}, {self.subdirectory.as_posix()!r})"

    @property
    def is_composite(self) -> bool:
        return bool(self.stages)

    def leaf_models(self) -> list["Model"]:
        """The models that own files: the stages of a composite, else the model itself."""
        return list(self.stages) if self.stages else [self]


# ----------------------------------------------------------------------------- YAML

def load_yaml_mapping(path: Path, memo: "DescriptorMemo | None" = None) -> dict[str, Any]:
    """Read a descriptor file; anything but a plain YAML mapping is a DescriptorError. With a
    memo (descriptor_memo.py), a text parsed before is not parsed again."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DescriptorError(path, "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DescriptorError(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    data = memo.get(text) if memo is not None else None
    if data is None:
        from . import strict_yaml  # PyYAML is imported only when something needs parsing

        try:
            data = strict_yaml.load(text)
        except strict_yaml.YamlProblem as exc:
            raise DescriptorError(path, exc.where, exc.problem) from exc
        if memo is not None and isinstance(data, dict):
            memo.put(text, data)
    if not isinstance(data, dict):
        raise DescriptorError(path, "", f"expected a mapping at the top level, got {_kind(data)}")
    return data


# ----------------------------------------------------------------------------- validation helpers

def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _number(value: int | float) -> str:
    """A number for a message; Python refuses to print an integer of more than 4300 digits."""
    try:
        return repr(value)
    except ValueError:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"


class _Checker:
    """Carries the file path so every check can name file and key path. Unknown keys are
    errors when strict, else warnings collected in `warnings` (the key is then ignored)."""

    def __init__(self, path: Path, strict: bool = False) -> None:
        self.path = path
        self.strict = strict
        self.warnings: list[DescriptorWarning] = []

    def fail(self, key: str, problem: str) -> DescriptorError:
        return DescriptorError(self.path, key, problem)

    def mapping(self, key: str, value: Any, required: set[str], optional: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_kind(value)}")
        prefix = key + "." if key else ""
        known = required | optional
        for k in value:
            if not isinstance(k, str):
                raise self.fail(key or "(top level)", f"keys must be strings, got {k!r}")
            if k not in known:
                self._unknown_key(prefix + k, k, known)
        for k in sorted(required):
            if k not in value:
                raise self.fail(prefix + k, "required key is missing")
        return {k: v for k, v in value.items() if k in known}

    def _unknown_key(self, path: str, k: str, known: set[str]) -> None:
        import difflib  # here: only an unknown key needs it (start-up time)

        close = difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.7)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
        if self.strict:
            raise self.fail(path, f"unknown key ({hint})")
        self.warnings.append(DescriptorWarning(str(self.path), path, f"unknown key, ignored ({hint})"))

    def string(self, key: str, value: Any, *, nonempty: bool = True) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_kind(value)}")
        if nonempty and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def enum(self, key: str, value: Any, choices) -> str:
        text = self.string(key, value)
        if text not in choices:
            raise self.fail(key, f"expected one of {', '.join(sorted(choices))}; got {text!r}")
        return text

    def nonneg_int(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected a non-negative integer, got {_kind(value)}")
        if value < 0:
            raise self.fail(key, f"expected a non-negative integer, got {_number(value)}")
        return value

    def nonneg_number(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a non-negative number, got {_kind(value)}")
        if value < 0:
            raise self.fail(key, f"expected a non-negative number, got {_number(value)}")
        return float(value)

    def list_of(self, key: str, value: Any, item: Callable[[str, Any], Any]) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {_kind(value)}")
        return [item(f"{key}[{i}]", v) for i, v in enumerate(value)]

    def relative_path(self, key: str, value: Any) -> PurePosixPath:
        text = self.string(key, value)
        if "\\" in text or "\0" in text:
            raise self.fail(key, f"{text!r}: use '/' as the separator; backslashes and NULs are not allowed")
        path = PurePosixPath(text)
        if path.is_absolute() or re.match(r"^[A-Za-z]:", text):
            raise self.fail(key, f"{text!r}: must be a relative path")
        if ".." in path.parts:
            raise self.fail(key, f"{text!r}: must not climb out of the model folder with '..'")
        if path.parts in ((), (".",)):
            raise self.fail(key, f"{text!r}: must name a file")
        # as an archive's members are (unpack.py): a name no file system takes is refused here,
        # not found as ENAMETOOLONG in the middle of a run
        shown = repr(text) if len(text) <= 60 else repr(text[:60]) + "..."
        if len(text.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES or len(path.parts) > MAX_DEPTH:
            raise self.fail(key, f"{shown}: too long or too deep a path (at most {MAX_PATH_BYTES} bytes, "
                                 f"{MAX_DEPTH} folders)")
        for part in path.parts:
            if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
                raise self.fail(key, f"{shown}: a name in it is longer than {MAX_NAME_BYTES} bytes")
            if reserved_name(part):
                raise self.fail(key, f"{shown}: {part!r} is named like the tools' own temporaries and staging "
                                     "folders (which they remove as leftovers)")
        return path

    def url(self, key: str, value: Any) -> str:
        text = self.string(key, value)
        if not _URL_RE.fullmatch(text):
            raise self.fail(key, f"expected an http:// or https:// URL, got {text!r}")
        return text

    def template_args(self, key: str, value: Any) -> list[str]:
        def one(k: str, v: Any) -> str:
            arg = self.string(k, v)
            for m in string.Template.pattern.finditer(arg):
                if m.group("invalid") is not None:
                    raise self.fail(k, f"{arg!r}: a lone '$' (write '$$' for a literal dollar sign)")
                name = m.group("named") or m.group("braced")
                if name and name not in PLACEHOLDERS:
                    known = ", ".join("$" + p for p in PLACEHOLDERS)
                    raise self.fail(k, f"unknown placeholder ${name} (known: {known})")
            return arg
        return self.list_of(key, value, one)


# ----------------------------------------------------------------------------- model.yml

_MODEL_REQUIRED = {"description", "task_type", "files", "framework", "license"}
_MODEL_OPTIONAL = {"postprocessing", "model_optimizer_args", "conversion_to_onnx_args", "input_info",
                   "model_info", "quantization_output_precisions", "quantizable", "quantized"}
_FILE_KEYS = ({"name", "size", "checksum", "source"}, {"original_source"})
_MODEL_INFO_TYPES = {"model_type": "string", "resize_type": "string", "confidence_threshold": "number",
                     "iou_threshold": "number", "labels": "list", "anchors": "list", "masks": "list"}


def _parse_checksum(c: _Checker, key: str, value: Any) -> str:
    if isinstance(value, dict):
        c.mapping(key, value, {"$type", "value"}, set())
        c.enum(key + ".$type", value["$type"], ("sha384",))
        return _parse_checksum(c, key + ".value", value["value"])
    text = c.string(key, value)
    if not SHA384_RE.fullmatch(text):
        raise c.fail(key, f"expected 96 hex digits (SHA-384), got {len(text)} characters {text[:20]!r}...")
    return text.lower()


def _parse_source(c: _Checker, key: str, value: Any) -> Source:
    if isinstance(value, str):
        return HttpSource(c.url(key, value))
    if isinstance(value, dict):
        kind = c.enum(key + ".$type", value.get("$type"), tuple(SOURCE_TYPES))
        cls = SOURCE_TYPES[kind]
        c.mapping(key, value, {"$type", *cls.keys}, set())
        return cls.parse(c, key, value)
    raise c.fail(key, f"expected a URL or a mapping with $type, got {_kind(value)}")


def _parse_file(c: _Checker, key: str, value: Any) -> ModelFile:
    c.mapping(key, value, *_FILE_KEYS)
    original = value.get("original_source")
    if original is not None:
        original = _parse_source(c, key + ".original_source", original)
    return ModelFile(
        name=c.relative_path(key + ".name", value["name"]),
        size=_size(c, key + ".size", value["size"]),
        sha384=_parse_checksum(c, key + ".checksum", value["checksum"]),
        source=_parse_source(c, key + ".source", value["source"]),
        original_source=original,
    )


MAX_SIZE = 2**63 - 1  # what a file system's offsets (off_t) can count


def _size(c: _Checker, key: str, value: Any) -> int:
    size = c.nonneg_int(key, value)
    if size > MAX_SIZE:
        shown = repr(size) if size < 10**30 else f"an integer of about {int(size.bit_length() * 0.30103)} digits"
        raise c.fail(key, f"{shown}: more bytes than any file can hold (at most 2^63-1)")
    return size


def _parse_postproc(c: _Checker, key: str, value: Any) -> Postproc:
    if not isinstance(value, dict):
        raise c.fail(key, f"expected a mapping, got {_kind(value)}")
    kind = c.enum(key + ".$type", value.get("$type"), ("regex_replace", "unpack_archive"))
    if kind == "unpack_archive":
        c.mapping(key, value, {"$type", "file", "format"}, set())
        return UnpackArchive(c.relative_path(key + ".file", value["file"]),
                             c.enum(key + ".format", value["format"], ARCHIVE_FORMATS))
    c.mapping(key, value, {"$type", "file", "pattern", "replacement"}, {"count"})
    pattern = c.string(key + ".pattern", value["pattern"])
    try:
        re.compile(pattern)
    except re.error as exc:
        raise c.fail(key + ".pattern", f"invalid regular expression: {exc}") from exc
    return RegexReplace(c.relative_path(key + ".file", value["file"]), pattern,
                        c.string(key + ".replacement", value["replacement"], nonempty=False),
                        c.nonneg_int(key + ".count", value.get("count", 0)))


def _parse_input(c: _Checker, key: str, value: Any) -> InputInfo:
    c.mapping(key, value, {"name"}, {"shape", "layout"})
    shape = c.list_of(key + ".shape", value.get("shape", []), c.nonneg_int)
    layout = c.string(key + ".layout", value.get("layout", ""), nonempty=False)
    return InputInfo(c.string(key + ".name", value["name"]), tuple(shape), layout)


def _parse_model_info(c: _Checker, value: Any) -> dict[str, Any]:
    value = c.mapping("model_info", value, set(), set(_MODEL_INFO_TYPES))
    for k, kind in _MODEL_INFO_TYPES.items():
        if k not in value:
            continue
        key = "model_info." + k
        if kind == "string":
            c.string(key, value[k])
        elif kind == "number":
            c.nonneg_number(key, value[k])
        elif not isinstance(value[k], list):
            raise c.fail(key, f"expected a list, got {_kind(value[k])}")
    return dict(value)


def _check_postproc_files(c: _Checker, files: list[ModelFile], steps: list[Postproc]) -> None:
    """A step must name a downloaded file, unless an earlier step unpacked an archive
    (whose members cannot be known before it is downloaded)."""
    names = {f.name for f in files}
    unpacked = False
    for i, step in enumerate(steps):
        if step.file not in names and not unpacked:
            raise c.fail(f"postprocessing[{i}].file",
                         f"{str(step.file)!r} is not one of the files this descriptor downloads")
        unpacked = unpacked or isinstance(step, UnpackArchive)


def _dldt_precisions(c: _Checker, name: str, files: list[ModelFile]) -> frozenset[str]:
    per_precision: dict[str, set[str]] = {}
    for i, f in enumerate(files):
        if len(f.name.parts) == 2 and f.name.parts[0].startswith("FP"):
            precision = f.name.parts[0]
            if precision not in KNOWN_PRECISIONS:
                raise c.fail(f"files[{i}].name", f"unknown precision folder {precision!r} "
                             f"(known: {', '.join(sorted(KNOWN_PRECISIONS))})")
            per_precision.setdefault(precision, set()).add(f.name.parts[1])
    for precision, present in sorted(per_precision.items()):
        for ext in ("xml", "bin"):
            if f"{name}.{ext}" not in present:
                raise c.fail("files", f"no {precision}/{name}.{ext} for precision {precision}")
    return frozenset(per_precision)


def parse_model(data: dict[str, Any], *, name: str, subdirectory: PurePosixPath, config_path: Path,
                composite_model_name: str | None = None, strict: bool = False) -> Model:
    """Validate one model.yml mapping (already loaded) and build a Model. Unknown keys are
    errors when strict, else ignored and listed in Model.warnings."""
    c = _Checker(config_path, strict)
    if not MODEL_NAME_RE.fullmatch(name):
        raise c.fail("", f"model folder name {name!r} may only use letters, digits and ._-")
    for bad in ("name", "subdirectory"):
        if bad in data:
            raise c.fail(bad, "not allowed: the name and subdirectory come from the descriptor's folder")
    c.mapping("", data, _MODEL_REQUIRED, _MODEL_OPTIONAL)

    files = c.list_of("files", data["files"], lambda k, v: _parse_file(c, k, v))
    seen: dict[PurePosixPath, int] = {}
    for i, f in enumerate(files):
        if f.name in seen:
            raise c.fail(f"files[{i}].name", f"duplicate file name {str(f.name)!r} (also files[{seen[f.name]}])")
        seen[f.name] = i
    steps = c.list_of("postprocessing", data.get("postprocessing", []), lambda k, v: _parse_postproc(c, k, v))
    _check_postproc_files(c, files, steps)

    framework = c.enum("framework", data["framework"], KNOWN_FRAMEWORKS)
    onnx_args = None
    if "conversion_to_onnx_args" in data:
        onnx_args = c.template_args("conversion_to_onnx_args", data["conversion_to_onnx_args"])
    if framework in ONNX_FIRST_FRAMEWORKS and not onnx_args:
        raise c.fail("conversion_to_onnx_args", f"required for framework {framework!r} "
                     "(it is converted to ONNX first)")
    if framework not in ONNX_FIRST_FRAMEWORKS and onnx_args:
        raise c.fail("conversion_to_onnx_args", f"not supported for framework {framework!r}")

    mo_args = None
    if "model_optimizer_args" in data:
        mo_args = c.template_args("model_optimizer_args", data["model_optimizer_args"])
        precisions = frozenset({"FP16", "FP32"})
    elif framework == "dldt":
        precisions = _dldt_precisions(c, name, files)
    else:
        raise c.fail("model_optimizer_args", f"required: framework {framework!r} is not IR, "
                     "so the model needs a conversion")

    quant = c.list_of("quantization_output_precisions", data.get("quantization_output_precisions", []),
                      lambda k, v: c.enum(k, v, KNOWN_PRECISIONS))
    quantizable = data.get("quantizable")
    if quantizable is not None and not isinstance(quantizable, bool):
        raise c.fail("quantizable", f"expected true or false, got {_kind(quantizable)}")
    quantized = data.get("quantized")
    if quantized is not None:
        quantized = c.enum("quantized", quantized, ("INT8",))

    return Model(
        name=name, subdirectory=subdirectory, config_path=config_path,
        description=c.string("description", data["description"]),
        framework=framework,
        license_url=c.url("license", data["license"]),
        task_type=c.enum("task_type", data["task_type"], KNOWN_TASK_TYPES),
        precisions=precisions, files=files, postprocessing=steps, mo_args=mo_args,
        conversion_to_onnx_args=onnx_args,
        input_info=c.list_of("input_info", data.get("input_info", []), lambda k, v: _parse_input(c, k, v)),
        model_info=_parse_model_info(c, data.get("model_info", {})),
        quantization_output_precisions=quant, quantizable=quantizable, quantized=quantized,
        composite_model_name=composite_model_name, warnings=c.warnings,
    )


def load_model(config_path: Path, models_root: Path, composite_model_name: str | None = None, *,
               strict: bool = False, memo: "DescriptorMemo | None" = None) -> Model:
    """Load and validate one model.yml found under models_root."""
    folder = config_path.parent
    return parse_model(load_yaml_mapping(config_path, memo), name=folder.name,
                       subdirectory=PurePosixPath(folder.relative_to(models_root).as_posix()),
                       config_path=config_path, composite_model_name=composite_model_name, strict=strict)


# ----------------------------------------------------------------------------- composite-model.yml

def load_composite(config_path: Path, models_root: Path, *, strict: bool = False,
                   memo: "DescriptorMemo | None" = None) -> Model:
    """Load a composite model: composite-model.yml plus one stage folder per stages_order entry."""
    c = _Checker(config_path, strict)
    folder = config_path.parent
    name = folder.name
    if not MODEL_NAME_RE.fullmatch(name):
        raise c.fail("", f"model folder name {name!r} may only use letters, digits and ._-")
    data = c.mapping("", load_yaml_mapping(config_path, memo),
                     {"description", "task_type", "framework", "license", "stages_order"}, set())
    order = c.list_of("stages_order", data["stages_order"], c.string)
    if not order:
        raise c.fail("stages_order", "must list at least one stage")
    if (folder / "model.yml").exists():
        raise c.fail("", "a composite model folder must not also hold a model.yml")
    present = {p.parent.name for p in folder.glob("*/model.yml")}
    for i, stage in enumerate(order):
        if stage not in present:
            raise c.fail(f"stages_order[{i}]", f"no stage folder {stage}/model.yml next to this file")
        if not stage.startswith(name + "-"):
            raise c.fail(f"stages_order[{i}]", f"stage names must start with {name + '-'!r}")
    unlisted = sorted(present - set(order))
    if unlisted:
        raise c.fail("stages_order", f"stage folder(s) not listed: {', '.join(unlisted)}")
    stages = [load_model(folder / stage / "model.yml", models_root, composite_model_name=name, strict=strict,
                         memo=memo) for stage in order]
    return Model(
        name=name, subdirectory=PurePosixPath(folder.relative_to(models_root).as_posix()),
        config_path=config_path,
        description=c.string("description", data["description"]),
        framework=c.enum("framework", data["framework"], KNOWN_FRAMEWORKS),
        license_url=c.url("license", data["license"]),
        task_type=c.enum("task_type", data["task_type"], KNOWN_TASK_TYPES),
        precisions=stages[0].precisions, composite_model_name=name, stages=stages, warnings=c.warnings,
    )
