#!/usr/bin/env python3
"""Which models the converter's ovc backend can convert, and the evidence for each, read from their descriptors.

    python bench/ovc_table.py                    # Open Model Zoo's descriptors (from openvino-dev)
    python bench/ovc_table.py --write docs/compatibility.md
    python bench/ovc_table.py --check docs/compatibility.md   # exit 1 if the table there is stale

The generator is `modelzoo.devtools.evidence` (`python -m modelzoo.devtools.evidence` is the same
command); this script runs it from a checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from modelzoo.devtools.evidence import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
