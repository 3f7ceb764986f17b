#!/usr/bin/env python3
"""Entry script: runs from a checkout as it is, and uses the checkout's own modelzoo package."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modelzoo.cli.lock import main  # noqa: E402

if __name__ == "__main__":  # guarded: worker processes (converter -j) import this file again
    sys.exit(main())
