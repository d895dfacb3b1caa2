"""The delivery retry policy: one frozen object, built from the config once when the app starts.

A push service that answers 429, 5xx or not at all has deferred the message, not refused it:
the delivery is tried again after ``delay(attempts, retry_after)`` seconds until ``exhausted``
(then it fails with the last reason). Attempts count from 1, as ``Delivery.attempts`` does: the
first send is attempt 1.

The same object carries the queue's retries for a delivery *job* that raised (the database or
Redis was briefly unreachable): ``job_retry`` is what ``jobs.enqueue(retry=...)`` takes, so every
push job is enqueued with it, first batches and re-enqueued retries alike.

Not this policy: the HTTP/1.1 transport sends a request once more when a pooled keep-alive
connection turns out to have been closed by the server before any byte of the answer arrived
(``push/http1.py``). Nothing was delivered, so that is a reconnect, not a second attempt.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from ..config import ConfigError

__all__ = ["RetryPolicy", "init_app", "retry_policy"]

_EXTENSION = "statuspage_retry_policy"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Attempts per delivery, the first send included.
    max_attempts: int = 6
    #: Seconds to wait after attempt 1, 2, ...; the last step repeats for later attempts.
    backoff: tuple[float, ...] = (5, 30, 120, 600, 1800)
    #: Upper bound of any wait, also of a push service's Retry-After.
    max_delay: float = 3600
    #: Seconds between the queue's re-runs of a job that raised (one re-run per entry).
    job_retry_intervals: tuple[int, ...] = (10, 60, 300)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not self.backoff or any(step < 0 for step in self.backoff):
            raise ValueError("backoff needs at least one step, none negative")
        if self.max_delay < 0 or any(step < 0 for step in self.job_retry_intervals):
            raise ValueError("delays must not be negative")

    def exhausted(self, attempts: int) -> bool:
        """True when a delivery deferred at attempt ``attempts`` (1-based) gets no further try."""
        return attempts >= self.max_attempts

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next try after attempt ``attempts`` (1-based) was deferred: the
        backoff step for that attempt, or the push service's Retry-After when that is longer,
        never more than ``max_delay``."""
        step = self.backoff[min(max(attempts, 1), len(self.backoff)) - 1]
        return min(self.max_delay, max(step, retry_after or 0.0))

    @property
    def job_retry(self) -> tuple[int, list[int]] | None:
        """``(count, intervals)`` for ``jobs.enqueue(retry=...)``; None when jobs are not re-run."""
        intervals = list(self.job_retry_intervals)
        return (len(intervals), intervals) if intervals else None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetryPolicy:
        """PUSH_MAX_ATTEMPTS, PUSH_RETRY_BACKOFF (comma-separated seconds) and PUSH_MAX_RETRY_DELAY;
        a bad value is a ConfigError at start-up, not a surprise at the first deferred push."""
        defaults = cls()
        try:
            return cls(
                max_attempts=int(config.get("PUSH_MAX_ATTEMPTS", defaults.max_attempts)),
                backoff=_seconds(config.get("PUSH_RETRY_BACKOFF", defaults.backoff)),
                max_delay=float(config.get("PUSH_MAX_RETRY_DELAY", defaults.max_delay)),
            )
        except ValueError as exc:
            raise ConfigError(f"push retry policy: {exc} (PUSH_MAX_ATTEMPTS, PUSH_RETRY_BACKOFF, "
                              "PUSH_MAX_RETRY_DELAY)") from None


def _seconds(value: str | Sequence[float]) -> tuple[float, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(float(item) for item in items if str(item).strip())


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = RetryPolicy.from_config(app.config)


def retry_policy() -> RetryPolicy:
    """The current app's policy (built once by ``create_app``)."""
    return current_app.extensions[_EXTENSION]
