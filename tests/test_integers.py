"""One integer parser: ASCII digits only, within range, for paths, query strings, forms and JSON.

`str.isdigit()` is true for "²" (int() then raises: a 500) and for "١" or "５" (int() reads them as
1 and 5, so `/incidents/١` was incident 1). Every place that turns text into a number goes through
`validation.ascii_int` / `parse_int`; these tests replay the issue's findings on both databases.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from statuspage.errors import ValidationError
from statuspage.extensions import db
from statuspage.models import Component, PushSettings
from statuspage.validation import ascii_int, parse_id, parse_int
from tests.conftest import create_admin_token
from tests.hardening_support import table_snapshot, with_keys
from tests.push.helpers import browser_subscription

# Unicode digits and other number forms that str.isdigit(), str.isnumeric() or int() accept.
UNICODE_NUMBERS = ["²", "³", "¹", "١", "٣", "۴", "५", "৫", "５", "１２", "𝟓", "Ⅻ", "ⅻ", "½", "⑤", "⓵", "〇",
                   "零", "፩", "𐒠", "1²", "²1", "1١", "٠", "꘤", "᠑"]
# ASCII look-alikes int() also accepts: surrounding space, a plus sign, underscores.
LENIENT = [" 1", "1 ", "+1", "1_0", "\t1", "1\n", "0x1", "1e3", "1.0", ""]


@pytest.mark.parametrize("text", UNICODE_NUMBERS + LENIENT)
def test_ascii_int_refuses_every_unicode_digit_and_lenient_spelling(text):
    assert ascii_int(text) is None
    with pytest.raises(ValidationError) as excinfo:
        parse_int(text, "n")
    assert "digits 0-9" in excinfo.value.message and excinfo.value.field == "n"


def test_ascii_int_reads_plain_digits_and_parse_int_checks_the_range():
    assert [ascii_int(t) for t in ("0", "7", "0042", "-3", "2147483647")] == [0, 7, 42, -3, 2**31 - 1]
    assert ascii_int("9" * 21) is None  # bounded: no 5000-digit int() on request input
    assert ascii_int(5) is None and ascii_int(None) is None
    assert parse_int(5, "n") == 5 and parse_int("5", "n", minimum=1, maximum=5) == 5
    with pytest.raises(ValidationError, match="at most 5"):
        parse_int("6", "n", maximum=5)
    with pytest.raises(ValidationError, match="at least 1"):
        parse_id("0")
    with pytest.raises(ValidationError, match="at most 2147483647"):
        parse_id(str(2**31))
    with pytest.raises(ValidationError):
        parse_int(True, "n")  # a JSON boolean is not a number


def _seed(app):
    with app.app_context():
        component = Component(name="API")
        db.session.add(component)
        db.session.commit()
        return component.id


@pytest.mark.parametrize("number", ["²", "١", "５", "Ⅻ"])
def test_unicode_numbers_never_give_a_500_on_any_surface(app, api, number):
    cid = _seed(app)
    assert cid == 1
    with_keys(app)
    before = table_snapshot(app)
    client = api.client
    # anonymous visitor API and public pages
    r = client.post("/api/push/subscriptions", json={**browser_subscription(), "components": [number]})
    assert r.status_code == 400 and r.get_json()["field"] == "components"
    r = client.get(f"/history?page={number}")
    assert r.status_code == 200  # an unreadable page number is the first page
    assert client.get(f"/incidents/{number}").status_code == 404
    # admin API with a token: path ids, query strings, component maps, id lists
    r = api.get(f"/api/v1/components/{number}")
    assert r.status_code == 404 and "not a valid id" in r.get_json()["error"]
    r = api.get(f"/api/v1/incidents?limit={number}")
    assert r.status_code == 400 and "limit" in r.get_json()["error"]
    r = api.get(f"/api/v1/events?offset={number}")
    assert r.status_code == 400 and "offset" in r.get_json()["error"]
    r = api.post("/api/v1/incidents", json={"name": "x", "components": {number: "major_outage"}})
    assert r.status_code == 400 and r.get_json()["field"] == "components"
    r = api.post("/api/v1/incidents", json={"name": "x", "component_ids": [number]})
    assert r.status_code == 400 and r.get_json()["field"] == "component_ids"
    assert table_snapshot(app) == before


@pytest.mark.parametrize("number", ["²", "١", "５"])
def test_unicode_numbers_in_admin_forms_are_a_form_message(app, number):
    from tests.test_admin_ui import _login

    cid = _seed(app)
    with app.app_context():
        from statuspage.auth import create_user

        create_user("admin@example.com", "correct horse battery", "admin")
        db.session.commit()
    client = app.test_client()
    _login(client)
    for path, data in ((f"/admin/components/{cid}", {"name": "API", "position": number}),
                       (f"/admin/components/{cid}", {"name": "API", "group_id": number}),
                       ("/admin/components", {"name": "Web", "position": number}),
                       ("/admin/push", {"section": "settings", "debounce_seconds": number})):
        r = client.post(path, data=data, headers={"Referer": "http://localhost/admin/components"})
        # The components forms answer with the page itself, the message next to the field (issue 12).
        assert r.status_code in (200, 303), (path, data, r.status_code)
        page = (client.get(r.headers["Location"]) if r.status_code == 303 else r).get_data(as_text=True)
        assert "digits 0-9" in page, (path, data)
    with app.app_context():
        assert [c.name for c in db.session.execute(select(Component)).scalars()] == ["API"]
        assert db.session.get(PushSettings, 1) is None or db.session.get(PushSettings, 1).debounce_seconds is None


def test_a_unicode_digit_in_a_path_is_not_read_as_another_id(app):
    """`/incidents/١` used to be incident 1 (werkzeug's `\\d` and int() accept Arabic-Indic digits)."""
    token = create_admin_token(app)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/incidents", json={"name": "Outage"}, headers=headers).status_code == 201
    assert client.get("/incidents/1").status_code == 200
    assert client.get("/incidents/١").status_code == 404
    assert client.get("/incidents/１").status_code == 404
    assert client.get("/api/v1/incidents/١", headers=headers).status_code == 404


def test_retry_after_and_config_integers_use_the_same_parser(monkeypatch, tmp_path):
    from statuspage.config import ConfigError, load_config
    from statuspage.push.sender import parse_retry_after

    assert parse_retry_after("²") is None and parse_retry_after("١٢٠") is None
    assert parse_retry_after("120") == 120.0
    monkeypatch.setenv("PUSH_TIMEOUT", "１０")
    with pytest.raises(ConfigError, match="PUSH_TIMEOUT"):
        load_config(str(tmp_path))
    monkeypatch.setenv("PUSH_TIMEOUT", " 10 ")
    assert load_config(str(tmp_path))["PUSH_TIMEOUT"] == 10
