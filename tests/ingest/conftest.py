"""Fixtures of the import tests."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from geo_service.demo.city import DemoCity


@pytest.fixture
def cli(app_database_url: str, loaded_city: DemoCity, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner on the test database (the demo city loaded), its summary unwrapped."""
    monkeypatch.setenv("GEO_DATABASE_URL", app_database_url)
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()
