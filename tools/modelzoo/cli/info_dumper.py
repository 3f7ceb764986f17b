"""info_dumper: JSON facts about models, for scripts (omz_info_dumper's output format)."""

from __future__ import annotations

import json
import sys
from typing import Sequence

from ..info import model_info
from .common import OneLineParser, add_selection_args, parse_and_select, run, summarize

PROG = "modelzoo-info"


def _print_ir(argv: Sequence[str]) -> int:
    """--print_ir MIRROR: which models have IR there, made by which tools (OpenVINO release)."""
    parser = OneLineParser(prog=PROG, description="List the converted IR a mirror holds as a JSON "
                                                   "array: model, tools, key, precisions.")
    parser.add_argument("--print_ir", required=True, metavar="MIRROR",
                        help="a mirror (folder, file://, http(s)://, s3://) written by mirror.py sync --ir")
    parser.add_argument("--name", metavar="PAT[,PAT...]", help="only the models these shell patterns name")
    args = parser.parse_args(argv)
    import fnmatch

    from ..mirror.ir_share import ir_table, read_manifest

    rows = ir_table(read_manifest(args.print_ir))
    if args.name:
        patterns = [p for p in args.name.split(",") if p]
        rows = [r for r in rows if any(fnmatch.fnmatchcase(r["model"], p) for p in patterns)]
    json.dump(rows, sys.stdout, indent=4)
    print()
    return 0


def _main(argv: Sequence[str]) -> int:
    if any(a == "--print_ir" or a.startswith("--print_ir=") for a in argv):
        return _print_ir(argv)
    parser = OneLineParser(prog=PROG, description="Print facts about models as a JSON array.",
                           epilog="info_dumper.py --print_ir MIRROR [--name PAT]: the converted IR a "
                                  "mirror holds, by model and OpenVINO release.")
    add_selection_args(parser, "describe")
    selected = parse_and_select(parser, argv)
    if selected is None:
        return 0
    _, wanted, catalog, models, failed = selected
    infos = [model_info(m, catalog.root) for m in models if m.precisions & wanted]
    json.dump(infos, sys.stdout, indent=4)
    print()
    return summarize(PROG, failed)


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
