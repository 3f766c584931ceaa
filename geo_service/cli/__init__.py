"""The geo-service command line (Typer)."""
