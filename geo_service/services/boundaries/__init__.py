"""The boundaries room.

Boundaries: the area hierarchy, versioned boundary sets, validation, publishing and the
crosswalk between versions.
"""
