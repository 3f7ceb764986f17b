"""downloader: fetch every file of the selected models, verified, into OUTPUT/<model folder>/."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

from ..download.pipeline import DownloadOptions, Downloader
from ..events import Reporter
from .common import (
    OneLineParser, add_offline_arg, add_selection_args, add_space_args, apply_offline, check_download_mirrors,
    add_trust_args, apply_trust, enforce_cache_budget, error_line, parallel_int, parse_and_select, positive_float,
    positive_int, run, summarize, descriptor_inputs, model_file_outputs, refuse_outputs_over_inputs,
)

PROG = "modelzoo-downloader"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description="Download model files, verify their size and SHA-384, and put them in place.",
        epilog="Exit codes: 0 all selected models complete and verified; 1 a model failed; "
               "2 bad command line or descriptor; 130 interrupted.")
    add_selection_args(parser, "download")
    parser.add_argument("-o", "--output_dir", type=Path, metavar="DIR", default=Path.cwd(),
                        help="where to put models (default: the current folder)")
    parser.add_argument("--cache_dir", type=Path, metavar="DIR",
                        help="content-addressed cache shared by runs and processes")
    parser.add_argument("--num_attempts", type=positive_int, metavar="N", default=1,
                        help="try each download up to N times (retries resume where they stopped)")
    parser.add_argument("--progress_format", choices=("text", "json"), default="text",
                        help="text for people, json for scripts (one event a line, omz_downloader's format)")
    parser.add_argument("-j", "--jobs", type=parallel_int, metavar="N", default=1,
                        help="download up to N models at once")
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS", default=60.0,
                        help="connect and read timeout; a server silent this long fails the attempt (default 60)")
    parser.add_argument("--connections", type=parallel_int, metavar="N", default=8,
                        help="fetch a file of 16 MB or more over up to N connections at once when the server "
                             "serves byte ranges (default 8; 1 turns it off); -j jobs and these share "
                             "max(N, jobs) connections")
    parser.add_argument("--mirror", action="append", default=[], metavar="URL",
                        help="try URL/<model folder>/<file> before the descriptor's source "
                             "(http(s)://, file:// or s3://bucket/prefix; repeatable)")
    add_offline_arg(parser)
    add_space_args(parser, budget=True)
    add_trust_args(parser, signatures=True)
    return parser


def _terminate(signum, frame):  # SIGTERM cleans up like Ctrl-C
    raise KeyboardInterrupt


def _main(argv: Sequence[str]) -> int:
    parser = build_parser()
    selected = parse_and_select(parser, argv)
    if selected is None:
        return 0
    args, precisions, catalog, models, load_failed = selected
    if args.cache_max_size is not None and args.cache_dir is None:
        parser.error("--cache_max_size needs --cache_dir (the downloader has no cache without it)")
    apply_offline(args)
    check_download_mirrors(parser, args.mirror)
    # a file written over a descriptor or --list (-o in the zoo itself) is refused before any request
    refuse_outputs_over_inputs(model_file_outputs("-o", args.output_dir.absolute(), models),
                               descriptor_inputs(models, args.list))
    policy = apply_trust(PROG, args, models, catalog.root, load_failed, args.mirror)
    args.mirror = policy.mirrors
    signal.signal(signal.SIGTERM, _terminate)
    options = DownloadOptions(output_dir=args.output_dir.absolute(),
                              cache_dir=args.cache_dir.absolute() if args.cache_dir else None,
                              num_attempts=args.num_attempts, timeout=args.timeout,
                              connections=args.connections, mirrors=args.mirror, precisions=precisions,
                              space_check=not args.no_space_check,
                              before_fetch=policy.before_fetch(args.timeout, max(args.jobs, 8)))
    reporter = Reporter(args.progress_format, line=error_line(PROG))
    failed = Downloader(options, reporter).run(models, args.jobs)
    if args.cache_max_size is not None:
        enforce_cache_budget(options.cache_dir, args.cache_max_size, models, reporter)
    return summarize(PROG, load_failed + failed)


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
