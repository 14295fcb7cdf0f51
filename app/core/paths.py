"""Where the code and its shipped data live (never derived from the current folder)."""

from __future__ import annotations

from pathlib import Path

# app/core/paths.py → the checkout (or the installed source tree) is two folders up.
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
