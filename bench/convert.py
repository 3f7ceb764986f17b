#!/usr/bin/env python3
"""Conversion benchmark: FP32 + FP16 IR of the 1333x1333 reference retinanet-tf graph,
modelzoo-converter vs omz_converter --precisions FP32,FP16, on the same file in one run.

    python bench/convert.py [--repeat 1] [--input-size 1333] [--json results.json]

Prints wall time and peak memory (RSS of the largest process) of each, and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PY, dump_json, median_time, ours, peer, report, run_measured  # noqa: E402

from modelzoo.reference.zoo import MODEL_SUBDIR, PB_NAME, write_reference_zoo  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--input-size", type=int, default=1333)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelzoo-bench-convert-"))
    dl = work / "dl"
    pb = dl / MODEL_SUBDIR / PB_NAME
    t_build, _ = run_measured(ours("reproduce") + ["retinanet-tf", "--random-weights", "--input-size",
                                                   str(args.input_size), "-o", str(pb)])
    zoo = work / "zoo"
    write_reference_zoo(pb, zoo, args.input_size)
    mo = Path(PY).parent / "mo"
    out = work / "ir"

    def clean():
        shutil.rmtree(out, ignore_errors=True)

    sel = ["--name", "retinanet-tf", "-d", str(dl), "-o", str(out), "--precisions", "FP32,FP16"]
    t_ours, rss_ours = median_time([ours("converter") + ["--models_dir", str(zoo), *sel]], args.repeat, clean)
    sizes_ours = {p: (out / MODEL_SUBDIR / p / "retinanet-tf.bin").stat().st_size for p in ("FP32", "FP16")}
    t_peer, rss_peer = median_time([peer("converter", zoo) + [*sel, "--mo", str(mo)]], args.repeat, clean)
    sizes_peer = {p: (out / MODEL_SUBDIR / p / "retinanet-tf.bin").stat().st_size for p in ("FP32", "FP16")}
    report(f"FP32 + FP16 IR of the {args.input_size}x{args.input_size} reference graph (median of {args.repeat})", [
        ("graph build (reproduce, untimed in the ratio)", f"{t_build:.1f} s"),
        ("modelzoo-converter", f"{t_ours:.1f} s, peak RSS {rss_ours:.0f} MB"),
        ("omz_converter", f"{t_peer:.1f} s, peak RSS {rss_peer:.0f} MB"),
        ("ratio ours/omz", f"{t_ours / t_peer:.2f}  (target <= 0.6)"),
        (".bin sizes ours FP32/FP16", f"{sizes_ours['FP32']} / {sizes_ours['FP16']}"),
        (".bin sizes omz  FP32/FP16", f"{sizes_peer['FP32']} / {sizes_peer['FP16']}"),
    ])
    dump_json(args.json, {"build": t_build, "ours": t_ours, "peer": t_peer, "rss_ours_mb": rss_ours,
                          "rss_peer_mb": rss_peer})
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
