"""Byte counts as people type them."""
from __future__ import annotations

import math

_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """A whole number of bytes from 4096, 4k, 64KiB, 1.5M, 1G (binary units);
    ValueError for anything else."""
    t = str(text).strip().lower().rstrip("ib")
    if t and t[-1] in _UNITS:
        value = float(t[:-1]) * _UNITS[t[-1]]
    else:
        value = float(t)
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return int(value)
