"""Content-hashed asset URLs: immutable caching, references rewritten, hashes that follow imports."""
from __future__ import annotations

import re

import pytest

from statuspage.publish.assets import AssetManifest

SQLITE = pytest.mark.parametrize("app", ["sqlite"], indirect=True)


@SQLITE
def test_pages_link_hashed_assets_that_are_cached_forever(app, client):
    html = client.get("/").get_data(as_text=True)
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert urls and all(re.search(r"\.[0-9a-f]{10}\.[a-z]+$", u) for u in urls), urls
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "public, max-age=31536000, immutable", url
        assert r.headers["ETag"] and client.get(url, headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    css = next(u for u in urls if "/style." in u)
    assert client.get(css, headers={"Accept-Encoding": "gzip"}).headers["Content-Encoding"] == "gzip"
    icon = next(u for u in urls if u.endswith(".png"))
    assert "Content-Encoding" not in client.get(icon, headers={"Accept-Encoding": "gzip"}).headers


@SQLITE
def test_plain_and_stale_asset_urls_still_work_but_are_revalidated(app, client):
    plain = client.get("/static/css/style.css")
    assert plain.status_code == 200 and plain.headers["Cache-Control"] == "no-cache"
    other_release = client.get("/static/css/style.0123456789.css")  # a page cached across a deploy
    assert other_release.status_code == 200 and other_release.headers["Cache-Control"] == "no-cache"
    assert client.get("/static/css/nothing.0123456789.css").status_code == 404
    assert client.get("/static/../app.py").status_code == 404


@SQLITE
def test_scripts_import_each_other_by_hashed_url_and_stable_files_keep_their_urls(app, client):
    html = client.get("/").get_data(as_text=True)
    module = re.search(r'src="(/static/js/subscribe\.[0-9a-f]{10}\.js)"', html).group(1)
    body = client.get(module).get_data(as_text=True)
    assert re.search(r"import '/static/js/push-shared\.[0-9a-f]{10}\.js'", body), body[:800]
    sw = client.get("/sw-push.js")
    assert sw.headers["Cache-Control"] == "no-cache" and sw.headers["Service-Worker-Allowed"] == "/"
    text = sw.get_data(as_text=True)
    assert re.search(r"importScripts\('/static/js/push-shared\.[0-9a-f]{10}\.js'\)", text)
    assert re.search(r"importScripts\('/static/js/sw-cache\.[0-9a-f]{10}\.js'\)", text)
    manifest = client.get("/manifest.webmanifest").get_json()
    assert all(re.fullmatch(r"/static/icons/[\w-]+\.[0-9a-f]{10}\.png", i["src"]) for i in manifest["icons"])


def test_a_change_in_an_imported_file_changes_the_url_of_every_file_that_imports_it(tmp_path):
    (tmp_path / "js").mkdir()
    (tmp_path / "css").mkdir()
    (tmp_path / "js" / "shared.js").write_text("export const a = 1;\n")
    (tmp_path / "js" / "app.js").write_text("import { a } from './shared.js';\nimport('./lazy.js');\n")
    (tmp_path / "js" / "lazy.js").write_text("import './app.js';\n")  # a cycle
    (tmp_path / "css" / "site.css").write_text("body { background: url('../img.png') } a { b: url(data:x) }\n")
    (tmp_path / "img.png").write_bytes(b"\x89PNG...")
    first = AssetManifest(tmp_path)
    app_js = first.assets["js/app.js"]
    assert f"/static/{first.assets['js/shared.js'].hashed}".encode() in app_js.body
    assert f"url('/static/{first.assets['img.png'].hashed}')".encode() in first.assets["css/site.css"].body
    assert b"url(data:x)" in first.assets["css/site.css"].body
    (tmp_path / "js" / "shared.js").write_text("export const a = 2;\n")
    second = AssetManifest(tmp_path)
    assert second.assets["js/shared.js"].hashed != first.assets["js/shared.js"].hashed
    assert second.assets["js/app.js"].hashed != app_js.hashed
    assert second.assets["css/site.css"].hashed == first.assets["css/site.css"].hashed
