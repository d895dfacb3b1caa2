"""Property and fuzz tests: Hypothesis against the validators and service functions, and
Schemathesis (positive and negative data) against every operation in /api/v1/openapi.json — the
admin API, the visitor push API and the public /api/v2 API — in-process through the WSGI app with
an admin token, on SQLite and PostgreSQL. The property everywhere: no 5xx, ever.

Example counts are set per test below (FUZZ_EXAMPLES scales the Schemathesis ones, e.g.
FUZZ_EXAMPLES=200 for a long run); SECURITY.md records what a default run executes.
"""
from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Iterator
from urllib.parse import quote, urljoin, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from statuspage import validation as v
from statuspage.errors import ServiceError, ValidationError
from statuspage.markdown import plain_text, render_markdown
from statuspage.push.crypto import MAX_PLAINTEXT
from statuspage.push.subscriptions import (
    PUSH_SERVICE_HOSTS,
    PUSH_SERVICE_SUFFIXES,
    canonical_endpoint,
    endpoint_problem,
    normalize_origin,
)
from statuspage.push.triggers import PLACEHOLDERS, check_template, encode_payload, render_template_text
from tests.conftest import make_app
from tests.hardening_support import sim_subscription

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FAST = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
EXTRA = "http://127.0.0.1:8099"


@pytest.fixture(scope="module")
def ctx_app(tmp_path_factory) -> Iterator:
    """An app context for the pure functions (config only; the database is not touched)."""
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'f.db'}", tmp_path_factory.mktemp("i"),
                   PUSH_EXTRA_ORIGINS=[EXTRA])
    with app.app_context():
        yield app


# --- the SSRF allow-list ----------------------------------------------------------------------------

HOSTS = list(PUSH_SERVICE_HOSTS) + ["web.push.apple.com", "x.notify.windows.com", "127.0.0.1", "localhost",
                                    "169.254.169.254", "[::1]", "evil.com", "2130706433", "0x7f.1",
                                    "metadata.google.internal", "FCM.GoogleAPIs.COM", "Web.Push.Apple.com",
                                    "xn--80ak6aa92e.push.apple.com", "ab--cd.push.apple.com"]
url_parts = st.fixed_dictionaries({
    "scheme": st.sampled_from(["https", "http", "HTTPS", "ftp", "", "javascript", "https:", "https:/"]),
    "userinfo": st.sampled_from(["", "", "", "user@", "fcm.googleapis.com@", "a:b@", "@"]),
    "host": st.one_of(st.sampled_from(HOSTS),
                      st.builds(lambda a, h, b: a + h + b,
                                st.sampled_from(["", "x.", "evil", ".", "xn--"]), st.sampled_from(HOSTS),
                                st.sampled_from(["", ".", ".evil.com", "%2e", "\\", "#", "?", ":", "\x00"])),
                      st.text(max_size=30)),
    "port": st.sampled_from(["", "", ":443", ":0443", ":00443", ":8099", ":08099", ":80", ":0", ":99999", ":",
                             ":443:443"]),
    "path": st.sampled_from(["/fcm/send/abc", "/push/x", "", "/", "#@fcm.googleapis.com/x", "?x", "/\\x", "/ x"]),
})


def _build(parts: dict) -> str:
    return f"{parts['scheme']}://{parts['userinfo']}{parts['host']}{parts['port']}{parts['path']}"


def _allowed_by_definition(url: str) -> bool:
    parts = urlsplit(url)
    if normalize_origin(url) == EXTRA:
        return True
    host = parts.hostname or ""
    return (parts.scheme == "https" and parts.port in (None, 443)
            and (host in PUSH_SERVICE_HOSTS or any(host.endswith(s) and len(host) > len(s)
                                                    for s in PUSH_SERVICE_SUFFIXES)))


@settings(FAST, max_examples=3000)
@given(st.one_of(url_parts.map(_build), st.text(max_size=200)))
def test_allow_list_never_allows_anything_outside_it(ctx_app, url):
    problem = endpoint_problem(url)  # never raises
    assert problem is None or isinstance(problem, str)
    if problem is None:
        parts = urlsplit(url)
        assert url.isascii() and url.isprintable() and "\\" not in url and "@" not in parts.netloc
        assert parts.fragment == "" and parts.path not in ("", "/")
        assert _allowed_by_definition(url), url


@settings(FAST, max_examples=1000)
@given(url_parts.map(_build))
def test_canonical_endpoint_is_stable_and_allowed_whenever_the_url_is(ctx_app, url):
    if endpoint_problem(url) is not None:
        return
    canonical = canonical_endpoint(url)
    assert endpoint_problem(canonical) is None, (url, canonical)
    assert canonical_endpoint(canonical) == canonical
    parts, original = urlsplit(canonical), urlsplit(url)
    assert parts.scheme == original.scheme.lower() and parts.hostname == original.hostname
    assert parts.path == original.path and parts.port in (None, original.port) and parts.port not in (443,)
    assert "xn--" not in (parts.hostname or "") or normalize_origin(url) == EXTRA


@settings(FAST, max_examples=500)
@given(st.sampled_from(["fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com",
                        "db5p.notify.windows.com"]),
       st.text(alphabet=string.ascii_letters + string.digits + "-_:/.%~", min_size=1, max_size=300))
def test_real_looking_push_endpoints_are_allowed(ctx_app, host, path):
    assume("//" not in path and "/." not in path and not path.startswith(":"))
    url = f"https://{host}/{path}"
    assert endpoint_problem(url) is None, url


# --- validators: a value or a ValidationError, nothing else ---------------------------------------

# Text that str.isdigit()/isnumeric() or int() take for a number although it is not ASCII digits:
# other scripts' decimal digits (Nd: "١", "５", "𝟓"), superscripts and circled digits (No: "²", "⑤"),
# Roman numerals and fractions (Nl/No: "Ⅻ", "½"), mixed with ASCII digits, signs and spaces.
unicode_number_chars = st.one_of(
    st.characters(categories=["Nd", "Nl", "No"]),
    st.sampled_from(["²", "³", "¹", "١", "۴", "５", "𝟓", "Ⅻ", "ⅻ", "½", "⑤", "〇", "零"]),
)
unicode_numbers = st.lists(st.one_of(unicode_number_chars, st.sampled_from(list("0123456789 +-_"))),
                           min_size=1, max_size=12).map("".join)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=50) | unicode_numbers,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@settings(FAST, max_examples=1500)
@given(json_values)
def test_validators_return_a_value_or_a_validation_error(ctx_app, value):
    data = {"f": value}
    for check in (lambda: v.string(data, "f"), lambda: v.integer(data, "f", minimum=0, maximum=10),
                  lambda: v.timestamp(data, "f"), lambda: v.id_list(data, "f")):
        try:
            result = check()
        except ValidationError as exc:
            assert exc.message and exc.field == "f"
            continue
        if isinstance(result, list):
            assert all(isinstance(i, int) and 1 <= i < 2**31 for i in result)


@settings(FAST, max_examples=1000)
@given(st.one_of(unicode_numbers, st.text(max_size=25), st.integers().map(str)))
def test_integer_parser_reads_ascii_digits_only(ctx_app, text):
    number = v.ascii_int(text)
    ascii_digits = re.fullmatch(r"-?[0-9]{1,20}", text, flags=re.ASCII) is not None
    assert (number is not None) == ascii_digits, text
    if number is not None:
        assert str(number) == str(int(text))  # the number written, never another reading of it
    try:
        parsed = v.parse_id(text)
    except ValidationError as exc:
        assert exc.field == "id" and exc.message
    else:
        assert ascii_digits and 1 <= parsed < 2**31


@settings(FAST, max_examples=500)
@given(st.text(min_size=1, max_size=40).filter(lambda s: s.strip()))
def test_timestamps_in_any_text_never_crash(ctx_app, text):
    try:
        parsed = v.timestamp({"t": text}, "t")
    except ValidationError:
        return
    assert 1970 <= parsed.year <= 9000 and parsed.tzinfo is None


# --- templates and payloads ---------------------------------------------------------------------

placeholder_names = st.one_of(st.sampled_from(PLACEHOLDERS), st.text(max_size=12))


@settings(FAST, max_examples=800)
@given(st.lists(st.one_of(st.text(max_size=20), placeholder_names.map(lambda n: "{" + n + "}")), max_size=8))
def test_templates_accept_exactly_the_known_placeholders(ctx_app, pieces):
    template = "".join(pieces)
    names = re.findall(r"\{([^{}]*)\}", template)
    try:
        check_template(template, "title_template")
    except ValidationError as exc:
        assert any(n not in PLACEHOLDERS for n in names), exc.message
    else:
        assert all(n in PLACEHOLDERS for n in names)


@settings(FAST, max_examples=800)
@given(st.text(max_size=200), st.dictionaries(st.sampled_from(PLACEHOLDERS), st.text(max_size=50)))
def test_substitution_is_plain_text_never_format(ctx_app, template, values):
    rendered = render_template_text(template, values)
    # a value that itself looks like a placeholder or a format spec is inserted verbatim, once
    hostile = render_template_text("{incident_name}", {"incident_name": "{site_name.__class__} {0} %s"})
    assert hostile == "{site_name.__class__} {0} %s"
    assert isinstance(rendered, str)


@settings(FAST, max_examples=400)
@given(st.text(max_size=3000), st.text(max_size=6000))
def test_payload_always_fits_and_is_cut_on_a_character_boundary(ctx_app, title, body):
    payload = {"title": title, "body": body, "icon": "https://s.example/i.png", "badge": "https://s.example/b.png",
               "url": "https://s.example/incidents/1", "tag": "incident-1", "event": "incident.created",
               "timestamp": 1700000000000}
    try:
        data = encode_payload(dict(payload))
    except ValueError:
        pytest.fail("a notification of any text must fit")
    except UnicodeEncodeError:
        assume(False)  # lone surrogates never reach here: the API refuses them
    assert len(data) <= MAX_PLAINTEXT
    decoded = json.loads(data.decode("utf-8"))  # strict: a cut character would fail here
    for field in ("title", "body"):
        kept = decoded[field].removesuffix("…").rstrip()
        assert payload[field].startswith(kept) or payload[field].rstrip().startswith(kept)


# --- Markdown: whatever the text, nothing executable comes out ---------------------------------------

markup_alphabet = st.sampled_from(list("<>\"'=/:&#;[]()!*`\\ \n\t-_.") + [
    "javascript:", "JaVaScRiPt:", "data:", "vbscript:", "<script>", "</script>", "<img", "src=", "onerror=",
    "onload=", "href=", "<a ", "<svg", "<iframe", "&#106;", "&#x6A;", "java\tscript:", "](", "![", "<style>",
    "alert(1)", "http://x/", "mailto:", "<!--", "-->", "<![CDATA[", "\x00", "\u202e"])


@settings(FAST, max_examples=1500)
@given(st.one_of(st.lists(markup_alphabet, max_size=40).map("".join), st.text(max_size=300)))
def test_markdown_never_produces_executable_html(ctx_app, text):
    html = str(render_markdown(text))
    lowered = html.lower()
    assert "<script" not in lowered and "<iframe" not in lowered and "<svg" not in lowered
    assert "<img" not in lowered and "<style" not in lowered
    assert not re.search(r"<[^>]+\son\w+\s*=", lowered)
    for href in re.findall(r'href="([^"]*)"', html):
        from html import unescape

        scheme = urlsplit(urljoin("https://status.example.com/", unescape(href))).scheme
        assert scheme in ("http", "https", "mailto"), href
    plain_text(text)  # the notification body path never raises either


# --- the JSON endpoints with arbitrary bodies (Flask test client) ------------------------------------

WRITE_ENDPOINTS = [("post", "/api/v1/components"), ("patch", "/api/v1/components/1"),
                   ("post", "/api/v1/component-groups"), ("post", "/api/v1/incidents"),
                   ("post", "/api/v1/incidents/1/updates"), ("post", "/api/v1/maintenances"),
                   ("patch", "/api/v1/maintenances/2"), ("put", "/api/v1/triggers"), ("put", "/api/v1/push/settings"),
                   ("post", "/api/push/subscriptions"), ("delete", "/api/push/subscriptions"),
                   ("post", "/api/push/test")]

# Bodies shaped like the real ones with hostile values in the fields, plus anything at all.
field_names = st.sampled_from(["name", "status", "impact", "body", "components", "component_ids", "notify",
                               "scheduled_for", "scheduled_until", "group_id", "position", "endpoint", "keys",
                               "expirationTime", "oldEndpoint", "enabled", "icon_url", "debounce_seconds",
                               "incident.created", "title_template", "ttl", "description", "showcase"])
hostile_values = st.one_of(json_values, st.integers(min_value=2**31 - 2, max_value=2**80),
                           st.sampled_from(["\x00", "\ud800", "2024-02-30T00:00:00Z", "0001-01-01T00:00:00+14:00",
                                            "major_outage", "{nope}", "javascript:alert(1)", "9" * 40, "-1", "",
                                            "https://fcm.googleapis.com@evil/", "\u202e", "🔥" * 50]),
                           unicode_numbers, st.lists(unicode_numbers, max_size=3),
                           st.dictionaries(unicode_numbers, st.sampled_from(["major_outage", "operational"]),
                                           max_size=3))
shaped_bodies = st.dictionaries(field_names, hostile_values, max_size=6)
raw_bodies = st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))


@pytest.fixture
def seeded(app, api, sim):
    app.config["PUSH_EXTRA_ORIGINS"] = [sim.origin, EXTRA]
    body = sim_subscription(app, sim)
    assert api.post("/api/v1/components", json={"name": "API"}).status_code == 201
    assert api.post("/api/v1/incidents", json={"name": "Slow", "component_ids": [1]}).status_code == 201
    assert api.post("/api/v1/maintenances", json={"name": "Upgrade", "scheduled_for": "2030-01-01T00:00:00Z",
                                                  "scheduled_until": "2030-01-01T01:00:00Z"}).status_code == 201
    assert api.client.post("/api/push/subscriptions", json=body).status_code == 201
    return api


@pytest.mark.slow
def test_json_endpoints_never_answer_5xx(app, seeded):
    api = seeded
    seen = {"requests": 0}

    @settings(FAST, max_examples=400)
    @given(st.sampled_from(WRITE_ENDPOINTS), st.one_of(shaped_bodies.map(json.dumps).map(
        lambda s: s.encode("utf-8", "surrogatepass")), raw_bodies, json_values.map(json.dumps).map(str.encode)))
    def run(endpoint, raw):
        method, path = endpoint
        response = getattr(api.client, method)(path, data=raw, content_type="application/json", headers=api.headers)
        seen["requests"] += 1
        assert response.status_code < 500, (method, path, raw[:200], response.get_data(as_text=True)[:300])
        if response.status_code >= 400:
            assert response.is_json and response.get_json()["error"]

    run()
    assert seen["requests"] >= 400


READ_PATHS = ["/api/v1/components/{n}", "/api/v1/incidents/{n}", "/api/v1/maintenances/{n}",
              "/api/v1/incidents?limit={n}", "/api/v1/incidents?offset={n}", "/api/v1/events?limit={n}",
              "/api/v1/subscriptions?offset={n}", "/history?page={n}", "/incidents/{n}", "/admin/incidents/{n}"]


@pytest.mark.slow
def test_numbers_in_paths_and_query_strings_never_answer_5xx(app, seeded):
    api = seeded

    @settings(FAST, max_examples=300)
    @given(st.sampled_from(READ_PATHS), st.one_of(unicode_numbers, st.integers().map(str)))
    def run(template, number):
        path = template.format(n=quote(number, safe=""))
        response = api.get(path)
        assert response.status_code < 500, (path, response.get_data(as_text=True)[:300])
        if not re.fullmatch(r"[0-9]+", number) and "{n}" in template.split("?")[0] and response.status_code != 302:
            assert response.status_code == 404, path  # never read as some other id

    run()


@pytest.mark.slow
def test_service_functions_raise_only_service_errors(app, seeded):
    from statuspage import components, incidents
    from statuspage.extensions import db
    from statuspage.push import settings as push_settings
    from statuspage.push import subscriptions, triggers

    functions = [components.create_component, components.create_group, incidents.create_incident,
                 incidents.create_maintenance, triggers.update_triggers, push_settings.update_settings,
                 subscriptions.subscribe, subscriptions.unsubscribe]

    @settings(FAST, max_examples=300)
    @given(st.sampled_from(functions), st.one_of(shaped_bodies, json_values))
    def run(function, data):
        with app.app_context():
            try:
                function(data)
            except ServiceError as exc:
                assert 400 <= exc.status_code < 500 and exc.message
            finally:
                db.session.rollback()
                db.session.remove()

    run()


# --- Schemathesis: every documented operation, positive and negative data ---------------------------

def test_every_api_route_is_documented(app):
    from statuspage.web.openapi import build_openapi

    documented = {(path, method.upper()) for path, item in build_openapi()["paths"].items()
                  for method in item if method != "parameters"}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/v1", "/api/push", "/api/v2", "/api/hooks")) \
                and rule.rule != "/api/v1/openapi.json":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented, (served ^ documented)


def run_schemathesis(app, auth: dict, mode: GenerationMode, examples: int) -> tuple[dict[str, int], list[str]]:
    """Every operation of the app's own OpenAPI document, `examples` cases each, no-5xx check."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    counts: dict[str, int] = {}
    failures: list[str] = []

    def fuzz(operation):
        @settings(FAST, max_examples=examples)
        @given(case=operation.as_strategy(mode))
        def run(case):
            response = case.call(headers={**(case.headers or {}), **auth})
            counts[operation.label] += 1
            case.validate_response(response, checks=[not_a_server_error])

        run()

    for result in schema.get_all_operations():
        operation = result.ok()
        counts[operation.label] = 0
        try:
            fuzz(operation)
        except Unsatisfiable:
            pass  # nothing to make negative (no parameters, no body)
        except BaseException as exc:  # Schemathesis raises exception groups
            failures.append(f"{operation.label}: {exc}")
    return counts, failures


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error(app, seeded, mode):
    counts, failures = run_schemathesis(app, dict(seeded.headers), mode, FUZZ_EXAMPLES)
    total = sum(counts.values())
    print(f"\nschemathesis {mode.value}: {len(counts)} operations, {total} requests, {len(failures)} failures")
    assert not failures, "\n\n".join(failures)
    assert len(counts) >= 30 and total >= len(counts)


def test_the_schemathesis_harness_does_report_a_500(sqlite_app, monkeypatch):
    # Guard against a vacuous fuzz run: break one view and the harness must name it.
    from statuspage import components
    from tests.conftest import create_admin_token

    def broken():
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(components, "list_components", broken)
    token = create_admin_token(sqlite_app)
    _, failures = run_schemathesis(sqlite_app, {"Authorization": f"Bearer {token}"}, GenerationMode.POSITIVE, 3)
    assert any(f.startswith("GET /api/v1/components:") and "500" in f for f in failures), failures
