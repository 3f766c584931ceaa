"""Ingest: importing files from other systems (services/ingest and geo_service/ingest)."""
