"""The public page as a visitor meets it during an outage, at a 390 px phone and a 1280 px
desktop, in light and dark: status first, subscribe in the header, readable groups and times."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import api_call, open_subscribe, shot, wait_until_published

pytestmark = pytest.mark.browser

WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}


@pytest.fixture(params=[(w, s) for w in WIDTHS for s in ("light", "dark")], ids=lambda p: f"{p[0]}-{p[1]}")
def visitor(request, browser, live):
    width, scheme = request.param
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme,
                                  is_mobile=width == "phone", has_touch=width == "phone")
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
    shot(page, f"subscribe-panel-{page.width_name}-{page.scheme}")

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
    wait_until_published(live, "/", "Troubled group")
    yield made
    for comp_id in made.values():
        api_call(live, "DELETE", f"/api/v1/components/{comp_id}")
    for group_id in group_ids:
        api_call(live, "DELETE", f"/api/v1/component-groups/{group_id}")


def test_groups_show_their_worst_status_and_open_when_something_is_wrong(live, visitor, groups):
    page = visitor
    page.goto(live.url + "/")
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
    shot(page, f"groups-{page.width_name}-{page.scheme}", selector="section.components")
