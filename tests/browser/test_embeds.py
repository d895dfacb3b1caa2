"""In Chromium: the /embed.js widget on a page served from another origin under a strict CSP
(no violations, no request anywhere but the two origins, no cookies, styles applied with and
without constructed stylesheets), the uptime bars' details by hover, keyboard and tap, and the
badges' text widths as a browser measures them."""
from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from statuspage.extensions import db
from statuspage.models import Component, ComponentStatusChange, Incident, incident_components
from statuspage.timeutil import utcnow

from .conftest import CSP_WATCH_JS, api_call, shot, wait_until_published

pytestmark = pytest.mark.browser


class HostSite:
    """Another origin (its own port) serving pages with the CSP each test gives."""

    def __init__(self):
        self.pages: dict[str, tuple[str, str]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                csp, html = site.pages.get(urlsplit(self.path).path, ("default-src 'none'", "not found"))
                body = html.encode()
                self.send_response(200 if self.path in site.pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Security-Policy", csp)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, path: str, csp: str, body: str) -> str:
        self.pages[path] = (csp, f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Customer site</title>"
                                 f"</head><body>{body}</body></html>")
        return self.origin + path


@pytest.fixture(scope="module")
def host_site():
    site = HostSite()
    yield site
    site.server.shutdown()


def strict_csp(live, extra: str = "") -> str:
    # What a careful customer site sends: our script's origin allowed, nothing else, no styles at all.
    return (f"default-src 'none'; script-src {live.url}{extra}; style-src 'none'; img-src 'none'; "
            "connect-src 'none'; font-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def watch_requests(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    return seen


def outside(seen: list[str], *origins: str) -> list[str]:
    return [u for u in seen if not any(u.startswith(o + "/") for o in origins)]


def test_widget_pill_on_another_origin_under_a_strict_csp(live, context, host_site, console_errors):
    context.add_init_script(CSP_WATCH_JS)
    url = host_site.page("/pill", strict_csp(live), f"""
        <main><h1>Customer site</h1>
        <p>Service status: <script src="{live.url}/embed.js" async data-banner="off"></script></p></main>""")
    page = context.new_page()
    seen = watch_requests(page)
    with page.expect_response(f"{live.url}/embed.js") as loaded:
        page.goto(url)
    response = loaded.value
    assert response.status == 200 and "set-cookie" not in response.headers
    pill = page.locator("[data-status-widget=pill] a")  # Playwright's CSS pierces the open shadow root
    expect(pill).to_be_visible()
    status = api_call(live, "GET", "/api/v2/status.json")[1]["status"]
    expect(pill).to_have_text(status["description"])
    expect(pill).to_have_attribute("href", live.url + "/")
    expect(pill).to_have_attribute("aria-label", f"Example Status status: {status['description']}")
    # The stylesheet applied although the host allows no style at all.
    assert pill.evaluate("a => getComputedStyle(a).display") == "inline-flex"
    assert pill.evaluate("a => getComputedStyle(a).borderTopLeftRadius") == "999px"
    assert page.evaluate("window.__cspViolations") == []
    assert [e for e in console_errors if "Refused" in e or "Content Security Policy" in e] == []
    assert outside(seen, host_site.origin, live.url) == []
    assert context.cookies() == []
    shot(page, "widget-pill", selector="main")


def test_widget_banner_during_an_incident_with_nonce_and_strict_dynamic(live, context, host_site):
    context.add_init_script(CSP_WATCH_JS)
    code, incident = api_call(live, "POST", "/api/v1/incidents", {
        "name": "Checkout is failing", "impact": "critical", "body": "We are on it.",
        "components": {str(live.components["API"]): "major_outage"}})
    assert code == 201
    wait_until_published(live, "/embed.js", "Checkout is failing")
    try:
        csp = strict_csp(live, " 'nonce-r4nd0m' 'strict-dynamic'").replace(f"script-src {live.url} ", "script-src ")
        url = host_site.page("/banner", csp, f"""
            <header><p>Acme shop <span id="status-slot"></span></p></header><main><p>Products…</p></main>
            <script nonce="r4nd0m" src="{live.url}/embed.js" data-target="#status-slot"
                    data-position="bottom-left"></script>""")
        page = context.new_page()
        seen = watch_requests(page)
        page.set_viewport_size({"width": 900, "height": 500})
        page.goto(url)
        banner = page.locator("[data-status-widget=banner]")
        title = banner.locator(".title")
        expect(title).to_have_text("Checkout is failing")  # the critical one comes first
        expect(title).to_have_attribute("href", f"{live.url}/incidents/{incident['id']}")
        expect(banner.locator(".kicker")).to_have_text("Incident · Investigating")
        expect(page.locator("#status-slot [data-status-widget=pill] a")).to_be_visible()
        assert banner.locator(".banner").evaluate("b => getComputedStyle(b).position") == "fixed"
        assert page.evaluate("window.__cspViolations") == []
        assert outside(seen, host_site.origin, live.url) == []
        shot(page, "widget-banner")
        dismiss = page.get_by_role("button", name="Dismiss the status banner")
        dismiss.focus()
        page.keyboard.press("Enter")
        expect(banner).to_have_count(0)
    finally:
        api_call(live, "POST", f"/api/v1/incidents/{incident['id']}/updates", {
            "status": "resolved", "body": "Fixed", "notify": False,
            "components": {str(live.components["API"]): "operational"}})


def test_widget_without_constructed_stylesheets_styles_through_cssom(live, context, host_site):
    """Browsers without adoptedStyleSheets get the same look property by property (CSSOM), which
    a style-src 'none' host allows as well."""
    context.add_init_script(CSP_WATCH_JS + "delete ShadowRoot.prototype.adoptedStyleSheets;"
                                           "delete Document.prototype.adoptedStyleSheets;")
    url = host_site.page("/old-browser", strict_csp(live),
                         f'<p>Status: <script src="{live.url}/embed.js" data-banner="off"></script></p>')
    page = context.new_page()
    page.goto(url)
    pill = page.locator("[data-status-widget=pill] a")
    expect(pill).to_be_visible()
    assert pill.evaluate("a => getComputedStyle(a).display") == "inline-flex"
    assert pill.evaluate("a => a.getRootNode().adoptedStyleSheets === undefined")
    assert page.evaluate("window.__cspViolations") == []


def _history_for_api(live) -> tuple[int, int]:
    """Give "API" 60 days of history with a partial outage and a resolved incident 3 days ago."""
    cid = live.components["API"]
    now = utcnow()
    with live.db():
        component = db.session.get(Component, cid)
        component.created_at = now - timedelta(days=60)
        first = db.session.query(ComponentStatusChange).filter_by(component_id=cid).order_by(
            ComponentStatusChange.id).first()
        first.changed_at = component.created_at
        start, end = now - timedelta(days=3, hours=2), now - timedelta(days=3)
        db.session.add_all([
            ComponentStatusChange(component_id=cid, status="partial_outage", changed_at=start),
            ComponentStatusChange(component_id=cid, status="operational", changed_at=end),
            ComponentStatusChange(component_id=cid, status="degraded_performance", changed_at=now - timedelta(days=9)),
            ComponentStatusChange(component_id=cid, status="operational",
                                  changed_at=now - timedelta(days=9) + timedelta(hours=1)),
        ])
        incident = Incident(kind="incident", name="Slow API responses", status="resolved", impact="minor",
                            created_at=start, updated_at=end, resolved_at=end)
        db.session.add(incident)
        db.session.flush()
        db.session.execute(incident_components.insert(), {"incident_id": incident.id, "component_id": cid})
        db.session.commit()
        return cid, incident.id


@pytest.fixture(scope="module")
def api_history(live):
    return _history_for_api(live)


def test_uptime_bars_show_the_days_details_on_hover_and_keyboard(live, page, csp_watch, api_history, console_errors):
    _, incident_id = api_history
    page.goto(live.url + "/")
    strip = page.get_by_role("list", name="API: the last 90 days")
    bars = strip.get_by_role("button")
    expect(bars).to_have_count(90)
    outage_day = bars.nth(86)  # three days ago
    assert "partial outage 2 h" in outage_day.get_attribute("aria-label")
    assert "1 incident" in outage_day.get_attribute("aria-label")
    assert bars.nth(0).get_attribute("aria-label").endswith("no data")

    # Hover: the day's details, with a link to the incident.
    outage_day.hover()
    detail = page.locator(f"#up-c{live.components['API']}-detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("partial outage 2 h")
    link = detail.get_by_role("link", name="Slow API responses")
    expect(link).to_have_attribute("href", f"/incidents/{incident_id}")
    expect(outage_day).to_have_attribute("aria-expanded", "true")
    # A click pins it: the pointer moving over other strips (or the page scrolling under it for
    # the screenshot) leaves it open.
    outage_day.click()
    page.get_by_role("list", name="Website: the last 90 days").get_by_role("button").nth(40).hover()
    expect(detail).to_be_visible()
    shot(page, "uptime-bars", selector="section.components")
    page.mouse.click(5, 5)
    expect(detail).to_be_hidden()

    # Keyboard: one tab stop per strip (today), arrows move between days, Tab enters the details.
    # One tab stop per strip: the last bar used (the clicked one here; today before any).
    assert bars.evaluate_all("bs => bs.filter(b => b.tabIndex === 0).length") == 1
    assert outage_day.get_attribute("tabindex") == "0"
    bars.nth(89).focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(outage_day).to_be_focused()
    expect(outage_day).to_have_attribute("tabindex", "0")
    expect(detail).to_contain_text("Slow API responses")
    page.keyboard.press("Tab")
    expect(link).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(outage_day).to_be_focused()
    page.keyboard.press("Home")
    expect(bars.nth(0)).to_be_focused()
    expect(detail).to_contain_text("no data")
    page.keyboard.press("End")
    expect(bars.nth(89)).to_be_focused()
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    assert page.evaluate("window.__cspViolations") == []
    assert console_errors == []


def test_uptime_bars_on_a_phone_are_30_days_and_open_on_tap(live, browser, api_history):
    ctx = browser.new_context(viewport={"width": 390, "height": 800}, has_touch=True, is_mobile=True)
    try:
        page = ctx.new_page()
        page.goto(live.url + "/")
        # Role locators see only what is shown: the last 30 days.
        bars = page.get_by_role("list", name="API: the last 90 days").get_by_role("button")
        expect(bars).to_have_count(30)
        outage_day = bars.nth(26)  # three days ago
        assert "partial outage 2 h" in outage_day.get_attribute("aria-label")
        outage_day.tap()
        detail = page.locator(f"#up-c{live.components['API']}-detail")
        expect(detail).to_be_visible()
        expect(detail.get_by_role("link", name="Slow API responses")).to_be_visible()
        shot(page, "uptime-bars-phone", selector="section.components")
        outage_day.tap()
        expect(detail).to_be_hidden()
    finally:
        ctx.close()


@pytest.mark.skipif(not Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists(),
                    reason="DejaVu Sans is not installed (.ci/run installs fonts-dejavu-core)")
def test_badge_text_is_as_wide_as_the_browser_draws_it(live, page):
    """Each <text> carries textLength; drawn without it in the font the badge falls back to, the
    browser's own measure matches the table within 3 %."""
    code, _ = api_call(live, "PATCH", f"/api/v1/components/{live.components['Email delivery']}",
                       {"status": "degraded_performance"})
    assert code == 200
    try:
        for path in ("/badge.svg", f"/badge/{live.components['Email delivery']}.svg",
                     f"/badge/{live.components['API']}.svg?label=Àpi – ünïcode status"):
            page.goto(live.url + path)
            measured = page.evaluate("""() => [...document.querySelectorAll('text:not([aria-hidden])')].map(t => {
                const wanted = parseFloat(t.getAttribute('textLength'));
                t.removeAttribute('textLength');
                return [t.textContent, wanted, t.getComputedTextLength()];
            })""")
            assert len(measured) == 2
            for text, wanted, drawn in measured:
                assert abs(drawn - wanted) <= 0.03 * wanted, (path, text, wanted, drawn)
        page.goto(live.url + "/badge.svg")
        assert page.locator("svg title").text_content().startswith("Example Status: ")
    finally:
        api_call(live, "PATCH", f"/api/v1/components/{live.components['Email delivery']}", {"status": "operational"})
