"""Issue 12's admin behaviours in Chromium, on a 390 px phone and a 1280 px desktop, light and dark:
every admin page fits the width, the composer's picker (grouped, picking a status ticks the
component), resolving restores components (pre-ticked), confirmations before deleting, editing an
update's text, field messages next to the fields, and ordering by keyboard buttons and by drag."""
from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from .conftest import _watch, admin_login, shot

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
ADMIN_PAGES = ["/admin/", "/admin/incidents", "/admin/incidents/new", "/admin/maintenances",
               "/admin/maintenances/new", "/admin/components", "/admin/push", "/admin/subscriptions",
               "/admin/events", "/admin/integrations", "/admin/log", "/admin/account"]


@pytest.fixture(params=[("phone", "light"), ("desktop", "dark")], ids=lambda p: f"{p[0]}-{p[1]}")
def sized(request, browser, live, console_errors):
    size, scheme = request.param
    ctx = browser.new_context(viewport=SIZES[size], color_scheme=scheme,
                              is_mobile=size == "phone", has_touch=size == "phone")
    _watch(ctx, console_errors)
    page = ctx.new_page()
    admin_login(page, live)
    yield page, size
    ctx.close()


def _api(live):
    from tests.conftest import Api

    return Api(live.app.test_client(), live.admin_token)


def _unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"


def _fits(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


@pytest.mark.parametrize("sized", [("phone", "light"), ("phone", "dark"), ("desktop", "light"), ("desktop", "dark")],
                         indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_every_admin_page_fits_the_screen(live, sized):
    page, size = sized
    api = _api(live)
    incident = api.post("/api/v1/incidents", json={"name": _unique("Fit check"), "body": "A long-ish message " * 20})
    pages = ADMIN_PAGES + [f"/admin/incidents/{incident.get_json()['id']}"]
    too_wide = {}
    for path in pages:
        page.goto(live.url + path)
        scroll, inner = _fits(page)
        if max(scroll, inner) > SIZES[size]["width"]:  # a phone widens its layout viewport to the content
            too_wide[path] = max(scroll, inner)
    assert too_wide == {}, f"wider than {SIZES[size]['width']} px"
    page.goto(live.url + "/admin/push")
    dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    shot(page, f"admin-push-{size}-{'dark' if dark else 'light'}", full_page=True)
    api.delete(f"/api/v1/incidents/{incident.get_json()['id']}")


def test_composer_picker_is_grouped_and_picking_a_status_ticks_the_component(live, sized):
    page, size = sized
    api = _api(live)
    group_name = _unique("Region")
    group = api.post("/api/v1/component-groups", json={"name": group_name}).get_json()["id"]
    member_name = _unique("Edge")
    member = api.post("/api/v1/components", json={"name": member_name, "group_id": group}).get_json()["id"]
    try:
        page.goto(live.url + "/admin/incidents/new")
        picker = page.locator("fieldset.picker")
        expect(picker.get_by_role("group", name=group_name)).to_be_visible()
        box = page.locator(f"input[name=affected][value='{member}']")
        expect(box).not_to_be_checked()
        size_px = box.bounding_box()
        assert size_px["width"] >= 19 and size_px["height"] >= 19  # no 13 px checkboxes
        select = page.get_by_label(f"New status of {member_name}")
        select_box = select.bounding_box()
        label_box = page.locator(f"label:has(input[value='{member}'])").bounding_box()
        assert select_box["height"] >= 40
        if size == "phone":  # stacked under the name, not squeezed beside it
            assert select_box["y"] >= label_box["y"] + label_box["height"] - 1
        select.select_option("partial_outage")
        expect(box).to_be_checked()
        page.get_by_label("Title", exact=True).fill(_unique("Edge errors"))
        page.get_by_label("Message (Markdown)").fill("Errors at the edge.")
        shot(page, f"admin-composer-picker-{size}", full_page=True)
        page.get_by_role("button", name="Create incident").click()
        expect(page.get_by_text("Incident created.")).to_be_visible()
        assert api.get(f"/api/v1/components/{member}").get_json()["status"] == "partial_outage"
        incident_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

        # Resolving: the restore box is shown and pre-ticked; the component comes back.
        restore = page.get_by_label("When resolving, set the affected components back to Operational")
        expect(restore).to_be_visible()
        expect(restore).to_be_checked()
        page.get_by_label("Status", exact=True).select_option("resolved")
        page.get_by_label("Message (Markdown)").fill("All good again.")
        page.get_by_role("button", name="Post update").click()
        expect(page.get_by_text("Update posted.")).to_be_visible()
        assert api.get(f"/api/v1/components/{member}").get_json()["status"] == "operational"
        api.delete(f"/api/v1/incidents/{incident_id}")
    finally:
        api.delete(f"/api/v1/components/{member}")
        api.delete(f"/api/v1/component-groups/{group}")


def test_an_empty_update_is_refused_with_the_message_next_to_the_field(live, sized):
    page, _ = sized
    api = _api(live)
    incident = api.post("/api/v1/incidents", json={"name": _unique("Quiet"), "body": "First"}).get_json()["id"]
    page.goto(live.url + f"/admin/incidents/{incident}")
    page.get_by_role("button", name="Post update").click()
    error = page.locator("#error-body")
    expect(error).to_contain_text("Write a message")
    expect(page.get_by_label("Message (Markdown)")).to_have_attribute("aria-invalid", "true")
    assert len(api.get(f"/api/v1/incidents/{incident}").get_json()["incident_updates"]) == 1
    api.delete(f"/api/v1/incidents/{incident}")


def test_edit_an_update_then_delete_the_incident_after_confirming(live, sized):
    page, size = sized
    api = _api(live)
    name = _unique("Typo incident")
    incident = api.post("/api/v1/incidents", json={"name": name, "body": "We are investigatng."}).get_json()
    page.goto(live.url + f"/admin/incidents/{incident['id']}")
    page.get_by_text("Edit text").click()
    page.get_by_label("Corrected text (Markdown)").fill("We are investigating.")
    page.get_by_role("button", name="Save text").click()
    expect(page.get_by_text("Update edited.")).to_be_visible()
    expect(page.locator(".timeline .edited")).to_contain_text("edited")
    expect(page.locator(".timeline .prose")).to_have_text("We are investigating.")

    page.get_by_role("button", name="Delete incident…").click()
    expect(page.get_by_role("heading", name=f"Delete the incident “{name}”?")).to_be_visible()
    expect(page.locator(".confirm")).to_contain_text("subscribers")
    shot(page, f"admin-confirm-delete-{size}")
    page.get_by_role("link", name="Cancel").click()
    assert api.get(f"/api/v1/incidents/{incident['id']}").status_code == 200
    page.get_by_role("button", name="Delete incident…").click()
    page.get_by_role("button", name="Delete incident", exact=True).click()
    expect(page.get_by_text("Incident deleted.")).to_be_visible()
    assert api.get(f"/api/v1/incidents/{incident['id']}").status_code == 404


def test_component_delete_asks_first_and_duplicate_names_are_refused_next_to_the_field(live, sized):
    page, _ = sized
    api = _api(live)
    name = _unique("Doomed")
    component = api.post("/api/v1/components", json={"name": name}).get_json()["id"]
    page.goto(live.url + "/admin/components")
    page.locator("#new-name").fill(name.upper())
    page.get_by_role("button", name="Add component").click()
    expect(page.locator("#error-new-name")).to_contain_text("already exists")
    expect(page.locator("#new-name")).to_have_value(name.upper())
    page.get_by_role("button", name=f"Delete {name}…").click()
    expect(page.get_by_role("heading", name=f"Delete the component “{name}”?")).to_be_visible()
    assert api.get(f"/api/v1/components/{component}").status_code == 200
    page.get_by_role("button", name="Delete component").click()
    expect(page.get_by_text("Component deleted.")).to_be_visible()
    assert api.get(f"/api/v1/components/{component}").status_code == 404


def test_maintenance_form_refuses_the_past_next_to_the_field_and_previews(live, sized):
    page, _ = sized
    page.goto(live.url + "/admin/maintenances/new")
    expect(page.locator("#notification-preview")).to_be_visible()
    expect(page.locator("#preview-state")).to_contain_text("maintenance.scheduled")
    notify = page.get_by_label("Notify subscribers")
    # Of the maintenance triggers only the reminder's is on by default, and the box covers it.
    expect(notify).to_be_checked()
    expect(page.locator("#notify-hint")).to_contain_text("“Maintenance reminder” notification")
    page.get_by_label("Title", exact=True).fill(_unique("Old window"))
    page.locator("#scheduled_for").fill("2020-01-01T10:00")
    page.locator("#scheduled_until").fill("2099-01-01T11:00")
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#error-scheduled_for")).to_contain_text("The start is in the past")
    expect(page.locator("#scheduled_for")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Yes, the dates are right", exact=False)).to_be_visible()


def test_ordering_by_keyboard_buttons_and_by_drag(live, sized):
    page, size = sized
    api = _api(live)
    names = [_unique("Order A"), _unique("Order B")]
    group = api.post("/api/v1/component-groups", json={"name": _unique("Order group")}).get_json()["id"]
    ids = [api.post("/api/v1/components", json={"name": n, "group_id": group}).get_json()["id"] for n in names]

    def order():
        members = [c for c in api.get("/api/v1/components").get_json() if c["group_id"] == group]
        return [c["name"] for c in sorted(members, key=lambda c: (c["position"], c["id"]))]

    try:
        assert order() == names
        page.goto(live.url + "/admin/components")
        shot(page, f"admin-components-{size}", full_page=True)
        down = page.get_by_role("button", name=f"Move {names[0]} down")
        down.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#order-status")).to_contain_text(f"{names[0]} moved down: now 2 of 2")
        assert order() == names[::-1]
        # Focus stays on a button of the moved row (the one that can still act).
        expect(page.get_by_role("button", name=f"Move {names[0]} up")).to_be_focused()
        # Drag B back below A... i.e. drag A above B.
        source = page.locator(f"#order-c{ids[0]} > .order-row")
        target_row = page.locator(f"#order-c{ids[1]} > .order-row")
        source.drag_to(target_row, target_position={"x": 10, "y": 3})
        expect(page.locator("#order-status")).to_contain_text(f"{names[0]} is now 1 of 2")
        assert order() == names
        page.reload()
        expect(page.get_by_role("button", name=f"Move {names[0]} up")).to_be_disabled()
    finally:
        for component_id in ids:
            api.delete(f"/api/v1/components/{component_id}")
        api.delete(f"/api/v1/component-groups/{group}")


def test_keep_status_again_unticks_what_picking_a_status_ticked(live, sized):
    page, _size = sized
    api = _api(live)
    names = [_unique("Undo"), _unique("Manual")]
    ids = [api.post("/api/v1/components", json={"name": n}).get_json()["id"] for n in names]
    try:
        page.goto(live.url + "/admin/incidents/new")
        auto_box, manual_box = (page.locator(f"input[name=affected][value='{i}']") for i in ids)
        auto, manual = (page.get_by_label(f"New status of {n}") for n in names)
        auto.select_option("major_outage")
        expect(auto_box).to_be_checked()
        auto.select_option("partial_outage")
        auto.select_option("")  # "Keep status": the script's tick goes with it
        expect(auto_box).not_to_be_checked()
        # Ticked by hand first: choosing a status and then "Keep status" leaves it ticked.
        manual_box.check()
        manual.select_option("degraded_performance")
        manual.select_option("")
        expect(manual_box).to_be_checked()
    finally:
        for i in ids:
            api.delete(f"/api/v1/components/{i}")
