"""The admin in Chromium: sign in (CSRF form), compose an incident with the live notification
preview, post it, and see it on the public page. No CSP violations on the pages involved."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import admin_login, shot

pytestmark = pytest.mark.browser


def expected_notification(live, event_type: str, values: dict[str, str]) -> tuple[str, str]:
    """What the server will send for these values: the trigger templates, rendered server-side."""
    from statuspage.markdown import plain_text
    from statuspage.push.triggers import get_trigger, render_template_text

    with live.db():
        trigger = get_trigger(event_type)
        values = {"site_name": "Example Status", **values, "update_body": plain_text(values["update_body"])}
        return (render_template_text(trigger.title_template, values).strip(),
                render_template_text(trigger.body_template, values).strip())


def test_admin_composes_with_live_preview_and_posts_an_incident(live, page):
    admin_login(page, live)
    page.goto(live.url + "/admin/incidents/new")
    title, body = page.locator("#preview-title"), page.locator("#preview-body")

    page.get_by_label("Title", exact=True).fill("Database failover")
    page.get_by_label("Message (Markdown)").fill("We are **investigating** slow queries on the `primary`.")
    want_title, want_body = expected_notification(live, "incident.created", {
        "incident_name": "Database failover", "status": "Investigating",
        "update_body": "We are **investigating** slow queries on the `primary`.",
    })
    assert want_title == "Example Status: Database failover"
    expect(title).to_have_text(want_title)
    expect(body).to_have_text(want_body)
    expect(page.locator("#preview-state")).to_contain_text("subscribers will get")

    # Every keystroke updates it, and so does the status.
    page.get_by_label("Title", exact=True).press("End")
    page.get_by_label("Title", exact=True).press_sequentially(" (EU)")
    expect(title).to_have_text("Example Status: Database failover (EU)")
    page.get_by_label("Status", exact=True).select_option("identified")
    expect(body).to_have_text(want_body.replace("Investigating", "Identified"))
    page.get_by_label("Notify subscribers").uncheck()
    expect(page.locator("#preview-state")).to_contain_text("nothing will be sent")
    page.get_by_label("Notify subscribers").check()
    shot(page, "admin-composer", full_page=True)

    page.get_by_role("button", name="Create incident").click()
    expect(page.get_by_text("Incident created.")).to_be_visible()
    assert "/admin/incidents/" in page.url
    # The incident page's composer previews updates, and a resolving one with its own trigger.
    expect(page.locator("#preview-title")).to_have_text("Example Status: Database failover (EU)")
    page.get_by_label("Status", exact=True).select_option("resolved")
    page.get_by_label("Message (Markdown)").fill("Replication caught up; all queries are fast again.")
    expect(page.locator("#preview-title")).to_have_text("Resolved: Database failover (EU)")
    expect(page.locator("#preview-body")).to_have_text("Replication caught up; all queries are fast again.")
    expect(page.locator("#preview-state")).to_contain_text("incident.resolved")

    page.goto(live.url + "/")
    active = page.locator("section[aria-labelledby=active-incidents]")
    expect(active).to_contain_text("Database failover (EU)")
    expect(active).to_contain_text("Identified")
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
    shot(page, "public-page", full_page=True)


def test_admin_login_rejects_a_wrong_password(live, page):
    page.goto(live.url + "/admin/login")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")


def test_no_csp_violations_on_the_public_page_and_the_composer(live, page, csp_watch, console_errors):
    page.goto(live.url + "/")
    expect(page.locator("#push-subscribe")).not_to_have_attribute("data-state", "loading")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    assert page.evaluate("window.__cspViolations") == []

    admin_login(page, live)
    page.goto(live.url + "/admin/incidents/new")
    page.get_by_label("Title", exact=True).fill("CSP check")
    expect(page.locator("#preview-title")).to_have_text("Example Status: CSP check")
    assert page.evaluate("window.__cspViolations") == []
    assert [m for m in console_errors if "Content Security Policy" in m or "Refused" in m] == []
    assert console_errors == []


MARKDOWN_SAMPLES = [
    "Customers in the EU (Frankfurt) are affected!",
    "See [the docs](https://example.com/docs) or <https://example.com/faq>.",
    "- checkout\n- login\n1. then search",
    "# Summary\n\n> Quoted from the vendor: *degraded*",
    "The user_id and snake_case_name fields; 2 * 3 * 4 = 24",
    "~~Paused~~ resumed, **mostly** _fine_ and __done__",
    "Literal <b>tags</b> &amp; entities &copy; and \\*escaped\\*",
    "Run `rm *.tmp` and `a_b_c` ![diagram](/d.png) now",
]


def test_preview_body_matches_the_servers_markdown_to_text(live, page):
    admin_login(page, live)
    page.goto(live.url + "/admin/incidents/new")
    page.get_by_label("Title", exact=True).fill("Preview check")
    for sample in MARKDOWN_SAMPLES:
        page.get_by_label("Message (Markdown)").fill(sample)
        _, want_body = expected_notification(live, "incident.created", {
            "incident_name": "Preview check", "status": "Investigating", "update_body": sample})
        expect(page.locator("#preview-body")).to_have_text(want_body)
