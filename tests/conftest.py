"""Shared fixtures. Each fixtures_*.py module is owned by the layer it prepares."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fixtures_data import *  # noqa: E402,F401,F403
from fixtures_training import *  # noqa: E402,F401,F403
