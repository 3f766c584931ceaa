"""The synthetic demo city generator."""
