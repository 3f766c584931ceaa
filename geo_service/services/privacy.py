"""Small-count suppression: the one rule every aggregate of people passes through."""

from __future__ import annotations

from typing import Any

SUPPRESSED_FIELDS = ("households", "residents", "rental_units", "occupants")


def suppress_small(counts: dict[str, Any], min_count: int) -> dict[str, Any]:
    """Hide counts of people and dwellings below ``min_count`` (set to None, never rounded).

    Examples
    --------
    >>> suppress_small({"households": 3, "residents": 9, "incidents": 2}, 5)
    {'households': None, 'residents': 9, 'incidents': 2, 'suppressed': ['households']}
    """
    out = dict(counts)
    hidden = [
        k for k in SUPPRESSED_FIELDS if k in out and out[k] is not None and out[k] < min_count
    ]
    for key in hidden:
        out[key] = None
    out["suppressed"] = hidden
    return out
