"""geo-service: the spatial backbone of grid-based city operations."""

__version__ = "0.1.0"
