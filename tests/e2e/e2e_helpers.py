"""Shared by the end-to-end tests (a module of its own: ``conftest`` names clash)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "plugins"))  # sample_files

ORGS = ("Acme Corp", "Globex", "Initech", "Umbrella Corporation")
