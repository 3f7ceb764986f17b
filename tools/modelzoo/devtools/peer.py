"""Run Open Model Zoo's own tools (package omz_tools, from openvino-dev) on any models root.

Benchmarks and compatibility tests compare modelzoo with them on the same descriptors:
    python -m modelzoo.devtools.peer {downloader,converter,info_dumper} MODELS_ROOT [tool arguments...]
omz_tools reads its zoo from omz_tools._common.MODEL_ROOT; this sets it and runs the tool.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TOOLS = {"downloader": "omz_downloader", "converter": "omz_converter", "info_dumper": "omz_info_dumper"}


def omz_models_root() -> Path:
    """The ~250 descriptors that ship inside openvino-dev."""
    import omz_tools._common as common

    return Path(common.MODEL_ROOT)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] not in TOOLS:
        print(f"usage: python -m modelzoo.devtools.peer {{{','.join(TOOLS)}}} MODELS_ROOT [args...]", file=sys.stderr)
        return 2
    import importlib

    from ..convert.pipeline import child_env, disable_telemetry

    # Nothing may phone home from a benchmark or a test, here or in the mo processes it starts.
    disable_telemetry()
    os.environ.update(child_env())

    import omz_tools._common as common

    common.MODEL_ROOT = Path(argv[1]).absolute()
    module = importlib.import_module(f"omz_tools.{TOOLS[argv[0]]}")
    sys.argv = [TOOLS[argv[0]], *argv[2:]]
    try:
        module.main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
