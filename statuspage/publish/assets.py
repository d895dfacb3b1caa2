"""Content-hashed asset URLs: ``asset_url("css/style.css")`` is ``/static/css/style.<hash>.css``,
served with ``Cache-Control: public, max-age=31536000, immutable`` (a new release has new URLs, so
browsers and CDNs keep each file forever and never revalidate it).

References between assets are rewritten to hashed URLs too (``import './push-store.js'``,
``importScripts('/static/js/x.js')``, CSS ``url(...)``), and each file's hash covers the hashes
it references, so a change anywhere reaches every URL that depends on it. ``sw-push.js`` and
``manifest.json`` keep stable URLs (``/sw-push.js``, ``/manifest.webmanifest``): browsers look
for them there. Plain ``/static/<name>`` keeps working (``no-cache``: revalidated each time).
"""
from __future__ import annotations

import hashlib
import mimetypes
import posixpath
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from .store import SnapshotStore, StoredFile

HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{10})(?P<ext>\.[A-Za-z0-9]+)$")
STABLE = frozenset({"sw-push.js", "manifest.json"})
TEXT = frozenset({".css", ".js", ".mjs", ".json", ".svg", ".txt", ".map", ".webmanifest"})
# Hashed files of earlier releases stay this long in the snapshot: a page cached before a deploy
# still finds its stylesheet and scripts.
KEEP_OLD_ASSETS_SECONDS = 7 * 24 * 3600

_JS_SPECIFIER = re.compile(r"""(?P<pre>\bimport\s*\(\s*|\bfrom\s*|\bimport\s+)(?P<q>['"])(?P<spec>[^'"\n]+)(?P=q)""")
_IMPORT_SCRIPTS = re.compile(r"importScripts\s*\((?P<args>[^)]*)\)")
_STRING = re.compile(r"""(?P<q>['"])(?P<spec>[^'"\n]+)(?P=q)""")
_CSS_URL = re.compile(r"""url\(\s*(?P<q>['"]?)(?P<spec>[^'")\s]+)(?P=q)\s*\)""")
_CSS_IMPORT = re.compile(r"""@import\s+(?P<q>['"])(?P<spec>[^'"]+)(?P=q)""")


@dataclass
class Asset:
    name: str  # "css/style.css"
    original: bytes
    body: bytes = b""  # references rewritten to hashed URLs
    hashed: str = ""  # "css/style.3f2a1b9c0d.css"
    mtime: float = 0.0
    _stored: StoredFile | None = field(default=None, repr=False)

    @property
    def content_type(self) -> str:
        if self.name.endswith((".js", ".mjs")):
            return "text/javascript; charset=utf-8"
        guessed = mimetypes.guess_type(self.name)[0] or "application/octet-stream"
        return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed

    @property
    def compressible(self) -> bool:
        return Path(self.name).suffix in TEXT

    @property
    def stored(self) -> StoredFile:
        if self._stored is None:
            self._stored = StoredFile(self.body, self.mtime)
        return self._stored


class AssetManifest:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.assets: dict[str, Asset] = {}
        self.by_hashed: dict[str, Asset] = {}
        self.signature: tuple = ()
        self.load()

    def current_signature(self) -> tuple:
        return tuple(sorted((p.relative_to(self.folder).as_posix(), p.stat().st_mtime_ns, p.stat().st_size)
                            for p in self.folder.rglob("*") if p.is_file()))

    def load(self) -> None:
        self.signature = self.current_signature()
        assets = {}
        for path in sorted(self.folder.rglob("*")):
            if path.is_file() and not HASHED.match(path.name):
                name = path.relative_to(self.folder).as_posix()
                assets[name] = Asset(name, path.read_bytes(), mtime=path.stat().st_mtime)
        self.assets = assets
        for name in assets:
            self._process(name, set())
        self.by_hashed = {a.hashed: a for a in assets.values() if a.name not in STABLE}

    def _process(self, name: str, visiting: set[str]) -> Asset:
        asset = self.assets[name]
        if asset.hashed:
            return asset
        visiting.add(name)
        body = asset.original
        suffix = Path(name).suffix
        if suffix in (".js", ".mjs"):
            body = self._rewrite_js(name, body, visiting)
        elif suffix == ".css":
            body = self._rewrite(name, body, visiting, (_CSS_URL, _CSS_IMPORT))
        visiting.discard(name)
        asset.body = body
        digest = hashlib.sha256(body).hexdigest()[:10]
        stem, dot, ext = name.rpartition(".")
        asset.hashed = f"{stem}.{digest}.{ext}" if dot else f"{name}.{digest}"
        return asset

    def _target(self, name: str, spec: str) -> str | None:
        if "?" in spec or "#" in spec or spec.startswith("data:"):
            return None
        if spec.startswith("/static/"):
            target = spec[len("/static/"):]
        elif spec.startswith(("./", "../")):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), spec))
        else:
            return None
        return target if target in self.assets and target not in STABLE else None

    def _hashed_url(self, name: str, spec: str, visiting: set[str]) -> str:
        target = self._target(name, spec)
        if target is None or target in visiting:  # not ours, or an import cycle: keep the plain URL
            return spec
        return "/static/" + self._process(target, visiting).hashed

    def _rewrite(self, name: str, body: bytes, visiting: set[str], patterns) -> bytes:
        text = body.decode("utf-8")
        for pattern in patterns:
            text = pattern.sub(lambda m: m.group(0).replace(
                m.group("spec"), self._hashed_url(name, m.group("spec"), visiting), 1), text)
        return text.encode("utf-8")

    def _rewrite_js(self, name: str, body: bytes, visiting: set[str]) -> bytes:
        body = self._rewrite(name, body, visiting, (_JS_SPECIFIER,))
        text = _IMPORT_SCRIPTS.sub(lambda m: m.group(0).replace(
            m.group("args"), _STRING.sub(lambda s: s.group(0).replace(
                s.group("spec"), self._hashed_url(name, s.group("spec"), visiting), 1), m.group("args")), 1),
            body.decode("utf-8"))
        return text.encode("utf-8")

    def url(self, name: str) -> str:
        asset = self.assets.get(name)
        if asset is None or name in STABLE:
            return "/static/" + name
        return "/static/" + asset.hashed


_lock = threading.Lock()


def asset_manifest(app=None) -> AssetManifest:
    app = app or current_app._get_current_object()
    manifest: AssetManifest | None = app.extensions.get("statuspage_assets")
    if manifest is None:
        with _lock:
            manifest = app.extensions.get("statuspage_assets")
            if manifest is None:
                manifest = AssetManifest(app.static_folder)
                app.extensions["statuspage_assets"] = manifest
                app.extensions["statuspage_assets_checked"] = time.monotonic()
    elif app.debug and time.monotonic() - app.extensions.get("statuspage_assets_checked", 0) > 1:
        # Development: an edited CSS or JS file gets a new URL without a restart.
        app.extensions["statuspage_assets_checked"] = time.monotonic()
        if manifest.current_signature() != manifest.signature:
            with _lock:
                manifest.load()
    return manifest


def asset_url(name: str) -> str:
    """The template global: the content-hashed URL of a file under static/."""
    return asset_manifest().url(name)


def publish_assets(store: SnapshotStore) -> int:
    """Write every asset into the snapshot under both its hashed and its plain name, so the
    snapshot is a complete static site (nginx or any static host serves it without the app)."""
    manifest = asset_manifest()
    written = 0
    for asset in manifest.assets.values():
        if asset.name not in STABLE:
            written += store.write_file(f"static/{asset.hashed}", asset.body, compress=asset.compressible)
        written += store.write_file(f"static/{asset.name}", asset.original, compress=asset.compressible)
    current = {f"static/{a.hashed}" for a in manifest.assets.values()}
    cutoff = time.time() - KEEP_OLD_ASSETS_SECONDS
    static_root = store.root / "static"
    if static_root.is_dir():
        for path in static_root.rglob("*"):
            rel = path.relative_to(store.root).as_posix().removesuffix(".gz")
            if path.is_file() and HASHED.match(Path(rel).name) and rel not in current \
                    and path.stat().st_mtime < cutoff:
                path.unlink()
    return written
