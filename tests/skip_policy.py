"""A skipped test fails the run: a green run means every test ran.

With GEO_DATABASE_URL the tests that need the embedded cluster (its roles, its restart, its
status) would otherwise skip quietly, and a run that looks green would not have tested them.
``tests/conftest.py`` imports the hook, so it applies to every test under ``tests/``.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

# The only skips a run may report: they depend on the machine, not on the database.
LEGITIMATE_SKIPS = (
    "needs Linux /proc",  # security/test_uploads.py measures memory through /proc
    "the privilege drop only happens as root",  # cli/test_cli.py
)
# Outside CI, GEO_ALLOW_SKIPS=1 accepts the others knowingly (e.g. on an external server).
ALLOW_SKIPS = os.environ.get("GEO_ALLOW_SKIPS") == "1" and not os.environ.get("CI")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Turn a skip into a failure unless it is one of ``LEGITIMATE_SKIPS``."""
    report = yield
    if not report.skipped or hasattr(report, "wasxfail") or ALLOW_SKIPS:
        return report
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if not any(allowed in reason for allowed in LEGITIMATE_SKIPS):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} was skipped ({reason}), and a skip fails the run: give it what it "
            "needs (tests that need the embedded cluster: unset GEO_DATABASE_URL), or, outside "
            "CI, accept it with GEO_ALLOW_SKIPS=1."
        )
    return report
