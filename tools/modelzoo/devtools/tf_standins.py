"""Stand-in proof for Open Model Zoo's TensorFlow models: converted end to end without their real files.

For a model whose architecture is built here (`keras.applications` with `weights=None`, tf_slim's nets),
`prove_tf(...)` makes a stand-in of the file the descriptor downloads (the architecture's own
random initialisation, BatchNorm statistics calibrated on random batches) in that file's own
format and under its own name:

- the Keras HDF5 weights a `pre-convert.py` loads (densenet-121-tf, mobilenet-v3-*): written as
  Keras 2's `save_weights` wrote them, which is what `weights=<file>.h5` reads in Keras 2 and 3;
- the `.tgz` of a TF-Slim release holding a frozen graph (mobilenet-v1-*, mobilenet-v2-*): a
  frozen GraphDef whose input placeholder and output node carry the names the descriptor's
  `input_info` and `--output` use, as the archive's top-level member that `--input_model` names
  (the releases' checkpoints and `.tflite` beside it are not made: no conversion reads them);
- a TF-Slim checkpoint with the nets' code and the tf_slim wheel (googlenet-v1-tf): the wheel's
  own InceptionV1 as a V1 checkpoint in the release's `.tar.gz`, stand-ins of ours for the
  `nets/*.py` files, and the installed tf_slim package zipped under the wheel's name.

It writes a copy of the descriptor whose file entry has the stand-in's size and SHA-384 and a
loopback URL (and the zoo's `pre-convert.py`: ours from `models/public/` where the bundled zoo
has a copy, else the zoo's own), serves the file from the loopback server, downloads it with the
real downloader, converts it with the real converter, and compares the IR with the framework on
the same input (the descriptor's mean, scale and channel order applied on the framework's side,
as the IR does inside): the relative error max|IR - framework| / max|framework|.

`python -m modelzoo.devtools.tf_standins --models_dir OMZ_MODELS [NAMES...]` proves the named
(default: every one of `TF_MODELS`) models and prints a line per model. Needs TensorFlow with
Keras 3, tf_keras, tf-slim and OpenVINO (`[mo]`); `load` and `prove_stand_ins` need only OpenVINO.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..convert.mo import disable_telemetry
from ..resources import default_models_dir
from .loopback import LoopbackServer
from .zoo_proof import Proof, mo_values

SCRIPTS = Path(__file__).resolve().parents[2] / "downloader"


class StandInError(Exception):
    """A step of a stand-in proof failed: a tool's exit status, a descriptor this module cannot serve."""


@dataclass(frozen=True)
class Recipe:
    """How a model's stand-in is built: the Keras application and the downloaded file's kind."""

    kind: str  # "keras_h5" (weights a pre-convert.py loads), "frozen_pb" (a frozen graph in a .tgz)
    # or "slim_ckpt" (a TF-Slim checkpoint in a .tar.gz, the nets' code and the tf_slim wheel beside it)
    build: Callable[[Any, tuple[int, int, int]], Any] | None  # (keras, input shape HWC) -> a model
    net: str = ""  # slim_ckpt: the tf_slim.nets module (inception_v1)


def _app(name: str, **kwargs: Any) -> Callable[[Any, tuple[int, int, int]], Any]:
    return lambda keras, shape: getattr(keras.applications, name)(weights=None, input_shape=shape, **kwargs)


# TF-Slim's classifiers have 1001 classes (0 is "background"); Keras applications default to 1000
RECIPES: dict[str, Recipe] = {
    "densenet-121-tf": Recipe("keras_h5", _app("DenseNet121")),
    "mobilenet-v3-large-1.0-224-tf": Recipe("keras_h5", _app("MobileNetV3Large")),
    "mobilenet-v3-small-1.0-224-tf": Recipe("keras_h5", _app("MobileNetV3Small")),
    "mobilenet-v1-0.25-128": Recipe("frozen_pb", _app("MobileNet", alpha=0.25, classes=1001)),
    "mobilenet-v1-1.0-224-tf": Recipe("frozen_pb", _app("MobileNet", alpha=1.0, classes=1001)),
    "mobilenet-v2-1.0-224": Recipe("frozen_pb", _app("MobileNetV2", alpha=1.0, classes=1001)),
    "mobilenet-v2-1.4-224": Recipe("frozen_pb", _app("MobileNetV2", alpha=1.4, classes=1001)),
    "googlenet-v1-tf": Recipe("slim_ckpt", None, net="inception_v1"),
}
TF_MODELS: tuple[str, ...] = tuple(RECIPES)


@dataclass
class StandIn:
    """One model's stand-in: its files, and the framework's prediction with the weights they hold."""

    name: str
    descriptor: dict[str, Any]
    folder: Path  # the model's folder relative to the zoo (public/<name>)
    predict: Callable[[Any], Any]  # the preprocessed NHWC input -> the framework's output (numpy)
    files: dict[str, Path]  # the descriptor's file name -> the stand-in served under it


def _mo_value(args: list[str], flag: str) -> str:
    for a in args:
        if a.startswith(flag + "="):
            return a.partition("=")[2]
    raise StandInError(f"no {flag} in the descriptor")


def preprocess(descriptor: dict[str, Any], bgr: Any) -> Any:
    """What the IR does inside to its NHWC input, done in numpy: the channels reversed
    (`--reverse_input_channels`), then `(x - mean) / scale`."""
    import numpy as np

    args = descriptor.get("model_optimizer_args", [])
    rgb = bgr[..., ::-1] if "--reverse_input_channels" in args else bgr
    mean = np.float32(mo_values(args, "--mean_values") or [0.0])
    scale = np.float32(mo_values(args, "--scale_values") or [1.0])
    return np.ascontiguousarray((rgb - mean) / scale, dtype=np.float32)


def stand_in_model(name: str, descriptor: dict[str, Any], seed: int = 0) -> Any:
    """The Keras architecture of `name`, randomly initialised, every BatchNorm's moving statistics
    set to those of one random batch of pictures preprocessed as the IR does (so no layer's
    output vanishes or explodes, as it could with the initial mean 0 / variance 1)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    shape = tuple(descriptor["input_info"][0]["shape"][1:])
    model = RECIPES[name].build(keras, shape)
    norms = [layer for layer in _layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0  # the moving statistics become the batch's
    batch = np.random.default_rng(seed).uniform(0, 255, (4, *shape)).astype(np.float32)
    model(preprocess(descriptor, batch), training=True)
    return model


def _layers(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found.extend(_layers(layer) if hasattr(layer, "layers") else [layer])
    return found


def stand_in_weights(model: Any, path: Path) -> None:
    """The weights as Keras 2's `save_weights(...h5)` wrote them (Keras 3's own `.weights.h5`
    layout is another; its `load_weights` still reads this one for a `.h5` name)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def frozen_graph(model: Any, input_name: str, shape: list[int], output_name: str) -> bytes:
    """The model as a frozen TF1-style GraphDef: a placeholder `input_name`, every variable a
    constant, and an Identity called `output_name` on the model's output (the node the
    descriptor's `--output` names)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec(shape, tf.float32, name=input_name))
    graph_def = convert_variables_to_constants_v2(concrete).graph.as_graph_def()
    produced = concrete.outputs[0].name
    names = {node.name for node in graph_def.node}
    if input_name not in names or output_name in names:
        raise StandInError(f"the frozen graph cannot carry the names {input_name!r} and {output_name!r}")
    node = graph_def.node.add()
    node.name, node.op = output_name, "Identity"
    node.input.append(produced[:-2] if produced.endswith(":0") else produced)
    node.attr["T"].type = tf.float32.as_datatype_enum
    return graph_def.SerializeToString()


def _tgz(member: str, content: bytes, path: Path) -> None:
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size, info.mode, info.mtime = len(content), 0o644, 0
        archive.addfile(info, io.BytesIO(content))


# TF-Slim's nets come from tensorflow/models (not here): stand-ins of ours with nets_factory's
# interface over the nets that the tf_slim wheel carries itself. They import what the descriptor's
# regex_replace steps comment out (other nets, `inception_v3_arg_scope`), so a conversion works
# only if those steps ran.
SLIM_NETS = {
    "nets_factory.py": '''"""Stand-in for TF-Slim's nets_factory (modelzoo's stand-in proofs): get_network_fn."""
import functools

from tf_slim.ops.arg_scope import arg_scope

from nets import inception
from nets import vgg

networks_map = {
    'inception_v1': inception.inception_v1,
    'vgg_16': vgg.vgg_16,
}
arg_scopes_map = {
    'inception_v1': inception.inception_v3_arg_scope,
    'vgg_16': vgg.vgg_arg_scope,
}


def get_network_fn(name, num_classes, weight_decay=0.0, is_training=False):
    func = networks_map[name]

    @functools.wraps(func)
    def network_fn(images, **kwargs):
        with arg_scope(arg_scopes_map[name](weight_decay=weight_decay)):
            return func(images, num_classes=num_classes, is_training=is_training, **kwargs)

    network_fn.default_image_size = func.default_image_size
    return network_fn
''',
    "inception.py": '''"""Stand-in for TF-Slim's nets/inception.py (modelzoo's stand-in proofs)."""
from nets.inception_utils import inception_arg_scope
from nets.inception_v1 import inception_v1, inception_v1_arg_scope, inception_v1_base
from nets.inception_v3 import inception_v3_arg_scope
''',
    "inception_utils.py": '''"""Stand-in for TF-Slim's nets/inception_utils.py (modelzoo's stand-in proofs)."""
from tf_slim.nets.inception_v1 import inception_v1_arg_scope as inception_arg_scope
''',
    "inception_v1.py": '''"""Stand-in for TF-Slim's nets/inception_v1.py: the tf_slim wheel's own InceptionV1."""
from tf_slim.nets.inception_v1 import inception_v1, inception_v1_arg_scope, inception_v1_base
''',
}


def alias_legacy_layers() -> None:
    """`tf_keras.legacy_tf_layers`, where TensorFlow 2.16+ looks for tf.compat.v1.layers (tf_keras
    2.17 keeps them under `src`), as our googlenet pre-convert.py scripts do."""
    import importlib

    try:
        importlib.import_module("tf_keras.legacy_tf_layers")
    except ModuleNotFoundError:
        sys.modules["tf_keras.legacy_tf_layers"] = importlib.import_module("tf_keras.src.legacy_tf_layers")


def _slim_graph(net: str, shape: list[int], training: bool, decay: float | None = None,
                seed: int = 0) -> tuple[Any, Any, Any]:
    """TF-Slim's `net` in a new TF1 graph (its random initialisers seeded): (graph, input
    placeholder, Predictions tensor)."""
    import importlib

    import tensorflow.compat.v1 as tf
    from tf_slim.ops.arg_scope import arg_scope

    module = importlib.import_module(f"tf_slim.nets.{net}")
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        image = tf.placeholder(tf.float32, shape, name="input")
        scope = getattr(module, f"{net}_arg_scope")(weight_decay=0.0)
        for kwargs in scope.values():  # the BatchNorm parameters the convolutions pass on
            if decay is not None and "normalizer_params" in kwargs:
                kwargs["normalizer_params"]["decay"] = decay
        with arg_scope(scope):
            _, end_points = getattr(module, net)(image, num_classes=1001, is_training=training)
    return graph, image, end_points["Predictions"]


def slim_stand_in(net: str, descriptor: dict[str, Any], folder: Path, seed: int = 0) -> tuple[Any, dict[str, Path]]:
    """A TF-Slim checkpoint of `net` (random initialisation; every BatchNorm's moving statistics
    those of one random batch, by an update with decay 0), saved in the V1 format and packed as
    the release's archive (`<net>.ckpt` at its top); the nets' stand-in code; and the installed
    tf_slim package zipped under the wheel's name (the descriptor unpacks it as a zip). Returns
    the prediction of the restored checkpoint and the files by descriptor name."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    alias_legacy_layers()
    shape = list(descriptor["input_info"][0]["shape"])
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / f"{net}.ckpt"
    graph, image, _ = _slim_graph(net, [4, *shape[1:]], training=True, decay=0.0, seed=seed)
    with graph.as_default(), tf.Session(graph=graph) as session:
        session.run(tf.global_variables_initializer())
        batch = np.random.default_rng(seed).uniform(0, 255, [4, *shape[1:]]).astype(np.float32)
        session.run(tf.get_collection(tf.GraphKeys.UPDATE_OPS), {image: preprocess(descriptor, batch)})
        tf.train.Saver(write_version=tf.train.SaverDef.V1).save(session, str(checkpoint), write_meta_graph=False)
    graph, image, predictions = _slim_graph(net, shape, training=False)
    with graph.as_default():
        session = tf.Session(graph=graph)
        tf.train.Saver().restore(session, str(checkpoint))
    files = {}
    for entry in descriptor["files"]:
        target = folder / "files" / entry["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        base = Path(entry["name"]).name
        if base.endswith((".tar.gz", ".tgz")):
            _tgz(checkpoint.name, checkpoint.read_bytes(), target)
        elif base.endswith(".whl"):
            _zip_package("tf_slim", target)
        elif base in SLIM_NETS:
            target.write_text(SLIM_NETS[base])
        else:
            raise StandInError(f"no stand-in for {entry['name']}")
        files[entry["name"]] = target
    return (lambda x: session.run(predictions, {image: x})), files


def _zip_package(package: str, target: Path) -> None:
    """The installed `package`'s files (no caches), zipped with paths from its parent folder."""
    import importlib
    import zipfile

    root = Path(importlib.import_module(package).__file__).parent
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(root.parent).as_posix())


def make_stand_in(name: str, models_dir: Path, work: Path) -> StandIn:
    """Build `name`'s stand-in and write it under `work/serve/<name>/` with the descriptor's file name.

    Raises:
        StandInError: the model has no recipe, or its descriptor is not of the recipe's kind.
    """
    import yaml

    if name not in RECIPES:
        raise StandInError(f"{name}: no stand-in recipe (the TensorFlow ones: {', '.join(TF_MODELS)})")
    source = next(models_dir.glob(f"*/{name}/model.yml"), None)
    if source is None:
        raise StandInError(f"{name}: no descriptor in {models_dir}")
    descriptor = yaml.safe_load(source.read_text())
    files = descriptor["files"]
    folder = work / "serve" / name
    recipe = RECIPES[name]
    if recipe.kind == "slim_ckpt":
        predict, served = slim_stand_in(recipe.net, descriptor, folder)
        return StandIn(name, descriptor, source.parent.relative_to(models_dir), predict, served)
    if len(files) != 1:
        raise StandInError(f"{name}: the descriptor downloads {len(files)} files; a stand-in replaces one")
    model = stand_in_model(name, descriptor)
    path = folder / files[0]["name"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if recipe.kind == "keras_h5":
        stand_in_weights(model, path)
    else:
        args = descriptor["model_optimizer_args"]
        member = _mo_value(args, "--input_model").removeprefix("$dl_dir/")
        info = descriptor["input_info"][0]
        _tgz(member, frozen_graph(model, info["name"], info["shape"], _mo_value(args, "--output")), path)
    return StandIn(name, descriptor, source.parent.relative_to(models_dir),
                   lambda x: _numpy(model(x, training=False)), {files[0]["name"]: path})


def _numpy(tensor: Any) -> Any:
    import numpy as np

    return np.asarray(tensor)


def write_zoo(stand_ins: list[StandIn], models_dir: Path, zoo: Path, server: LoopbackServer) -> None:
    """A zoo copy whose descriptors name the stand-ins (size, SHA-384, a URL of `server`), with
    each model's `pre-convert.py`: the bundled zoo's copy where there is one (the Keras 3
    fixes), else `models_dir`'s."""
    import yaml

    for s in stand_ins:
        entries = []
        for entry in s.descriptor["files"]:
            path = s.files[entry["name"]]
            content = path.read_bytes()
            entries.append({"name": entry["name"], "size": len(content), "checksum": hashlib.sha384(content).hexdigest(),
                            "source": server.add(f"/{s.name}/{entry['name']}", path)})
        descriptor = dict(s.descriptor, files=entries)
        folder = zoo / s.folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.yml").write_text(yaml.safe_dump(descriptor, sort_keys=False))
        for script in (default_models_dir() / s.folder / "pre-convert.py", models_dir / s.folder / "pre-convert.py"):
            if script.is_file():
                shutil.copyfile(script, folder / "pre-convert.py")
                break


def run_tool(python: str, tool: str, *args: Any, timeout: float) -> float:
    """Run `tools/downloader/<tool>.py`; the seconds it took.

    Raises:
        StandInError: it exited non-zero (its stderr in the message).
    """
    started = time.monotonic()
    result = subprocess.run([python, str(SCRIPTS / f"{tool}.py"), *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StandInError(f"{tool} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return time.monotonic() - started


def compare(s: StandIn, xml: Path, seed: int = 1) -> float:
    """max|IR - framework| / max|framework| on one random picture (0..255, BGR as the IR takes it)."""
    import numpy as np

    disable_telemetry()  # before openvino: its telemetry forks, which can deadlock beside TensorFlow
    import openvino as ov

    bgr = _picture(s, seed)
    expected = s.predict(preprocess(s.descriptor, bgr))
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled(bgr)[0]
    if got.shape != expected.shape:
        raise StandInError(f"{s.name}: the IR's output is {got.shape}, the framework's {expected.shape}")
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def prove_many(names: list[str], models_dir: Path, work: Path, backend: str = "ovc",
               python: str = sys.executable, timeout: float = 900,
               keep: Callable[[StandIn], None] | None = None, pre_convert_python: str | None = None) -> list[Proof]:
    """Prove several models with one loopback server and one download; each converted by its own
    converter run (so each Proof's seconds are its conversion's, its download's share included).
    `keep` sees each stand-in once made (tests store some for an environment without TensorFlow).
    `pre_convert_python` (the converter's `-p`) runs the pre-convert scripts with another
    TensorFlow than this one's (docs/compatibility.md: TensorFlow 2.21 for the googlenet scripts).

    Raises:
        StandInError: a stand-in could not be made, or a tool failed (the first failure stops the rest).
    """
    stand_ins = [make_stand_in(name, models_dir, work) for name in names]
    for s in stand_ins if keep else ():
        keep(s)
    return prove_stand_ins(stand_ins, models_dir, work, backend, python, timeout, pre_convert_python)


def prove_stand_ins(stand_ins: list[StandIn], models_dir: Path, work: Path, backend: str = "ovc",
                    python: str = sys.executable, timeout: float = 900,
                    pre_convert_python: str | None = None) -> list[Proof]:
    """Serve, download, convert and compare stand-ins already made (see `prove_many`).

    Raises:
        StandInError: a tool failed.
    """
    zoo = work / "zoo"
    with LoopbackServer() as server:
        write_zoo(stand_ins, models_dir, zoo, server)
        download = run_tool(python, "downloader", "--models_dir", zoo, "--name", ",".join(s.name for s in stand_ins),
                            "-o", work / "dl", timeout=timeout)
    proofs = []
    for s in stand_ins:
        seconds = run_tool(python, "converter", "--models_dir", zoo, "--name", s.name, "-d", work / "dl",
                           "-o", work / backend, "--backend", backend, "--precisions", "FP32",
                           "--allow_zoo_code", *(("-p", pre_convert_python) if pre_convert_python else ()),
                           timeout=timeout)
        xml = work / backend / s.folder / "FP32" / f"{s.name}.xml"
        proofs.append(Proof(s.name, compare(s, xml), seconds + download / len(stand_ins)))
    return proofs


def store(s: StandIn, folder: Path, seed: int = 1) -> None:
    """Keep a stand-in for an environment without TensorFlow (OpenVINO alone): its files, its
    descriptor and the framework's output on `compare`'s picture, in `folder/<name>/`.
    Only a stand-in that needs no pre-convert.py (TensorFlow) can be proven there."""
    import json

    import numpy as np

    target = folder / s.name
    target.mkdir(parents=True, exist_ok=True)
    for name, path in s.files.items():
        (target / "files" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / "files" / name)
    (target / "descriptor.json").write_text(json.dumps({"folder": s.folder.as_posix(), "descriptor": s.descriptor}))
    bgr = _picture(s, seed)
    np.savez(target / "expected.npz", input=preprocess(s.descriptor, bgr), output=s.predict(preprocess(s.descriptor, bgr)))


def load(folder: Path, name: str) -> StandIn:
    """A stand-in kept by `store`: its prediction is the stored output, for the stored input only.

    Raises:
        StandInError: asked for another input than the stored one.
    """
    import json

    import numpy as np

    target = folder / name
    saved = json.loads((target / "descriptor.json").read_text())
    with np.load(target / "expected.npz") as data:
        stored_input, stored_output = data["input"], data["output"]

    def predict(x: Any) -> Any:
        if x.shape != stored_input.shape or not np.array_equal(x, stored_input):
            raise StandInError(f"{name}: only the stored input has a stored output")
        return stored_output

    files = {entry["name"]: target / "files" / entry["name"] for entry in saved["descriptor"]["files"]}
    return StandIn(name, saved["descriptor"], Path(saved["folder"]), predict, files)


def _picture(s: StandIn, seed: int) -> Any:
    import numpy as np

    shape = s.descriptor["input_info"][0]["shape"]
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


def prove_tf(name: str, models_dir: Path, work: Path, backend: str = "ovc",
             pre_convert_python: str | None = None) -> Proof:
    """Convert one TensorFlow model against a stand-in through the real command lines.

    Raises:
        StandInError: see `prove_many`.
    """
    return prove_many([name], models_dir, work, backend, pre_convert_python=pre_convert_python)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models_dir", type=Path, required=True, help="Open Model Zoo's models folder")
    parser.add_argument("--backend", choices=("ovc", "mo"), default="ovc")
    parser.add_argument("--pre_convert_python", metavar="PYTHON",
                        help="run the pre-convert scripts with this Python (the converter's -p), "
                        "e.g. a newer TensorFlow's")
    parser.add_argument("names", nargs="*", help=f"models to prove (default: {', '.join(TF_MODELS)})")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.names or TF_MODELS:
        work = Path(tempfile.mkdtemp(prefix=f"tf-proof-{name}-"))
        try:
            proof = prove_tf(name, args.models_dir, work, args.backend, args.pre_convert_python)
            print(f"{proof.model}: relative error {proof.error:.2e}, {proof.seconds:.1f} s", flush=True)
            failed += proof.error > 1e-4
        except Exception as exc:  # noqa: BLE001 - a report line per model
            print(f"{name}: FAILED: {exc}", flush=True)
            failed += 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
