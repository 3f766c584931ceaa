"""The service's one "now" for decisions that depend on time: how old a responder's position
is, and from when an escalation is due.

By default it is the database's clock (``now()``: one clock for every process of a
deployment, the one that stamps the rows). Tests and replays set it (``set``, ``advance``)
and the decisions follow, whatever the wall clock and however long the suite has run.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session


class Clock:
    """The database's clock, or an instant set by hand.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> clock = Clock()
    >>> clock.set(datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc))
    >>> clock.advance(301)
    >>> clock.now(None).isoformat()
    '2026-03-02T01:05:01+00:00'
    """

    def __init__(self) -> None:
        self._at: datetime | None = None
        self._lock = threading.Lock()

    def now(self, session: Session | None) -> datetime:
        """The instant decisions are made at: the one set, else the database's ``now()``
        (the transaction's start, as every ``now()`` in the same statement)."""
        with self._lock:
            if self._at is not None:
                return self._at
        if session is None:
            raise ValueError("the database's clock needs a session")
        return session.execute(text("SELECT now()")).scalar_one()

    def set(self, at: datetime) -> None:
        """Hold the clock at ``at`` (timezone-aware)."""
        if at.tzinfo is None:
            raise ValueError("the clock needs a timezone-aware instant")
        with self._lock:
            self._at = at

    def advance(self, seconds: float) -> None:
        """Move a held clock forward by ``seconds``."""
        with self._lock:
            if self._at is None:
                raise ValueError("set the clock before advancing it")
            self._at += timedelta(seconds=seconds)

    def release(self) -> None:
        """Follow the database's clock again."""
        with self._lock:
            self._at = None

    @property
    def held(self) -> bool:
        """Whether an instant is set."""
        return self._at is not None
