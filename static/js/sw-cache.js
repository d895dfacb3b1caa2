/*
 * Offline copies of the status page for the service worker (imported by /sw-push.js with
 * importScripts; a classic script with no globals of its own).
 *
 * A visitor taps a notification and the device is offline (a train, a dead zone, the very
 * outage the notification is about): the page they land on should still say something useful.
 * So the worker keeps the last copy it saw of the status page, the history and each incident
 * page (network first: online, the visitor always gets the live page), plus the content-hashed
 * assets those pages use (immutable, cache first). When a push arrives for an incident page the
 * worker fetches that page into the cache too, so the tap works offline even for a page never
 * opened. Offline, a saved copy is shown with a notice that it may be out of date; a page never
 * saved falls back to the saved status page, and with nothing saved to a short offline page.
 */
(function (sw) {
  'use strict';

  var PAGES = 'status-pages-v1';
  var ASSETS = 'status-assets-v1';
  var MAX_PAGES = 30;
  var MAX_ASSETS = 60;
  var NETWORK_TIMEOUT_MS = 6000;
  var SAVED_AT = 'X-Status-Saved-At';
  var PAGE_PATH = /^\/(?:incidents\/\d+|history(?:\/\d+)?)?$/;
  var HASHED_ASSET = /^\/static\/.+\.[0-9a-f]{10}\.[A-Za-z0-9]+$/;

  function pagePath(url) {
    if (url.origin !== sw.location.origin) return null;
    var path = url.pathname.replace(/\/+$/, '') || '/';
    return PAGE_PATH.test(path) ? path : null;
  }

  function withTimeout(promise, ms) {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { reject(new Error('network timeout')); }, ms);
      promise.then(function (v) { clearTimeout(timer); resolve(v); },
                   function (e) { clearTimeout(timer); reject(e); });
    });
  }

  async function trim(cacheName, max) {
    var cache = await caches.open(cacheName);
    var keys = await cache.keys();
    for (var i = 0; i < keys.length - max; i++) await cache.delete(keys[i]);
  }

  /** Keep a copy of a good page response, stamped with when it was saved. */
  async function savePage(path, response) {
    if (!response || !response.ok || response.type !== 'basic' || response.redirected) return;
    var type = response.headers.get('Content-Type') || '';
    if (type.indexOf('text/html') !== 0) return;
    var body = await response.clone().text();
    var headers = new Headers({ 'Content-Type': type });
    headers.set(SAVED_AT, String(Date.now()));
    var cache = await caches.open(PAGES);
    await cache.delete(path);  // re-inserted last: the oldest copies are the ones trimmed
    await cache.put(path, new Response(body, { status: 200, headers: headers }));
    await trim(PAGES, MAX_PAGES);
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  /** The saved copy with a notice at the top of <main> that it may be stale. */
  async function staleCopy(saved, asked, path) {
    var savedAt = Number(saved.headers.get(SAVED_AT)) || 0;
    var when = savedAt ? new Date(savedAt).toLocaleString() : 'earlier';
    var text = asked === path
      ? 'You are offline. This is the copy saved on this device at ' + when + '; it may be out of date.'
      : 'You are offline and this page (' + asked + ') is not saved on this device. Here is the status page as saved at ' + when + '; it may be out of date.';
    var notice = '<p class="flash flash-error offline-notice" role="alert" data-saved-at="' + savedAt + '">'
      + escapeHtml(text) + '</p>';
    var html = await saved.text();
    var main = html.search(/<main\b[^>]*>/i);
    if (main >= 0) {
      var end = html.indexOf('>', main) + 1;
      html = html.slice(0, end) + notice + html.slice(end);
    } else {
      html = notice + html;
    }
    return new Response(html, { status: 200, headers: { 'Content-Type': 'text/html; charset=utf-8',
                                                        'Cache-Control': 'no-store' } });
  }

  function offlinePage(asked) {
    var html = '<!doctype html><html lang="en"><head><meta charset="utf-8">'
      + '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Offline</title></head>'
      + '<body><main id="main"><h1>You are offline</h1><p class="offline-notice" role="alert">'
      + escapeHtml(asked) + ' is not saved on this device yet. Reconnect to see the current status.</p>'
      + '</main></body></html>';
    return new Response(html, { status: 503, headers: { 'Content-Type': 'text/html; charset=utf-8',
                                                       'Cache-Control': 'no-store' } });
  }

  async function pageFromNetworkOrCopy(request, path) {
    try {
      // Revalidated every time (a 304 from the snapshot costs nothing): a status page shown
      // online must be the current one, and offline must be noticed, not hidden by max-age.
      var response = await withTimeout(fetch(request.url, { credentials: 'same-origin', cache: 'no-cache' }),
                                       NETWORK_TIMEOUT_MS);
      savePage(path, response.clone()).catch(function () {});
      return response;
    } catch (e) {
      var cache = await caches.open(PAGES);
      var saved = await cache.match(path);
      if (saved) return staleCopy(saved, path, path);
      var home = await cache.match('/');
      if (home) return staleCopy(home, path, '/');
      return offlinePage(path);
    }
  }

  async function assetFromCacheOrNetwork(request) {
    var cache = await caches.open(ASSETS);
    var hit = await cache.match(request);
    if (hit) return hit;
    var response = await fetch(request);
    if (response.ok && response.type === 'basic') {
      await cache.put(request, response.clone());
      trim(ASSETS, MAX_ASSETS).catch(function () {});
    }
    return response;
  }

  sw.addEventListener('fetch', function (event) {
    var request = event.request;
    if (request.method !== 'GET') return;
    var url = new URL(request.url);
    if (request.mode === 'navigate') {
      var path = pagePath(url);
      if (path) event.respondWith(pageFromNetworkOrCopy(request, path));
      return;
    }
    if (url.origin === sw.location.origin && HASHED_ASSET.test(url.pathname)) {
      event.respondWith(assetFromCacheOrNetwork(request));
    }
  });

  /** Fetch and keep a page (and the assets it links) while online. */
  async function prefetch(path) {
    var response = await fetch(path, { credentials: 'same-origin', cache: 'no-cache' });
    await savePage(path, response.clone());
    var html = await response.text();
    var assets = html.match(/\/static\/[^"'\s>]+\.[0-9a-f]{10}\.[A-Za-z0-9]+/g) || [];
    var cache = await caches.open(ASSETS);
    await Promise.all(assets.map(async function (asset) {
      if (!(await cache.match(asset))) {
        var r = await fetch(asset);
        if (r.ok) await cache.put(asset, r);
      }
    }));
  }

  // A push about an incident: keep its page now, while the device is online. A short random
  // wait spreads 100,000 devices' fetches (served from the published snapshot anyway) and lets
  // the snapshot catch up with the change the push is about.
  sw.addEventListener('push', function (event) {
    var url;
    try {
      var data = event.data ? event.data.json() : null;
      url = data && typeof data.url === 'string' ? new URL(data.url, sw.location.origin) : null;
    } catch (e) { url = null; }
    var path = url && pagePath(url);
    if (!path) return;
    var wait = 1000 + Math.random() * 2000;
    event.waitUntil(new Promise(function (resolve) { setTimeout(resolve, wait); })
      .then(function () { return Promise.all([prefetch(path), path === '/' ? null : prefetch('/')]); })
      .catch(function () {}));
  });

  // On activation: keep the pages already open in this browser, drop caches of older versions.
  sw.addEventListener('activate', function (event) {
    event.waitUntil((async function () {
      var keep = [PAGES, ASSETS];
      var names = await caches.keys();
      await Promise.all(names.filter(function (n) { return /^status-(pages|assets)-/.test(n) && keep.indexOf(n) < 0; })
        .map(function (n) { return caches.delete(n); }));
      var windows = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
      var paths = windows.map(function (c) { return pagePath(new URL(c.url)); }).filter(Boolean);
      if (paths.indexOf('/') < 0) paths.push('/');
      await Promise.all(paths.map(function (p) { return prefetch(p).catch(function () {}); }));
    })());
  });
})(self);
