"""Data-layer test setup: makes the raw-format writers in ``raw_formats.py`` importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
