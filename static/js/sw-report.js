/*
 * Seen and opened reports, from the push service worker (/sw-push.js loads this file with
 * importScripts after push-shared.js and calls the two hooks below).
 *
 *   StatusReport.shown(pushEvent)        after the push's notification is shown
 *   StatusReport.opened(notification)    when a notification is clicked
 *
 * A report says only which event a notification was for, what happened to it and how long ago:
 *   POST /api/push/reports {"reports": [{"event": <event id>, "kind": "shown"|"opened", "age": ms}]}
 * no endpoint, no cookie (credentials: 'omit'), nothing that tells one subscriber from another.
 * "age" is measured on this device's own clock between the notification and the report, so a
 * wrong device clock does not distort the server's send-to-shown time.
 *
 * Batched: reports wait in a small queue (IndexedDB, the page's StatusPush.store) and go in one
 * POST; rate-limited: at most one POST per MIN_INTERVAL_MS (later reports wait for the next one),
 * spread over a few seconds so a crowd does not report at the same instant; bounded: at most
 * MAX_QUEUE queued (the oldest dropped first), nothing older than MAX_AGE_MS, and each (event,
 * kind) reported once from this browser. Every step is best effort: a report never delays or
 * breaks a notification, and the hooks never reject.
 */
(function (g) {
  'use strict';
  var REPORT_URL = '/api/push/reports';
  var MAX_QUEUE = 50; // also the server's limit per request
  var MAX_AGE_MS = 7 * 24 * 3600 * 1000 - 3600 * 1000; // the server refuses 7 days; keep a margin
  var MIN_INTERVAL_MS = 5000;
  var MAX_SPREAD_MS = 3000;
  var MAX_REMEMBERED = 200; // (event, kind) pairs already reported
  var MAX_TAGS = 50; // notification tag -> event id, to know which event a clicked notification was

  var memory = {};
  var store = (g.StatusPush && g.StatusPush.store) || {
    get: function (k) { return Promise.resolve(memory[k]); },
    set: function (k, v) { memory[k] = v; return Promise.resolve(); },
  };

  // IndexedDB read-modify-write steps run one at a time (events of one worker interleave).
  var chain = Promise.resolve();
  function serial(fn) {
    var next = chain.then(fn, fn);
    chain = next.catch(function () {});
    return next;
  }

  function list(value) { return Array.isArray(value) ? value : []; }

  function validId(value) {
    var n = typeof value === 'string' && /^[0-9]{1,10}$/.test(value) ? Number(value) : value;
    return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 2147483648 ? n : null;
  }

  /** {id, tag} of a push payload, classic ({event_id, tag}) or declarative ({notification, data}). */
  function describePush(pushEvent) {
    var p = null;
    try { p = pushEvent && pushEvent.data ? JSON.parse(pushEvent.data.text()) : null; } catch (e) { p = null; }
    if (!p || typeof p !== 'object') return { id: null, tag: '' };
    var data = p.data && typeof p.data === 'object' ? p.data : {};
    var note = p.notification && typeof p.notification === 'object' ? p.notification : {};
    var tag = [p.tag, note.tag, data.tag].find(function (t) { return typeof t === 'string' && t; }) || '';
    var noteData = note.data && typeof note.data === 'object' ? note.data : {};
    return { id: validId(p.event_id) || validId(data.event_id) || validId(noteData.event_id), tag: tag };
  }

  /** Queue one report unless this (event, kind) was reported already; true when queued. */
  function enqueue(id, kind, tag) {
    return serial(function () {
      return Promise.all([store.get('reportDone'), store.get('reportQueue'), store.get('reportTags')])
        .then(function (values) {
          var done = list(values[0]);
          var queue = list(values[1]);
          var tags = list(values[2]);
          var key = id + ':' + kind;
          if (tag) {
            tags = tags.filter(function (t) { return t[0] !== tag; }).concat([[tag, id]]).slice(-MAX_TAGS);
          }
          if (done.indexOf(key) !== -1) return store.set('reportTags', tags).then(function () { return false; });
          done = done.concat([key]).slice(-MAX_REMEMBERED);
          queue = queue.concat([{ key: key, event: id, kind: kind, at: Date.now() }]).slice(-MAX_QUEUE);
          return Promise.all([store.set('reportDone', done), store.set('reportQueue', queue),
            store.set('reportTags', tags)]).then(function () { return true; });
        });
    });
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  var pending = null;

  /** Send everything queued in one POST, at most once per MIN_INTERVAL_MS. Concurrent calls
   *  share one send; a failed send leaves the reports queued for the next one. */
  function flush() {
    if (pending) return pending;
    pending = store.get('reportLast').then(function (last) {
      var wait = Math.max(0, (Number(last) || 0) + MIN_INTERVAL_MS - Date.now());
      return sleep(Math.min(wait, MIN_INTERVAL_MS) + Math.random() * MAX_SPREAD_MS);
    }).then(function () {
      return serial(function () { return store.get('reportQueue'); });
    }).then(function (queued) {
      var now = Date.now();
      var items = list(queued).filter(function (r) {
        return r && validId(r.event) && (r.kind === 'shown' || r.kind === 'opened')
          && r.at <= now && now - r.at <= MAX_AGE_MS;
      });
      var stale = list(queued).length - items.length;
      if (!items.length) return stale ? drop(list(queued)) : undefined;
      return store.set('reportLast', now).then(function () {
        return fetch(REPORT_URL, {
          method: 'POST',
          credentials: 'omit',
          cache: 'no-store',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ reports: items.map(function (r) {
            return { event: r.event, kind: r.kind, age: Math.max(0, now - r.at) };
          }) }),
        });
      }).then(function (res) {
        // Sent, or refused for good (a 4xx other than 429 would be refused again): unqueue them.
        if (res.ok || (res.status >= 400 && res.status < 500 && res.status !== 429)) {
          return drop(list(queued));
        }
        return undefined;
      }, function () { /* offline: they stay queued */ });
    }).catch(function () {}).then(function () { pending = null; });
    return pending;
  }

  /** Remove these queued reports (by key; reports queued meanwhile stay). */
  function drop(items) {
    var keys = items.map(function (r) { return r && r.key; });
    return serial(function () {
      return store.get('reportQueue').then(function (queue) {
        return store.set('reportQueue', list(queue).filter(function (r) { return keys.indexOf(r && r.key) === -1; }));
      });
    });
  }

  function report(id, kind, tag) {
    if (!id) return Promise.resolve();
    return enqueue(id, kind, tag).then(function (queued) { return queued ? flush() : undefined; })
      .catch(function () {});
  }

  g.StatusReport = {
    /** The push's notification was shown: report it (by the payload's event_id). */
    shown: function (pushEvent) {
      var push = describePush(pushEvent);
      return report(push.id, 'shown', push.tag);
    },
    /** A notification was clicked: its data's event_id, else the event last shown under its tag. */
    opened: function (notification) {
      var data = (notification && notification.data) || {};
      var id = validId(data.event_id);
      var tag = (notification && notification.tag) || '';
      var lookup = id || !tag ? Promise.resolve(id) : store.get('reportTags').then(function (tags) {
        var hit = list(tags).filter(function (t) { return t[0] === tag; })[0];
        return hit ? validId(hit[1]) : null;
      });
      return lookup.then(function (found) { return report(found, 'opened', ''); }).catch(function () {});
    },
  };
})(typeof self !== 'undefined' ? self : globalThis);
