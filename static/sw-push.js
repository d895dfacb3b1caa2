/*
 * Push service worker for the status page. Served at /sw-push.js with scope "/".
 *
 * Payload (JSON), one of two shapes (statuspage/push/formats.py):
 *   classic:     {"title","body","icon","badge","url","tag","event","timestamp"}
 *   declarative: {"web_push":8030,"notification":{"title","body","navigate","lang","dir","tag",
 *                 "silent","data":{"icon","badge","url","event","timestamp"}},"mutable":true}
 * (Safari 18.4+ shows a declarative one by itself when this worker is gone; with "mutable" it
 * still comes here first.) Every push shows a notification (userVisibleOnly), whatever it looks like.
 */
'use strict';

importScripts('/static/js/push-shared.js'); /* global StatusPush */
// Offline copies of the status and incident pages: a separate, self-contained file.
importScripts('/static/js/sw-cache.js');
// Seen/opened reports by event id only (hooks in the push and click handlers): a separate file.
importScripts('/static/js/sw-report.js'); /* global StatusReport */

const DEFAULT_TITLE = 'Status update';
const DEFAULT_ICON = '/static/icons/icon-192.png';
const DEFAULT_BADGE = '/static/icons/badge-96.png';

self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/* ---------- helpers ---------- */

/** Same-origin absolute URL for `value`, or the site root when it is missing or foreign. */
function sameOriginUrl(value) {
  try {
    const url = new URL(value || '/', self.location.origin);
    if (url.origin === self.location.origin) return url.href;
  } catch (e) { /* fall through */ }
  return new URL('/', self.location.origin).href;
}

/** Icon/badge URLs may be absolute on another host (a CDN); only http(s) is accepted. */
function imageUrl(value, fallback) {
  if (typeof value !== 'string' || !value) return fallback;
  try {
    const url = new URL(value, self.location.origin);
    if (url.protocol === 'https:' || url.protocol === 'http:') return url.href;
  } catch (e) { /* fall through */ }
  return fallback;
}

/** Epoch ms from a number (s or ms) or an ISO string; undefined if unusable. */
function toTimestamp(value) {
  let ms;
  if (typeof value === 'number' && isFinite(value)) {
    ms = value < 1e12 ? value * 1000 : value;
  } else if (typeof value === 'string' && value) {
    ms = /^\d+(\.\d+)?$/.test(value) ? toTimestamp(Number(value)) : Date.parse(value);
  }
  return typeof ms === 'number' && isFinite(ms) ? ms : undefined;
}

/** A Declarative Web Push message as the classic payload (anything else unchanged). */
function fromDeclarative(parsed) {
  const n = parsed.notification;
  if (parsed.web_push !== 8030 || !n || typeof n !== 'object' || Array.isArray(n)) return parsed;
  const data = (n.data && typeof n.data === 'object' && !Array.isArray(n.data)) ? n.data : {};
  return {
    ...data,
    title: n.title, body: n.body, tag: n.tag, lang: n.lang, dir: n.dir, silent: n.silent,
    url: typeof n.navigate === 'string' && n.navigate ? n.navigate : data.url,
  };
}

function parsePayload(data) {
  if (!data) return {};
  let text = '';
  try { text = data.text(); } catch (e) { return {}; }
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return fromDeclarative(parsed);
    if (typeof parsed === 'string') return { body: parsed };
  } catch (e) { /* not JSON */ }
  return text ? { body: text } : {};
}

function buildNotification(payload) {
  const str = (v) => (typeof v === 'string' && v.trim() ? v : '');
  const title = str(payload.title) || DEFAULT_TITLE;
  const options = {
    body: str(payload.body),
    icon: imageUrl(payload.icon, DEFAULT_ICON),
    badge: imageUrl(payload.badge, DEFAULT_BADGE),
    // event_id: what a click's "opened" report names (sw-report.js), even when the tag's
    // last-shown record is gone.
    data: { url: sameOriginUrl(payload.url), event: str(payload.event) || null,
            event_id: Number.isInteger(payload.event_id) ? payload.event_id : null },
  };
  const tag = str(payload.tag);
  if (tag) {
    options.tag = tag;
    options.renotify = true; // an update replacing an earlier notification alerts again
  }
  const ts = toTimestamp(payload.timestamp);
  if (ts !== undefined) options.timestamp = ts;
  if (str(payload.lang)) options.lang = payload.lang;
  if (['auto', 'ltr', 'rtl'].includes(payload.dir)) options.dir = payload.dir;
  if (payload.silent === true) {
    options.silent = true;
    delete options.renotify; // the Notifications API refuses silent together with renotify
  }
  return { title, options };
}

/* ---------- push ---------- */

self.addEventListener('push', (event) => {
  event.waitUntil((async () => {
    let note;
    try {
      note = buildNotification(parsePayload(event.data));
    } catch (e) {
      note = { title: DEFAULT_TITLE, options: { body: '', icon: DEFAULT_ICON, badge: DEFAULT_BADGE, data: { url: sameOriginUrl('/') } } };
    }
    try {
      await self.registration.showNotification(note.title, note.options);
    } catch (e) {
      // e.g. a browser rejecting an option: never leave a push without a notification.
      await self.registration.showNotification(note.title, {
        body: note.options.body, icon: DEFAULT_ICON, badge: DEFAULT_BADGE, data: note.options.data,
      });
    }
    await StatusReport.shown(event);
  })());
});

/* ---------- notificationclick ---------- */

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(StatusReport.opened(event.notification));
  const target = sameOriginUrl(event.notification.data && event.notification.data.url);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const strip = (u) => u.split('#')[0];
    // 1. a tab already showing exactly this URL
    let client = windows.find((c) => c.url === target);
    // 2. the same page with another #fragment: focus it and move it to the target
    if (!client) client = windows.find((c) => strip(c.url) === strip(target));
    if (client) {
      try {
        if (client.url !== target && 'navigate' in client) client = (await client.navigate(target)) || client;
      } catch (e) { /* uncontrolled clients cannot be navigated; focusing is still right */ }
      if ('focus' in client) return client.focus();
      return undefined;
    }
    if (self.clients.openWindow) return self.clients.openWindow(target);
    return undefined;
  })());
});

/* ---------- pushsubscriptionchange ---------- */

/** The browser replaced or dropped the subscription: subscribe again with the key the server
 *  uses now (it may have been rotated; the old subscription's key when the server is out of
 *  reach) and POST it with the old endpoint, keeping the visitor's component choice. */
async function resubscribe(event) {
  const old = event.oldSubscription || null;
  const oldEndpoint = (old && old.endpoint) || (await StatusPush.store.get('endpoint')) || undefined;
  const components = await StatusPush.store.components();

  let sub = event.newSubscription || null;
  if (!sub) {
    let key = null;
    try { key = await StatusPush.fetchServerKey(); } catch (e) {
      key = old && old.options && old.options.applicationServerKey;
    }
    if (!key) throw new Error('pushsubscriptionchange: no applicationServerKey');
    ({ sub } = await StatusPush.subscriptionForKey(self.registration.pushManager, key));
  }

  const res = await fetch(StatusPush.SUBSCRIPTIONS_URL, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(StatusPush.subscriptionBody(sub, components, oldEndpoint)),
  });
  if (!res.ok) throw new Error(`resubscribe: HTTP ${res.status}`);
  await StatusPush.remember(sub, components);
}

self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil(resubscribe(event).catch((err) => {
    console.warn('[sw-push] resubscribe failed:', err);
  }));
});
