"""reproduce: build a model's frozen graph here when the published file cannot be downloaded."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from ..errors import MissingExtraError
from .common import OneLineParser, positive_int, run

PROG = "modelzoo-reproduce"
MODELS = ("retinanet-tf",)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description="Rebuild retinanet-tf's frozen TensorFlow graph (same architecture and node "
                               "names as the published .pb) from Keras .h5 weights or deterministic random ones.")
    parser.add_argument("model", choices=MODELS)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", type=Path, metavar="FILE.h5",
                        help="Keras weights (resnet50_coco_best_v2.1.0.h5), mapped by layer name")
    source.add_argument("--random-weights", action="store_true", help="deterministic random weights")
    parser.add_argument("--seed", type=int, default=0, help="seed for --random-weights (default 0)")
    parser.add_argument("--input-size", type=positive_int, default=1333, metavar="N",
                        help="input side in pixels (default 1333, as published)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE.pb",
                        default=Path("retinanet_resnet50_coco_best_v2.1.0.pb"))
    parser.add_argument("--zoo", type=Path, metavar="DIR",
                        help="also write DIR/public/retinanet-tf/model.yml describing this file")
    parser.add_argument("--source-url", metavar="URL", help="with --zoo: the descriptor's source URL")
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        from ..reference import retinanet
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingExtraError(f"building graphs needs TensorFlow ({exc.name} is missing): "
                                "pip install 'modelzoo[reproduce]' (or '[mo]', which has it too)") from exc
    started = time.monotonic()
    if args.weights:
        weights = retinanet.load_h5_weights(args.weights)
    else:
        weights = retinanet.random_weights(args.seed, args.input_size)
    graph_def = retinanet.build_graph_def(weights, args.input_size)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    retinanet.write_pb(graph_def, args.output)
    from ..reference.zoo import write_reference_zoo
    from ..verify import file_digest

    size, sha = file_digest(args.output)
    print(f"wrote {args.output} ({size} bytes, SHA-384 {sha}) in {time.monotonic() - started:.1f} s")
    if args.zoo:
        print(f"wrote {write_reference_zoo(args.output, args.zoo, args.input_size, args.source_url)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
