/*
 * Tiny key/value store in IndexedDB shared by the page (static/js/subscribe.js, via
 * `import './push-store.js'`) and the service worker (/sw-push.js, via importScripts).
 * It is written as a classic script that only assigns a global, so it works both ways.
 *
 * Keys used:
 *   "components"  array of component ids the visitor chose ([] = everything)
 *   "endpoint"    the last endpoint POSTed to the server (oldEndpoint fallback)
 *   "lastSync"    ms timestamp of the last successful POST /api/push/subscriptions
 */
(function (g) {
  'use strict';
  var DB_NAME = 'status-push';
  var STORE = 'kv';
  var dbPromise = null;

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

  g.StatusPushStore = {
    get: function (key) { return run('readonly', function (s) { return s.get(key); }); },
    set: function (key, value) { return run('readwrite', function (s) { return s.put(value, key); }); },
    del: function (key) { return run('readwrite', function (s) { return s.delete(key); }); },
  };
})(typeof self !== 'undefined' ? self : globalThis);
