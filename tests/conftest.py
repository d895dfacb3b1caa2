"""Shared fixtures: a fresh database per test on SQLite and on the real PostgreSQL server,
real Redis (its own db number), the push-service simulator, and API helpers.

`app` is parametrized over both databases; tests that only need one use `sqlite_app` /
`pg_app`. Tables are created once per session per database and emptied between tests
(migrations themselves are tested in test_migrations.py). Extra config for any app fixture
comes from `@pytest.mark.app_config(...)`, read in one place (the `app_config` fixture).
Helpers are imported as modules of the `tests` package (`from tests.conftest import make_app`,
`from tests.push import helpers as ph`); tests/push/conftest.py adds the push delivery fixtures.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from redis import Redis
from sqlalchemy import text

from statuspage import create_app
from statuspage.extensions import db
from statuspage.push import delivery
from statuspage.push.simulator import PushSimulator

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
TEST_SECRET = "test-secret-key-not-for-production"


def _pg_dsn(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of our own for this test session (dropped at the end)."""
    name = f"statuspage_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield "postgresql+psycopg://" + _pg_dsn(name).split("://", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_created_schemas: set[str] = set()


def make_app(database_url: str, tmp_path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JOBS_EAGER": True,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "WTF_CSRF_ENABLED": False,
        "SITE_URL": "https://status.example.com",
        "SITE_NAME": "Example Status",
        "REDIS_URL": None,
        "PUSH_DEBOUNCE_SECONDS": 0,
        # Public pages render live here (the same renderer the snapshot uses). Publishing the
        # snapshot after every commit would add ~50% to the suite (the fuzzers commit thousands of
        # times); tests/test_publish*.py turn it on (snapshot_app) and test it for real.
        "PUBLIC_SNAPSHOT_DIR": "off",
    }
    config.update(overrides)
    os.environ["INSTANCE_PATH"] = str(tmp_path / "instance")
    app = create_app(config)
    with app.app_context():
        if database_url not in _created_schemas or database_url.startswith("sqlite"):
            db.drop_all()
            db.create_all()
            _created_schemas.add(database_url)
        else:
            truncate_all()
    return app


def truncate_all() -> None:
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


def _dispose(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_config(request) -> dict:
    """The test's `@pytest.mark.app_config(...)` settings (the closest marker wins), or {}."""
    marker = request.node.get_closest_marker("app_config")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, tmp_path, pg_database, app_config):
    url = f"sqlite:///{tmp_path / 'test.db'}" if request.param == "sqlite" else pg_database
    application = make_app(url, tmp_path, **app_config)
    yield application
    _dispose(application)


@pytest.fixture
def sqlite_app(tmp_path, app_config):
    application = make_app(f"sqlite:///{tmp_path / 'test.db'}", tmp_path, **app_config)
    yield application
    _dispose(application)


@pytest.fixture
def pg_app(tmp_path, pg_database, app_config):
    application = make_app(pg_database, tmp_path, **app_config)
    yield application
    _dispose(application)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def sim_server() -> Iterator[PushSimulator]:
    """One push-service simulator for the session (plain http, free loopback port, control API
    on); module-scoped fixtures use it directly, tests through `sim`."""
    with PushSimulator(control_api=True) as simulator:
        yield simulator


@pytest.fixture
def sim(sim_server) -> PushSimulator:
    """The push-service simulator with nothing received, no forced answers and no delay (the
    subscriptions of earlier tests stay registered; each test makes its own)."""
    sim_server.reset()
    return sim_server


@pytest.fixture(autouse=True)
def close_senders() -> Iterator[None]:
    """After every test, close the pooled push senders the delivery module caches per app config:
    no connection or loop thread outlives the test that opened it."""
    yield
    delivery.close_senders()


@pytest.fixture
def redis_url() -> Iterator[str]:
    conn = Redis.from_url(REDIS_TEST_URL)
    conn.flushdb()
    yield REDIS_TEST_URL
    conn.flushdb()


def create_admin_token(app, email: str = "admin@example.com", role: str = "admin") -> str:
    from statuspage.auth import create_token, create_user, find_user

    with app.app_context():
        if find_user(email) is None:
            create_user(email, "correct horse battery", role)
        _, token = create_token(email, "tests")
        db.session.commit()
    return token


class Api:
    """Tiny helper around the test client for the bearer-token admin API."""

    def __init__(self, client, token: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path, **kw):
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path, json=None, **kw):
        return self.client.post(path, json=json, headers=self.headers, **kw)

    def patch(self, path, json=None, **kw):
        return self.client.patch(path, json=json, headers=self.headers, **kw)

    def put(self, path, json=None, **kw):
        return self.client.put(path, json=json, headers=self.headers, **kw)

    def delete(self, path, **kw):
        return self.client.delete(path, headers=self.headers, **kw)


@pytest.fixture
def api(app, client) -> Api:
    return Api(client, create_admin_token(app))


def pytest_configure(config):
    config.addinivalue_line("markers", "app_config(**kwargs): extra config for the app fixtures")
