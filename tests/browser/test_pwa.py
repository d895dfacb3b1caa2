"""The service worker and the web app manifest, as Chromium sees them."""
from __future__ import annotations

import struct

import pytest
from playwright.sync_api import expect

from .conftest import api_call

pytestmark = pytest.mark.browser


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_service_worker_registers_with_root_scope(live, page):
    page.goto(live.url + "/")
    scope = page.evaluate("navigator.serviceWorker.ready.then((reg) => reg.scope)")
    assert scope == live.url + "/"
    script = page.evaluate("navigator.serviceWorker.ready.then((reg) => reg.active.scriptURL)")
    assert script == live.url + "/sw-push.js"

    response = page.request.get(live.url + "/sw-push.js")
    assert response.ok
    assert response.headers["service-worker-allowed"] == "/"
    assert response.headers["content-type"].startswith("text/javascript")
    assert "no-cache" in response.headers["cache-control"]


def test_manifest_is_linked_valid_and_its_icons_load(live, page, context):
    page.goto(live.url + "/")
    href = page.locator("link[rel=manifest]").get_attribute("href")
    assert href
    response = page.request.get(live.url + href)
    assert response.ok
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["name"] == "Example Status"
    assert manifest["short_name"]
    assert manifest["start_url"].startswith("/")
    assert manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] and manifest["background_color"]

    # Chromium's own manifest parser: no errors, and the page is installable but for incognito.
    cdp = context.new_cdp_session(page)
    parsed = cdp.send("Page.getAppManifest")
    assert parsed["errors"] == []
    assert parsed["manifest"]["display"] == "kStandalone"
    assert parsed["manifest"]["scope"] == live.url + "/"
    installability = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert [e["errorId"] for e in installability if e["errorId"] != "in-incognito"] == []

    by_purpose: dict[tuple[str, str], str] = {}
    for icon in manifest["icons"]:
        for purpose in icon.get("purpose", "any").split():
            by_purpose[(purpose, icon["sizes"])] = icon["src"]
        image = page.request.get(live.url + icon["src"])
        assert image.ok, icon["src"]
        assert image.headers["content-type"] == "image/png"
        width, height = png_size(image.body())
        assert f"{width}x{height}" == icon["sizes"], icon["src"]
        # ...and the browser decodes it at that size.
        decoded = page.evaluate(
            "async (src) => { const img = new Image(); img.src = src; await img.decode();"
            " return [img.naturalWidth, img.naturalHeight]; }", icon["src"])
        assert decoded == [width, height]
    assert ("any", "192x192") in by_purpose
    assert ("any", "512x512") in by_purpose
    assert any(purpose == "maskable" for purpose, _ in by_purpose)


def test_apple_touch_icon_and_ios_meta_tags(live, page):
    page.goto(live.url + "/")
    href = page.locator("link[rel=apple-touch-icon]").get_attribute("href")
    image = page.request.get(live.url + href)
    assert image.ok and image.headers["content-type"] == "image/png"
    assert png_size(image.body()) == (180, 180)
    expect(page.locator("meta[name=apple-mobile-web-app-capable]")).to_have_attribute("content", "yes")
    expect(page.locator("meta[name=apple-mobile-web-app-title]")).to_have_attribute("content", "Example Status")
    expect(page.locator("meta[name=theme-color]")).to_have_count(1)
    # The monochrome badge the service worker uses exists too.
    badge = page.request.get(live.url + "/static/icons/badge-96.png")
    assert badge.ok and png_size(badge.body()) == (96, 96)


def test_every_public_page_has_the_control_and_the_manifest(live, page):
    status, incident = api_call(live, "POST", "/api/v1/incidents",
                                    {"name": "Page check", "status": "resolved", "notify": False})
    assert status == 201, incident
    for path in ("/", "/history", f"/incidents/{incident['id']}"):
        page.goto(live.url + path)
        expect(page.locator("link[rel=manifest]")).to_have_attribute("href", "/manifest.webmanifest")
        expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
