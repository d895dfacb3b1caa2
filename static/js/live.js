// The live status page: polls /api/v2/summary.json with its ETag (If-None-Match, so an unchanged
// page costs a 304 with no body) every 30-40 s while the tab is visible, every 5 minutes while it
// is hidden, and backs off after failures. When the summary changed, the page's #live-status
// block is swapped for the one in a fresh copy of the published page, and the new status is
// announced politely (#live-announce, role=status). Focus and the groups a visitor opened or
// closed by hand are kept.
(() => {
  'use strict';
  const SUMMARY_URL = '/api/v2/summary.json';
  const VISIBLE_MS = 30 * 1000;
  const JITTER_MS = 10 * 1000;     // visitors spread out: every 30-40 s
  const HIDDEN_MS = 5 * 60 * 1000;
  const MAX_BACKOFF_MS = 5 * 60 * 1000;
  const PAGE_RETRY_MS = 3 * 1000;  // the published page can trail the summary by a moment

  const region = document.getElementById('live-status');
  const announcer = document.getElementById('live-announce');
  if (!region || typeof fetch !== 'function') return;

  let etag = null;
  let lastText = null;
  let timer = null;
  let failures = 0;
  let lastPoll = 0;
  let polling = false;

  function delay() {
    if (failures) return Math.min(VISIBLE_MS * 2 ** failures, MAX_BACKOFF_MS);
    return document.hidden ? HIDDEN_MS : VISIBLE_MS + Math.random() * JITTER_MS;
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms === undefined ? delay() : ms);
  }

  function fingerprint(summary) {
    // What the page shows: the status, the open incidents and maintenances, the components.
    return JSON.stringify([
      summary.status,
      (summary.incidents || []).map((i) => [i.id, i.status, i.impact, i.updated_at]),
      (summary.scheduled_maintenances || []).map((m) => [m.id, m.status, m.updated_at]),
      (summary.components || []).map((c) => [c.id, c.status, c.name]),
    ]);
  }

  function announce(summary) {
    if (!announcer) return;
    const n = (summary.incidents || []).length;
    const incidents = n ? ` ${n} active incident${n === 1 ? '' : 's'}.` : '';
    // Cleared first so the same words are announced again if they come back.
    announcer.textContent = '';
    setTimeout(() => { announcer.textContent = `Status updated: ${summary.status.description}.${incidents}`; }, 100);
  }

  function swap(fresh) {
    const active = document.activeElement;
    const focusId = active && region.contains(active) ? active.id : '';
    const toggled = new Map();
    for (const d of region.querySelectorAll('details[data-group]')) {
      if (d.open !== (d.dataset.defaultOpen === 'true')) toggled.set(d.dataset.group, d.open);
    }
    region.replaceChildren(...Array.from(fresh.childNodes, (node) => document.importNode(node, true)));
    for (const d of region.querySelectorAll('details[data-group]')) {
      if (toggled.has(d.dataset.group)) d.open = toggled.get(d.dataset.group);
    }
    if (focusId) {
      const again = document.getElementById(focusId);
      if (again) again.focus({ preventScroll: true });
    }
    region.dispatchEvent(new CustomEvent('statuspage:updated', { bubbles: true }));
  }

  async function refreshPage(summary, attempt = 0) {
    const res = await fetch(location.pathname, { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) throw new Error(`page answered ${res.status}`);
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const fresh = doc.getElementById('live-status');
    if (!fresh) return;
    if (fresh.innerHTML === region.innerHTML && attempt < 3) {
      setTimeout(() => refreshPage(summary, attempt + 1).catch(() => {}), PAGE_RETRY_MS);
      return;
    }
    swap(fresh);
    announce(summary);
  }

  async function poll() {
    if (polling) return;
    polling = true;
    lastPoll = Date.now();
    try {
      const headers = { Accept: 'application/json' };
      if (etag) headers['If-None-Match'] = etag;
      // no-store: the ETag is sent by this script, so a 304 reaches it (the HTTP cache would
      // turn it into a 200 with the old body).
      const res = await fetch(SUMMARY_URL, { headers, cache: 'no-store', credentials: 'same-origin' });
      if (res.status === 304) {
        failures = 0;
        return;
      }
      if (!res.ok) throw new Error(`summary answered ${res.status}`);
      const summary = await res.json();
      etag = res.headers.get('ETag') || null;
      const text = fingerprint(summary);
      const banner = region.querySelector('[data-indicator]');
      const first = lastText === null;
      const changed = first
        ? banner && banner.dataset.indicator !== summary.status.indicator
        : text !== lastText;
      lastText = text;
      failures = 0;
      if (changed) await refreshPage(summary);
    } catch (e) {
      failures += 1;
      console.warn('[live] polling the status failed:', e);
    } finally {
      polling = false;
      schedule();
    }
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && Date.now() - lastPoll >= VISIBLE_MS) schedule(0);
    else schedule(Math.max(0, (document.hidden ? HIDDEN_MS : VISIBLE_MS) - (Date.now() - lastPoll)));
  });
  poll();
})();
