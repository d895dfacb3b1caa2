/*
 * What the page (static/js/subscribe.js, via `import './push-shared.js'`) and the service worker
 * (/sw-push.js, via importScripts) both need, defined once: base64url decoding, the push key
 * check, the small IndexedDB store, and the subscription POST with its body.
 *
 * A classic script that only assigns the global `StatusPush`, so it runs both ways: imported by
 * an ES module in the page and loaded with importScripts() by the service worker (CSP
 * script-src 'self' and worker-src 'self' allow both).
 *
 * Store keys:
 *   "components"  array of component ids the visitor chose ([] = everything)
 *   "endpoint"    the last endpoint POSTed to the server (oldEndpoint fallback)
 *   "lastSync"    ms timestamp of the last successful POST /api/push/subscriptions
 */
(function (g) {
  'use strict';
  var DB_NAME = 'status-push';
  var STORE = 'kv';
  var KEY_URL = '/api/push/public-key';
  var SUBSCRIPTIONS_URL = '/api/push/subscriptions';
  var dbPromise = null;

  /* ---------- base64url and keys ---------- */

  function b64urlToBytes(s) {
    var clean = String(s).trim().replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
    var bin = atob(clean + '='.repeat((4 - (clean.length % 4)) % 4));
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function sameBytes(a, b) {
    if (!a || !b) return false;
    var x = new Uint8Array(a);
    var y = new Uint8Array(b);
    if (x.length !== y.length) return false;
    for (var i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }

  /** True when `sub` was made with another application server key than `key` (the site rotated
   *  its VAPID keys). A browser that does not expose the key gets the benefit of the doubt. */
  function madeWithOtherKey(sub, key) {
    var used = sub && sub.options && sub.options.applicationServerKey;
    return !!used && !sameBytes(used, key);
  }

  /** The browser's push subscription for `key`, the one place key rotation is handled: the
   *  existing subscription when it was made with `key`; otherwise the old one is dropped and a
   *  new one made. Resolves to {sub, oldEndpoint} (oldEndpoint: the replaced endpoint, if any). */
  function subscriptionForKey(pushManager, key, existing) {
    var current = existing !== undefined ? Promise.resolve(existing) : pushManager.getSubscription();
    return current.then(function (sub) {
      if (sub && !madeWithOtherKey(sub, key)) return { sub: sub, oldEndpoint: undefined };
      var oldEndpoint = sub ? sub.endpoint : undefined;
      var dropped = sub ? sub.unsubscribe() : Promise.resolve();
      return dropped.then(function () {
        return pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      }).then(function (fresh) { return { sub: fresh, oldEndpoint: oldEndpoint }; });
    });
  }

  /** The key bytes in a GET /api/push/public-key answer ({"publicKey": "<base64url>"}). */
  function publicKeyFrom(data) {
    if (!data || typeof data.publicKey !== 'string' || !data.publicKey) {
      throw new Error('The server did not provide a push key.');
    }
    try { return b64urlToBytes(data.publicKey); } catch (e) {
      throw new Error('The server provided an invalid push key.');
    }
  }

  /** GET /api/push/public-key as bytes (the service worker's way; the page reports errors itself). */
  function fetchServerKey() {
    return fetch(KEY_URL, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('public key: HTTP ' + res.status);
        return res.json();
      })
      .then(publicKeyFrom);
  }

  /* ---------- the store (IndexedDB; every call is best effort) ---------- */

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise(function (resolve, reject) {
      if (!g.indexedDB) { reject(new Error('IndexedDB unavailable')); return; }
      var req = g.indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
      req.onblocked = function () { reject(new Error('IndexedDB blocked')); };
    });
    dbPromise.catch(function () { dbPromise = null; });
    return dbPromise;
  }

  function run(mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var req = fn(tx.objectStore(STORE));
        tx.oncomplete = function () { resolve(req ? req.result : undefined); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error); };
      });
    });
  }

  // Private browsing and storage quotas can refuse any of these: reads then give undefined and
  // writes do nothing, because the server, not this store, is the record of a subscription.
  var store = {
    get: function (key) {
      return run('readonly', function (s) { return s.get(key); }).catch(function () { return undefined; });
    },
    set: function (key, value) {
      return run('readwrite', function (s) { return s.put(value, key); }).catch(function () {});
    },
    del: function (key) {
      return run('readwrite', function (s) { return s.delete(key); }).catch(function () {});
    },
    /** The chosen component ids ([] = everything). */
    components: function () {
      return store.get('components').then(function (ids) { return Array.isArray(ids) ? ids : []; });
    },
  };

  /* ---------- the subscription POST ---------- */

  /** POST /api/push/subscriptions: PushSubscription.toJSON() plus the chosen components and,
   *  when the endpoint changed, the old one (so the server moves the row instead of adding one). */
  function subscriptionBody(sub, components, oldEndpoint) {
    var body = Object.assign({}, sub.toJSON(), { components: components || [] });
    if (oldEndpoint && oldEndpoint !== sub.endpoint) body.oldEndpoint = oldEndpoint;
    return body;
  }

  /** Record what the server accepted, so the next visit and the service worker know it. */
  function remember(sub, components) {
    return Promise.all([
      store.set('components', components || []),
      store.set('endpoint', sub.endpoint),
      store.set('lastSync', Date.now()),
    ]);
  }

  g.StatusPush = {
    KEY_URL: KEY_URL,
    SUBSCRIPTIONS_URL: SUBSCRIPTIONS_URL,
    b64urlToBytes: b64urlToBytes,
    sameBytes: sameBytes,
    madeWithOtherKey: madeWithOtherKey,
    subscriptionForKey: subscriptionForKey,
    publicKeyFrom: publicKeyFrom,
    fetchServerKey: fetchServerKey,
    store: store,
    subscriptionBody: subscriptionBody,
    remember: remember,
  };
})(typeof self !== 'undefined' ? self : globalThis);
