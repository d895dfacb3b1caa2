"""The admin's previews in Chromium: the composer says how many current subscribers would get the
message (asked from the server as the form changes), and on the push settings page the preview
follows the trigger row being edited, maintenance reminders included."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import admin_login, api_call

pytestmark = pytest.mark.browser


def _expected(live, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, data = api_call(live, "GET", f"/api/v1/push/audience?{query}")
    assert status == 200, data
    if data["reason"]:
        return f"No current subscriber would get it: {data['reason']}."
    return f"{data['count']} current subscriber{'' if data['count'] == 1 else 's'} would get it."


def test_composer_counts_the_subscribers_the_message_would_reach(live, page, console_errors):
    admin_login(page, live)
    page.goto(live.url + "/admin/incidents/new")
    audience = page.locator("#preview-audience")
    expect(audience).to_have_text(_expected(live, event="incident.created", impact="minor"))
    api_id = live.components["API"]
    page.locator(f'input[name=affected][value="{api_id}"]').check()
    page.get_by_label("Impact").select_option("major")
    expect(audience).to_have_text(_expected(live, event="incident.created", impact="major", component_ids=api_id))
    page.get_by_label("Notify subscribers").uncheck()
    expect(audience).to_have_text("No current subscriber would get it: the admin chose not to notify subscribers.")
    assert console_errors == []


def test_push_settings_preview_follows_the_trigger_row_being_edited(live, page, console_errors):
    admin_login(page, live)
    page.goto(live.url + "/admin/push")
    title = page.locator("#preview-title")
    page.locator('[name="title-maintenance.reminder"]').focus()
    expect(title).to_have_text("Maintenance in 1 hour: Elevated error rates")
    expect(page.locator("#preview-state")).to_contain_text("maintenance.reminder")
    page.locator('[name="title-maintenance.reminder"]').fill("Heads-up: {incident_name} at {starts_at}")
    expect(title).to_have_text("Heads-up: Elevated error rates at Sat 28 Nov 14:00 UTC")
    page.locator('[name="enabled-maintenance.reminder"]').uncheck()
    expect(page.locator("#preview-state")).to_contain_text("this trigger is off")
    expect(page.get_by_label("Maintenance reminders (minutes before the start)")).to_have_value("60")
    assert console_errors == []
