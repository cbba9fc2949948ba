"""The Lua scripts, read once from this folder."""
from __future__ import annotations

from functools import cache
from pathlib import Path

_DIR = Path(__file__).parent


@cache
def source(name: str) -> str:
    return (_DIR / f"{name}.lua").read_text()
