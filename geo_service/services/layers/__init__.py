"""The layers room.

Layers: heatmaps, hot spots, emerging hot spots, vector tiles, OGC API Features and the map
pages' data.
"""
