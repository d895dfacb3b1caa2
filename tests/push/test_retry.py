"""The delivery retry policy: attempts count from 1, backoff per attempt, Retry-After honoured but
capped, built from the config once (a bad value refuses to start), and applied by the batch jobs."""
from __future__ import annotations

import time

import pytest

from statuspage.config import ConfigError
from statuspage.jobs import run_delayed_jobs
from statuspage.push.retry import RetryPolicy, retry_policy
from tests.conftest import make_app
from tests.push import helpers as ph


def test_delay_follows_the_backoff_step_of_each_attempt_and_repeats_the_last():
    policy = RetryPolicy(max_attempts=6, backoff=(5, 30, 120), max_delay=3600)
    assert [policy.delay(attempt) for attempt in (1, 2, 3, 4, 5)] == [5, 30, 120, 120, 120]


def test_retry_after_is_honoured_when_longer_and_capped_by_max_delay():
    policy = RetryPolicy(backoff=(5, 30), max_delay=600)
    assert policy.delay(1, retry_after=2) == 5  # never sooner than the backoff
    assert policy.delay(1, retry_after=90) == 90
    assert policy.delay(2, retry_after=10**9) == 600


def test_exhausted_counts_attempts_from_one():
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert RetryPolicy(max_attempts=1).exhausted(1)


def test_job_retry_is_what_the_queue_takes():
    assert RetryPolicy(job_retry_intervals=(10, 60)).job_retry == (2, [10, 60])
    assert RetryPolicy(job_retry_intervals=()).job_retry is None


def test_policy_is_built_from_the_config_once_at_start(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, PUSH_MAX_ATTEMPTS=3,
                   PUSH_RETRY_BACKOFF="1, 2,4", PUSH_MAX_RETRY_DELAY=60)
    with app.app_context():
        policy = retry_policy()
        assert (policy.max_attempts, policy.backoff, policy.max_delay) == (3, (1.0, 2.0, 4.0), 60.0)
        assert retry_policy() is policy


@pytest.mark.parametrize("overrides", [
    {"PUSH_MAX_ATTEMPTS": 0},
    {"PUSH_RETRY_BACKOFF": "5,soon"},
    {"PUSH_RETRY_BACKOFF": ""},
    {"PUSH_RETRY_BACKOFF": "5,-1"},
    {"PUSH_MAX_RETRY_DELAY": -5},
])
def test_a_bad_retry_setting_refuses_to_start_with_a_clear_message(tmp_path, overrides):
    with pytest.raises(ConfigError, match="push retry policy"):
        make_app(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, **overrides)


def test_batch_jobs_apply_the_configured_policy(tmp_path, pg_database, sim):
    app = ph.build_app("sqlite", tmp_path, pg_database, sim, PUSH_MAX_ATTEMPTS=2, PUSH_RETRY_BACKOFF="7")
    try:
        client = app.test_client()
        sub, sub_id = ph.subscribe(client, sim, ph.generate_keys(app))
        sim.respond_with(sub.token, 503)
        api = ph.Api(client, ph.create_admin_token(app))
        r = api.post("/api/v1/incidents", json={"name": "Outage", "impact": "major", "body": "Looking"})
        assert r.status_code == 201
        [(due, _, args)] = app.extensions["statuspage_delayed"]
        assert round(due - time.monotonic()) == 7 and args[3] == 2  # attempt 2 of 2, after 7 s
        with app.app_context():
            run_delayed_jobs(app)
        [event] = ph.event_rows(app)
        delivery = ph.delivery_rows(app, event.id)[sub_id]
        assert (delivery.outcome, delivery.attempts) == ("failed", 2)
        assert delivery.reason == "gave up after 2 attempts: 503 Service Unavailable"
        assert len(sim.attempts(sub.token)) == 2
    finally:
        ph.dispose(app)
