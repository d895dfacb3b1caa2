"""Web security: CSRF on every admin form, session cookies, no caching of admin pages, Markdown and
template escaping (public pages, incident pages, the Atom feed, admin pages), the CSP, hashed and
revocable API tokens, secrets encrypted at rest, and what the editor role may do."""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from statuspage.extensions import db
from statuspage.models import ApiToken, User, VapidKey
from tests.conftest import Api, create_admin_token, make_app
from tests.hardening_support import table_snapshot, with_keys

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- an HTML auditor: what a browser would execute ------------------------------------------------

DANGEROUS_TAGS = {"script", "iframe", "object", "embed", "base", "frame", "frameset", "applet", "style", "svg",
                  "math", "link", "meta", "form", "input", "button", "textarea", "img", "video", "audio", "source"}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "srcset", "poster", "data", "background"}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:", "file:")


class Audit(HTMLParser):
    """Collects every start tag with attributes; `problems()` lists what could run script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def problems(self, *, allowed_tags: set[str] = frozenset()) -> list[str]:
        found = []
        for tag, attrs in self.tags:
            for name, value in attrs.items():
                if name.startswith("on"):
                    found.append(f"<{tag} {name}=...>")
                if name in URL_ATTRS and value:
                    squashed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
                    if squashed.startswith(BAD_SCHEMES):
                        found.append(f"<{tag} {name}={value!r}>")
            if tag in DANGEROUS_TAGS and tag not in allowed_tags:
                found.append(f"<{tag} {attrs}>")
        return found


def audit(html: str) -> Audit:
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser


def page_problems(html: str) -> list[str]:
    """Audit a whole page: the layout's own tags are fine if they are what the templates ship."""
    problems = []
    for tag, attrs in audit(html).tags:
        for name, value in attrs.items():
            if name.startswith("on"):
                problems.append(f"<{tag} {name}>")
            if name in URL_ATTRS and value and re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith(
                    ("javascript:", "vbscript:", "data:text", "data:application")):
                problems.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            src = attrs.get("src") or ""
            if not src.startswith("/static/"):
                problems.append(f"<script {attrs}>: only the app's own files may run (CSP script-src 'self')")
        if tag in {"iframe", "object", "embed", "base", "frame", "applet"}:
            problems.append(f"<{tag}>")
    return problems


HOSTILE_MARKDOWN = """
<script>alert('script')</script>
<img src=x onerror="alert('img')">
<svg onload=alert('svg')><circle r=1></svg>
<iframe src="https://evil.example/"></iframe>
<a href="javascript:alert('raw-a')">raw link</a>
<style>body{background:url(javascript:alert(1))}</style>
<form action="https://evil.example/"><input name=x></form>
[js link](javascript:alert('md'))
[JS link](JaVaScRiPt:alert('md2'))
[entity link](&#106;avascript:alert('entity'))
[tab link](java&#09;script:alert('tab'))
[vb link](vbscript:msgbox('vb'))
[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
![data image](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)
![remote image](https://evil.example/track.png)
<javascript:alert('autolink')>
[ok link](https://example.com/ok "title") and **bold** and `code`
"""


@pytest.fixture
def hostile(app, api):
    """An incident whose name, body and component names try every injection we know."""
    with_keys(app)
    group = api.post("/api/v1/component-groups", json={"name": "<script>alert('group')</script>"}).get_json()
    component = api.post("/api/v1/components", json={
        "name": "\"><img src=x onerror=alert('component')>", "group_id": group["id"]}).get_json()
    incident = api.post("/api/v1/incidents", json={
        "name": "<script>alert('incident')</script>\"'><svg onload=alert(1)>",
        "body": HOSTILE_MARKDOWN, "component_ids": [component["id"]]}).get_json()
    assert api.post(f"/api/v1/incidents/{incident['id']}/updates",
                    json={"status": "identified", "body": "<b onmouseover=alert(1)>update</b>"}).status_code == 201
    return incident["id"]


def test_markdown_keeps_formatting_and_drops_everything_executable(app):
    from statuspage.markdown import render_markdown

    html = str(render_markdown(HOSTILE_MARKDOWN))
    parsed = audit(html)
    assert parsed.problems(allowed_tags=set()) == []
    links = [attrs.get("href") for tag, attrs in parsed.tags if tag == "a"]
    assert "https://example.com/ok" in links
    # what a browser would follow: "java%09script:" is a harmless relative path, not a scheme
    resolved = [urlsplit(urljoin("https://status.example.com/incidents/1", href)).scheme for href in links if href]
    assert set(resolved) <= {"http", "https", "mailto"}, links
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert all('rel="noopener noreferrer nofollow"' in m for m in re.findall(r"<a [^>]*>", html))


def test_public_pages_and_feed_never_carry_executable_markup(app, client, hostile):
    for path in ("/", f"/incidents/{hostile}", "/history"):
        page = client.get(path)
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert page_problems(body) == [], path
        assert "&lt;script&gt;alert(&#39;incident&#39;)&lt;/script&gt;" in body
    feed = client.get("/feed.atom")
    root = ET.fromstring(feed.data)
    ns = "{http://www.w3.org/2005/Atom}"
    entry = next(e for e in root.iter(f"{ns}entry") if e.find(f"{ns}id").text.endswith(f"/incidents/{hostile}"))
    assert entry.find(f"{ns}title").text.startswith("<script>")  # plain text in a text element: inert
    content = entry.find(f"{ns}content")
    assert content.get("type") == "html"
    assert audit(content.text).problems(allowed_tags=set()) == []


def test_json_apis_return_names_as_data(app, client, hostile):
    # JSON is data, served as application/json with nosniff: never rendered as HTML.
    for path in ("/api/v2/summary.json", "/api/v2/incidents.json", "/api/v2/components.json"):
        response = client.get(path)
        assert response.mimetype == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.fixture
def admin_session(app):
    create_admin_token(app)
    client = app.test_client()
    assert client.post("/admin/login", data={"email": "admin@example.com", "password": PASSWORD}).status_code == 302
    return client


def test_admin_pages_escape_names_and_are_never_cached(app, admin_session, hostile):
    pages = ["/admin/", "/admin/components", "/admin/incidents", f"/admin/incidents/{hostile}", "/admin/incidents/new",
             "/admin/maintenances", "/admin/maintenances/new", "/admin/push", "/admin/subscriptions", "/admin/events"]
    for path in pages:
        page = admin_session.get(path)
        assert page.status_code == 200, path
        assert page.headers["Cache-Control"] == "no-store", path
        assert page_problems(page.get_data(as_text=True)) == [], path
    login = app.test_client().get("/admin/login")
    assert login.headers["Cache-Control"] == "no-store"


# --- CSRF -----------------------------------------------------------------------------------------

@pytest.fixture
def csrf_app(tmp_path, pg_database):
    app = make_app(pg_database, tmp_path, WTF_CSRF_ENABLED=True)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _csrf(page) -> str:
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, "no csrf_token in the form"
    return match.group(1)


def _admin_post_rules(app) -> list[str]:
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and "POST" in rule.methods:
            path = re.sub(r"<(?:int:)?\w+>", "1", rule.rule)
            rules.append(path)
    return sorted(set(rules))


def test_every_admin_form_needs_the_csrf_token(csrf_app):
    app = csrf_app
    Api(app.test_client(), create_admin_token(app))
    client = app.test_client()
    # signing in is a form too: no token, no session
    refused = client.post("/admin/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert refused.status_code == 303
    assert client.get("/admin/").status_code == 302  # not signed in
    token = _csrf(client.get("/admin/login"))
    assert client.post("/admin/login", data={"email": "admin@example.com", "password": PASSWORD,
                                             "csrf_token": token}).status_code == 302
    with app.app_context():
        from statuspage.components import create_component, create_group
        from statuspage.events import commit
        from statuspage.incidents import create_incident

        create_group({"name": "G"})
        create_component({"name": "C"})
        create_incident({"name": "I"})
        commit()
        db.session.remove()
    before = table_snapshot(app)
    rules = _admin_post_rules(app)
    assert len(rules) >= 12, rules
    form = {"name": "changed", "status": "major_outage", "body": "x", "section": "settings", "enabled": "on"}
    for path in rules:
        for bad_token in (None, "", "not-a-token", token[:-2] + "xx"):
            data = dict(form, **({"csrf_token": bad_token} if bad_token is not None else {}))
            response = client.post(path, data=data)
            assert response.status_code in (303, 400), (path, bad_token, response.status_code)
    assert table_snapshot(app) == before
    # still signed in: the session was not lost, the forms just did nothing
    assert client.get("/admin/").status_code == 200
    # and the token from our own form works
    page = client.get("/admin/components")
    assert client.post("/admin/groups", data={"name": "New", "csrf_token": _csrf(page)}).status_code == 302
    assert table_snapshot(app) != before


def test_every_post_form_on_admin_pages_carries_a_csrf_token(app, admin_session, hostile):
    for path in ("/admin/", "/admin/components", f"/admin/incidents/{hostile}", "/admin/incidents/new",
                 "/admin/maintenances/new", "/admin/push", "/admin/subscriptions", "/admin/events"):
        html = admin_session.get(path).get_data(as_text=True)
        forms = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", html, flags=re.S | re.I)
        assert forms or path in ("/admin/", "/admin/subscriptions", "/admin/events"), path
        for body in forms:
            assert 'name="csrf_token"' in body, (path, body[:200])


# --- cookies, headers, CSP ----------------------------------------------------------------------

def _cookie(response, name: str) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(name + "="):
            return header
    raise AssertionError(f"no {name} cookie in {response.headers.getlist('Set-Cookie')}")


def test_session_and_remember_cookies_are_secure_on_https(monkeypatch, tmp_path):
    # The real path: SITE_URL from the environment decides the cookie flags.
    monkeypatch.setenv("SITE_URL", "https://status.example.com")
    app = make_app(f"sqlite:///{tmp_path / 'https.db'}", tmp_path)
    create_admin_token(app)
    response = app.test_client().post("/admin/login", data={"email": "admin@example.com", "password": PASSWORD,
                                                            "remember": "on"})
    for name in ("session", "remember_token"):
        cookie = _cookie(response, name).lower()
        assert "; secure" in cookie and "; httponly" in cookie, cookie
    assert "samesite=lax" in _cookie(response, "session").lower()
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_cookies_are_not_marked_secure_for_a_plain_http_dev_site(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'dev.db'}", tmp_path, SITE_URL="http://127.0.0.1:5000",
                   SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False)
    create_admin_token(app)
    response = app.test_client().post("/admin/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert "secure" not in _cookie(response, "session").lower()
    assert "httponly" in _cookie(response, "session").lower()
    assert "Strict-Transport-Security" not in response.headers


def test_https_site_config_marks_cookies_secure(monkeypatch, tmp_path):
    from statuspage.config import load_config

    monkeypatch.setenv("SITE_URL", "https://status.example.org/")
    config = load_config(str(tmp_path))
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["SESSION_COOKIE_HTTPONLY"] and config["SESSION_COOKIE_SAMESITE"] == "Lax"


def _csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_csp_allows_the_service_worker_and_subscribe_script_and_nothing_inline(app, client):
    with_keys(app)
    page = client.get("/")
    csp = _csp(page)
    assert csp["script-src"] == ["'self'"]
    assert csp["worker-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"] and csp["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    scripts = [attrs for tag, attrs in audit(html).tags if tag == "script"]
    module = [s["src"] for s in scripts if s.get("type") == "module"]
    assert len(module) == 1 and re.fullmatch(r"/static/js/subscribe\.[0-9a-f]{10}\.js", module[0]), scripts
    assert all((s.get("src") or "").startswith("/static/") for s in scripts)  # no inline script to block
    assert client.get(module[0]).status_code == 200
    assert client.get("/static/js/subscribe.js").status_code == 200
    sw = client.get("/sw-push.js")
    assert sw.status_code == 200 and sw.mimetype == "text/javascript"
    assert sw.headers["Service-Worker-Allowed"] == "/"
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert header in page.headers


# --- secrets at rest: tokens hashed and revocable, passwords hashed, VAPID key encrypted ----------

def _dump(app) -> str:
    """Everything the database holds, as one string (what a stolen dump contains)."""
    return repr(table_snapshot(app))


def test_a_database_dump_holds_no_token_password_or_private_key(app, runner):
    token = create_admin_token(app)
    with_keys(app)
    dump = _dump(app)
    assert token not in dump and token[3:] not in dump
    assert PASSWORD not in dump
    with app.app_context():
        row = db.session.execute(select(ApiToken)).scalar_one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.prefix == token[:10]  # only a 10-character prefix, to tell tokens apart
        assert db.session.execute(select(User)).scalar_one().password_hash.startswith(("scrypt:", "pbkdf2:"))
        from statuspage.push.keys import current_keys

        private = current_keys().private_key
        assert private not in dump
        assert db.session.execute(select(VapidKey)).scalar_one().private_key_encrypted.startswith("gAAAA")  # Fernet
        db.session.remove()


def test_revoked_tokens_stop_working_at_once(app, client, runner):
    token = create_admin_token(app)
    other = create_admin_token(app)
    api = Api(client, token)
    assert api.get("/api/v1/components").status_code == 200
    result = runner.invoke(args=["tokens", "revoke", "--prefix", token[:10]])
    assert result.exit_code == 0, result.output
    refused = api.get("/api/v1/components")
    assert refused.status_code == 401 and refused.get_json() == {"error": "invalid or revoked token"}
    assert Api(client, other).get("/api/v1/components").status_code == 200
    with app.app_context():
        other_id = db.session.execute(select(ApiToken.id).where(ApiToken.prefix == other[:10])).scalar_one()
        db.session.remove()
    assert runner.invoke(args=["tokens", "revoke", "--id", str(other_id)]).exit_code == 0
    assert Api(client, other).get("/api/v1/components").status_code == 401
    again = runner.invoke(args=["tokens", "revoke", "--id", str(other_id)])
    assert again.exit_code != 0 and "no matching active token" in again.output


def test_tokens_are_not_accepted_from_query_strings_or_cookies(app, client):
    token = create_admin_token(app)
    assert client.get(f"/api/v1/components?token={token}").status_code == 401
    assert client.get(f"/api/v1/components?access_token={token}").status_code == 401
    client.set_cookie("token", token)
    assert client.get("/api/v1/components").status_code == 401


def test_admin_session_does_not_authenticate_the_json_api(app, admin_session):
    # The API is CSRF-exempt because it only accepts bearer tokens: a signed-in browser cookie
    # must not be enough, or any site could make the admin's browser call it.
    assert admin_session.get("/api/v1/components").status_code == 401
    assert admin_session.post("/api/v1/incidents", json={"name": "forged"}).status_code == 401


# --- roles: admin | editor ----------------------------------------------------------------------

@pytest.fixture
def editor(app, client):
    create_admin_token(app)  # an admin exists too
    token = create_admin_token(app, "editor@example.com", role="editor")
    browser = app.test_client()
    assert browser.post("/admin/login", data={"email": "editor@example.com", "password": PASSWORD}).status_code == 302
    return Api(client, token), browser


def test_editors_post_incidents_but_cannot_change_push_settings(app, editor):
    api, browser = editor
    with_keys(app)
    component = api.post("/api/v1/components", json={"name": "API"})
    assert component.status_code == 201
    assert api.post("/api/v1/incidents", json={"name": "Outage"}).status_code == 201
    assert api.get("/api/v1/triggers").status_code == 200
    assert api.get("/api/v1/push/settings").status_code == 200
    before = table_snapshot(app)
    for method, path, body in (("put", "/api/v1/push/settings", {"enabled": False}),
                               ("put", "/api/v1/triggers", {"incident.created": {"enabled": False}}),
                               ("post", "/api/v1/subscriptions/1/test", None)):
        response = getattr(api, method)(path, json=body)
        assert response.status_code == 403 and response.get_json() == {"error": "this needs an admin token"}, path
    page = browser.get("/admin/push")
    assert page.status_code == 200  # may look
    for data in ({"section": "settings", "enabled": ""},
                 {"section": "triggers", "enabled-incident.created": ""}):
        assert browser.post("/admin/push", data=data).status_code == 403
    assert browser.post("/admin/subscriptions/1/test").status_code == 403
    assert table_snapshot(app) == before


def test_only_admins_acknowledge_delivery_alerts(app, editor):
    """An editor used to acknowledge the delivery alerts (POST /admin/alerts/ack) and so hide them
    from the admins."""
    from statuspage.models import AdminAlert
    from statuspage.push.delivery import record_alert

    _, browser = editor
    with app.app_context():
        record_alert("push service answered 403: VAPID key mismatch")
        db.session.commit()
    page = browser.get("/admin/events").get_data(as_text=True)
    assert "push service answered 403" in page and "An admin acknowledges these" in page  # editors see them
    assert "/admin/alerts/ack" not in page
    assert browser.post("/admin/alerts/ack").status_code == 403
    with app.app_context():
        assert db.session.execute(select(AdminAlert.acknowledged_at)).scalar_one() is None
    admin = app.test_client()
    assert admin.post("/admin/login", data={"email": "admin@example.com", "password": PASSWORD}).status_code == 302
    assert "/admin/alerts/ack" in admin.get("/admin/events").get_data(as_text=True)
    assert admin.post("/admin/alerts/ack").status_code == 302
    with app.app_context():
        assert db.session.execute(select(AdminAlert.acknowledged_at)).scalar_one() is not None


def test_no_http_route_manages_users_or_tokens(app):
    # Users and tokens are managed with the CLI on the server only: nothing on the web can create
    # an admin, change a role or mint a token. The one credential route changes the signed-in
    # user's own password (it needs the current one: test_credentials.py). (An integration's
    # receiver token is not a user's: admins rotate it, and the receiver URL may carry it.)
    own_password = "/admin/account/password"
    for rule in app.url_map.iter_rules():
        if rule.rule == own_password:
            assert rule.methods - {"HEAD", "OPTIONS"} == {"POST"}
            continue
        if rule.rule.startswith(("/api/v1/integrations/", "/api/hooks/")):
            continue
        assert not re.search(r"user|token|role|password", rule.rule), rule.rule


def test_form_errors_never_redirect_off_site(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    evil = {"Referer": "https://evil.example/phish?x=1"}
    # a forged cross-site form (no CSRF token) is refused and sent back to our own page, not the Referer
    response = client.post("/admin/login", data={"email": "a@b.c", "password": "x"}, headers=evil)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    own = {"Referer": "http://localhost/admin/login?next=/admin/push"}
    response = client.post("/admin/login", data={"email": "a@b.c", "password": "x"}, headers=own)
    assert response.headers["Location"] == "/admin/login?next=/admin/push"
    for referer in ("//evil.example/x", "https://localhost.evil.example/", "javascript:alert(1)",
                    "https://evil.example@localhost/"):
        response = client.post("/admin/login", data={}, headers={"Referer": referer})
        assert "evil" not in response.headers["Location"] and "javascript" not in response.headers["Location"]
