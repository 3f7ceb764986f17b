"""info_dumper: JSON facts about models, for scripts (omz_info_dumper's output format)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from ..info import model_info
from .common import add_selection_args, parse_and_select, run, summarize

PROG = "modelzoo-info"


def _main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Print facts about models as a JSON array.")
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
