"""The residents room.

Residents: households and rental units, as rows (for those who may) and as published
aggregates.
"""
