"""Browser fixtures: the app served for real, the push-service simulator, headless Chromium.

One live server, one simulator and one Chromium per session (the suite stays fast); each test
gets a fresh browser context (its own storage, service worker registrations and permissions).

Chromium cannot reach a real push service here and Playwright's contexts are incognito, where
``PushManager.subscribe`` fails. So ``browser_push`` stubs ONLY ``PushManager.prototype.subscribe``
and ``getSubscription`` in the page: they hand out subscriptions created by the simulator, whose
private keys the test owns. Everything else is real: the service worker registration, the POSTs to
the app, the app's encrypted delivery through the simulator (which verifies VAPID and decrypts),
and the notification shown by the service worker for a push delivered through the DevTools
protocol.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from statuspage import create_app
from statuspage.extensions import db
from statuspage.push.simulator import PushSimulator, SimSubscription

ROOT = Path(__file__).resolve().parents[2]
# The README's screenshots are refreshed with `UPDATE_SCREENSHOTS=1 make test`; ordinary runs
# (and CI) write them to the git-ignored test-artifacts/ so the tree stays clean.
SCREENSHOTS = (ROOT / "docs" / "screenshots") if os.environ.get("UPDATE_SCREENSHOTS") \
    else (ROOT / "test-artifacts" / "screenshots")
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


# ------------------------------------------------------------------------------------ server

@dataclass
class LiveApp:
    app: Any
    url: str
    sim: PushSimulator
    admin_token: str
    components: dict[str, int] = field(default_factory=dict)

    def db(self):
        """An app context for reading/writing the live server's database from the test."""
        return self.app.app_context()

    def public_key(self) -> str:
        from statuspage.push.keys import public_key

        with self.db():
            key = public_key()
        assert key
        return key


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Iterator[LiveApp]:
    from statuspage.auth import create_token, create_user
    from statuspage.components import create_component
    from statuspage.jobs import LocalRunner
    from statuspage.push.keys import generate_keys
    from statuspage.push.triggers import ensure_triggers

    tmp = tmp_path_factory.mktemp("browser")
    sim = PushSimulator().start()
    os.environ["INSTANCE_PATH"] = str(tmp / "instance")
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "browser-tests-secret-not-for-production",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'browser.db'}",
        "SITE_NAME": "Example Status",
        "PUSH_EXTRA_ORIGINS": [sim.origin],
        "PUSH_DEBOUNCE_SECONDS": 0,
        "JOBS_EAGER": False,
        "REDIS_URL": None,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "WTF_CSRF_ENABLED": True,
    })
    # Bind first (a free port, no race), then tell the app its absolute URL (icons, links in pushes).
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["SITE_URL"] = url
    with app.app_context():
        db.create_all()
        ensure_triggers()
        generate_keys()
        create_user(ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
        ids = {}
        for name in ("API", "Website", "Email delivery"):
            ids[name] = create_component({"name": name}).id
        _, token = create_token(ADMIN_EMAIL, "browser tests")
        db.session.commit()
    # TESTING=True keeps http.py from starting a job thread of its own: start the in-process
    # runner the embedded (no Redis) deployment uses, so jobs run in the background as in `make run`.
    app.extensions["statuspage_runner"] = LocalRunner(app)

    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveApp(app=app, url=url, sim=sim, admin_token=token, components=ids)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        sim.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# ------------------------------------------------------------------------------------ browser

def _ensure_chromium() -> str | None:
    path = shutil.which("chromium")
    if path or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False, timeout=900)
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    path = _ensure_chromium()
    if not path:
        pytest.skip("Debian's chromium is not installed and could not be installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


def _watch(context, sink: list[str]) -> None:
    def on_console(msg):
        if msg.type in ("error", "warning"):
            sink.append(f"{msg.type}: {msg.text}")

    def on_page(page):
        page.on("console", on_console)
        page.on("pageerror", lambda exc: sink.append(f"pageerror: {exc}"))

    context.on("page", on_page)


@pytest.fixture
def context(browser, live, console_errors):
    """A fresh context with notifications allowed for the live origin."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 800})
    ctx.grant_permissions(["notifications"], origin=live.url)
    _watch(ctx, console_errors)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


# ------------------------------------------------------------------------------------ push stub

class BrowserPush:
    """Simulator subscriptions the page's stubbed PushManager hands out, in order.

    ``subscribe()`` in the page takes the next prepared subscription (its applicationServerKey
    is the one the page passed, as in a browser), remembers it in localStorage so
    ``getSubscription()`` finds it after a reload, and ``unsubscribe()`` forgets it.
    """

    def __init__(self, live: LiveApp):
        self.live = live
        self.prepared: list[dict] = []

    def prepare(self, public_key: str | None = None) -> SimSubscription:
        sub = self.live.sim.new_subscription(public_key or self.live.public_key())
        self.prepared.append(sub.to_json())
        return sub

    def prepare_foreign(self, endpoint: str) -> dict:
        """A subscription on a push service the app must refuse to contact (keys from the simulator)."""
        sub = self.live.sim.new_subscription(self.live.public_key()).to_json()
        sub["endpoint"] = endpoint
        self.prepared.append(sub)
        return sub

    def script(self) -> str:
        return STUB_JS.replace("__SUBS__", json.dumps(self.prepared))


STUB_JS = r"""
(() => {
  if (typeof PushManager === 'undefined') return;
  const SUBS = __SUBS__;
  const KEY = '__testPushSubscription';
  const NEXT = '__testPushNext';
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const unb64 = (s) => {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  };
  function make(saved) {
    return {
      endpoint: saved.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: unb64(saved.serverKey) },
      getKey: (name) => unb64(saved.keys[name]),
      toJSON: () => ({ endpoint: saved.endpoint, expirationTime: null, keys: saved.keys }),
      unsubscribe: async () => {
        const cur = JSON.parse(localStorage.getItem(KEY) || 'null');
        if (cur && cur.endpoint === saved.endpoint) localStorage.removeItem(KEY);
        return true;
      },
    };
  }
  PushManager.prototype.getSubscription = async function () {
    const saved = JSON.parse(localStorage.getItem(KEY) || 'null');
    return saved ? make(saved) : null;
  };
  PushManager.prototype.subscribe = async function (options) {
    if (Notification.permission !== 'granted') {
      throw new DOMException('Registration failed - permission denied', 'NotAllowedError');
    }
    const key = options.applicationServerKey;
    const serverKey = typeof key === 'string' ? key
      : b64(key instanceof ArrayBuffer ? key : key.buffer.slice(key.byteOffset, key.byteOffset + key.byteLength));
    const existing = JSON.parse(localStorage.getItem(KEY) || 'null');
    if (existing && existing.serverKey !== serverKey) {
      // As Chrome does: a different key needs an unsubscribe first.
      throw new DOMException('a subscription with a different applicationServerKey exists', 'InvalidStateError');
    }
    if (existing) return make(existing);
    const n = Number(localStorage.getItem(NEXT) || '0');
    if (n >= SUBS.length) throw new DOMException('no prepared test subscription left', 'AbortError');
    localStorage.setItem(NEXT, String(n + 1));
    const saved = { endpoint: SUBS[n].endpoint, keys: SUBS[n].keys, serverKey };
    localStorage.setItem(KEY, JSON.stringify(saved));
    return make(saved);
  };
})();
"""


@pytest.fixture
def browser_push(live, context) -> BrowserPush:
    """Prepare subscriptions with ``.prepare()``, then call ``.install()`` before opening pages."""
    push = BrowserPush(live)

    def install() -> None:
        context.add_init_script(push.script())

    push.install = install  # type: ignore[attr-defined]
    return push


# ------------------------------------------------------------------------------------ helpers

CSP_WATCH_JS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${where}`);
});
"""

# Waits inside the page until the wanted notifications are shown, then describes them.
NOTIFICATIONS_JS = """
async ({ tag, title, count, timeoutMs }) => {
  const reg = await navigator.serviceWorker.ready;
  const want = (n) => (!tag || n.tag === tag) && (!title || n.title === title);
  const describe = (ns) => ns.map((n) => ({ title: n.title, body: n.body, icon: n.icon, badge: n.badge,
                                            tag: n.tag, data: n.data }));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const shown = (await reg.getNotifications()).filter(want);
    if (shown.length >= count) return { ok: true, shown: describe(shown) };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { ok: false, shown: describe(await reg.getNotifications()) };
}
"""


class ServiceWorkerPush:
    """Delivers a push to the page's real service worker through the DevTools protocol."""

    def __init__(self, context, page, origin: str):
        self.origin = origin
        self.page = page
        self.cdp = context.new_cdp_session(page)
        self.registrations: list[dict] = []
        self.cdp.on("ServiceWorker.workerRegistrationUpdated",
                    lambda event: self.registrations.extend(event["registrations"]))
        self.cdp.send("ServiceWorker.enable")

    def registration_id(self) -> str:
        scope = self.origin + "/"

        def found():
            return [r for r in self.registrations if r["scopeURL"] == scope and not r["isDeleted"]]

        # The event arrives right after ServiceWorker.enable; let Playwright pump it.
        waited = 0
        while not found() and waited < 100:
            self.page.wait_for_timeout(50)
            waited += 1
        assert found(), f"no service worker registration for {scope}: {self.registrations}"
        return found()[-1]["registrationId"]

    def deliver(self, payload: dict | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.last_data = data
        self.cdp.send("ServiceWorker.deliverPushMessage", {
            "origin": self.origin, "registrationId": self.registration_id(), "data": data,
        })

    def notifications(self, tag: str | None = None, title: str | None = None, count: int = 1) -> list[dict]:
        """The notifications shown (with this tag/title), once at least ``count`` are.

        DevTools' deliverPushMessage is fire-and-forget and, rarely on a loaded machine, a
        delivery to a worker that is just being (re)started is dropped by Chromium before the
        worker sees it. The same payload is then delivered again (a notification with the same
        tag replaces the first, so this cannot pass a broken worker): what is under test is the
        worker's handling of a push, not the DevTools transport."""
        result: dict = {"ok": False, "shown": []}
        for attempt in range(3):
            result = self.page.evaluate(NOTIFICATIONS_JS, {"tag": tag, "title": title, "count": count,
                                                           "timeoutMs": 6000})
            if result["ok"] or not getattr(self, "last_data", None) or attempt == 2:
                break
            self.cdp.send("ServiceWorker.deliverPushMessage", {
                "origin": self.origin, "registrationId": self.registration_id(), "data": self.last_data,
            })
        if result["ok"]:
            return result["shown"]
        return [n for n in result["shown"] if (not tag or n["tag"] == tag) and (not title or n["title"] == title)]


@pytest.fixture
def sw_push(live, context):
    """``sw_push(page)`` → a ServiceWorkerPush for that page (open the page first)."""
    return lambda page: ServiceWorkerPush(context, page, live.url)


@pytest.fixture
def csp_watch(context):
    context.add_init_script(CSP_WATCH_JS)


def control_state(page) -> str:
    return page.locator("#push-subscribe").get_attribute("data-state")


def open_subscribe(page, *, choices: bool = False) -> None:
    """Open the subscribe panel with the header button (and its folded component choice)."""
    from playwright.sync_api import expect

    toggle = page.locator("#subscribe-open")
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    expect(page.locator("#push-subscribe")).to_be_visible()
    if choices:
        details = page.locator("#subscribe-choices")
        if details.get_attribute("open") is None:
            details.locator("summary").click()


def send_test_from_page(page, live: LiveApp, sim_sub) -> Any:
    """Subscribe in the page, press "Send me a test", and return the message the simulator got
    (the app encrypted and sent it; the simulator checked VAPID and decrypted it)."""
    from playwright.sync_api import expect

    subscribe_in_page(page, live)
    with page.expect_response(lambda r: r.url.endswith("/api/push/test")) as answer:
        page.get_by_role("button", name="Send me a test").click()
    assert answer.value.status == 202
    expect(page.locator("#subscribe-feedback")).to_contain_text("Test sent")
    [message] = live.sim.wait_for(1, token=sim_sub.token, timeout=30)
    return message


def subscribe_in_page(page, live: LiveApp, component: str | None = None) -> None:
    """Open / and subscribe with the control, optionally to one component only."""
    from playwright.sync_api import expect

    page.goto(live.url + "/")
    root = page.locator("#push-subscribe")
    expect(root).to_have_attribute("data-state", "unsubscribed")
    open_subscribe(page, choices=bool(component))
    if component:
        page.get_by_role("checkbox", name=component, exact=True).check()
        expect(page.locator("#subscribe-all")).not_to_be_checked()
    with page.expect_response(lambda r: r.url.endswith("/api/push/subscriptions")
                              and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Get notified").click()
    assert posted.value.status == 201, posted.value.text()
    expect(root).to_have_attribute("data-state", "subscribed")


def subscription_row(live: LiveApp, endpoint: str) -> dict | None:
    from statuspage.push.subscriptions import find_subscription

    with live.db():
        sub = find_subscription(endpoint)
        if sub is None:
            return None
        return {"id": sub.id, "status": sub.status, "all_components": sub.all_components,
                "components": sorted(c.id for c in sub.components), "browser": sub.browser}


def wait_for_events_done(live: LiveApp, incident_id: int, count: int, timeout: float = 30) -> None:
    """Block until ``count`` events of the incident finished (the background job recorded results)."""
    import time

    from sqlalchemy import func, select

    from statuspage.models import Event

    deadline = time.monotonic() + timeout
    while True:
        with live.db():
            done = db.session.execute(select(func.count(Event.id)).where(
                Event.incident_id == incident_id, Event.state.in_(("done", "skipped")))).scalar_one()
        if done >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done} of {count} events of incident {incident_id} finished")
        time.sleep(0.05)


def api_call(live: LiveApp, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
    """Call the admin REST API of the live server with the bearer token (over real HTTP)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        live.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {live.admin_token}", "Content-Type": "application/json",
                 "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def admin_login(page, live: LiveApp) -> None:
    from playwright.sync_api import expect

    page.goto(live.url + "/admin/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def shot(page, name: str, *, selector: str | None = None, full_page: bool = False) -> Path:
    """Write <name>.png to docs/screenshots (UPDATE_SCREENSHOTS=1) or test-artifacts/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if selector:
        page.locator(selector).screenshot(path=str(path), animations="disabled")
    else:
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path



def wait_until_published(live: LiveApp, path: str, text: str, timeout: float = 15.0) -> None:
    """Anonymous visitors get the published snapshot, which follows a change within about a second
    (statuspage/publish/): wait until `path` shows `text` before a visitor's page loads it."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(live.url + path, timeout=10) as response:
            if text in response.read().decode("utf-8", "replace"):
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not show {text!r} within {timeout} s")
        time.sleep(0.1)
