"""Defaults of import options that the API and CLI name before the importers are loaded
(this module imports nothing heavy)."""

from __future__ import annotations

# Points outside every area but at most this many metres from one are given to the nearest
# area: addresses on a boundary street geocode onto the line (Chicago: 91 assaults within
# 5.4 m of the city limit). Documented in the README, "Files from the field".
EDGE_TOLERANCE_M = 10.0
