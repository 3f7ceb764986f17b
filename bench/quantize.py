#!/usr/bin/env python3
"""Accuracy and INT8 benchmark on the rebuilt retinanet-tf (random weights), at each input size
given, in one run (run it with the Python of an environment with '.[convert,quantize]'):

- the graph built by modelzoo-reproduce (--tf-python: an environment with TensorFlow), converted
  to FP32 and FP16 by modelzoo-converter --backend ovc;
- a COCO-format folder of N generated pictures (ground truth near the FP32 IR's detections);
- modelzoo-quantizer to FP16-INT8 (calibration on those pictures): wall time, and NNCF's time per
  calibration image against one FP32 inference;
- FP32 vs FP16-INT8: latency (one request, LATENCY hint) and throughput (all cores: THROUGHPUT
  hint and as many requests as OpenVINO asks for), f32 compute, and both again left to the CPU
  plugin's default (bfloat16 on CPUs that have it); IR sizes;
- accuracy of FP32 and FP16-INT8 on the folder by modelzoo-accuracy and by Open Model Zoo's
  accuracy_check (--accuracy_check, openvino-dev 2023.3.0), and both tools' images per second;
- modelzoo-quantizer --max_drop X: its time and the drop as measured.

    python bench/quantize.py --sizes 512,1333 --images 16 --tf-python .venv/bin/python \
        --accuracy_check .venv-ac/bin/accuracy_check [--max_drop 0.01] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
SCRIPTS = REPO / "tools" / "downloader"

import numpy as np  # noqa: E402

from modelzoo.devtools.cocoset import ir_detector, pictures, write_coco_folder  # noqa: E402
from modelzoo.devtools.demo import latency  # noqa: E402
from modelzoo.devtools.peer_accuracy import run_peer  # noqa: E402
from modelzoo.reference.zoo import MODEL_SUBDIR, PB_NAME, write_reference_zoo  # noqa: E402

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def tool(name: str, *args, python: str = sys.executable) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run([python, str(SCRIPTS / f"{name}.py"), *map(str, args)], capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc, seconds


def throughput(xml: Path, side: int, seconds: float, hint: dict | None = None) -> float:
    """Pictures per second with every core busy (OpenVINO's throughput mode)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT",
                                                         **(F32 if hint is None else hint)})
    requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, requests)
    x = np.random.default_rng(0).uniform(0, 255, (1, side, side, 3)).astype(np.float32)
    for _ in range(requests):  # warm-up
        queue.start_async(x)
    queue.wait_all()
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or done < 2 * requests:
        queue.start_async(x)
        done += 1
    queue.wait_all()
    return done / (time.perf_counter() - started)


def accuracy(zoo: Path, ir: Path, precision: str, coco: Path, tmp: Path) -> tuple[float, float, float]:
    """(coco_precision, images per second inside the tool, wall seconds of the whole command)."""
    out = tmp / f"acc-{precision}.json"
    _, wall = tool("accuracy_check", "--models_dir", zoo, "--name", "retinanet-tf", "--ir_dir", ir, "--precisions",
         precision, "--dataset", coco, "--json", out)
    record = next(r for r in json.loads(out.read_text()) if r["metric"] == "coco_precision")
    return record["value"], record["images"] / record["seconds"], wall


def one_size(side: int, args: argparse.Namespace, work: Path) -> dict:
    print(f"\n=== {side}x{side}", flush=True)
    pb = work / f"retinanet-{side}.pb"
    if not pb.exists():
        subprocess.run([args.tf_python, str(SCRIPTS / "reproduce.py"), "retinanet-tf", "--random-weights",
                        "--seed", "0", "--input-size", str(side), "-o", str(pb)], check=True, capture_output=True)
    root = work / str(side)
    shutil.rmtree(root, ignore_errors=True)
    zoo, dl, ir, q = root / "zoo", root / "dl", root / "ir", root / "int8"
    write_reference_zoo(pb, zoo, side)
    (dl / MODEL_SUBDIR).mkdir(parents=True)
    shutil.copyfile(pb, dl / MODEL_SUBDIR / PB_NAME)
    tool("converter", "--models_dir", zoo, "--name", "retinanet-tf", "-d", dl, "-o", ir, "--backend", "ovc")
    fp32 = ir / MODEL_SUBDIR / "FP32" / "retinanet-tf.xml"
    coco = write_coco_folder(root / "coco", pictures(args.images), ir_detector(fp32, side))
    result: dict = {"size": side, "images": args.images}
    result["fp32_latency_s"] = latency(fp32, side, args.runs)
    proc, wall = tool("quantizer", "--models_dir", zoo, "--name", "retinanet-tf", "--ir_dir", ir, "-o", q,
                      "--dataset", coco)
    int8 = q / MODEL_SUBDIR / "FP16-INT8" / "retinanet-tf.xml"
    record = json.loads((int8.parent / "quantization.json").read_text())
    result.update({"quantize_wall_s": wall, "nncf_s": record["seconds"],
                   "nncf_s_per_image_over_fp32_inference": record["seconds"] / args.images / result["fp32_latency_s"],
                   "nncf": record["nncf"], "openvino": record["openvino"].split("-")[0]})
    result["int8_latency_s"] = latency(int8, side, args.runs)
    result["fp32_throughput"] = throughput(fp32, side, args.seconds)
    result["int8_throughput"] = throughput(int8, side, args.seconds)
    # the CPU plugin's own default (bfloat16 where the CPU has it) for FP32, for comparison
    result["fp32_default_latency_s"] = latency(fp32, side, args.runs, config={})
    result["fp32_default_throughput"] = throughput(fp32, side, args.seconds, hint={})
    # and INT8 left to the same default (its float parts in bfloat16 too): default against default
    result["int8_default_latency_s"] = latency(int8, side, args.runs, config={})
    result["int8_default_throughput"] = throughput(int8, side, args.seconds, hint={})
    result["bin_bytes"] = {"FP32": fp32.with_suffix(".bin").stat().st_size,
                           "FP16": (ir / MODEL_SUBDIR / "FP16/retinanet-tf.bin").stat().st_size,
                           "FP16-INT8": int8.with_suffix(".bin").stat().st_size}
    for precision, folder in (("FP32", ir), ("FP16-INT8", q)):
        value, speed, wall = accuracy(zoo, folder, precision, coco, root)
        result[f"ours_{precision}"], result[f"ours_{precision}_images_per_s"] = value, speed
        result[f"ours_{precision}_seconds"] = wall
        if args.accuracy_check:
            xml = folder / MODEL_SUBDIR / precision / "retinanet-tf.xml"
            values, seconds, _ = run_peer(Path(args.accuracy_check), zoo / MODEL_SUBDIR / "accuracy-check.yml",
                                          "retinanet-tf", xml, coco / "val2017",
                                          coco / "annotations/instances_val2017.json", timeout=7200)
            result[f"peer_{precision}"] = values["coco_precision"]
            result[f"peer_{precision}_seconds"] = seconds
    if args.max_drop is not None:
        out = root / "int8-budget"
        proc, wall = tool("quantizer", "--models_dir", zoo, "--name", "retinanet-tf", "--ir_dir", ir, "-o", out,
                          "--dataset", coco, "--max_drop", args.max_drop, "--max_iterations", args.max_iterations)
        budget = json.loads((out / MODEL_SUBDIR / "FP16-INT8" / "quantization.json").read_text())
        result["max_drop"] = {"budget": args.max_drop, "wall_s": wall, "drop": budget["accuracy"]["drop"],
                              "fp32": budget["accuracy"]["fp32"], "int8": budget["accuracy"]["int8"]}
    print(json.dumps(result, indent=1), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1333")
    parser.add_argument("--images", type=int, default=16, help="pictures in the COCO-format folder (calibration too)")
    parser.add_argument("--runs", type=int, default=5, help="latency: median of this many inferences")
    parser.add_argument("--seconds", type=float, default=20, help="throughput: at least this long")
    parser.add_argument("--tf-python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--accuracy_check", help="Open Model Zoo's accuracy_check (openvino-dev 2023.3.0)")
    parser.add_argument("--max_drop", type=float)
    parser.add_argument("--max_iterations", type=int, default=20)
    parser.add_argument("--work", type=Path, help="keep graphs and IR here (default: a temporary folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="modelzoo-bench-quantize-"))
    work.mkdir(parents=True, exist_ok=True)
    results = [one_size(int(s), args, work) for s in args.sizes.split(",")]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print("\n| size | quantize (NNCF) | per image / FP32 inference | FP32 latency | INT8 latency | FP32 img/s "
          "| INT8 img/s | INT8/FP32 throughput | FP32 / FP16 / INT8 .bin MB | coco_precision FP32 ours / peer "
          "| INT8 ours / peer | ours / peer wall s (FP32) | FP32 bf16-default latency, img/s "
          "| INT8 default latency, img/s | INT8/FP32 throughput, both default |")
    print("|---" * 16 + "|")
    for r in results:
        print(f"| {r['size']} | {r['nncf_s']:.0f} s ({r['quantize_wall_s']:.0f} s wall) "
              f"| {r['nncf_s_per_image_over_fp32_inference']:.2f}x | {r['fp32_latency_s']:.2f} s "
              f"| {r['int8_latency_s']:.2f} s | {r['fp32_throughput']:.2f} | {r['int8_throughput']:.2f} "
              f"| {r['int8_throughput'] / r['fp32_throughput']:.2f}x "
              f"| {r['bin_bytes']['FP32'] / 1e6:.0f} / {r['bin_bytes']['FP16'] / 1e6:.0f} / "
              f"{r['bin_bytes']['FP16-INT8'] / 1e6:.0f} "
              f"| {100 * r['ours_FP32']:.2f} / {100 * r.get('peer_FP32', float('nan')):.2f} "
              f"| {100 * r['ours_FP16-INT8']:.2f} / {100 * r.get('peer_FP16-INT8', float('nan')):.2f} "
              f"| {r['ours_FP32_seconds']:.1f} / {r.get('peer_FP32_seconds', float('nan')):.1f} "
              f"| {r['fp32_default_latency_s']:.2f} s, {r['fp32_default_throughput']:.2f} "
              f"| {r['int8_default_latency_s']:.2f} s, {r['int8_default_throughput']:.2f} "
              f"| {r['int8_default_throughput'] / r['fp32_default_throughput']:.2f}x |")
        if "max_drop" in r:
            m = r["max_drop"]
            print(f"  --max_drop {m['budget']}: {m['wall_s']:.0f} s, drop {100 * m['drop']:.2f} points "
                  f"({100 * m['fp32']:.2f} -> {100 * m['int8']:.2f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
