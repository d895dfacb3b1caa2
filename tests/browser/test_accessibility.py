"""An automated WCAG 2.1 AA scan (axe-core, injected with Playwright) of every public and every
admin page, in light and dark, at a 390 px phone and a 1280 px desktop: no serious or critical
violation may remain.

axe-core is pinned in package.json / package-lock.json and installed by `make install`
(`npm ci`); the scan reads node_modules/axe-core/axe.min.js.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from .conftest import ROOT, admin_login, api_call

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RUN_AXE_JS = """
async (tags) => {
  const result = await axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`) }));
}
"""
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}


@pytest.fixture(scope="module")
def outage(live):
    """The pages in their busiest shape: a group with an outage inside, an open incident, an
    update history, a resolved incident and a scheduled maintenance."""
    code, group = api_call(live, "POST", "/api/v1/component-groups", {"name": "Axe infrastructure"})
    assert code == 201, group
    made = {}
    for name in ("Axe database", "Axe queue"):
        code, comp = api_call(live, "POST", "/api/v1/components", {"name": name, "group_id": group["id"]})
        assert code == 201, comp
        made[name] = comp["id"]
    code, incident = api_call(live, "POST", "/api/v1/incidents", {
        "name": "Axe: queue delays", "status": "identified", "impact": "major", "notify": False,
        "body": "Jobs are **delayed** by up to ten minutes.",
        "components": {str(made["Axe queue"]): "partial_outage"}})
    assert code == 201, incident
    code, resolved = api_call(live, "POST", "/api/v1/incidents", {
        "name": "Axe: login errors", "status": "investigating", "impact": "minor", "notify": False,
        "body": "Some sign-ins fail."})
    assert code == 201, resolved
    code, _ = api_call(live, "POST", f"/api/v1/incidents/{resolved['id']}/updates",
                       {"status": "resolved", "body": "Fixed.", "notify": False})
    assert code == 201
    start = datetime.now(UTC) + timedelta(days=2)
    code, maint = api_call(live, "POST", "/api/v1/maintenances", {
        "name": "Axe: database upgrade", "notify": False, "body": "A short read-only window.",
        "scheduled_for": start.isoformat(), "scheduled_until": (start + timedelta(hours=1)).isoformat(),
        "components": {str(made["Axe database"]): "under_maintenance"}})
    assert code == 201, maint
    code, integration = api_call(live, "POST", "/api/v1/integrations", {"kind": "heartbeat", "name": "Axe cron",
                                                                     "component_id": made["Axe database"]})
    assert code == 201, integration
    yield {"incident": incident["id"], "resolved": resolved["id"], "maintenance": maint["id"],
           "integration": integration.get("id") if code == 201 else None}
    api_call(live, "POST", f"/api/v1/incidents/{incident['id']}/updates", {
        "status": "resolved", "body": "Done.", "notify": False,
        "components": {str(made["Axe queue"]): "operational"}})


def _pages(outage) -> tuple[list[str], list[str]]:
    public = ["/", "/history", f"/incidents/{outage['incident']}", f"/incidents/{outage['resolved']}",
              f"/incidents/{outage['maintenance']}"]
    admin = ["/admin/", "/admin/components", "/admin/incidents", "/admin/incidents/new",
             f"/admin/incidents/{outage['incident']}", "/admin/maintenances", "/admin/maintenances/new",
             "/admin/push", "/admin/subscriptions", "/admin/events", "/admin/account", "/admin/log",
             "/admin/integrations"]
    if outage["integration"]:
        admin.append(f"/admin/integrations/{outage['integration']}")
    return public, admin


def _scan(page, url: str) -> list[dict]:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    # Evaluated through DevTools (the pages' CSP forbids inline scripts, as it should).
    page.evaluate(AXE.read_text() + "\n;true")
    return page.evaluate(RUN_AXE_JS, TAGS)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", list(WIDTHS))
def test_no_serious_or_critical_axe_violations_on_any_page(live, browser, outage, scheme, width):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `make install` (npm ci)")
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme)
    try:
        page = context.new_page()
        public, admin = _pages(outage)
        found = {}
        for path in public:
            found[path] = _scan(page, live.url + path)
        found["/admin/login"] = _scan(page, live.url + "/admin/login")
        admin_login(page, live)
        for path in admin:
            found[path] = _scan(page, live.url + path)
        bad = {path: v for path, v in found.items() if v}
        assert not bad, "\n".join(
            f"{path}: [{v['impact']}] {v['id']} ({v['help']})\n    " + "\n    ".join(v["nodes"])
            for path, vs in bad.items() for v in vs)
    finally:
        context.close()
