"""The offline demo: every step of the real job, on a machine without the internet.

    python -m modelzoo.devtools.demo [--out DIR] [--input-size 1333]

1. builds retinanet-tf's graph here (same architecture and node names, random weights),
2. serves it from 127.0.0.1 as a mirror, under the real descriptor's file name,
3. downloads it with the downloader (size and SHA-384 verified: the rebuilt file's own,
   written into a copy of the descriptor, since they cannot be the published file's),
4. converts it with the converter to FP32 and FP16 IR (one conversion, by the mo backend when
   openvino-dev is installed, else the ovc backend; --backend chooses, and the demo says which),
5. runs both IRs with OpenVINO on the bundled test picture and draws the detections with
   their COCO class names,
6. quantizes the FP32 IR to FP16-INT8 with the quantizer (NNCF), calibrated on variants of the
   picture (flipped, cropped, brighter, darker), and draws INT8's detections beside FP32's
   (when NNCF is installed: the `quantize` extra, which ./demo.sh installs),
and prints how long each step took and the three IRs' latencies. The weights are random: the boxes show that the whole
chain works, not what is in the picture.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .loopback import LoopbackServer
from ..reference.scene import letterbox
from ..reference.zoo import MODEL_SUBDIR, PB_NAME, write_reference_zoo
from ..resources import demo_picture_path, read_class_names
from ..verify import file_digest


def _run(step: str, args: list[str], timings: dict[str, float], verbose: bool = True) -> list[str]:
    """Run one step, showing its output as it comes; returns its stdout lines. Without
    `verbose`, its stderr (TensorFlow's deprecation warnings, ...) is shown only if it fails."""
    print(f"\n=== {step}\n$ {' '.join(args)}", flush=True)
    started = time.monotonic()
    lines = []
    with tempfile.TemporaryFile("w+") as errors:
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=None if verbose else errors, text=True,
                              bufsize=1) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
        timings[step] = time.monotonic() - started
        if proc.returncode != 0:
            errors.seek(0)
            sys.stderr.write(errors.read())
            sys.exit(f"demo: step '{step}' failed with exit code {proc.returncode}")
    return lines


def detect(xml: Path, picture: np.ndarray, side: int, hint: str | None) -> tuple[np.ndarray, float, float]:
    """Run the IR on a BGR picture; returns detections [N, 7] in picture pixels, and the times."""
    import openvino as ov

    core = ov.Core()
    started = time.monotonic()
    config = {"INFERENCE_PRECISION_HINT": hint} if hint else {}
    model = core.compile_model(str(xml), "CPU", config)
    compile_time = time.monotonic() - started
    padded, scale = letterbox(picture, side)
    started = time.monotonic()
    out = model(padded[None].astype(np.float32))[0][0, 0]
    infer_time = time.monotonic() - started
    dets = out[(out[:, 0] >= 0) & (out[:, 2] > 0.05)].copy()
    dets[:, 3:] *= side / scale  # normalised -> letterboxed pixels -> picture pixels
    return dets[np.argsort(-dets[:, 2])], compile_time, infer_time


def draw(picture: np.ndarray, dets: np.ndarray, names: list[str], path: Path, title: str, top: int = 15) -> None:
    from PIL import Image, ImageDraw

    img = Image.fromarray(picture[:, :, ::-1].copy())
    pen = ImageDraw.Draw(img)
    palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
    for d in dets[:top]:
        label = int(d[1])
        color = palette[label % len(palette)]
        x1, y1, x2, y2 = (float(v) for v in d[3:7])
        pen.rectangle([x1, y1, x2, y2], outline=color, width=2)
        text = f"{names[label + 1]} {d[2]:.2f}"  # line 0 of the class file is the background
        tw = pen.textlength(text)
        pen.rectangle([x1, max(0, y1 - 12), x1 + tw + 4, max(12, y1)], fill=color)
        pen.text((x1 + 2, max(0, y1 - 12)), text, fill=(0, 0, 0))
    pen.rectangle([0, 0, img.width, 16], fill=(0, 0, 0))
    pen.text((4, 2), title, fill=(255, 255, 255))
    img.save(path)


def calibration_variants(picture: np.ndarray, folder: Path, count: int = 8) -> Path:
    """`count` variants of a BGR picture as PNG files: the calibration set of the demo's INT8 IR."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    h, w = picture.shape[:2]
    variants = [picture, picture[:, ::-1], picture[h // 8:, w // 8:], picture[: h - h // 6, : w - w // 5],
                np.clip(picture.astype(np.int16) + 35, 0, 255).astype(np.uint8),
                np.clip(picture.astype(np.int16) * 0.7, 0, 255).astype(np.uint8),
                picture[:, w // 4:][:, ::-1], picture[h // 5: h - h // 10]]
    for i, variant in enumerate(variants[:count]):
        Image.fromarray(np.ascontiguousarray(variant[:, :, ::-1])).save(folder / f"variant-{i}.png")
    return folder


def latency(xml: Path, side: int, runs: int = 5, config: dict | None = None) -> float:
    """Median seconds of one inference (latency mode; f32 compute unless `config` says otherwise)
    on a random picture of the input size."""
    import openvino as ov

    settings = {"PERFORMANCE_HINT": "LATENCY", **({"INFERENCE_PRECISION_HINT": "f32"} if config is None else config)}
    compiled = ov.Core().compile_model(str(xml), "CPU", settings)
    x = np.random.default_rng(0).uniform(0, 255, (1, side, side, 3)).astype(np.float32)
    compiled(x)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        compiled(x)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def side_by_side(left: Path, right: Path, path: Path) -> None:
    from PIL import Image

    a, b = Image.open(left), Image.open(right)
    canvas = Image.new("RGB", (a.width + b.width + 8, max(a.height, b.height)), (255, 255, 255))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + 8, 0))
    canvas.save(path)


def int8_step(py: str, zoo: Path, ir: Path, out: Path, picture: np.ndarray, side: int, names: list[str],
              timings: dict[str, float], verbose: bool = False) -> dict[str, float] | None:
    """Quantize the FP32 IR (FP16-INT8 beside FP32/FP16), draw INT8's detections beside FP32's;
    returns the latencies of the three IRs, or None when NNCF is not installed."""
    import importlib.util

    if importlib.util.find_spec("nncf") is None:
        print("\nINT8: skipped: NNCF is not installed here (pip install -e '.[convert,reproduce,quantize]', "
              "as ./demo.sh does; NNCF 3.x needs OpenVINO 2026)")
        return None
    images = calibration_variants(picture, out / "calibration")
    _run("quantize to FP16-INT8 (NNCF)", [py, "-m", "modelzoo.cli.quantizer", "--models_dir", str(zoo), "--name",
                                          "retinanet-tf", "--ir_dir", str(ir), "--images", str(images)],
         timings, verbose)
    model = ir / MODEL_SUBDIR
    dets, compile_time, infer_time = detect(model / "FP16-INT8" / "retinanet-tf.xml", picture, side, "f32")
    timings["compile FP16-INT8 IR"] = compile_time
    timings["inference FP16-INT8"] = infer_time
    draw(picture, dets, names, out / "detections-FP16-INT8.png", "retinanet-tf FP16-INT8 IR (NNCF), RANDOM weights")
    side_by_side(out / "detections-FP32.png", out / "detections-FP16-INT8.png", out / "detections-FP32-vs-INT8.png")
    best = ", ".join(f"{names[int(d[1]) + 1]} {d[2]:.2f}" for d in dets[:3])
    print(f"FP16-INT8: {len(dets)} detections above 0.05 (best: {best}); drawn beside FP32's in "
          f"{out / 'detections-FP32-vs-INT8.png'}")
    return {p: latency(model / p / "retinanet-tf.xml", side) for p in ("FP32", "FP16", "FP16-INT8")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelzoo.devtools.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--input-size", type=int, default=1333)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("auto", "mo", "ovc"), default="auto",
                        help="the converter's backend (default: mo when openvino-dev is installed, else ovc)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the Model Optimizer's banners and TensorFlow's start-up lines")
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    timings: dict[str, float] = {}

    built = out / "built" / PB_NAME
    _run("build the reference graph", [py, "-m", "modelzoo.cli.reproduce", "retinanet-tf", "--random-weights",
                                        "--seed", str(args.seed), "--input-size", str(args.input_size),
                                        "-o", str(built)], timings, args.verbose)
    size, sha = file_digest(built)
    zoo = out / "zoo"
    write_reference_zoo(built, zoo, args.input_size)
    print(f"\nThe descriptor in {zoo / MODEL_SUBDIR / 'model.yml'} is the shipped one with this file's own facts:\n"
          f"  size     {size} (the published file: 152890076)\n  SHA-384  {sha}\n"
          f"  (the rebuilt graph's, not the published file's)")

    mirror_root = out / "mirror"
    (mirror_root / MODEL_SUBDIR).mkdir(parents=True, exist_ok=True)
    served = mirror_root / MODEL_SUBDIR / PB_NAME
    served.unlink(missing_ok=True)
    served.hardlink_to(built)
    with LoopbackServer(root=mirror_root) as server:
        print(f"\nserving {mirror_root} at {server.base_url} (loopback only), as a mirror")
        _run("download (verified)", [py, "-m", "modelzoo.cli.downloader", "--models_dir", str(zoo), "--name",
                                     "retinanet-tf", "-o", str(out / "models"), "--mirror", server.base_url],
             timings)
    converted = _run("convert to FP32 + FP16 IR",
                     [py, "-m", "modelzoo.cli.converter", "--models_dir", str(zoo), "--name", "retinanet-tf", "-d",
                      str(out / "models"), "-o", str(out / "ir"), "--backend", args.backend,
                      *(["--verbose"] if args.verbose else [])], timings, args.verbose)
    backend = next((x.removeprefix("Backend: ") for x in converted if x.startswith("Backend: ")), "?")

    from PIL import Image

    picture = np.asarray(Image.open(demo_picture_path()).convert("RGB"))[:, :, ::-1]
    names = read_class_names()
    print()
    for precision in ("FP32", "FP16"):
        xml = out / "ir" / MODEL_SUBDIR / precision / "retinanet-tf.xml"
        dets, compile_time, infer_time = detect(xml, picture, args.input_size, "f32")
        timings[f"compile {precision} IR"] = compile_time
        timings[f"inference {precision} (f32 compute)"] = infer_time
        path = out / f"detections-{precision}.png"
        draw(picture, dets, names, path, f"retinanet-tf {precision} IR, RANDOM weights: boxes are not meaningful")
        best = ", ".join(f"{names[int(d[1]) + 1]} {d[2]:.2f}" for d in dets[:3])
        print(f"{precision}: {len(dets)} detections above 0.05 (best: {best}); drawn in {path}")

    latencies = int8_step(py, zoo, out / "ir", out, picture, args.input_size, names, timings, args.verbose)
    if latencies:
        print("\n=== latency (one picture, all cores, f32 compute; median of 5)")
        for precision, seconds in latencies.items():
            print(f"  {precision:<10} {seconds * 1000:8.1f} ms  ({latencies['FP32'] / seconds:.2f}x FP32)")

    print(f"\nConverted by the {backend.split(' (')[0]} backend: {backend}")
    print("\n=== timings")
    for step, seconds in timings.items():
        print(f"  {step:<34} {seconds:7.1f} s")
    print(f"\nEverything is in {out}. With the internet, the same tools fetch and convert the real model:\n"
          "  tools/downloader/downloader.py --name retinanet-tf\n"
          "  tools/downloader/converter.py  --name retinanet-tf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
