"""A fake clock for tests that walk through hours of schedule: everything reads the time through
`statuspage.timeutil.utcnow`, which asks `timeutil.clock`; the `fake_clock` fixtures swap it."""
from __future__ import annotations

from datetime import datetime, timedelta

from statuspage import timeutil


class FakeClock:
    """Naive UTC time that moves only when told to."""

    def __init__(self, start: datetime | None = None):
        self.now = (start or timeutil.system_utcnow()).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return self.now


def install(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(timeutil, "clock", clock)
    return clock
