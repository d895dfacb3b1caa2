"""SVG status badges and the /embed.js widget as HTTP resources: what they say, text widths,
escaping, 404/400 answers that are still badges, cache and cross-origin headers, no cookies,
and the paths registered for the published snapshot."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from statuspage.badge import render_badge, text_width
from statuspage.publish.registry import REGISTRY
from statuspage.web.embeds import DATA_SLOT, script_json, widget_source

# What every published public response says to caches (statuspage/publish/serve.py).
SNAPSHOT_CACHE = "public, max-age=10, stale-while-revalidate=30, stale-if-error=86400"

SVG = "{http://www.w3.org/2000/svg}"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def parse(response) -> ET.Element:
    assert response.mimetype == "image/svg+xml"
    return ET.fromstring(response.data)


def texts(svg: ET.Element) -> list[tuple[str, float]]:
    return [(t.text, float(t.get("textLength"))) for t in svg.iter(f"{SVG}text") if t.get("aria-hidden") is None]


def test_page_badge_says_the_top_level_status_with_a_title(client, api):
    r = client.get("/badge.svg")
    svg = parse(r)
    assert r.status_code == 200 and svg.get("role") == "img"
    assert svg.find(f"{SVG}title").text == "Example Status: All Systems Operational"
    assert [t for t, _ in texts(svg)] == ["status", "all systems operational"]
    assert r.headers["Cache-Control"] == SNAPSHOT_CACHE
    assert r.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "Set-Cookie" not in r.headers
    for status in ("operational", "operational", "major_outage"):
        api.post("/api/v1/components", {"name": f"C-{status}", "status": status})
    svg = parse(client.get("/badge.svg"))
    assert [t for t, _ in texts(svg)][1] == "partial system outage"
    assert '#bc4c00' in ET.tostring(svg, encoding="unicode")  # orange, as the indicator "major"


def test_box_widths_follow_the_text_widths(client):
    svg = parse(client.get("/badge.svg?label=Uptime"))
    (label, label_w), (message, message_w) = texts(svg)
    rects = [float(r.get("width")) for r in svg.iter(f"{SVG}rect")]
    assert rects[1] == round(label_w + 12) and rects[2] == round(message_w + 12)
    assert float(svg.get("width")) == rects[1] + rects[2]
    assert label_w == text_width("Uptime")


@pytest.mark.skipif(not DEJAVU.exists(), reason="DejaVu Sans is not installed (Debian: fonts-dejavu-core)")
def test_the_width_table_matches_the_font(client):
    from PIL import ImageFont

    font = ImageFont.truetype(str(DEJAVU), 1100)
    for text in ("all systems operational", "Email delivery (EU) – Ünïcødé ½", "WWW mmm iii ..."):
        assert text_width(text) == pytest.approx(font.getlength(text) / 100, rel=0.005), text


def test_component_and_group_badges_escape_names(client, api):
    group = api.post("/api/v1/component-groups", {"name": "Core & <edge>"}).json["id"]
    cid = api.post("/api/v1/components", {"name": "API \"v2\" <b>", "group_id": group,
                                          "status": "degraded_performance"}).json["id"]
    svg = parse(client.get(f"/badge/{cid}.svg"))
    assert [t for t, _ in texts(svg)] == ['API "v2" <b>', "degraded performance"]
    assert svg.find(f"{SVG}title").text == 'API "v2" <b>: Degraded performance'
    group_svg = parse(client.get(f"/badge/group-{group}.svg"))
    assert [t for t, _ in texts(group_svg)] == ["Core & <edge>", "degraded performance"]
    long = "x" * 200
    api.patch(f"/api/v1/components/{cid}", {"name": long[:200]})
    assert len(texts(parse(client.get(f"/badge/{cid}.svg")))[0][0]) == 60


@pytest.mark.parametrize("path, status, words", [
    ("/badge/424242.svg", 404, "no component '424242'"),
    ("/badge/group-9.svg", 404, "no group 'group-9'"),
    ("/badge/abc.svg", 404, "no component 'abc'"),
    ("/badge/99999999999999999999.svg", 404, "no component"),
    ("/badge/%C3%A9.svg", 404, "no component"),
    ("/badge.svg?label=", 400, "label must be 1 to 40 printable characters"),
    ("/badge.svg?label=" + "y" * 41, 400, "label must be"),
    ("/badge.svg?label=a%0Ab", 400, "label must be"),
])
def test_bad_badge_requests_are_4xx_badges_that_say_why(client, path, status, words):
    r = client.get(path)
    assert r.status_code == status
    assert words in parse(r).find(f"{SVG}title").text
    assert r.headers["Cache-Control"] == "no-cache"


def test_render_badge_is_valid_xml_for_any_text():
    for text in ("<script>alert(1)</script>", "a & b", "'quoted' \"double\"", "中文状态", "e\u0301"):
        svg = ET.fromstring(render_badge(text, text, __import__("statuspage.badge").badge.GREY))
        assert svg.find(f"{SVG}title").text == f"{text}: {text}"


def _embedded_data(body: str) -> dict:
    match = re.search(r"const DATA = (\{.*?\});\n", body)
    return json.loads(match.group(1))


def test_embed_js_inlines_the_status_and_is_served_for_other_sites(client, api):
    cid = api.post("/api/v1/components", {"name": "API"}).json["id"]
    api.post("/api/v1/incidents", {"name": "Minor thing", "impact": "minor"})
    worst = api.post("/api/v1/incidents", {"name": "</script><img src=x onerror=alert(1)>", "impact": "critical",
                                           "components": {str(cid): "major_outage"}}).json["id"]
    api.post("/api/v1/maintenances", {"name": "DB work", "scheduled_for": "2020-01-01T00:00:00Z",
                                      "scheduled_until": "2099-01-01T00:00:00Z", "status": "in_progress"})
    r = client.get("/embed.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert r.headers["Cache-Control"] == SNAPSHOT_CACHE
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "Set-Cookie" not in r.headers
    body = r.get_data(as_text=True)
    inlined = re.search(r"const DATA = (\{.*?\});\n", body).group(1)
    assert "<" not in inlined and ">" not in inlined and DATA_SLOT not in body
    data = _embedded_data(body)
    assert data["status"] == {"indicator": "critical", "description": "Major System Outage"}
    assert data["page"] == {"name": "Example Status", "url": "https://status.example.com/"}
    assert [i["name"] for i in data["incidents"]][0] == "</script><img src=x onerror=alert(1)>"
    assert data["incidents"][0]["url"] == f"https://status.example.com/incidents/{worst}"
    assert data["incidents"][0]["level"] == "critical" and data["incidents"][1]["level"] == "minor"
    assert [m["name"] for m in data["maintenances"]] == ["DB work"]
    assert data["maintenances"][0]["status"] == "In progress"
    # The widget's code uses no eval, no innerHTML and no inline styles (a strict host CSP).
    code = "\n".join(line for line in widget_source().splitlines() if not line.lstrip().startswith("//"))
    for forbidden in ("eval(", "innerHTML", "insertAdjacentHTML", "setAttribute('style'", "new Function",
                      "document.write", "fetch(", "XMLHttpRequest", "cookie", "localStorage", "sessionStorage"):
        assert forbidden not in code, forbidden


def test_script_json_is_safe_in_any_javascript_context():
    text = script_json({"a": "</script>\u2028\u2029&<!--"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script>\u2028\u2029&<!--"}


def test_badges_widget_and_uptime_are_registered_public_paths(app, api):
    cid = api.post("/api/v1/components", {"name": "API"}).json["id"]
    gid = api.post("/api/v1/component-groups", {"name": "Core"}).json["id"]
    with app.test_request_context():
        paths = [page.path(args) for page in REGISTRY.pages for args in page.all_args()]
    assert {"/api/v2/uptime.json", "/badge.svg", "/embed.js", f"/badge/{cid}.svg", f"/badge/group-{gid}.svg"} \
        <= set(paths)
    client = app.test_client()
    assert all(client.get(p).status_code == 200 for p in paths)
