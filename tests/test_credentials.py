"""Credentials that die with their user, proven with real cookies against a live server on SQLite
and PostgreSQL: a copied session or remember-me cookie stops working on sign-out, a password
change, disabling, deleting or `users sign-out-all`; tokens die with their user; the last active
admin cannot be removed; and all of it is in the admin log."""
from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import select, text

from statuspage.auth import create_token, create_user
from statuspage.extensions import db
from statuspage.models import AdminLog, ApiToken, User, UserSession
from tests.conftest import make_app
from tests.livehelpers import PASSWORD, LiveServer, copy_of, csrf_token, sign_in, signed_in_as

ADMIN, EDITOR, OTHER = "admin@example.com", "editor@example.com", "other@example.com"


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request, tmp_path, pg_database):
    url = f"sqlite:///{tmp_path / 'live.db'}" if request.param == "sqlite" else pg_database
    app = make_app(url, tmp_path, WTF_CSRF_ENABLED=True, SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False)
    with app.app_context():
        create_user(ADMIN, PASSWORD, "admin")
        create_user(EDITOR, PASSWORD, "editor")
        db.session.commit()
    with LiveServer(app) as server:
        yield server
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _cli(server, *args: str, input: str | None = None):
    result = server.app.test_cli_runner().invoke(args=list(args), input=input)
    with server.app.app_context():
        db.session.remove()
    return result


def _token(server, email: str) -> str:
    with server.app.app_context():
        _, token = create_token(email, "script")
        db.session.commit()
        db.session.remove()
    return token


def _api_status(server, token: str) -> int:
    return requests.get(server.url + "/api/v1/components", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code


def _log(server) -> list[tuple[str, str, str | None]]:
    with server.app.app_context():
        rows = db.session.execute(select(AdminLog.action, AdminLog.actor, AdminLog.target).order_by(AdminLog.id)).all()
        db.session.remove()
    return [tuple(r) for r in rows]


def _post_form(browser, server, page: str, action: str, **data) -> requests.Response:
    data["csrf_token"] = csrf_token(browser, server.url + page)
    return browser.post(server.url + action, data=data, timeout=10)


# --- sign-out ends the copied cookies ---------------------------------------------------------------

def test_a_copied_session_cookie_dies_when_its_owner_signs_out(live):
    owner = sign_in(live.url, ADMIN)
    thief = copy_of(owner, "session")
    assert signed_in_as(thief, live.url) == ADMIN
    _post_form(owner, live, "/admin/", "/admin/logout")
    assert signed_in_as(owner, live.url) is None
    assert signed_in_as(thief, live.url) is None  # it used to work for 31 days


def test_a_copied_remember_me_cookie_dies_when_its_owner_signs_out(live):
    owner = sign_in(live.url, ADMIN, remember=True)
    assert "remember_token" in owner.cookies
    thief = copy_of(owner, "remember_token")  # no session cookie: signed in by the remember cookie alone
    assert signed_in_as(thief, live.url) == ADMIN
    _post_form(owner, live, "/admin/", "/admin/logout")
    assert signed_in_as(thief, live.url) is None  # the session it was given, and
    assert signed_in_as(copy_of(owner, "remember_token"), live.url) is None  # the cookie itself (365 days)
    with live.app.app_context():
        assert db.session.execute(select(UserSession)).all() == []


def test_signing_out_one_browser_keeps_the_others(live):
    laptop, phone = sign_in(live.url, ADMIN), sign_in(live.url, ADMIN, remember=True)
    _post_form(laptop, live, "/admin/", "/admin/logout")
    assert signed_in_as(phone, live.url) == ADMIN


def test_a_cookie_from_before_revocable_sign_ins_is_refused(live):
    """Flask-Login used to keep the bare user id in the cookies; such a cookie signs nobody in."""
    from flask.sessions import SecureCookieSessionInterface

    app = live.app
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    browser = requests.Session()
    browser.cookies.set("session", serializer.dumps({"_user_id": "1", "_fresh": True}))
    assert signed_in_as(browser, live.url) is None


# --- password change, disable, delete, sign-out-all -------------------------------------------------

def test_changing_your_password_in_the_admin_ui_ends_your_other_sign_ins(live):
    here, elsewhere = sign_in(live.url, ADMIN), sign_in(live.url, ADMIN, remember=True)
    stolen = copy_of(elsewhere, "remember_token")
    wrong = _post_form(here, live, "/admin/account", "/admin/account/password", current_password="not it",
                       new_password="a new long password", confirm_password="a new long password")
    assert "current password is wrong" in wrong.text
    mismatch = _post_form(here, live, "/admin/account", "/admin/account/password", current_password=PASSWORD,
                          new_password="a new long password", confirm_password="another one entirely")
    assert "do not match" in mismatch.text
    assert signed_in_as(elsewhere, live.url) == ADMIN  # nothing changed yet

    done = _post_form(here, live, "/admin/account", "/admin/account/password", current_password=PASSWORD,
                      new_password="a new long password", confirm_password="a new long password")
    assert "Password changed. 1 other sign-in(s) of yours ended." in done.text
    assert signed_in_as(here, live.url) == ADMIN
    assert signed_in_as(elsewhere, live.url) is None and signed_in_as(stolen, live.url) is None
    with pytest.raises(AssertionError):
        sign_in(live.url, ADMIN)  # the old password
    assert signed_in_as(sign_in(live.url, ADMIN, "a new long password"), live.url) == ADMIN
    assert ("user.password_changed", ADMIN, ADMIN) in _log(live)


def test_set_password_on_the_command_line_ends_every_sign_in_but_keeps_tokens(live):
    browser = sign_in(live.url, EDITOR, remember=True)
    token = _token(live, EDITOR)
    result = _cli(live, "users", "set-password", "--email", EDITOR, input="brand new secret\nbrand new secret\n")
    assert result.exit_code == 0 and "1 sign-in(s) ended" in result.output, result.output
    assert signed_in_as(browser, live.url) is None
    assert signed_in_as(copy_of(browser, "remember_token"), live.url) is None
    assert _api_status(live, token) == 200
    assert signed_in_as(sign_in(live.url, EDITOR, "brand new secret"), live.url) == EDITOR
    short = _cli(live, "users", "set-password", "--email", EDITOR, "--password", "short")
    assert short.exit_code == 1 and "at least 8 characters" in short.output


def test_disabling_a_user_ends_sign_ins_and_refuses_tokens_until_enabled(live):
    browser = sign_in(live.url, EDITOR, remember=True)
    token = _token(live, EDITOR)
    result = _cli(live, "users", "disable", "--email", EDITOR)
    assert result.exit_code == 0, result.output
    assert signed_in_as(browser, live.url) is None
    assert signed_in_as(copy_of(browser, "remember_token"), live.url) is None
    assert _api_status(live, token) == 401
    with pytest.raises(AssertionError):
        sign_in(live.url, EDITOR)
    assert "disabled" in _cli(live, "users", "list").output
    assert _cli(live, "tokens", "create", "--email", EDITOR).exit_code == 1  # no new token while disabled

    assert _cli(live, "users", "enable", "--email", EDITOR).exit_code == 0
    assert _api_status(live, token) == 200
    assert signed_in_as(sign_in(live.url, EDITOR), live.url) == EDITOR
    actions = [a for a, _, target in _log(live) if target == EDITOR]
    assert "user.disabled" in actions and "user.enabled" in actions


def test_deleting_a_user_ends_their_sign_ins_and_tokens_and_the_log_keeps_their_name(live):
    browser = sign_in(live.url, EDITOR, remember=True)
    token = _token(live, EDITOR)
    result = _cli(live, "users", "delete", "--email", EDITOR)
    assert result.exit_code == 0, result.output
    assert signed_in_as(browser, live.url) is None
    assert signed_in_as(copy_of(browser, "remember_token"), live.url) is None
    assert _api_status(live, token) == 401
    with live.app.app_context():
        assert db.session.execute(select(ApiToken)).all() == []
        assert db.session.execute(select(UserSession.user_id)).scalars().all() == []
        entry = db.session.execute(select(AdminLog).where(AdminLog.action == "user.deleted")).scalar_one()
        assert (entry.target, entry.target_user_id) == (EDITOR, None)
        assert entry.actor.startswith("command line")


def test_a_deleted_editors_token_and_cookie_never_pass_as_the_admin_created_next(live):
    """The issue's finding, replayed: the editor is deleted by SQL (as there was no command), an
    admin is created next. The editor's token used to pass admin-only PUT /api/v1/push/settings and
    the editor's cookie showed "Signed in as" the new admin."""
    browser = sign_in(live.url, EDITOR, remember=True)
    token = _token(live, EDITOR)
    with live.app.app_context():
        editor_id = db.session.execute(select(User.id).where(User.email == EDITOR)).scalar_one()
        db.session.execute(text("DELETE FROM users WHERE id = :id"), {"id": editor_id})
        db.session.commit()
        new_admin = create_user("new-admin@example.com", PASSWORD, "admin")
        db.session.commit()
        assert new_admin.id > editor_id
        db.session.remove()
    put = requests.put(live.url + "/api/v1/push/settings", json={"enabled": False},
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert put.status_code == 401
    assert signed_in_as(browser, live.url) is None
    assert signed_in_as(copy_of(browser, "remember_token"), live.url) is None


def test_sign_out_all_ends_every_sign_in_of_everyone(live):
    browsers = [sign_in(live.url, ADMIN), sign_in(live.url, ADMIN, remember=True), sign_in(live.url, EDITOR)]
    remembered = copy_of(browsers[1], "remember_token")
    token = _token(live, ADMIN)
    result = _cli(live, "users", "sign-out-all")
    assert result.exit_code == 0 and "Ended 3 sign-in(s)." in result.output, result.output
    assert [signed_in_as(b, live.url) for b in (*browsers, remembered)] == [None] * 4
    assert _api_status(live, token) == 200  # tokens are separate credentials...
    result = _cli(live, "users", "sign-out-all", "--revoke-tokens")
    assert result.exit_code == 0 and "revoked 1 API token(s)" in result.output
    assert _api_status(live, token) == 401  # ...unless asked
    # SECRET_KEY was not touched: the VAPID key, subscribers and new sign-ins are unaffected
    assert signed_in_as(sign_in(live.url, ADMIN), live.url) == ADMIN


def test_sign_out_everywhere_else_from_the_account_page(live):
    here, there = sign_in(live.url, EDITOR), sign_in(live.url, EDITOR, remember=True)
    page = here.get(live.url + "/admin/account", timeout=10).text
    assert page.count("<tr><td>Chrome</td>") == 2 and "this browser" in page
    done = _post_form(here, live, "/admin/account", "/admin/account/sign-out-others")
    assert "1 sign-in(s) ended" in done.text
    assert signed_in_as(here, live.url) == EDITOR and signed_in_as(there, live.url) is None


# --- the last admin ------------------------------------------------------------------------------

def test_the_last_active_admin_cannot_be_deleted_disabled_or_demoted(live):
    for command in (("delete",), ("disable",), ("set-role", "--role", "editor")):
        result = _cli(live, "users", *command, "--email", ADMIN)
        assert result.exit_code == 1 and "last active admin" in result.output, (command, result.output)
    # a disabled second admin does not count
    _cli(live, "users", "create", "--email", OTHER, "--password", PASSWORD, "--role", "admin")
    assert _cli(live, "users", "disable", "--email", OTHER).exit_code == 0
    assert _cli(live, "users", "delete", "--email", ADMIN).exit_code == 1
    assert _cli(live, "users", "enable", "--email", OTHER).exit_code == 0
    assert _cli(live, "users", "set-role", "--email", ADMIN, "--role", "editor").exit_code == 0
    assert _cli(live, "users", "delete", "--email", OTHER).exit_code == 1  # now OTHER is the last one
    assert "editor" in _cli(live, "users", "list").output
    assert ("user.role_changed", _log(live)[-1][1], ADMIN) in _log(live)


def test_two_admins_deleting_each_other_at_once_leave_one(live):
    from statuspage.audit import Actor
    from statuspage.auth import delete_user
    from statuspage.errors import ConflictError

    _cli(live, "users", "create", "--email", OTHER, "--password", PASSWORD, "--role", "admin")
    for _ in range(3):
        results: dict[str, str] = {}
        barrier = threading.Barrier(2)

        def remove(email: str, barrier=barrier, results=results) -> None:
            with live.app.app_context():
                barrier.wait()
                try:
                    delete_user(email, actor=Actor.command_line())
                    db.session.commit()
                    results[email] = "deleted"
                except ConflictError:
                    db.session.rollback()
                    results[email] = "refused"
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=remove, args=(email,)) for email in (ADMIN, OTHER)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results.values()) == ["deleted", "refused"], results
        with live.app.app_context():
            admins = db.session.execute(select(User.email).where(User.role == "admin")).scalars().all()
            db.session.remove()
        assert len(admins) == 1
        # put the deleted one back for the next round
        gone = ADMIN if results[ADMIN] == "deleted" else OTHER
        assert _cli(live, "users", "create", "--email", gone, "--password", PASSWORD).exit_code == 0


# --- the admin log ---------------------------------------------------------------------------------

def test_the_admin_log_records_every_credential_change_and_only_admins_read_it(live):
    admin = sign_in(live.url, ADMIN)
    editor = sign_in(live.url, EDITOR)
    _cli(live, "tokens", "create", "--email", EDITOR, "--name", "deploy")
    _cli(live, "tokens", "revoke", "--prefix", "sp_")  # nothing matches a bare prefix
    _cli(live, "users", "set-role", "--email", EDITOR, "--role", "editor")
    page = admin.get(live.url + "/admin/log", timeout=10)
    assert page.status_code == 200
    for action in ("user.created", "session.signed_in", "token.created", "user.role_changed"):
        assert action in page.text
    assert editor.get(live.url + "/admin/log", timeout=10).status_code == 403
    listing = _cli(live, "users", "log", "--limit", "3")
    assert listing.exit_code == 0 and len(listing.output.strip().splitlines()) == 3
    assert listing.output.splitlines()[0].split("\t")[1] == "user.role_changed"
