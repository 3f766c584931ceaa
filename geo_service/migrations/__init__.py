"""Alembic migrations of the geo-service schema."""
