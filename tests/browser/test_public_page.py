"""The public page as a visitor meets it during an outage, at a 390 px phone and a 1280 px
desktop, in light and dark: status first, subscribe in the header, readable groups and times."""
from __future__ import annotations

import re
import urllib.request

import pytest
from playwright.sync_api import expect

from .conftest import api_call, open_subscribe, shot, wait_until_published

pytestmark = pytest.mark.browser

WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
# The README shows these; the other combinations are checked the same way without a picture.
README_SHOTS = {"subscribe-panel-phone-light", "subscribe-panel-desktop-dark", "groups-desktop-light",
                "public-page-phone-dark", "history-phone-light"}


def readme_shot(page, name: str, **kwargs) -> None:
    if name in README_SHOTS:
        shot(page, name, **kwargs)


@pytest.fixture(params=[(w, s) for w in WIDTHS for s in ("light", "dark")], ids=lambda p: f"{p[0]}-{p[1]}")
def visitor(request, browser, live):
    width, scheme = request.param
    w, h = WIDTHS[width]
    # A visitor in another zone than the site's (UTC), to see times converted.
    context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme,
                                  is_mobile=width == "phone", has_touch=width == "phone",
                                  timezone_id="Europe/Paris", locale="en-GB")
    context.grant_permissions(["notifications"], origin=live.url)
    page = context.new_page()
    page.width_name, page.scheme = width, scheme  # type: ignore[attr-defined]
    yield page
    context.close()


def test_status_comes_first_and_subscribe_opens_from_the_header(live, visitor):
    page = visitor
    page.goto(live.url + "/")
    expect(page.locator("#push-subscribe")).not_to_have_attribute("data-state", "loading")
    banner = page.locator(".overall")
    components = page.locator("#components-heading")
    before = (banner.bounding_box(), components.bounding_box())
    # Nothing but the header stands between the top of the page and the status.
    assert before[0]["y"] < 200
    toggle = page.get_by_role("button", name="Subscribe")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#push-subscribe")).to_be_hidden()

    toggle.click()
    panel = page.locator("#push-subscribe")
    expect(panel).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#subscribe-status")).to_be_focused()
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    # The panel floats: the banner and the components did not move.
    assert (banner.bounding_box(), components.bounding_box()) == before
    expect(panel.get_by_role("link", name="Atom feed")).to_be_visible()
    readme_shot(page, f"subscribe-panel-{page.width_name}-{page.scheme}")

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")

    open_subscribe(page)
    page.get_by_role("button", name="Close").click()
    expect(panel).to_be_hidden()


def test_private_window_failure_is_explained_and_offers_the_feed(live, browser):
    """Permission granted but no subscription (what a private window does): no raw error."""
    context = browser.new_context()
    try:
        context.grant_permissions(["notifications"], origin=live.url)
        context.add_init_script("""
          PushManager.prototype.getSubscription = async () => null;
          PushManager.prototype.subscribe = async () => {
            throw new DOMException('Registration failed - push service error', 'AbortError');
          };""")
        page = context.new_page()
        page.goto(live.url + "/")
        expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
        open_subscribe(page)
        page.get_by_role("button", name="Get notified").click()
        feedback = page.locator("#subscribe-feedback")
        expect(feedback).to_contain_text("private or incognito window")
        expect(feedback).not_to_contain_text("push service error")
        expect(page.locator("#push-subscribe").get_by_role("link", name="Atom feed")).to_be_visible()
    finally:
        context.close()



def _wait_for_article(live, path: str, name: str, text: str, timeout: float = 15.0) -> None:
    """Wait until the published `path` shows `text` in the article about `name`."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(live.url + path, timeout=10) as response:
            html = response.read().decode()
        at = html.find(name)
        if at >= 0 and text in html[at:html.find("</article>", at)]:
            return
        assert time.monotonic() < deadline, f"{path} did not show {text!r} for {name!r}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def groups(live):
    """Two groups: one all operational, one with a partial outage inside."""
    made, group_ids = {}, []
    for group_name, members in (("Calm group", ("Calm A", "Calm B")), ("Troubled group", ("Fine C", "Broken D"))):
        code, group = api_call(live, "POST", "/api/v1/component-groups", {"name": group_name})
        assert code == 201, group
        group_ids.append(group["id"])
        for name in members:
            code, comp = api_call(live, "POST", "/api/v1/components", {"name": name, "group_id": group["id"]})
            assert code == 201, comp
            made[name] = comp["id"]
    code, _ = api_call(live, "PATCH", f"/api/v1/components/{made['Broken D']}", {"status": "partial_outage"})
    assert code == 200
    wait_until_published(live, "/", f'data-group="{group_ids[1]}" data-default-open="true"')
    yield made
    for comp_id in made.values():
        api_call(live, "DELETE", f"/api/v1/components/{comp_id}")
    for group_id in group_ids:
        api_call(live, "DELETE", f"/api/v1/component-groups/{group_id}")


def test_groups_show_their_worst_status_and_open_when_something_is_wrong(live, visitor, groups):
    page = visitor
    page.goto(live.url + "/")
    expect(page.locator("#push-subscribe")).not_to_have_attribute("data-state", "loading")
    readme_shot(page, f"public-page-{page.width_name}-{page.scheme}")  # status first, even on a phone
    calm = page.locator(".component-group").filter(has_text="Calm group")
    troubled = page.locator(".component-group").filter(has_text="Troubled group")
    expect(calm.locator(".group-head .badge")).to_have_text("Operational")
    expect(troubled.locator(".group-head .badge")).to_have_text("Partial outage")
    # Closed when all is well, open when something inside is not operational.
    expect(calm.get_by_text("Calm A", exact=True)).to_be_hidden()
    expect(troubled.locator(".component").filter(has_text="Broken D")).to_be_visible()
    expect(troubled.locator(".component").filter(has_text="Broken D").locator(".badge")).to_have_text("Partial outage")

    # A visible toggle, operable from the keyboard.
    toggle = calm.locator("summary")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_text("2 components in Calm group")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(calm.get_by_text("Calm A", exact=True)).to_be_visible()
    page.keyboard.press("Space")
    expect(calm.get_by_text("Calm A", exact=True)).to_be_hidden()
    troubled.scroll_into_view_if_needed()
    readme_shot(page, f"groups-{page.width_name}-{page.scheme}", selector="section.components")


def test_times_are_relative_in_the_visitors_zone_with_the_absolute_time_as_tooltip(live, visitor):
    page = visitor
    code, incident = api_call(live, "POST", "/api/v1/incidents", {
        "name": f"Times check {page.width_name} {page.scheme}", "status": "resolved", "impact": "minor",
        "notify": False, "body": "Fixed."})
    assert code == 201, incident
    wait_until_published(live, f"/incidents/{incident['id']}", "lasted")
    page.goto(live.url + f"/incidents/{incident['id']}")
    when = page.locator(".incident-when")
    expect(when).to_contain_text("Started just now")
    expect(when).to_contain_text("lasted under a minute")
    first = when.locator("time").first
    # The absolute time, in the visitor's zone (CET/CEST), and the site's zone named.
    title = first.get_attribute("title")
    assert "CET" in title or "CEST" in title or "GMT+1" in title or "GMT+2" in title, title
    assert "the site's time zone" in title and "UTC" in title, title
    expect(page.locator("#time-zone-note")).to_contain_text("your time zone (Europe/Paris)")
    expect(page.locator("#time-zone-note")).to_contain_text("the site's time zone is")
    # The published HTML itself stays the same for every visitor: absolute, in the site's zone.
    with urllib.request.urlopen(live.url + f"/incidents/{incident['id']}") as response:
        html = response.read().decode()
    assert "just now" not in html and "UTC</time>" in html


def test_history_is_grouped_by_month_with_impact_duration_and_the_first_real_update(live, visitor):
    page = visitor
    name = f"History check {page.width_name} {page.scheme}"
    code, incident = api_call(live, "POST", "/api/v1/incidents", {
        "name": name, "status": "investigating", "impact": "major", "notify": False,
        "body": "Card payments fail for some customers."})
    assert code == 201, incident
    api_call(live, "POST", f"/api/v1/incidents/{incident['id']}/updates",
             {"status": "resolved", "body": "This incident has been resolved.", "notify": False})
    _wait_for_article(live, "/history", name, "lasted")
    page.goto(live.url + "/history")
    month = page.locator(".history-month").first
    this_month = "new Intl.DateTimeFormat('en', {month: 'long', year: 'numeric', timeZone: 'UTC'}).format(new Date())"
    expect(month.get_by_role("heading", level=2)).to_have_text(page.evaluate(this_month))
    item = page.locator(".history-item").filter(has_text=name)
    expect(item).to_have_class("card history-item impact-border-major")
    expect(item.locator(".badge.impact-major")).to_have_text("Major impact")  # words, not colour alone
    expect(item).to_contain_text("lasted under a minute")
    expect(item.locator(".excerpt")).to_have_text("Card payments fail for some customers.")
    readme_shot(page, f"history-{page.width_name}-{page.scheme}", selector=".history-month")


def test_the_page_follows_changes_live_with_etags_and_announces_them(live, visitor):
    seen: list[tuple[int, str | None]] = []
    page = visitor
    name = f"Live check {page.width_name} {page.scheme}"
    page.on("response", lambda r: seen.append((r.status, r.request.headers.get("if-none-match")))
            if r.url.endswith("/api/v2/summary.json") else None)
    page.clock.install()
    page.goto(live.url + "/")
    expect(page.locator("#live-status")).not_to_contain_text(name)
    deadline = 50
    while not seen and deadline:
        page.wait_for_timeout(100)
        deadline -= 1
    assert seen and seen[0][0] == 200 and seen[0][1] is None  # the first poll, at load

    page.clock.fast_forward(41_000)
    page.wait_for_timeout(300)
    assert seen[-1][0] == 304 and seen[-1][1], seen  # unchanged: the ETag, a 304, no body

    code, incident = api_call(live, "POST", "/api/v1/incidents", {
        "name": name, "status": "investigating", "impact": "major", "notify": False,
        "body": "Searches time out.", "components": {str(live.components["Website"]): "partial_outage"}})
    assert code == 201, incident
    try:
        wait_until_published(live, "/", name)
        wait_until_published(live, "/api/v2/summary.json", name)
        page.clock.fast_forward(41_000)
        expect(page.locator("#live-status")).to_contain_text(name)
        expect(page.locator(".component").filter(has_text="Website").locator(".badge")).to_have_text("Partial outage")
        banner = page.locator(".overall h1").inner_text()
        expect(page.locator("#live-announce")).to_have_text(
            re.compile(rf"^Status updated: {re.escape(banner)}\. \d+ active incidents?\.$"))
        assert seen[-1][0] == 200

        # Hidden tab: no poll at 30-40 s, one after 5 minutes.
        page.evaluate("""() => {
          Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
          document.dispatchEvent(new Event('visibilitychange'));
        }""")
        before = len(seen)
        page.clock.fast_forward(45_000)
        page.wait_for_timeout(300)
        assert len(seen) == before
        page.clock.fast_forward(5 * 60_000)
        page.wait_for_timeout(300)
        assert len(seen) == before + 1
    finally:
        api_call(live, "POST", f"/api/v1/incidents/{incident['id']}/updates", {
            "status": "resolved", "body": "Fixed.", "notify": False,
            "components": {str(live.components["Website"]): "operational"}})


def test_a_maintenance_window_reads_as_its_date_and_hours_and_times_work_without_a_mouse(live, visitor):
    """A future window is not "in 2 days until in 2 days": the date and hours in the visitor's zone,
    the relative part only as a suffix; and a time's exact moment shows on keyboard focus."""
    from datetime import UTC, datetime, timedelta

    page = visitor
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    name = f"Window check {page.width_name} {page.scheme}"
    code, m = api_call(live, "POST", "/api/v1/maintenances", {
        "name": name, "scheduled_for": start.isoformat(), "scheduled_until": (start + timedelta(hours=2)).isoformat(),
        "notify": False, "body": "Database upgrade."})
    assert code == 201, m
    wait_until_published(live, f"/incidents/{m['id']}", "data-window")
    page.goto(live.url + f"/incidents/{m['id']}")
    window = page.locator(".time-window")
    # The hours in Paris (CET/CEST), not the site's UTC.
    day, begin, end, same_day = page.evaluate("""(iso) => { const d = new Date(iso);
      const e = new Date(d.getTime() + 2 * 3600 * 1000);
      const o = {weekday: 'short', day: 'numeric', month: 'short'};
      const dayOf = (x) => new Intl.DateTimeFormat('en-GB', o).format(x);
      const hm = (x) => new Intl.DateTimeFormat('en-GB', {hour: '2-digit', minute: '2-digit'}).format(x);
      return [dayOf(d), hm(d), hm(e), dayOf(d) === dayOf(e)]; }""", start.isoformat())
    text = window.inner_text()
    if same_day:
        assert text.startswith(f"{day}, {begin} – {end} "), text
    else:
        assert text.startswith(f"{day}, {begin} "), text
    assert re.search(r"(CET|CEST|GMT\+[12]) \(in 2 days\)$", text), text
    assert "until" not in page.locator("article").inner_text().split("Scheduled for")[1].split("\n")[0]

    # A past time (the update's) is relative; its exact moment is reachable by keyboard (a tap focuses it).
    past = page.locator(".update-meta time").first
    expect(past).to_have_text("just now")
    past.focus()
    expect(past).to_be_focused()
    after = past.evaluate("(el) => getComputedStyle(el, '::after').content")
    assert "CET" in after or "CEST" in after or "GMT+" in after, after
    expect(page.locator("#time-zone-note")).to_contain_text("tap")
    expect(page.locator("#time-zone-note")).not_to_contain_text("Hover a time")
