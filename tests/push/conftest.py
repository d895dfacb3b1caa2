"""Fixtures of the push tests, defined once: apps whose jobs run on the real RQ worker
(`rq_app`, `rq_api`) or inline (`eager_app`, `eager_api`), on SQLite and PostgreSQL, allowed to
contact the session's push-service simulator (`sim`, from tests/conftest.py). Extra config comes
from `@pytest.mark.app_config(...)` like everywhere else."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.push import helpers as ph


@pytest.fixture(scope="session")
def push_redis_url() -> str:
    """Real Redis, on a db other test files do not flush (see helpers.PUSH_REDIS_URL)."""
    return ph.PUSH_REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def rq_app(request, tmp_path, pg_database, sim, push_redis_url, app_config) -> Iterator:
    app = ph.build_app(request.param, tmp_path, pg_database, sim, redis_url=push_redis_url, **app_config)
    yield app
    ph.dispose(app)


@pytest.fixture
def rq_api(rq_app) -> ph.Api:
    return ph.Api(rq_app.test_client(), ph.create_admin_token(rq_app))


@pytest.fixture(params=["sqlite", "postgresql"])
def eager_app(request, tmp_path, pg_database, sim, app_config) -> Iterator:
    app = ph.build_app(request.param, tmp_path, pg_database, sim, **app_config)
    assert app.config["JOBS_EAGER"]
    yield app
    ph.dispose(app)


@pytest.fixture
def eager_api(eager_app) -> ph.Api:
    return ph.Api(eager_app.test_client(), ph.create_admin_token(eager_app))
