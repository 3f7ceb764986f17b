#!/usr/bin/env python3
"""Conversion benchmark: FP32 + FP16 IR of the 1333x1333 reference retinanet-tf graph, in one run:

- modelzoo-converter --backend ovc, newest OpenVINO (a second virtual environment, no TensorFlow),
- modelzoo-converter --backend ovc, OpenVINO 2024.6 (this environment),
- modelzoo-converter --backend mo (this environment: openvino-dev 2024.6),
- omz_converter --precisions FP32,FP16 (this environment),

each on the same file: wall time and peak memory (RSS of the largest process); the installed
size of each environment; and the compile and inference time of each IR on the bundled picture.

With --cache (only that part): the IR cache (converter --cache_dir) cold vs warm, for the ovc and
the mo backend, each warm run into a fresh output folder; FP16-INT8 through the same cache
(quantizer --cache_dir, in the --ovc-python environment, which has NNCF: cold quantizes on
--int8-images generated pictures, warm places the cached IR); and IR from a mirror served by nginx
(converter --mirror, no cache) against curl fetching the same IR files and sha384sum checking them.

    python bench/convert.py [--repeat 1] [--input-size 1333] [--ovc-python .venv-ovc/bin/python] [--json out.json]
    python bench/convert.py --cache [--repeat 5] [--input-size 1333] [--ovc-python .venv-ovc/bin/python]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PY, REPO, SCRIPTS, dump_json, interleaved, median_time, ours, peer, report, run_measured,
)

from modelzoo.reference.zoo import MODEL_SUBDIR, PB_NAME, write_reference_zoo  # noqa: E402

# Compile and run one IR on the bundled picture (letterboxed to the input), in the Python given.
_INFER = """
import json, statistics, sys, time
import numpy as np, openvino as ov
from PIL import Image
sys.path.insert(0, sys.argv[3])
from modelzoo.reference.scene import letterbox
xml, side = sys.argv[1], int(sys.argv[2])
picture = np.asarray(Image.open(sys.argv[4]).convert("RGB"))[:, :, ::-1]
image = letterbox(picture, side)[0][None].astype(np.float32)
out = {"openvino": ov.__version__.split("-")[0]}
for name, config in (("default", {}), ("f32", {"INFERENCE_PRECISION_HINT": "f32"})):
    core = ov.Core()
    t = time.monotonic(); model = core.compile_model(xml, "CPU", config); compile_s = time.monotonic() - t
    request = model.create_infer_request()
    request.infer({0: image})  # first inference (allocations) apart from the steady state
    times = []
    for _ in range(3):
        t = time.monotonic(); request.infer({0: image}); times.append(time.monotonic() - t)
    res = request.get_output_tensor(0).data[0, 0]
    out[name] = {"compile": compile_s, "infer": statistics.median(times),
                 "detections": int(((res[:, 0] >= 0) & (res[:, 2] > 0.05)).sum())}
core = ov.Core()  # where the time goes: per operation type, one profiled inference (default hint)
request = core.compile_model(xml, "CPU", {"PERF_COUNT": True}).create_infer_request()
request.infer({0: image})
by_type = {}
for p in request.profiling_info:
    by_type[p.node_type] = by_type.get(p.node_type, 0.0) + p.real_time.total_seconds()
out["profile"] = dict(sorted(by_type.items(), key=lambda kv: -kv[1])[:4])
print(json.dumps(out))
"""


def site_packages_mb(python: str) -> float:
    """Installed size of an environment: its site-packages, in MB."""
    where = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    du = subprocess.run(["du", "-sk", where], capture_output=True, text=True, check=True).stdout.split()[0]
    return int(du) / 1024


def infer(python: str, xml: Path, side: int) -> dict:
    from modelzoo.resources import demo_picture_path

    result = subprocess.run([python, "-c", _INFER, str(xml), str(side), str(REPO / "tools"), str(demo_picture_path())],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"inference failed with {python} on {xml}: {result.stderr[-2000:]}")
    return json.loads(result.stdout)


# Calibration pictures for the INT8 rows (the generated scenes the quantize tests use), in the
# Python given (it has OpenCV).
_PICTURES = """
import sys
sys.path.insert(0, sys.argv[1])
import cv2
from pathlib import Path
from modelzoo.devtools.cocoset import pictures
out = Path(sys.argv[2]); out.mkdir(parents=True)
for i, picture in enumerate(pictures(int(sys.argv[3]))):
    cv2.imwrite(str(out / f"{i:06d}.png"), picture)
"""


def int8_bench(work: Path, zoo: Path, dl: Path, cache: Path, repeat: int, ovc_python: str,
               images: int) -> tuple[dict, list[tuple[str, str]]]:
    """FP16-INT8 through the IR cache: one cold quantization (NNCF), then warm runs into fresh
    output folders. The FP32 IR is the converter's from the same cache (links to its blobs, so
    the key knows its SHA-384 without reading it, as on a team machine)."""
    fp32 = work / "fp32"
    subprocess.run(ours("converter") + ["--models_dir", str(zoo), "--name", "retinanet-tf", "--precisions", "FP32",
                                        "--backend", "ovc", "--cache_dir", str(cache), "-d", str(dl), "-o", str(fp32)],
                   check=True, stdout=subprocess.DEVNULL)
    pics = work / "calibration"
    subprocess.run([ovc_python, "-c", _PICTURES, str(REPO / "tools"), str(pics), str(images)], check=True)
    out = work / "int8"
    cmd = [ovc_python, str(SCRIPTS / "quantizer.py"), "--models_dir", str(zoo), "--name", "retinanet-tf",
           "--ir_dir", str(fp32), "--images", str(pics), "--cache_dir", str(cache), "-o", str(out)]
    cold, _ = median_time([cmd], 1, lambda: shutil.rmtree(out, True))
    warm, _ = median_time([cmd], repeat, lambda: shutil.rmtree(out, True))
    return ({"cold": float(cold), "warm": float(warm), "warm_best": warm.best, "images": images}, [
        (f"FP16-INT8, cold (NNCF on {images} pictures, adds to the cache)", str(cold)),
        ("FP16-INT8, warm (fresh output folder, from the cache)", f"{warm}, {float(warm) / float(cold):.4f}x cold")])


def cache_bench(work: Path, zoo: Path, dl: Path, repeat: int, ovc_python: str | None = None,
                int8_images: int = 8) -> dict:
    """Cold vs warm conversion through --cache_dir, and IR from an nginx mirror vs curl + sha384sum.
    The model is downloaded with the downloader's --cache_dir first (as a team machine has it: a
    hard link to a verified blob, whose SHA-384 the key then needs not re-read); one warm row
    also shows a model file that is not a cache link (hashed for the key on every run)."""
    from modelzoo.devtools.servers import Nginx

    cache = work / "cache"
    upstream = ["--mirror", (work / "source").as_uri()]
    subprocess.run(ours("downloader") + ["--models_dir", str(zoo), "--name", "retinanet-tf", "-o", str(dl),
                                         "--cache_dir", str(cache), *upstream], check=True, stdout=subprocess.DEVNULL)
    plain = work / "dl-plain"
    shutil.copytree(dl, plain)
    sel = ["--models_dir", str(zoo), "--name", "retinanet-tf", "--precisions", "FP32,FP16"]
    out, rows, data = work / "out", [], {}

    def fresh(ir_too: bool = False) -> None:
        shutil.rmtree(out, True)
        if ir_too:
            shutil.rmtree(cache / "ir", True)

    for backend in ("ovc", "mo"):
        cmd = ours("converter") + [*sel, "--backend", backend, "--cache_dir", str(cache), "-o", str(out)]
        cold, _ = median_time([cmd + ["-d", str(dl)]], 1, lambda: fresh(True))  # one run: it takes long
        warm, _ = median_time([cmd + ["-d", str(dl)]], repeat, fresh)
        hashed, _ = median_time([cmd + ["-d", str(plain)]], repeat, fresh)
        data[backend] = {"cold": float(cold), "warm": float(warm), "warm_best": warm.best,
                         "warm_model_hashed": float(hashed)}
        rows.append((f"{backend} backend, cold (converts, adds to the cache)", str(cold)))
        rows.append((f"{backend} backend, warm (fresh output folder, from the cache)",
                     f"{warm}, {float(warm) / float(cold):.3f}x cold"))
        rows.append((f"{backend} backend, warm, model file not a cache link (hashed for the key)", str(hashed)))
    if ovc_python is not None:
        data["int8"], int8_rows = int8_bench(work, zoo, dl, cache, repeat, ovc_python, int8_images)
        rows += int8_rows
    report(f"IR cache: retinanet-tf FP32 + FP16 (cold: one run; warm: median of {repeat})", rows)

    mirror = work / "mirror"
    subprocess.run(ours("mirror") + ["sync", "--models_dir", str(zoo), "--name", "retinanet-tf", "--to", str(mirror),
                                     "--cache_dir", str(cache), "--ir", "FP16,FP32", "--backend", "ovc", *upstream],
                   check=True, stdout=subprocess.DEVNULL)
    manifest = json.loads((mirror / "modelzoo-mirror.json").read_text())["files"]
    ir = {rel: e for rel, e in manifest.items() if rel.startswith("ir/")}
    fetched = work / "curl"
    with Nginx(mirror) as nginx:
        curl = ["sh", "-c", " && ".join(f"curl -sf -o {fetched / rel.rsplit('/', 2)[-2]}-{rel.rsplit('/', 1)[-1]} "
                                        f"{nginx.url}/{rel}" for rel in ir)
                + f" && sha384sum {fetched}/* > /dev/null"]
        conv = ours("converter") + [*sel, "-d", str(dl), "--backend", "ovc", "--cache_dir", str(cache), "--mirror",
                                    nginx.url, "-o", str(out)]

        def before() -> None:
            fresh(True)  # no IR in the cache: it comes from the mirror
            shutil.rmtree(fetched, True)
            fetched.mkdir()

        times = interleaved({"curl": curl, "converter": conv}, repeat, before)
    size = sum(e["size"] for e in ir.values())
    data["mirror"] = {"bytes": size, "curl": float(times["curl"]), "converter": float(times["converter"])}
    report(f"IR from an nginx mirror ({len(ir)} files, {size / 1e6:.0f} MB; median of {repeat}, interleaved)", [
        ("curl each file + sha384sum", str(times["curl"])),
        ("converter --mirror (verified, placed; no conversion)", f"{times['converter']}, "
         f"{float(times['converter']) / float(times['curl']):.2f}x curl + sha384sum")])
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", action="store_true", help="only the IR cache and IR-from-a-mirror part")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--input-size", type=int, default=1333)
    parser.add_argument("--ovc-python", default=str(REPO / ".venv-ovc/bin/python"),
                        help="Python of an environment with only '.[convert]' (the newest OpenVINO)")
    parser.add_argument("--int8-images", type=int, default=8, help="with --cache: calibration pictures for INT8")
    parser.add_argument("--no-int8", action="store_true", help="with --cache: leave out the FP16-INT8 rows")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.cache:
        work = Path(tempfile.mkdtemp(prefix="modelzoo-bench-ircache-"))
        source = work / "source" / MODEL_SUBDIR / PB_NAME  # served as a file:// mirror
        source.parent.mkdir(parents=True)
        run_measured(ours("reproduce") + ["retinanet-tf", "--random-weights", "--input-size", str(args.input_size),
                                          "-o", str(source)])
        write_reference_zoo(source, work / "zoo", args.input_size, source_url="http://127.0.0.1:9/unused.pb")
        if not args.no_int8 and not Path(args.ovc_python).exists():
            raise SystemExit(f"{args.ovc_python} does not exist: the INT8 rows need an environment with "
                             "'.[convert,quantize]' (--ovc-python), or --no-int8")
        dump_json(args.json, {"cache": cache_bench(work, work / "zoo", work / "dl", args.repeat,
                                                   None if args.no_int8 else args.ovc_python, args.int8_images)})
        shutil.rmtree(work, ignore_errors=True)
        return 0
    if not Path(args.ovc_python).exists():
        raise SystemExit(f"{args.ovc_python} does not exist: python3 -m venv .venv-ovc && "
                         ".venv-ovc/bin/pip install -e '.[convert]'")
    work = Path(tempfile.mkdtemp(prefix="modelzoo-bench-convert-"))
    dl = work / "dl"
    pb = dl / MODEL_SUBDIR / PB_NAME
    t_build, _ = run_measured(ours("reproduce") + ["retinanet-tf", "--random-weights", "--input-size",
                                                   str(args.input_size), "-o", str(pb)])
    zoo = work / "zoo"
    write_reference_zoo(pb, zoo, args.input_size)
    mo = Path(PY).parent / "mo"
    sel = ["--name", "retinanet-tf", "-d", str(dl), "--precisions", "FP32,FP16"]
    runs = {
        "ovc backend, newest OpenVINO": [args.ovc_python, str(SCRIPTS / "converter.py"), "--models_dir", str(zoo),
                                         "--backend", "ovc"],
        "ovc backend, OpenVINO 2024.6": ours("converter") + ["--models_dir", str(zoo), "--backend", "ovc"],
        "mo backend (in-process mo)": ours("converter") + ["--models_dir", str(zoo), "--backend", "mo"],
        "omz_converter": peer("converter", zoo) + ["--mo", str(mo)],
    }
    results = {}
    for label, cmd in runs.items():
        out = work / label.split()[0] / label.replace(" ", "_").replace(",", "")
        t, rss = median_time([cmd + [*sel, "-o", str(out)]], args.repeat, lambda o=out: shutil.rmtree(o, True))
        sizes = {p: (out / MODEL_SUBDIR / p / "retinanet-tf.bin").stat().st_size for p in ("FP32", "FP16")}
        results[label] = {"time": float(t), "best": t.best, "rss_mb": rss, "bin": sizes, "ir": out / MODEL_SUBDIR}
    env_mb = {"ovc (.[convert], newest OpenVINO)": site_packages_mb(args.ovc_python),
              "mo / omz_converter (.[mo]: openvino-dev, TensorFlow)": site_packages_mb(PY)}
    omz = results["omz_converter"]["time"]
    rows = [("graph build (reproduce, not timed in the ratios)", f"{t_build:.1f} s")]
    for label, r in results.items():
        rows.append((label, f"{r['time']:.1f} s (best {r['best']:.1f}), peak RSS {r['rss_mb']:.0f} MB, "
                            f"{r['time'] / omz:.2f}x omz_converter; .bin FP32/FP16 {r['bin']['FP32']}/{r['bin']['FP16']}"))
    for label, mb in env_mb.items():
        rows.append((f"installed: {label}", f"{mb:.0f} MB"))
    report(f"FP32 + FP16 IR of the {args.input_size}x{args.input_size} reference graph (median of {args.repeat})",
           rows)

    inference = {}
    pythons = {"newest OpenVINO": args.ovc_python, "OpenVINO 2024.6": PY}
    for label in ("ovc backend, newest OpenVINO", "mo backend (in-process mo)"):
        for precision in ("FP32", "FP16"):
            xml = results[label]["ir"] / precision / "retinanet-tf.xml"
            for runtime, python in pythons.items():
                inference[f"{label.split(',')[0].split(' (')[0]} {precision} IR on {runtime}"] = infer(
                    python, xml, args.input_size)
    rows = []
    for label, r in inference.items():
        d, f = r["default"], r["f32"]
        rows.append((label, f"compile {d['compile']:.2f} s, infer {d['infer'] * 1000:.0f} ms (default hint); "
                            f"f32: compile {f['compile']:.2f} s, infer {f['infer'] * 1000:.0f} ms; "
                            f"{f['detections']} detections; profile: "
                            + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r["profile"].items())))
    report(f"Compile and inference on the bundled picture ({args.input_size}x{args.input_size}, CPU, "
           "median of 3 after a first run)", rows)
    for r in results.values():
        r["ir"] = str(r["ir"])
    dump_json(args.json, {"build": t_build, "convert": results, "installed_mb": env_mb, "inference": inference})
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
