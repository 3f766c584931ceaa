"""What hot spot classes and emerging hot spot patterns are called in the request's language.

The values stay ArcGIS's English names (``class``, ``pattern``: the contract, and what ArcGIS
Pro's own tools write); a layer shown to people gets a translated ``class_label`` or
``pattern_label`` beside them, from the gettext catalogue (geo_service/i18n.py). The Chinese
pattern names are those of ArcGIS's Simplified Chinese documentation of Emerging Hot Spot
Analysis (新兴时空热点分析: 新增的、连续的、加强的、持续的、逐渐减少的、分散的、振荡的以及历史的
热点和冷点); the classes read "热点 - 99% 置信度" after ArcGIS's "Hot Spot - 99% Confidence".
"""

from __future__ import annotations

from typing import Any

from geo_service.i18n import N_, gettext

# Every name the statistics can give (analytics.hotspots.CLASSES, analytics.emerging.PATTERNS),
# spelled out so that message extraction finds each one.
CLASS_NAMES = (
    N_("Hot Spot - 99% Confidence"),
    N_("Hot Spot - 95% Confidence"),
    N_("Hot Spot - 90% Confidence"),
    N_("Not Significant"),
    N_("Cold Spot - 90% Confidence"),
    N_("Cold Spot - 95% Confidence"),
    N_("Cold Spot - 99% Confidence"),
)
PATTERN_NAMES = (
    N_("New Hot Spot"),
    N_("Consecutive Hot Spot"),
    N_("Intensifying Hot Spot"),
    N_("Persistent Hot Spot"),
    N_("Diminishing Hot Spot"),
    N_("Sporadic Hot Spot"),
    N_("Oscillating Hot Spot"),
    N_("Historical Hot Spot"),
    N_("New Cold Spot"),
    N_("Consecutive Cold Spot"),
    N_("Intensifying Cold Spot"),
    N_("Persistent Cold Spot"),
    N_("Diminishing Cold Spot"),
    N_("Sporadic Cold Spot"),
    N_("Oscillating Cold Spot"),
    N_("Historical Cold Spot"),
    N_("No Pattern Detected"),
)


def class_labels() -> dict[str, str]:
    """``{ArcGIS class name: its label in the current language}`` for every hot spot class
    (what a vector tile's SQL looks ``class_label`` up in)."""
    return {name: gettext(name) for name in CLASS_NAMES}


def pattern_labels() -> dict[str, str]:
    """``{ArcGIS pattern name: its label in the current language}`` for every emerging hot
    spot pattern."""
    return {name: gettext(name) for name in PATTERN_NAMES}


def labelled_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """A copy of a feature's ``properties`` with ``class_label`` (beside ``class``) and
    ``pattern_label`` (beside ``pattern``) in the current language; properties without
    either come back as they are."""
    extra = {}
    if "class" in properties:
        extra["class_label"] = gettext(str(properties["class"]))
    if "pattern" in properties:
        extra["pattern_label"] = gettext(str(properties["pattern"]))
    return {**properties, **extra} if extra else properties


def labelled_feature(feature: dict[str, Any]) -> dict[str, Any]:
    """A copy of a GeoJSON feature whose properties carry the labels (``labelled_properties``);
    the feature itself is not changed (it may be cached and shared)."""
    return {**feature, "properties": labelled_properties(feature.get("properties") or {})}


def with_labels(layer: dict[str, Any]) -> dict[str, Any]:
    """A copy of a hot spot or emerging hot spot FeatureCollection whose features also carry
    ``class_label`` (beside ``class``) or ``pattern_label`` (beside ``pattern``) in the current
    language; the layer itself is not changed (it may be cached and shared)."""
    return {**layer, "features": [labelled_feature(f) for f in layer["features"]]}
