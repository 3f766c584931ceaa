"""The geo-service command line (Typer)."""

from geo_service.cli.framework import speak_command_language

speak_command_language()  # before Typer renders: its words in our language
