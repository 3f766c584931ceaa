"""Database: engine and session factories, models, the embedded PostGIS cluster."""
