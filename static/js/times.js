// Relative times on the public pages. The published HTML is the same for every visitor (it is a
// snapshot): each <time datetime> carries the absolute time in the site's zone, and this script
// turns it into "12 minutes ago" in the visitor's language, with the absolute time in the
// visitor's own zone (and the site's zone, named) as its tooltip. Without JavaScript the site
// zone's absolute time stays. Re-run every minute and after the live page swapped in new markup
// (static/js/live.js dispatches "statuspage:updated").
(() => {
  'use strict';
  const MINUTE = 60 * 1000;
  const HOUR = 60 * MINUTE;
  const DAY = 24 * HOUR;
  const lang = document.documentElement.lang || undefined;
  const visitorZone = (() => {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { return ''; }
  })();
  const siteZone = (document.querySelector('[data-site-zone]') || {}).dataset?.siteZone || 'UTC';
  // "Etc/UTC", "UTC", "Etc/GMT"... are one zone: do not tell a visitor they differ.
  const sameZone = (a, b) => {
    const norm = (z) => (/^(Etc\/)?(UTC|UCT|GMT|Universal|Zulu|Greenwich)$/.test(z) ? 'UTC' : z);
    return norm(a) === norm(b);
  };
  const relative = typeof Intl.RelativeTimeFormat === 'function'
    ? new Intl.RelativeTimeFormat(lang, { numeric: 'auto' }) : null;
  const absolute = new Intl.DateTimeFormat(lang, {
    weekday: 'short', year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
  });
  let inSite = null;
  try {
    inSite = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', timeZone: siteZone, timeZoneName: 'short' });
  } catch (e) { inSite = null; } // a zone name this browser does not know

  function relativeText(when, now) {
    const diff = when - now; // negative: in the past
    const abs = Math.abs(diff);
    if (abs < MINUTE) return diff <= 0 ? 'just now' : 'in under a minute';
    if (!relative) return null;
    if (abs < HOUR) return relative.format(Math.round(diff / MINUTE), 'minute');
    if (abs < DAY) return relative.format(Math.round(diff / HOUR), 'hour');
    if (abs < 30 * DAY) return relative.format(Math.round(diff / DAY), 'day');
    return null; // a month or more: the date itself says more
  }

  function dateText(when) {
    return new Intl.DateTimeFormat(lang, { year: 'numeric', month: 'short', day: 'numeric' }).format(when);
  }

  function update(root) {
    const now = Date.now();
    for (const el of (root || document).querySelectorAll('time[datetime]')) {
      if (el.dataset.absolute === undefined) el.dataset.absolute = el.textContent; // the site-zone text
      const when = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(when.getTime())) continue;
      const text = relativeText(when.getTime(), now) || dateText(when);
      if (el.textContent !== text) el.textContent = text;
      let title = absolute.format(when);
      if (inSite && !sameZone(siteZone, visitorZone)) title += ` (${inSite.format(when)}, the site's time zone)`;
      el.title = title;
    }
  }

  function explainZone() {
    const note = document.getElementById('time-zone-note');
    if (!note) return;
    note.textContent = visitorZone && !sameZone(visitorZone, siteZone)
      ? `Times are shown in your time zone (${visitorZone}); the site's time zone is ${siteZone}. Hover a time for the exact moment.`
      : `Times are shown in ${siteZone}. Hover a time for the exact moment.`;
  }

  globalThis.StatusTimes = { update };
  update();
  explainZone();
  setInterval(() => update(), MINUTE);
  document.addEventListener('statuspage:updated', (event) => update(event.target));
})();
